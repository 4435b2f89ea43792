//! Fundamental frequency with voicing decisions (YIN), and the voice-quality measures read off
//! the pitch periods of voiced frames: local jitter, local shimmer (dB) and harmonics-to-noise
//! ratio.
//!
//! * F0 and voicing: pYIN ([`super::pyin`]) in [`track`].
//! * Jitter (local) and shimmer (local, dB), as Praat defines them over glottal cycles: inside a
//!   voiced frame the cycles are found by peak picking one period apart; jitter is the mean
//!   absolute difference of consecutive periods over the mean period, shimmer the mean absolute
//!   `20·log10` ratio of consecutive cycle peak amplitudes.
//! * HNR: from the normalised autocorrelation `r` at the period (Boersma 1993),
//!   `10·log10(r / (1 − r))` dB.

/// Pitch tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitchParams {
    pub sample_rate: f32,
    /// Analysis frame in samples (covers at least two periods of `fmin`).
    pub frame: usize,
    pub hop: usize,
    pub fmin: f32,
    pub fmax: f32,
}

/// One analysis frame's pitch estimate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PitchFrame {
    /// First sample of the frame (of [`PitchParams::frame`] samples).
    pub start: usize,
    /// F0 in Hz; 0 when unvoiced.
    pub f0: f32,
    pub voiced: bool,
    /// Harmonics-to-noise ratio in dB (voiced frames only).
    pub hnr_db: f32,
    /// Local jitter (fraction, voiced frames with at least three cycles, else `None`).
    pub jitter: Option<f32>,
    /// Local shimmer in dB (as jitter).
    pub shimmer_db: Option<f32>,
}

/// Frame start positions of a signal of `len` samples (at least one frame; short signals are
/// zero-padded by the caller's frame reader).
pub fn frame_starts(len: usize, frame: usize, hop: usize) -> Vec<usize> {
    if len <= frame {
        return vec![0];
    }
    (0..=(len - frame) / hop).map(|i| i * hop).collect()
}

fn frame_of(y: &[f32], start: usize, frame: usize) -> Vec<f32> {
    let mut x = vec![0f32; frame];
    let end = (start + frame).min(y.len());
    if start < end {
        x[..end - start].copy_from_slice(&y[start..end]);
    }
    x
}

/// HNR in dB from a normalised autocorrelation, bounded to [-20, 40] dB.
pub fn hnr_db(r: f32) -> f32 {
    let r = r.clamp(1e-2, 0.9999) as f64;
    ((10.0 * (r / (1.0 - r)).log10()) as f32).clamp(-20.0, 40.0)
}

/// Glottal cycles of a voiced frame with (fractional) period `period`: the samples of successive
/// peaks, each the maximum within ±20 % of one period after the previous one.
pub fn cycle_peaks(x: &[f32], period: f32) -> Vec<usize> {
    let t = period.round().max(2.0) as usize;
    if x.len() < 2 * t {
        return Vec::new();
    }
    let argmax = |lo: usize, hi: usize| -> usize {
        let mut best = lo;
        for i in lo..hi.min(x.len()) {
            if x[i] > x[best] {
                best = i;
            }
        }
        best
    };
    let mut peaks = vec![argmax(0, t)];
    let slack = (0.2 * period).round().max(1.0) as usize;
    loop {
        let last = *peaks.last().expect("non-empty");
        let lo = last + t - slack.min(t - 1);
        let hi = last + t + slack + 1;
        if hi > x.len() {
            break;
        }
        peaks.push(argmax(lo, hi));
    }
    peaks
}

/// Local jitter and shimmer (dB) from cycle peaks: `None` with fewer than three cycles.
pub fn jitter_shimmer(x: &[f32], peaks: &[usize]) -> Option<(f32, f32)> {
    if peaks.len() < 3 {
        return None;
    }
    let periods: Vec<f64> = peaks.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let mean_p = periods.iter().sum::<f64>() / periods.len() as f64;
    let jitter = periods.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>()
        / (periods.len() - 1) as f64
        / mean_p.max(1e-9);
    let amps: Vec<f64> = peaks
        .iter()
        .map(|&i| (x[i] as f64).abs().max(1e-9))
        .collect();
    let shimmer = amps
        .windows(2)
        .map(|w| (20.0 * (w[1] / w[0]).log10()).abs())
        .sum::<f64>()
        / (amps.len() - 1) as f64;
    Some((jitter as f32, shimmer as f32))
}

/// Normalised autocorrelation of `x` at integer lag `k` (over the overlapping samples).
fn autocorr_at(x: &[f32], k: usize) -> f32 {
    if k == 0 || k >= x.len() {
        return 0.0;
    }
    let (a, b) = (&x[..x.len() - k], &x[k..]);
    // Three sums in one pass (each in order, from −0.0 as `Iterator::sum` starts), so that they
    // overlap instead of running one long chain after another.
    let (mut ab, mut aa, mut bb) = (-0.0f64, -0.0f64, -0.0f64);
    for (&u, &v) in a.iter().zip(b) {
        let (u, v) = (u as f64, v as f64);
        ab += u * v;
        aa += u * u;
        bb += v * v;
    }
    if aa > 0.0 && bb > 0.0 {
        (ab / (aa * bb).sqrt()) as f32
    } else {
        0.0
    }
}

/// Track a whole signal: one [`PitchFrame`] per frame (see [`frame_starts`]), with a tracker
/// planned for this call (see [`PitchTracker`] to plan once for many signals).
pub fn track(y: &[f32], p: &PitchParams) -> Vec<PitchFrame> {
    PitchTracker::new(p).track(y)
}

/// A planned tracker (thread-shareable): F0 and voicing from pYIN ([`super::pyin`],
/// `librosa.pyin`'s algorithm); HNR, jitter and shimmer measured on each voiced frame at its
/// period.
pub struct PitchTracker {
    params: PitchParams,
    pyin: super::pyin::Pyin,
}

impl PitchTracker {
    pub fn new(p: &PitchParams) -> PitchTracker {
        PitchTracker {
            params: *p,
            pyin: super::pyin::Pyin::new(p.sample_rate, p.frame, p.hop, p.fmin, p.fmax),
        }
    }

    /// The settings it was planned for.
    pub fn params(&self) -> &PitchParams {
        &self.params
    }

    /// One [`PitchFrame`] per frame of `y` (see [`frame_starts`]).
    pub fn track(&self, y: &[f32]) -> Vec<PitchFrame> {
        let p = &self.params;
        let starts = frame_starts(y.len(), p.frame, p.hop);
        let decoded = self.pyin.track(y, &starts);
        decoded
            .iter()
            .zip(&starts)
            .map(|(d, &s)| {
                if !d.voiced {
                    return PitchFrame {
                        start: s,
                        ..PitchFrame::default()
                    };
                }
                let x = frame_of(y, s, p.frame);
                let peaks = cycle_peaks(&x, d.period);
                let js = jitter_shimmer(&x, &peaks);
                PitchFrame {
                    start: s,
                    f0: d.f0,
                    voiced: true,
                    hnr_db: hnr_db(autocorr_at(&x, d.period.round() as usize)),
                    jitter: js.map(|v| v.0),
                    shimmer_db: js.map(|v| v.1),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(sr: f32) -> PitchParams {
        PitchParams {
            sample_rate: sr,
            frame: (0.05 * sr) as usize,
            hop: (0.01 * sr) as usize,
            fmin: 60.0,
            fmax: 600.0,
        }
    }

    /// A harmonic tone (a few partials) at `f0`.
    fn tone(f0: f32, sr: f32, secs: f32) -> Vec<f32> {
        let n = (secs * sr) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / sr;
                (1..=4)
                    .map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32)
                    .sum::<f32>()
                    * 0.3
            })
            .collect()
    }

    #[test]
    fn yin_finds_the_f0_of_harmonic_tones() {
        for &(f0, sr) in &[(100.0, 16000.0), (220.0, 22050.0), (410.0, 16000.0)] {
            let frames = track(&tone(f0, sr, 0.5), &params(sr));
            assert!(frames.iter().all(|f| f.voiced), "f0 {f0}: unvoiced frames");
            for f in &frames {
                // pYIN decodes 0.1-semitone bins: librosa.pyin on the same tones is off by 5.6, 0.6 and
                // 2.9 cents at most, and so is emolab.
                let cents = 1200.0 * (f.f0 / f0).log2();
                assert!(
                    cents.abs() < 6.0,
                    "f0 {f0}: estimate {} ({cents} cents)",
                    f.f0
                );
                assert!(f.hnr_db > 20.0, "clean tone HNR {}", f.hnr_db);
                assert!(f.jitter.unwrap() < 0.01, "jitter {:?}", f.jitter);
                assert!(f.shimmer_db.unwrap() < 0.1, "shimmer {:?}", f.shimmer_db);
            }
        }
    }

    #[test]
    fn noise_and_silence_are_unvoiced() {
        let sr = 16000.0;
        let mut state = 12345u64;
        let noise: Vec<f32> = (0..8000)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        // librosa.pyin on these very samples voices 8 of the 46 frames (the last 8), as emolab
        // does: most of the noise is unvoiced.
        let frames = track(&noise, &params(sr));
        let voiced = frames.iter().filter(|f| f.voiced).count();
        assert!(
            voiced * 5 < frames.len(),
            "{voiced} of {} noise frames voiced",
            frames.len()
        );
        let mut y = tone(150.0, sr, 0.3);
        y.extend(vec![0.0; 4800]);
        let frames = track(&y, &params(sr));
        assert!(!frames.last().unwrap().voiced, "silence voiced");
    }

    #[test]
    fn hnr_follows_the_signal_to_noise_ratio() {
        // A tone plus white noise: HNR falls as the noise grows.
        let sr = 16000.0;
        let clean = tone(200.0, sr, 0.5);
        let mut state = 7u64;
        let mut noisy = |scale: f32| -> f32 {
            let frames: Vec<f32> = clean
                .iter()
                .map(|&v| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    v + scale * (((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5)
                })
                .collect();
            let t = track(&frames, &params(sr));
            let v: Vec<f32> = t.iter().filter(|f| f.voiced).map(|f| f.hnr_db).collect();
            v.iter().sum::<f32>() / v.len().max(1) as f32
        };
        let (a, b) = (noisy(0.05), noisy(0.3));
        assert!(a > b + 5.0, "HNR {a} dB (little noise) vs {b} dB (more)");
    }

    #[test]
    fn jitter_and_shimmer_of_a_perturbed_pulse_train() {
        // Pulses with periods alternating 100 / 104 samples: |ΔT| = 4, mean T = 102, so local
        // jitter = 4 / 102; amplitudes alternating 1.0 / 0.8: shimmer = |20·log10(0.8)| dB.
        let mut x = vec![0f32; 1200];
        let mut pos = 10usize;
        let mut k = 0;
        let mut peaks = Vec::new();
        while pos < x.len() {
            x[pos] = if k % 2 == 0 { 1.0 } else { 0.8 };
            peaks.push(pos);
            pos += if k % 2 == 0 { 100 } else { 104 };
            k += 1;
        }
        let found = cycle_peaks(&x, 102.0);
        assert_eq!(&found[1..], &peaks[1..found.len()], "cycle peaks");
        let (j, s) = jitter_shimmer(&x, &found).unwrap();
        assert!((j - 4.0 / 102.0).abs() < 2e-3, "jitter {j}");
        assert!(
            (s - 20.0 * (1.0f32 / 0.8).log10()).abs() < 1e-3,
            "shimmer {s}"
        );
    }
}
