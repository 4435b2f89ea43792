//! Clip-level acoustic functionals: an expert feature set of the eGeMAPS kind (Eyben et al.,
//! "The Geneva Minimalistic Acoustic Parameter Set", IEEE TAC 2016), computed in Rust.
//!
//! A pipeline with `functionals: {...}` turns every clip (and augmented variant) into **one
//! vector** of named values instead of a spectrogram: frame-level descriptors ([`pitch`]: F0
//! with voicing, jitter, shimmer, HNR; [`spectral`]: loudness, energy, zero-crossing rate,
//! spectral centroid / roll-off / flux / slopes, alpha ratio, Hammarberg index, MFCC), then
//! functionals over them ([`stats`]): F0 (pYIN, [`pyin`]; in semitones re 27.5 Hz, voiced
//! frames) and loudness
//! get mean, std, percentiles 20/50/80, range 20-80 and mean rising / falling slope; voice
//! quality (voiced frames) and the spectral set (frames within `silence_db` of the loudest)
//! mean and std; MFCCs mean, std and the std of their Δ; plus temporal rates (voiced fraction,
//! voiced segments per second, mean / std voiced and mean unvoiced segment length, loudness
//! peaks per second). [`Functionals::names`] lists the values in order; the cache stores the
//! list as Parquet metadata (`feature_names`) and in `feature_names.json`.
//!
//! This is not openSMILE: the definitions follow the papers and textbooks (see each module),
//! not openSMILE's code, so values differ from `opensmile`'s eGeMAPSv02 even where the names
//! agree. With `formants: true`, F1-F3 by linear prediction ([`formants`]) add the mean and
//! std of each formant's frequency and its mean bandwidth over voiced frames.

pub mod formants;
pub mod pitch;
pub mod pyin;
pub mod spectral;
pub mod stats;

use serde::{Deserialize, Serialize};

use pitch::{PitchParams, PitchTracker};
use spectral::SpectralAnalyzer;

/// Version of the descriptor definitions, part of the cache key of functionals pipelines: bump
/// it whenever a change alters any value.
pub const FUNCTIONALS_VERSION: u32 = 1;

/// `functionals:` block of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FunctionalsSpec {
    /// Frame of the energy and spectral descriptors, seconds.
    pub frame_s: f32,
    /// Hop between frames, seconds (F0 and spectral frames alike).
    pub hop_s: f32,
    /// Frame of the F0 tracker, seconds (at least two periods of `fmin`).
    pub pitch_frame_s: f32,
    /// F0 search range, Hz.
    pub fmin: f32,
    pub fmax: f32,
    /// Frames more than this many dB below the clip's loudest are silence, left out of the
    /// spectral functionals.
    pub silence_db: f32,
    /// MFCCs 1..=n (of 26 mel bands).
    pub mfcc: usize,
    /// F1-F3 (frequency mean and std, bandwidth mean) over voiced frames, by LPC.
    #[serde(skip_serializing_if = "is_false")]
    pub formants: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for FunctionalsSpec {
    fn default() -> Self {
        FunctionalsSpec {
            frame_s: 0.025,
            hop_s: 0.010,
            pitch_frame_s: 0.05,
            fmin: 60.0,
            fmax: 600.0,
            silence_db: 40.0,
            mfcc: 13,
            formants: false,
        }
    }
}

impl FunctionalsSpec {
    /// Values per clip.
    pub fn len(&self) -> usize {
        8 + 8 + 6 + 2 * SPECTRAL.len() + 3 * self.mfcc + 6 + if self.formants { 9 } else { 0 }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Values that parse but cannot work: `(key, message)`.
    pub fn check(&self, sample_rate: u32) -> Result<(), (&'static str, String)> {
        let sr = sample_rate as f32;
        let pos = |v: f32| v > 0.0 && v.is_finite();
        if !(pos(self.frame_s) && pos(self.hop_s) && pos(self.pitch_frame_s)) {
            return Err((
                "frame_s",
                "frame_s, hop_s and pitch_frame_s must be > 0".into(),
            ));
        }
        if (self.frame_s * sr) < 16.0 {
            return Err(("frame_s", format!("{} s is under 16 samples", self.frame_s)));
        }
        if !(pos(self.fmin) && self.fmin < self.fmax && self.fmax < sr / 2.0) {
            return Err((
                "fmin",
                format!(
                    "need 0 < fmin < fmax < sample_rate / 2, got {} and {}",
                    self.fmin, self.fmax
                ),
            ));
        }
        if self.pitch_frame_s * self.fmin < 2.0 {
            return Err((
                "pitch_frame_s",
                format!(
                    "{} s holds fewer than two periods of fmin = {} Hz",
                    self.pitch_frame_s, self.fmin
                ),
            ));
        }
        if !(pos(self.silence_db)) {
            return Err(("silence_db", "must be > 0".into()));
        }
        if !(1..spectral::MEL_BANDS).contains(&self.mfcc) {
            return Err((
                "mfcc",
                format!(
                    "must be in 1..={}, got {}",
                    spectral::MEL_BANDS - 1,
                    self.mfcc
                ),
            ));
        }
        Ok(())
    }
}

/// Spectral descriptors with mean and std functionals, in output order.
const SPECTRAL: [&str; 9] = [
    "rms_db",
    "zcr",
    "centroid_hz",
    "rolloff85_hz",
    "flux",
    "slope0_500",
    "slope500_1500",
    "alpha_ratio_db",
    "hammarberg_db",
];

/// A planned functionals extractor (thread-shareable).
pub struct Functionals {
    spec: FunctionalsSpec,
    sample_rate: f32,
    hop: usize,
    spectral: SpectralAnalyzer,
    tracker: PitchTracker,
    formants: Option<formants::FormantAnalyzer>,
}

impl Functionals {
    pub fn new(spec: &FunctionalsSpec, sample_rate: u32) -> Functionals {
        let sr = sample_rate as f32;
        let frame = (spec.frame_s * sr).round() as usize;
        let hop = ((spec.hop_s * sr).round() as usize).max(1);
        let pitch = PitchParams {
            sample_rate: sr,
            frame: (spec.pitch_frame_s * sr).round() as usize,
            hop,
            fmin: spec.fmin,
            fmax: spec.fmax,
        };
        Functionals {
            spec: spec.clone(),
            sample_rate: sr,
            hop,
            spectral: SpectralAnalyzer::new(sr, frame, spec.mfcc),
            tracker: PitchTracker::new(&pitch),
            formants: spec
                .formants
                .then(|| formants::FormantAnalyzer::new(sr, pitch.frame)),
        }
    }

    /// The names of the values [`Functionals::compute`] returns, in order.
    pub fn names(&self) -> Vec<String> {
        let mut n = Vec::new();
        for c in stats::CONTOUR {
            n.push(format!("f0_semitone_{c}"));
        }
        for c in stats::CONTOUR {
            n.push(format!("loudness_{c}"));
        }
        for d in ["jitter_local", "shimmer_local_db", "hnr_db"] {
            n.push(format!("{d}_mean"));
            n.push(format!("{d}_std"));
        }
        for d in SPECTRAL {
            n.push(format!("{d}_mean"));
            n.push(format!("{d}_std"));
        }
        for i in 1..=self.spec.mfcc {
            n.push(format!("mfcc{i}_mean"));
            n.push(format!("mfcc{i}_std"));
        }
        for i in 1..=self.spec.mfcc {
            n.push(format!("mfcc{i}_delta_std"));
        }
        for r in [
            "voiced_fraction",
            "voiced_segments_per_s",
            "voiced_segment_mean_s",
            "voiced_segment_std_s",
            "unvoiced_segment_mean_s",
            "loudness_peaks_per_s",
        ] {
            n.push(r.into());
        }
        if self.formants.is_some() {
            for k in 1..=3 {
                n.push(format!("f{k}_hz_mean"));
                n.push(format!("f{k}_hz_std"));
                n.push(format!("f{k}_bandwidth_hz_mean"));
            }
        }
        n
    }

    pub fn len(&self) -> usize {
        self.spec.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The functionals of mono samples at the pipeline's rate.
    pub fn compute(&self, y: &[f32]) -> Vec<f32> {
        let dt = self.hop as f32 / self.sample_rate;
        let duration = (y.len() as f32 / self.sample_rate).max(dt);
        let mut out = Vec::with_capacity(self.len());
        // F0 in semitones over voiced runs.
        let track = self.tracker.track(y);
        let voiced: Vec<bool> = track.iter().map(|f| f.voiced).collect();
        let mut segments: Vec<Vec<f32>> = Vec::new();
        let mut prev = false;
        for f in &track {
            if f.voiced {
                let st = 12.0 * (f.f0 / 27.5).log2();
                if !prev {
                    segments.push(Vec::new());
                }
                segments.last_mut().expect("pushed").push(st);
            }
            prev = f.voiced;
        }
        out.extend(stats::contour(&segments, dt));
        let frames = self.spectral.frames(y, self.hop);
        let loud: Vec<f32> = frames.iter().map(|f| f.loudness).collect();
        out.extend(stats::contour(std::slice::from_ref(&loud), dt));
        let pick = |g: &dyn Fn(&pitch::PitchFrame) -> Option<f32>| -> Vec<f32> {
            track.iter().filter(|f| f.voiced).filter_map(g).collect()
        };
        for v in [
            pick(&|f| f.jitter),
            pick(&|f| f.shimmer_db),
            pick(&|f| Some(f.hnr_db)),
        ] {
            let (m, s) = stats::mean_std(&v);
            out.extend([m, s]);
        }
        // Spectral functionals over frames that are not silence.
        let loudest = frames
            .iter()
            .map(|f| f.rms_db)
            .fold(f32::NEG_INFINITY, f32::max);
        let active: Vec<&spectral::SpectralFrame> = frames
            .iter()
            .filter(|f| f.rms_db >= loudest - self.spec.silence_db)
            .collect();
        let getters: [fn(&spectral::SpectralFrame) -> f32; 9] = [
            |f| f.rms_db,
            |f| f.zcr,
            |f| f.centroid,
            |f| f.rolloff,
            |f| f.flux,
            |f| f.slope_0_500,
            |f| f.slope_500_1500,
            |f| f.alpha_ratio,
            |f| f.hammarberg,
        ];
        for g in getters {
            let v: Vec<f32> = active.iter().map(|f| g(f)).collect();
            let (m, s) = stats::mean_std(&v);
            out.extend([m, s]);
        }
        for i in 0..self.spec.mfcc {
            let v: Vec<f32> = active.iter().map(|f| f.mfcc[i]).collect();
            let (m, s) = stats::mean_std(&v);
            out.extend([m, s]);
        }
        // Δ of each MFCC along the active frames (central difference).
        for i in 0..self.spec.mfcc {
            let c: Vec<f32> = active.iter().map(|f| f.mfcc[i]).collect();
            let d: Vec<f32> = (1..c.len().saturating_sub(1))
                .map(|t| 0.5 * (c[t + 1] - c[t - 1]))
                .collect();
            out.push(stats::mean_std(&d).1);
        }
        let (on, off) = stats::runs(&voiced);
        let secs = |v: &[usize]| -> Vec<f32> { v.iter().map(|&n| n as f32 * dt).collect() };
        let (von_m, von_s) = stats::mean_std(&secs(&on));
        out.push(voiced.iter().filter(|&&v| v).count() as f32 / voiced.len().max(1) as f32);
        out.push(on.len() as f32 / duration);
        out.extend([von_m, von_s]);
        out.push(stats::mean_std(&secs(&off)).0);
        let (lm, _) = stats::mean_std(&loud);
        let peaks = (1..loud.len().saturating_sub(1))
            .filter(|&t| loud[t] > loud[t - 1] && loud[t] >= loud[t + 1] && loud[t] > lm)
            .count();
        out.push(peaks as f32 / duration);
        if let Some(fa) = &self.formants {
            // Over the voiced frames of the F0 track (its frames, its voicing decisions).
            let frame = self.tracker.params().frame;
            let mut per: [Vec<formants::Formant>; 3] = Default::default();
            for f in track.iter().filter(|f| f.voiced) {
                let s = f.start;
                let end = (s + frame).min(y.len());
                for (k, v) in fa.formants(&y[s.min(end)..end]).into_iter().enumerate() {
                    per[k].push(v);
                }
            }
            for p in &per {
                let hz: Vec<f32> = p.iter().map(|f| f.hz).collect();
                let bw: Vec<f32> = p.iter().map(|f| f.bandwidth_hz).collect();
                let (m, sd) = stats::mean_std(&hz);
                out.extend([m, sd, stats::mean_std(&bw).0]);
            }
        }
        debug_assert_eq!(out.len(), self.len());
        for v in &mut out {
            if !v.is_finite() {
                *v = 0.0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_values_and_a_voiced_tone_reads_as_voiced() {
        let sr = 16000;
        let f = Functionals::new(&FunctionalsSpec::default(), sr);
        let names = f.names();
        assert_eq!(names.len(), f.len());
        // 0.5 s of a 200 Hz harmonic tone, then 0.5 s of silence.
        let mut y: Vec<f32> = (0..8000)
            .map(|i| {
                let t = i as f32 / sr as f32;
                (1..=3)
                    .map(|h| (2.0 * std::f32::consts::PI * 200.0 * h as f32 * t).sin())
                    .sum::<f32>()
                    * 0.2
            })
            .collect();
        y.extend(vec![0.0; 8000]);
        let v = f.compute(&y);
        assert_eq!(v.len(), names.len());
        let get = |n: &str| v[names.iter().position(|x| x == n).unwrap()];
        let st = 12.0 * (200.0f32 / 27.5).log2();
        assert!(
            (get("f0_semitone_mean") - st).abs() < 0.1,
            "{}",
            get("f0_semitone_mean")
        );
        assert!(get("f0_semitone_std") < 0.1);
        let vf = get("voiced_fraction");
        assert!((0.35..0.55).contains(&vf), "voiced fraction {vf}");
        assert!((get("voiced_segments_per_s") - 1.0).abs() < 0.01);
        assert!(get("hnr_db_mean") > 20.0);
        assert!(v.iter().all(|x| x.is_finite()));
        // Silence only: finite zeros where nothing is voiced.
        let z = f.compute(&vec![0.0; 4000]);
        assert!(z.iter().all(|x| x.is_finite()));
        assert_eq!(
            z[names.iter().position(|x| x == "voiced_fraction").unwrap()],
            0.0
        );
        // With formants: nine more values, named, after the same 85; the tone's F1 is near one
        // of its harmonics, and silence gives zeros, never NaN.
        let spec = FunctionalsSpec {
            formants: true,
            ..Default::default()
        };
        let g = Functionals::new(&spec, sr);
        let gn = g.names();
        assert_eq!(gn.len(), f.len() + 9);
        assert_eq!(&gn[..names.len()], &names[..]);
        assert_eq!(gn.last().unwrap(), "f3_bandwidth_hz_mean");
        let w = g.compute(&y);
        assert_eq!(w.len(), gn.len());
        assert_eq!(&w[..v.len()], &v[..]);
        let f1 = w[gn.iter().position(|x| x == "f1_hz_mean").unwrap()];
        assert!(f1 > 90.0 && f1 < 700.0, "F1 {f1}");
        assert!(g.compute(&vec![0.0; 4000]).iter().all(|x| x.is_finite()));
        // The default spec serialises without the key, so existing cache keys stay the same.
        assert!(!serde_yaml::to_string(&FunctionalsSpec::default())
            .unwrap()
            .contains("formants"));
    }

    #[test]
    fn checks_reject_impossible_settings() {
        let ok = FunctionalsSpec::default();
        assert!(ok.check(16000).is_ok());
        let mut s = ok.clone();
        s.fmax = 9000.0;
        assert_eq!(s.check(16000).unwrap_err().0, "fmin");
        let mut s = ok.clone();
        s.pitch_frame_s = 0.02;
        assert_eq!(s.check(16000).unwrap_err().0, "pitch_frame_s");
        let mut s = ok;
        s.mfcc = 30;
        assert_eq!(s.check(16000).unwrap_err().0, "mfcc");
    }
}
