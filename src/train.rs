//! Training core: tensors from cached features, train-only normalisation, and a fit loop with
//! balanced class weights, L2 on the model's L2 group, and early stopping on validation UA
//! with the best weights restored.
//!
//! This is the in-memory core the experiment runner builds on; run folders, checkpoints and
//! resume, schedules and SpecAugment come with the trainer proper.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use crate::cache::CacheRow;
use crate::metrics::{self, Metrics};
use crate::models::{ModelError, ModelSpec, L2_GROUP};

/// Features `[N, 1, n_mels, frames]` with class labels.
#[derive(Debug)]
pub struct Dataset {
    pub x: Tensor,
    pub y: Tensor,
    pub sex: Vec<Option<String>>,
}

impl Dataset {
    /// Stack cache rows (all of one shape) with their labels.
    pub fn from_rows(rows: &[&CacheRow], labels: &[usize]) -> Result<Dataset, TrainError> {
        let first = rows.first().ok_or(TrainError::Empty)?;
        let (t, f) = (first.n_frames as i64, first.n_features as i64);
        let mut values = Vec::with_capacity(rows.len() * (t * f) as usize);
        for r in rows {
            if (r.n_frames as i64, r.n_features as i64) != (t, f) {
                return Err(TrainError::Shape(format!(
                    "{} is {}×{}, others {t}×{f}: use a frames policy that fixes the length",
                    r.clip_id, r.n_frames, r.n_features
                )));
            }
            values.extend_from_slice(&r.features);
        }
        let n = rows.len() as i64;
        Ok(Dataset {
            x: Tensor::from_slice(&values)
                .reshape([n, 1, t, f])
                .transpose(2, 3)
                .contiguous(),
            y: Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>()),
            sex: rows.iter().map(|r| r.sex.clone()).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.y.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per-mel-bin standardisation, fitted on training clips only.
#[derive(Debug)]
pub struct Normalizer {
    pub mean: Tensor,
    pub std: Tensor,
}

impl Normalizer {
    pub fn fit(train: &Dataset) -> Normalizer {
        let dims = [0i64, 1, 3];
        Normalizer {
            mean: train.x.mean_dim(dims.as_slice(), true, Kind::Float),
            std: train
                .x
                .std_dim(dims.as_slice(), false, true)
                .clamp_min(1e-5),
        }
    }

    pub fn apply(&self, x: &Tensor) -> Tensor {
        (x - &self.mean) / &self.std
    }
}

/// Settings of one fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub class_weights: bool,
    pub label_smoothing: f64,
    /// Stop after this many epochs without a better validation UA.
    pub patience: usize,
    pub seed: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 20,
            batch_size: 32,
            lr: 1e-3,
            class_weights: true,
            label_smoothing: 0.0,
            patience: 5,
            seed: 0,
        }
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_ua: f64,
    pub val_wa: f64,
}

/// What a fit produced.
#[derive(Debug, Clone, Serialize)]
pub struct FitResult {
    pub best_epoch: usize,
    pub history: Vec<EpochStats>,
    pub test: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no clips to train on")]
    Empty,
    #[error("feature shapes differ: {0}")]
    Shape(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `sklearn`'s "balanced" weights: n / (k · count_c); absent classes get 0.
fn balanced_weights(y: &Tensor, k: i64) -> Tensor {
    let counts = y.bincount::<Tensor>(None, k).to_kind(Kind::Float);
    let n = y.size()[0] as f64;
    let w = (counts.reciprocal() * (n / k as f64)).nan_to_num(0.0, 0.0, 0.0);
    w.to_kind(Kind::Float)
}

/// Class predictions and mean loss of `model` on `x` (normalised), in batches.
fn predict(model: &dyn ModuleT, x: &Tensor, y: &Tensor, batch: i64) -> (Vec<usize>, f64) {
    tch::no_grad(|| {
        let n = x.size()[0];
        let mut preds = Vec::with_capacity(n as usize);
        let mut loss = 0.0;
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let logits = model.forward_t(&x.narrow(0, start, len), false);
            loss += logits
                .cross_entropy_loss::<Tensor>(
                    &y.narrow(0, start, len),
                    None,
                    Reduction::Sum,
                    -100,
                    0.0,
                )
                .double_value(&[]);
            preds.extend(
                Vec::<i64>::try_from(logits.argmax(-1, false))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| p as usize),
            );
            start += len;
        }
        (preds, loss / n.max(1) as f64)
    })
}

/// Train `spec` on `train`, select on `val` (UA), score `test` once with the best weights.
pub fn fit(
    spec: &ModelSpec,
    class_names: &[String],
    train: &Dataset,
    val: &Dataset,
    test: &Dataset,
    cfg: &FitConfig,
) -> Result<FitResult, TrainError> {
    if train.is_empty() || val.is_empty() || test.is_empty() {
        return Err(TrainError::Empty);
    }
    tch::manual_seed(cfg.seed as i64);
    let k = class_names.len() as i64;
    let (_, _, m, t) = train.x.size4()?;
    let norm = Normalizer::fit(train);
    let (xtr, xva, xte) = (
        norm.apply(&train.x),
        norm.apply(&val.x),
        norm.apply(&test.x),
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let model = spec.build(&vs.root(), m, t, k)?;
    let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
    if spec.l2() > 0.0 {
        // Keras adds l2·Σw² to the loss: its gradient is 2·l2·w, which is Adam's coupled decay.
        opt.set_weight_decay_group(L2_GROUP, 2.0 * spec.l2());
    }
    let weights = cfg.class_weights.then(|| balanced_weights(&train.y, k));
    let val_truth: Vec<usize> = Vec::<i64>::try_from(&val.y)?
        .into_iter()
        .map(|v| v as usize)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<(String, Tensor)>)> = None;
    let n = train.len();
    for epoch in 1..=cfg.epochs {
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in order.chunks(cfg.batch_size.max(1)) {
            let idx = Tensor::from_slice(chunk);
            let logits = model.forward_t(&xtr.index_select(0, &idx), true);
            let loss = logits.cross_entropy_loss(
                &train.y.index_select(0, &idx),
                weights.as_ref(),
                Reduction::Mean,
                -100,
                cfg.label_smoothing,
            );
            opt.backward_step(&loss);
            total += loss.double_value(&[]) * chunk.len() as f64;
        }
        let (pred, val_loss) = predict(&model, &xva, &val.y, 256);
        let mv = metrics::compute(&val_truth, &pred, class_names);
        history.push(EpochStats {
            epoch,
            train_loss: total / n as f64,
            val_loss,
            val_ua: mv.ua,
            val_wa: mv.wa,
        });
        if best.as_ref().is_none_or(|(ua, _, _)| mv.ua > *ua) {
            let snapshot = vs
                .variables()
                .into_iter()
                .map(|(name, v)| (name, v.detach().copy()))
                .collect();
            best = Some((mv.ua, epoch, snapshot));
        } else if epoch - best.as_ref().map_or(0, |b| b.1) >= cfg.patience {
            break;
        }
    }
    let (_, best_epoch, snapshot) = best.expect("at least one epoch");
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, saved) in &snapshot {
            if let Some(v) = vars.get(name) {
                let mut v = v.shallow_clone();
                v.copy_(saved);
            }
        }
    });
    let (pred, _) = predict(&model, &xte, &test.y, 256);
    let truth: Vec<usize> = Vec::<i64>::try_from(&test.y)?
        .into_iter()
        .map(|v| v as usize)
        .collect();
    Ok(FitResult {
        best_epoch,
        history,
        test: metrics::compute(&truth, &pred, class_names),
    })
}
