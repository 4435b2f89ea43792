//! Waveform augmentations, deterministic per (clip content, variant, seed).
//!
//! Each augmented variant draws its parameters from a ChaCha RNG seeded with a hash of the
//! clip's content hash and the variant key (which includes the pipeline seed), so the same clip
//! always gets the same copy, in any order, on any number of threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::json;

use super::pipeline::Augment;
use crate::dsp;

/// The RNG of one variant of one clip.
pub fn variant_rng(content_hash: &str, variant_key: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"emolab-augment\0");
    h.update(content_hash.as_bytes());
    h.update(b"\0");
    h.update(variant_key.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

fn draw(rng: &mut ChaCha8Rng, [lo, hi]: [f32; 2]) -> f32 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// Apply copy `copy` of `aug` to mono samples at `sr`. Returns the new samples and the drawn
/// parameters (JSON).
pub fn apply(
    aug: &Augment,
    copy: usize,
    y: &[f32],
    sr: u32,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<f32>, serde_json::Value), dsp::DspError> {
    Ok(match aug {
        Augment::Speed { factors } => {
            let f = factors[copy.min(factors.len().saturating_sub(1))];
            // Read as if sampled at sr·f and resampled to sr: len / f samples.
            let r = dsp::SincResampler::new(sr as f64 * f as f64, sr as f64)?;
            (r.process(y), json!({ "factor": f }))
        }
        Augment::Noise { snr_db, .. } => {
            let snr = draw(rng, *snr_db);
            let rms =
                (y.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / y.len().max(1) as f64).sqrt();
            let sigma = (rms / 10f64.powf(snr as f64 / 20.0)) as f32;
            let out = match Normal::new(0.0f32, sigma) {
                Ok(n) => y.iter().map(|x| x + n.sample(rng)).collect(),
                Err(_) => y.to_vec(),
            };
            (out, json!({ "snr_db": snr }))
        }
        Augment::Gain { db, .. } => {
            let g = draw(rng, *db);
            let k = 10f32.powf(g / 20.0);
            (y.iter().map(|x| x * k).collect(), json!({ "db": g }))
        }
        Augment::Shift { max_s, .. } => {
            let s = draw(rng, [-max_s, *max_s]);
            let n = (s * sr as f32).round() as isize;
            let len = y.len() as isize;
            let out = (0..len)
                .map(|i| {
                    let j = i - n;
                    if (0..len).contains(&j) {
                        y[j as usize]
                    } else {
                        0.0
                    }
                })
                .collect();
            (out, json!({ "shift_s": n as f32 / sr as f32 }))
        }
        Augment::TimeStretch { rate, .. } => {
            let r = draw(rng, *rate);
            (
                dsp::time_stretch(y, r as f64, 2048, 512)?,
                json!({ "rate": r }),
            )
        }
        Augment::PitchShift { steps, .. } => {
            let s = draw(rng, *steps);
            (
                dsp::pitch_shift(y, sr, s as f64, 12)?,
                json!({ "steps": s }),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (i as f32 * 0.03).sin()).collect()
    }

    #[test]
    fn deterministic_per_clip_and_variant() {
        let aug = Augment::Noise {
            snr_db: [5.0, 20.0],
            copies: 2,
        };
        let y = tone(4000);
        let a = apply(&aug, 0, &y, 16000, &mut variant_rng("h1", "v0")).unwrap();
        let b = apply(&aug, 0, &y, 16000, &mut variant_rng("h1", "v0")).unwrap();
        let c = apply(&aug, 0, &y, 16000, &mut variant_rng("h1", "v1")).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.0, c.0);
        let snr = a.1["snr_db"].as_f64().unwrap();
        assert!((5.0..=20.0).contains(&snr));
        // The measured SNR is the drawn one.
        let noise: f64 =
            a.0.iter()
                .zip(&y)
                .map(|(o, x)| ((o - x) as f64).powi(2))
                .sum();
        let sig: f64 = y.iter().map(|x| (*x as f64).powi(2)).sum();
        assert!((10.0 * (sig / noise).log10() - snr).abs() < 0.5);
    }

    #[test]
    fn gain_and_shift() {
        let y = tone(1000);
        let (g, p) = apply(
            &Augment::Gain {
                db: [6.0, 6.0],
                copies: 1,
            },
            0,
            &y,
            16000,
            &mut variant_rng("h", "g"),
        )
        .unwrap();
        assert_eq!(p["db"], 6.0);
        assert!((g[10] / y[10] - 1.9953).abs() < 1e-3);
        let (s, p) = apply(
            &Augment::Shift {
                max_s: 0.01,
                copies: 1,
            },
            0,
            &y,
            16000,
            &mut variant_rng("h", "s"),
        )
        .unwrap();
        assert_eq!(s.len(), y.len());
        let n = (p["shift_s"].as_f64().unwrap() * 16000.0).round() as isize;
        assert!(n.abs() <= 160);
        if n > 0 {
            assert_eq!(s[n as usize + 5], y[5]);
            assert_eq!(s[0], 0.0);
        }
    }
}

#[cfg(test)]
mod speed_tests {
    use super::*;

    #[test]
    fn speed_changes_length_and_pitch_by_the_factor() {
        // A 200 Hz tone at 16 kHz, 1 s: at speed 1.1 it lasts 1/1.1 s and sounds at 220 Hz.
        let sr = 16000;
        let y: Vec<f32> = (0..sr)
            .map(|i| (2.0 * std::f32::consts::PI * 200.0 * i as f32 / sr as f32).sin())
            .collect();
        let aug = Augment::Speed {
            factors: vec![0.9, 1.1],
        };
        let (fast, p) = apply(&aug, 1, &y, sr as u32, &mut variant_rng("h", "s")).unwrap();
        assert_eq!(p["factor"].as_f64().unwrap() as f32, 1.1);
        assert_eq!(fast.len(), (sr as f64 / 1.1).round() as usize);
        // Zero crossings per second of the middle part: 2 · 220.
        let mid = &fast[2000..12000];
        let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let hz = crossings as f64 / (mid.len() as f64 / sr as f64);
        assert!((hz - 220.0).abs() < 3.0, "{hz}");
        let (slow, _) = apply(&aug, 0, &y, sr as u32, &mut variant_rng("h", "s")).unwrap();
        assert_eq!(slow.len(), (sr as f64 / 0.9).round() as usize);
    }
}
