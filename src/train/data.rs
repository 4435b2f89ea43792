//! Training data: feature matrices as they come from the Parquet cache (shared Arrow buffers,
//! not copied), train-only normalisation, and batches assembled on a background thread.
//!
//! A batch is built by a producer thread (gather the clips of a shuffled order, transpose
//! frame-major cache rows to `[1, n_mels, frames]`, normalise, apply SpecAugment masks) and
//! handed to the training loop through a bounded channel, so the model does not wait on data
//! preparation: while LibTorch runs batch `i`, batch `i + 1` is being built.

use std::sync::mpsc;

use arrow::buffer::ScalarBuffer;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{SpecAugment, TrainError};
use crate::cache::CacheRow;

/// Clips (one cache row each) with class labels; all of one shape `frames × n_features`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Frame-major `frames × n_features` values per clip (Arrow buffers shared with the cache).
    pub features: Vec<ScalarBuffer<f32>>,
    pub labels: Vec<usize>,
    pub sex: Vec<Option<String>>,
    pub n_features: usize,
    pub frames: usize,
}

impl Dataset {
    /// Cache rows (all of one shape) with their labels.
    pub fn from_rows(rows: &[&CacheRow], labels: &[usize]) -> Result<Dataset, TrainError> {
        let first = rows.first().ok_or(TrainError::Empty)?;
        let (t, f) = (first.n_frames as usize, first.n_features as usize);
        for r in rows {
            if (r.n_frames as usize, r.n_features as usize) != (t, f) {
                return Err(TrainError::Shape(format!(
                    "{} is {}×{}, others {t}×{f}: use a frames policy that fixes the length",
                    r.clip_id, r.n_frames, r.n_features
                )));
            }
        }
        Ok(Dataset {
            features: rows.iter().map(|r| r.features.clone()).collect(),
            labels: labels.to_vec(),
            sex: rows.iter().map(|r| r.sex.clone()).collect(),
            n_features: f,
            frames: t,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[n, 1, n_features, frames]`.
    pub fn shape(&self) -> [i64; 4] {
        [
            self.len() as i64,
            1,
            self.n_features as i64,
            self.frames as i64,
        ]
    }
}

/// How features are standardised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NormMode {
    /// One mean and standard deviation per mel bin (or MFCC).
    #[default]
    PerMel,
    /// One scalar mean and standard deviation (the seed's z-score).
    Global,
}

/// Standardisation statistics, fitted on training clips only and stored with the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    /// Per feature bin (a global normaliser repeats its one value).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalizer {
    pub fn fit(train: &Dataset, mode: NormMode) -> Normalizer {
        let f = train.n_features;
        let mut sum = vec![0f64; f];
        let mut sq = vec![0f64; f];
        for x in &train.features {
            for frame in x.chunks_exact(f) {
                for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(frame) {
                    *s += v as f64;
                    *q += (v as f64) * (v as f64);
                }
            }
        }
        let n = (train.len() * train.frames).max(1) as f64;
        let (mean, std): (Vec<f64>, Vec<f64>) = match mode {
            NormMode::PerMel => sum
                .iter()
                .zip(&sq)
                .map(|(&s, &q)| (s / n, (q / n - (s / n).powi(2)).max(0.0).sqrt()))
                .unzip(),
            NormMode::Global => {
                let (s, q) = (sum.iter().sum::<f64>(), sq.iter().sum::<f64>());
                let nn = n * f as f64;
                let m = s / nn;
                let sd = (q / nn - m * m).max(0.0).sqrt();
                (vec![m; f], vec![sd; f])
            }
        };
        Normalizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.iter().map(|&s| s.max(1e-5) as f32).collect(),
        }
    }
}

/// One batch, ready to become tensors: `x` is `[n, 1, n_features, frames]` row-major.
pub struct Batch {
    pub x: Vec<f32>,
    pub y: Vec<i64>,
    /// Positions in the dataset, in batch order.
    pub index: Vec<usize>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Build the batch of `idx`: transpose, normalise, mask.
fn assemble(
    ds: &Dataset,
    idx: &[usize],
    norm: &Normalizer,
    augment: Option<(&SpecAugment, &mut ChaCha8Rng)>,
) -> Batch {
    let (f, t) = (ds.n_features, ds.frames);
    let inv: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
    let mut x = vec![0f32; idx.len() * f * t];
    for (b, &i) in idx.iter().enumerate() {
        let out = &mut x[b * f * t..(b + 1) * f * t];
        for (ti, frame) in ds.features[i].chunks_exact(f).enumerate() {
            for (fi, &v) in frame.iter().enumerate() {
                out[fi * t + ti] = (v - norm.mean[fi]) * inv[fi];
            }
        }
    }
    if let Some((sa, rng)) = augment {
        sa.apply(&mut x, idx.len(), f, t, rng);
    }
    Batch {
        y: idx.iter().map(|&i| ds.labels[i] as i64).collect(),
        x,
        index: idx.to_vec(),
    }
}

/// Feed `consume` the batches of `order` (in chunks of `batch_size`), built on a background
/// thread two batches ahead. SpecAugment masks, when given, are drawn from `rng` in batch order,
/// so the stream is deterministic. Stops at the first error of `consume`.
pub fn stream_batches<E>(
    ds: &Dataset,
    order: &[usize],
    batch_size: usize,
    norm: &Normalizer,
    mut augment: Option<(&SpecAugment, &mut ChaCha8Rng)>,
    mut consume: impl FnMut(Batch) -> Result<(), E>,
) -> Result<(), E> {
    let (tx, rx) = mpsc::sync_channel::<Batch>(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            for chunk in order.chunks(batch_size.max(1)) {
                let aug = augment.as_mut().map(|(sa, rng)| (*sa, &mut **rng));
                if tx.send(assemble(ds, chunk, norm, aug)).is_err() {
                    break; // the consumer stopped
                }
            }
        });
        for batch in rx.iter() {
            consume(batch)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn toy() -> Dataset {
        // 3 clips, 2 frames × 3 bins, frame-major.
        let clip =
            |o: f32| ScalarBuffer::from(vec![o, 10.0 + o, 100.0 + o, o + 2.0, 12.0 + o, 102.0 + o]);
        Dataset {
            features: vec![clip(0.0), clip(1.0), clip(2.0)],
            labels: vec![0, 1, 2],
            sex: vec![None; 3],
            n_features: 3,
            frames: 2,
        }
    }

    #[test]
    fn per_mel_statistics_and_transposed_normalised_batches() {
        let ds = toy();
        let n = Normalizer::fit(&ds, NormMode::PerMel);
        // Bin 0 holds {0,2,1,3,2,4}: mean 2, population std sqrt(5/3).
        assert!((n.mean[0] - 2.0).abs() < 1e-6 && (n.mean[2] - 102.0).abs() < 1e-6);
        assert!((n.std[0] - (5.0f32 / 3.0).sqrt()).abs() < 1e-5);
        let g = Normalizer::fit(&ds, NormMode::Global);
        assert!(g.mean.iter().all(|&m| (m - g.mean[0]).abs() < 1e-6));
        let b = assemble(&ds, &[2, 0], &n, None);
        assert_eq!(b.y, vec![2, 0]);
        assert_eq!(b.x.len(), 2 * 3 * 2);
        // Clip 2, bin 0, frames 0 and 1: (2-2)/s and (4-2)/s: transposed to [bin][frame].
        let s = n.std[0];
        assert!((b.x[0] - 0.0).abs() < 1e-6 && (b.x[1] - 2.0 / s).abs() < 1e-5);
    }

    #[test]
    fn streamed_batches_cover_the_order_once_and_masks_are_seeded() {
        let ds = toy();
        let n = Normalizer::fit(&ds, NormMode::PerMel);
        let order = [1usize, 2, 0];
        let mut seen = Vec::new();
        stream_batches::<()>(&ds, &order, 2, &n, None, |b| {
            seen.extend(b.index);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, order);
        let sa = SpecAugment {
            freq_masks: 1,
            freq_width: 3,
            time_masks: 1,
            time_width: 2,
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut xs = Vec::new();
            stream_batches::<()>(&ds, &order, 2, &n, Some((&sa, &mut rng)), |b| {
                xs.extend(b.x);
                Ok(())
            })
            .unwrap();
            xs
        };
        assert_eq!(run(3), run(3));
        // Stopping early is not an error of the producer.
        let mut count = 0;
        let r = stream_batches(&ds, &order, 1, &n, None, |_| {
            count += 1;
            if count == 2 {
                Err("stop")
            } else {
                Ok(())
            }
        });
        assert_eq!((r, count), (Err("stop"), 2));
    }
}
