//! Training data: feature matrices as they come from the Parquet cache (shared Arrow buffers,
//! not copied), train-only normalisation, and batches assembled on a background thread.
//!
//! A batch is built by a producer thread (gather the clips of a shuffled order, transpose
//! frame-major cache rows to `[1, n_mels, frames]`, normalise, apply SpecAugment masks) and
//! handed to the training loop through a bounded channel, so the model does not wait on data
//! preparation: while LibTorch runs batch `i`, batch `i + 1` is being built.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;

use arrow::buffer::ScalarBuffer;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{SpecAugment, TrainError};
use crate::cache::CacheRow;

/// Clips (one cache row each) with class labels. Every clip has `n_features` values per frame
/// (`channels` blocks of `n_features / channels` bins); clips may differ in length.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Frame-major `frames × n_features` values per clip (Arrow buffers shared with the cache).
    pub features: Vec<ScalarBuffer<f32>>,
    pub labels: Vec<usize>,
    pub sex: Vec<Option<String>>,
    /// The speaker of each clip (what `normalize: speaker` groups by).
    pub speaker: Vec<Option<String>>,
    pub n_features: usize,
    /// Feature channels (1, or 3 for static + Δ + ΔΔ).
    pub channels: usize,
    /// The longest clip's frames (every clip's, when they are all alike).
    pub frames: usize,
    /// Frames of each clip.
    pub lengths: Vec<usize>,
    /// Per-clip standardisation (`speaker` and `utterance` modes), used instead of the
    /// train-set normaliser; see [`Dataset::attach_norm`].
    pub clip_norm: Option<Vec<Arc<Normalizer>>>,
}

impl Dataset {
    /// Cache rows (all with the same number of features per frame) with their labels.
    pub fn from_rows(rows: &[&CacheRow], labels: &[usize]) -> Result<Dataset, TrainError> {
        let first = rows.first().ok_or(TrainError::Empty)?;
        let f = first.n_features as usize;
        for r in rows {
            if r.n_features as usize != f {
                return Err(TrainError::Shape(format!(
                    "{} has {} features per frame, others {f}",
                    r.clip_id, r.n_features
                )));
            }
        }
        let lengths: Vec<usize> = rows.iter().map(|r| r.n_frames as usize).collect();
        Ok(Dataset {
            features: rows.iter().map(|r| r.features.clone()).collect(),
            labels: labels.to_vec(),
            sex: rows.iter().map(|r| r.sex.clone()).collect(),
            speaker: rows.iter().map(|r| r.speaker.clone()).collect(),
            n_features: f,
            channels: 1,
            frames: lengths.iter().copied().max().unwrap_or(0),
            lengths,
            clip_norm: None,
        })
    }

    /// One clip's features without labels (prediction).
    pub fn single(features: Vec<f32>, n_features: usize, channels: usize) -> Dataset {
        Dataset::unlabelled(vec![features], n_features, channels, None)
    }

    /// Clips without labels (prediction), all of one speaker (`None`: unknown).
    pub fn unlabelled(
        clips: Vec<Vec<f32>>,
        n_features: usize,
        channels: usize,
        speaker: Option<String>,
    ) -> Dataset {
        let lengths: Vec<usize> = clips.iter().map(|x| x.len() / n_features.max(1)).collect();
        let n = clips.len();
        Dataset {
            features: clips.into_iter().map(Into::into).collect(),
            labels: vec![0; n],
            sex: vec![None; n],
            speaker: vec![speaker; n],
            n_features,
            channels,
            frames: lengths.iter().copied().max().unwrap_or(0),
            lengths,
            clip_norm: None,
        }
    }

    /// The same clips read as `channels` stacked feature blocks (Δ / ΔΔ pipelines).
    pub fn with_channels(mut self, channels: usize) -> Result<Dataset, TrainError> {
        if channels == 0 || self.n_features % channels != 0 {
            return Err(TrainError::Shape(format!(
                "{} features per frame do not split into {channels} channels",
                self.n_features
            )));
        }
        self.channels = channels;
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bins per channel.
    pub fn bins(&self) -> usize {
        self.n_features / self.channels.max(1)
    }

    /// Whether every clip has the same number of frames.
    pub fn fixed_length(&self) -> bool {
        self.lengths.iter().all(|&l| l == self.frames)
    }

    /// `[n, channels, bins, frames]` (frames: the longest clip).
    pub fn shape(&self) -> [i64; 4] {
        [
            self.len() as i64,
            self.channels as i64,
            self.bins() as i64,
            self.frames as i64,
        ]
    }

    /// Attach per-clip statistics for `mode`: `utterance` standardises each clip on its own
    /// frames; `speaker` on the frames of all clips of its speaker, taken from `speakers` when
    /// given (the runner's table over each speaker's original clips), else from this dataset's
    /// own clips. Reads features and speaker ids only, never labels. Other modes: no change.
    pub fn attach_norm(
        &mut self,
        mode: NormMode,
        speakers: Option<&SpeakerStats>,
    ) -> Result<(), TrainError> {
        match mode {
            NormMode::PerMel | NormMode::Global | NormMode::None => {}
            NormMode::Utterance => {
                self.clip_norm = Some(
                    self.features
                        .iter()
                        .map(|x| Arc::new(Normalizer::fit_frames([&x[..]], self.n_features)))
                        .collect(),
                );
            }
            NormMode::Speaker => {
                let own;
                let table = match speakers {
                    Some(t) => t,
                    None => {
                        own = SpeakerStats::fit(
                            self.speaker.iter().zip(&self.features),
                            self.n_features,
                        );
                        &own
                    }
                };
                let mut out = Vec::with_capacity(self.len());
                for s in &self.speaker {
                    let key = s.as_deref().unwrap_or("");
                    out.push(table.0.get(key).cloned().ok_or_else(|| {
                        TrainError::Config(
                            "normalize",
                            format!("speaker `{key}` has no statistics (normalize: speaker needs every clip's speaker)"),
                        )
                    })?);
                }
                self.clip_norm = Some(out);
            }
        }
        Ok(())
    }
}

/// How features are standardised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NormMode {
    /// One mean and standard deviation per feature bin, from the training clips.
    #[default]
    PerMel,
    /// One scalar mean and standard deviation from the training clips (the seed's z-score).
    Global,
    /// Per bin, from each speaker's own clips, test speakers included: transductive (it uses
    /// the test speakers' audio, never their labels), reported as such.
    Speaker,
    /// Per bin, from each clip's own frames (cepstral mean and variance normalisation).
    Utterance,
    /// The features as cached: for pretrained layers that expect their own hidden states
    /// (the `finetune` family).
    None,
}

impl NormMode {
    /// Whether statistics come from unlabelled test audio.
    pub fn transductive(self) -> bool {
        self == NormMode::Speaker
    }
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
        let n = Normalizer::fit_frames(train.features.iter().map(|x| &x[..]), f);
        match mode {
            NormMode::Global => {
                // Pool the per-bin moments (every bin counts the same frames).
                let m = n.mean.iter().map(|&v| v as f64).sum::<f64>() / f.max(1) as f64;
                let q = n
                    .mean
                    .iter()
                    .zip(&n.std)
                    .map(|(&mu, &sd)| (sd as f64).powi(2) + (mu as f64).powi(2))
                    .sum::<f64>()
                    / f.max(1) as f64;
                let sd = (q - m * m).max(0.0).sqrt().max(1e-5);
                Normalizer {
                    mean: vec![m as f32; f],
                    std: vec![sd as f32; f],
                }
            }
            _ => n,
        }
    }

    /// Per-bin mean and population standard deviation of every frame of `clips`.
    pub fn fit_frames<'a>(clips: impl IntoIterator<Item = &'a [f32]>, f: usize) -> Normalizer {
        let mut st = FrameStats::new(f);
        for x in clips {
            st.add(x);
        }
        st.finish()
    }

    /// Mean 0, standard deviation 1 (features standardised per clip beforehand).
    pub fn identity(f: usize) -> Normalizer {
        Normalizer {
            mean: vec![0.0; f],
            std: vec![1.0; f],
        }
    }
}

/// Running per-bin sums over frames: [`Normalizer::fit_frames`] a clip at a time, for signals
/// too long to hold (a recording's windows).
#[derive(Debug, Clone)]
pub struct FrameStats {
    sum: Vec<f64>,
    sq: Vec<f64>,
    n: usize,
    f: usize,
}

impl FrameStats {
    pub fn new(f: usize) -> FrameStats {
        FrameStats {
            sum: vec![0f64; f],
            sq: vec![0f64; f],
            n: 0,
            f,
        }
    }

    /// Add every frame of one clip (frame-major, `f` values per frame).
    pub fn add(&mut self, x: &[f32]) {
        for frame in x.chunks_exact(self.f.max(1)) {
            for ((s, q), &v) in self.sum.iter_mut().zip(self.sq.iter_mut()).zip(frame) {
                *s += v as f64;
                *q += (v as f64) * (v as f64);
            }
            self.n += 1;
        }
    }

    /// Per-bin mean and population standard deviation (at least 1e-5).
    pub fn finish(&self) -> Normalizer {
        let n = self.n.max(1) as f64;
        Normalizer {
            mean: self.sum.iter().map(|&s| (s / n) as f32).collect(),
            std: self
                .sum
                .iter()
                .zip(&self.sq)
                .map(|(&s, &q)| (q / n - (s / n).powi(2)).max(0.0).sqrt().max(1e-5) as f32)
                .collect(),
        }
    }
}

/// Statistics of each speaker's clips (key: the speaker id, `""` for clips without one).
#[derive(Debug, Clone, Default)]
pub struct SpeakerStats(pub HashMap<String, Arc<Normalizer>>);

impl SpeakerStats {
    /// Group `(speaker, features)` pairs by speaker and fit each group's statistics.
    pub fn fit<'a>(
        clips: impl IntoIterator<Item = (&'a Option<String>, &'a ScalarBuffer<f32>)>,
        f: usize,
    ) -> SpeakerStats {
        let mut groups: HashMap<String, Vec<&[f32]>> = HashMap::new();
        for (s, x) in clips {
            groups
                .entry(s.clone().unwrap_or_default())
                .or_default()
                .push(&x[..]);
        }
        SpeakerStats(
            groups
                .into_iter()
                .map(|(k, xs)| (k, Arc::new(Normalizer::fit_frames(xs, f))))
                .collect(),
        )
    }
}

/// Fixed-length crops for training and sliding windows for evaluation (`train.window`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSpec {
    /// Frames of a training crop and of an evaluation window.
    pub frames: usize,
    /// Frames between evaluation windows (default: half a window).
    pub hop: Option<usize>,
    /// What is averaged over a clip's windows.
    pub average: WindowAverage,
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec {
            frames: 200,
            hop: None,
            average: WindowAverage::Logits,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WindowAverage {
    #[default]
    Logits,
    Probs,
}

impl WindowSpec {
    pub fn hop(&self) -> usize {
        self.hop.unwrap_or(self.frames / 2).max(1)
    }

    /// Start frames of the windows over a clip of `len` frames: every `hop` frames, the last
    /// one ending at the clip's end; one window (padded) for a clip no longer than a window.
    pub fn starts(&self, len: usize) -> Vec<usize> {
        if len <= self.frames {
            return vec![0];
        }
        let last = len - self.frames;
        let mut out: Vec<usize> = (0..last).step_by(self.hop()).collect();
        out.push(last);
        out
    }
}

/// A span of one clip: what one batch row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub clip: usize,
    pub start: usize,
    pub len: usize,
}

/// Whole clips (all of the dataset's length).
pub fn whole_clips(ds: &Dataset, order: &[usize]) -> Vec<Item> {
    order
        .iter()
        .map(|&clip| Item {
            clip,
            start: 0,
            len: ds.lengths[clip],
        })
        .collect()
}

/// One random crop of at most `frames` per clip of `order` (a shorter clip is taken whole).
pub fn random_crops(
    ds: &Dataset,
    order: &[usize],
    frames: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Item> {
    order
        .iter()
        .map(|&clip| {
            let l = ds.lengths[clip];
            let start = if l > frames {
                rng.random_range(0..=l - frames)
            } else {
                0
            };
            Item {
                clip,
                start,
                len: l.min(frames),
            }
        })
        .collect()
}

/// Every evaluation window of every clip, clip by clip.
pub fn windows(ds: &Dataset, w: &WindowSpec) -> Vec<Item> {
    (0..ds.len())
        .flat_map(|clip| {
            let l = ds.lengths[clip];
            w.starts(l).into_iter().map(move |start| Item {
                clip,
                start,
                len: l.min(w.frames),
            })
        })
        .collect()
}

/// One batch, ready to become tensors: `x` is `[n, channels, bins, frames]` row-major, zero
/// (the normalised mean) past each row's length.
pub struct Batch {
    pub x: Vec<f32>,
    pub y: Vec<i64>,
    /// Clip of each row, in batch order.
    pub index: Vec<usize>,
    /// Valid frames of each row.
    pub lengths: Vec<i64>,
    /// Frames of the time axis.
    pub frames: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Whether some row is shorter than the time axis.
    pub fn padded(&self) -> bool {
        self.lengths.iter().any(|&l| l < self.frames as i64)
    }
}

/// Build the batch of `items` on a time axis of `t` frames: transpose, normalise, mask.
fn assemble(
    ds: &Dataset,
    items: &[Item],
    t: usize,
    norm: &Normalizer,
    augment: Option<(&SpecAugment, &mut ChaCha8Rng)>,
) -> Batch {
    let f = ds.n_features;
    let inv: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
    let mut x = vec![0f32; items.len() * f * t];
    for (b, it) in items.iter().enumerate() {
        let out = &mut x[b * f * t..(b + 1) * f * t];
        let clip_inv: Vec<f32>;
        let (mean, inv): (&[f32], &[f32]) = match &ds.clip_norm {
            Some(cn) => {
                let n = &cn[it.clip];
                clip_inv = n.std.iter().map(|s| 1.0 / s).collect();
                (&n.mean, &clip_inv)
            }
            None => (&norm.mean, &inv),
        };
        let span = &ds.features[it.clip][it.start * f..(it.start + it.len.min(t)) * f];
        for (ti, frame) in span.chunks_exact(f).enumerate() {
            for (fi, &v) in frame.iter().enumerate() {
                out[fi * t + ti] = (v - mean[fi]) * inv[fi];
            }
        }
    }
    if let Some((sa, rng)) = augment {
        sa.apply(&mut x, items.len(), ds.channels, ds.bins(), t, rng);
    }
    Batch {
        y: items.iter().map(|it| ds.labels[it.clip] as i64).collect(),
        x,
        index: items.iter().map(|it| it.clip).collect(),
        lengths: items.iter().map(|it| it.len.min(t) as i64).collect(),
        frames: t,
    }
}

/// Feed `consume` the batches of `items` (in chunks of `batch_size`) on a time axis of `t`
/// frames, built on a background thread two batches ahead. SpecAugment masks, when given, are
/// drawn from `rng` in batch order, so the stream is deterministic. Stops at the first error of
/// `consume`.
pub fn stream_batches<E>(
    ds: &Dataset,
    items: &[Item],
    t: usize,
    batch_size: usize,
    norm: &Normalizer,
    mut augment: Option<(&SpecAugment, &mut ChaCha8Rng)>,
    mut consume: impl FnMut(Batch) -> Result<(), E>,
) -> Result<(), E> {
    let (tx, rx) = mpsc::sync_channel::<Batch>(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            for chunk in items.chunks(batch_size.max(1)) {
                let aug = augment.as_mut().map(|(sa, rng)| (*sa, &mut **rng));
                if tx.send(assemble(ds, chunk, t, norm, aug)).is_err() {
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
            speaker: vec![Some("a".into()), Some("a".into()), Some("b".into())],
            n_features: 3,
            channels: 1,
            frames: 2,
            lengths: vec![2; 3],
            clip_norm: None,
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
        let b = assemble(&ds, &whole_clips(&ds, &[2, 0]), 2, &n, None);
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
        let items = whole_clips(&ds, &order);
        stream_batches::<()>(&ds, &items, 2, 2, &n, None, |b| {
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
            stream_batches::<()>(&ds, &items, 2, 2, &n, Some((&sa, &mut rng)), |b| {
                xs.extend(b.x);
                Ok(())
            })
            .unwrap();
            xs
        };
        assert_eq!(run(3), run(3));
        // Stopping early is not an error of the producer.
        let mut count = 0;
        let r = stream_batches(&ds, &items, 2, 1, &n, None, |_| {
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
