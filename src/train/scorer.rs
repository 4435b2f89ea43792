//! Scoring a network on a dataset in eval mode, batch by batch: whole clips, or every window of
//! each clip averaged into the clip's outputs.

use tch::{Device, Kind, Tensor};

use super::data::{self, Dataset, Normalizer, WindowAverage, WindowSpec};
use super::device::{Autocast, Precision};
use super::{batch_tensor, time_axis, TrainError};
use crate::models::Model;

/// A model with how its input is prepared and where it runs.
#[derive(Clone, Copy)]
pub(super) struct Scorer<'a> {
    pub model: &'a Model,
    pub norm: &'a Normalizer,
    pub window: Option<&'a WindowSpec>,
    pub device: Device,
    pub precision: Precision,
}

/// Evaluation of a model on a dataset: predictions, probabilities and mean loss.
pub(super) struct Scored {
    pub pred: Vec<usize>,
    pub probs: Vec<Vec<f32>>,
    pub loss: f64,
}

impl Scorer<'_> {
    /// The mean over each clip's windows (or the clip alone) of `output`, a `[batch, width]` tensor
    /// computed in eval mode, batch by batch, with gradients off.
    pub(super) fn clip_means(
        &self,
        ds: &Dataset,
        output: impl Fn(&Model, &Tensor, Option<&[i64]>) -> Tensor,
    ) -> Result<Vec<Vec<f64>>, TrainError> {
        let Scorer {
            model,
            norm,
            window,
            device,
            precision,
        } = *self;
        let t = time_axis(ds, window)?;
        let items = match window {
            Some(w) => data::windows(ds, w),
            None => data::whole_clips(ds, &(0..ds.len()).collect::<Vec<_>>()),
        };
        // Per clip: the sum of window outputs and their count.
        let mut sums: Vec<Vec<f64>> = vec![Vec::new(); ds.len()];
        let mut counts = vec![0usize; ds.len()];
        tch::no_grad(|| {
            data::stream_batches(ds, &items, t, 256, norm, None, |b| {
                let (x, lengths) = batch_tensor(&b, ds, device);
                let out = {
                    let _ac = Autocast::new(precision, device);
                    output(model, &x, lengths.as_deref())
                }
                .to_kind(Kind::Float);
                let width = out.size()[1] as usize;
                let flat = Vec::<f32>::try_from(&out.to_device(Device::Cpu).reshape([-1]))?;
                for (row, &clip) in flat.chunks(width).zip(&b.index) {
                    let sum = &mut sums[clip];
                    sum.resize(width, 0.0);
                    for (s, &v) in sum.iter_mut().zip(row) {
                        *s += v as f64;
                    }
                    counts[clip] += 1;
                }
                Ok::<(), tch::TchError>(())
            })
        })?;
        for (sum, &n) in sums.iter_mut().zip(&counts) {
            sum.iter_mut().for_each(|v| *v /= n.max(1) as f64);
        }
        Ok(sums)
    }

    /// Score `ds` in eval mode, batch by batch: whole clips, or (with `window`) every window of each
    /// clip with the windows' logits (or probabilities) averaged into the clip's.
    pub(super) fn score(&self, ds: &Dataset, k: usize) -> Result<Scored, TrainError> {
        let average = self.window.map_or(WindowAverage::Logits, |w| w.average);
        let means = self.clip_means(ds, |m, x, l| {
            let logits = m.forward(x, l, false);
            match average {
                WindowAverage::Logits => logits,
                WindowAverage::Probs => logits.to_kind(Kind::Float).softmax(-1, Kind::Float),
            }
        })?;
        let mut out = Scored {
            pred: Vec::with_capacity(ds.len()),
            probs: Vec::with_capacity(ds.len()),
            loss: 0.0,
        };
        for (clip, mean) in means.into_iter().enumerate() {
            let probs: Vec<f64> = match average {
                WindowAverage::Probs => mean,
                WindowAverage::Logits => {
                    let m = mean.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    debug_assert_eq!(mean.len(), k);
                    let e: Vec<f64> = mean.iter().map(|v| (v - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    e.iter().map(|v| v / z).collect()
                }
            };
            out.loss -= probs[ds.labels[clip]].max(1e-12).ln();
            out.pred.push(
                (0..k)
                    .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
                    .unwrap_or(0),
            );
            out.probs.push(probs.iter().map(|&p| p as f32).collect());
        }
        out.loss /= ds.len().max(1) as f64;
        Ok(out)
    }
}
