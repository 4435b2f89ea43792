//! Training core: tensors from cached features, train-only normalisation, and a fit loop with
//! balanced class weights, L2 on the model's L2 group, and early stopping on validation UA
//! with the best weights restored.
//!
//! This is the in-memory core the experiment runner builds on; run folders, checkpoints and
//! resume come with the trainer proper. [`optim`] holds the optimizers (state owned by emolab,
//! so it can be checkpointed), schedules and gradient clipping.

pub mod optim;

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
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
    pub optimizer: optim::OptimizerSpec,
    pub schedule: optim::Schedule,
    /// Clip the global gradient norm to this value.
    pub clip_grad: Option<f64>,
    /// Online SpecAugment on training batches.
    pub spec_augment: Option<SpecAugment>,
}

/// SpecAugment (Park et al., 2019): zero (= the training mean, after normalisation) up to
/// `freq_masks` bands of at most `freq_width` mel bins and `time_masks` spans of at most
/// `time_width` frames per training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecAugment {
    pub freq_masks: usize,
    pub freq_width: usize,
    pub time_masks: usize,
    pub time_width: usize,
}

impl Default for SpecAugment {
    fn default() -> Self {
        SpecAugment {
            freq_masks: 2,
            freq_width: 8,
            time_masks: 2,
            time_width: 16,
        }
    }
}

impl SpecAugment {
    /// Masks for a `[B, 1, M, T]` batch, as a multiplicative 0/1 tensor.
    pub fn mask(&self, shape: &[i64], rng: &mut ChaCha8Rng) -> Tensor {
        use rand::Rng;
        let (b, m, t) = (shape[0] as usize, shape[2] as usize, shape[3] as usize);
        let mut mask = vec![1f32; b * m * t];
        for i in 0..b {
            let one = &mut mask[i * m * t..(i + 1) * m * t];
            for _ in 0..self.freq_masks {
                let w = rng.random_range(0..=self.freq_width.min(m));
                let f0 = rng.random_range(0..=m - w);
                for f in f0..f0 + w {
                    one[f * t..(f + 1) * t].fill(0.0);
                }
            }
            for _ in 0..self.time_masks {
                let w = rng.random_range(0..=self.time_width.min(t));
                let t0 = rng.random_range(0..=t - w);
                for f in 0..m {
                    one[f * t + t0..f * t + t0 + w].fill(0.0);
                }
            }
        }
        Tensor::from_slice(&mask).reshape(shape)
    }
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
            optimizer: optim::OptimizerSpec::default(),
            schedule: optim::Schedule::Constant,
            clip_grad: None,
            spec_augment: None,
        }
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_ua: f64,
    pub val_wa: f64,
    pub lr: f64,
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
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
}

/// How a fit is run: where it checkpoints, and (for tests of resume) where it stops.
#[derive(Debug, Clone, Default)]
pub struct FitControl<'a> {
    /// Checkpoint after every epoch into `<dir>/checkpoint.ot`; resume from it when present.
    pub checkpoint_dir: Option<&'a Path>,
    /// Stop (as if killed) right after this epoch's checkpoint.
    pub stop_after: Option<usize>,
}

/// What a checkpoint holds besides tensors.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    /// Hash of the model spec, fit config and data shapes that wrote it.
    fingerprint: String,
    epoch: usize,
    finished: bool,
    history: Vec<EpochStats>,
    scheduler: optim::Scheduler,
    best_ua: f64,
    best_epoch: usize,
}

const CHECKPOINT: &str = "checkpoint.ot";

/// LibTorch draws dropout masks and initial weights from one process-wide generator, so two
/// fits running at once in a process would interleave their draws and neither would be
/// reproducible. Fits take this lock (each already uses every intra-op thread).
static FIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn save_checkpoint(
    dir: &Path,
    state: &CheckpointState,
    vs: &nn::VarStore,
    best: &[(String, Tensor)],
    opt: &optim::Optimizer,
) -> Result<(), TrainError> {
    let path = dir.join(CHECKPOINT);
    let err = |message: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let json = serde_json::to_vec(state).map_err(|e| err(e.to_string()))?;
    let mut named: Vec<(String, Tensor)> = vec![("state.json".into(), Tensor::from_slice(&json))];
    named.extend(
        vs.variables()
            .into_iter()
            .map(|(n, t)| (format!("var.{n}"), t)),
    );
    named.extend(
        best.iter()
            .map(|(n, t)| (format!("best.{n}"), t.shallow_clone())),
    );
    named.extend(opt.state());
    let tmp = crate::util::temp_path(&path);
    Tensor::save_multi(&named, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))
}

type Loaded = (CheckpointState, Vec<(String, Tensor)>);

fn load_checkpoint(
    dir: &Path,
    fingerprint: &str,
    vs: &nn::VarStore,
    opt: &mut optim::Optimizer,
) -> Result<Option<Loaded>, TrainError> {
    let path = dir.join(CHECKPOINT);
    if !path.exists() {
        return Ok(None);
    }
    let err = |message: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    let named = Tensor::load_multi(&path)?;
    let json = named
        .iter()
        .find(|(n, _)| n == "state.json")
        .ok_or_else(|| err("no state".into()))?;
    let bytes = Vec::<u8>::try_from(&json.1)?;
    let state: CheckpointState = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    if state.fingerprint != fingerprint {
        return Err(err(
            "written by another model, fit config or data; remove it to start over".into(),
        ));
    }
    let vars = vs.variables();
    let mut best = Vec::new();
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, t) in &named {
            if let Some(v) = name.strip_prefix("var.") {
                let mut target = vars
                    .get(v)
                    .ok_or_else(|| err(format!("variable {v} is not in this model")))?
                    .shallow_clone();
                target.copy_(t);
            } else if let Some(v) = name.strip_prefix("best.") {
                best.push((v.to_string(), t.shallow_clone()));
            }
        }
        Ok(())
    })?;
    opt.load_state(&named).map_err(err)?;
    Ok(Some((state, best)))
}

/// `sklearn`'s "balanced" weights: n / (k · count_c); absent classes get 0.
fn balanced_weights(y: &Tensor, k: i64) -> Tensor {
    let counts = y.bincount::<Tensor>(None, k).to_kind(Kind::Float);
    let n = y.size()[0] as f64;
    let w = (counts.reciprocal() * (n / k as f64)).nan_to_num(0.0, 0.0, 0.0);
    w.to_kind(Kind::Float)
}

/// Class indices held in an integer tensor (labels, or argmax of logits).
fn class_indices(t: &Tensor) -> Result<Vec<usize>, tch::TchError> {
    Ok(Vec::<i64>::try_from(t)?
        .into_iter()
        .map(|v| v as usize)
        .collect())
}

/// Class predictions and mean loss of `model` on `x` (normalised), in batches.
fn predict(
    model: &dyn ModuleT,
    x: &Tensor,
    y: &Tensor,
    batch: i64,
) -> Result<(Vec<usize>, f64), tch::TchError> {
    tch::no_grad(|| {
        let n = x.size()[0];
        let mut preds = Vec::with_capacity(n as usize);
        let mut loss = 0.0;
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let logits = model.forward_t(&x.narrow(0, start, len), false);
            // Per-clip losses summed here in f64, in order: torch's own Sum reduction varies in
            // its last bits with thread scheduling.
            let per_clip = logits.cross_entropy_loss::<Tensor>(
                &y.narrow(0, start, len),
                None,
                Reduction::None,
                -100,
                0.0,
            );
            loss += Vec::<f32>::try_from(&per_clip)?
                .iter()
                .map(|&l| l as f64)
                .sum::<f64>();
            preds.extend(class_indices(&logits.argmax(-1, false))?);
            start += len;
        }
        Ok((preds, loss / n.max(1) as f64))
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
    Ok(fit_with(
        spec,
        class_names,
        train,
        val,
        test,
        cfg,
        &FitControl::default(),
    )?
    .expect("runs to the end without stop_after"))
}

/// [`fit`] with checkpoints and resume. Returns `None` when stopped by `stop_after`.
pub fn fit_with(
    spec: &ModelSpec,
    class_names: &[String],
    train: &Dataset,
    val: &Dataset,
    test: &Dataset,
    cfg: &FitConfig,
    ctl: &FitControl,
) -> Result<Option<FitResult>, TrainError> {
    if train.is_empty() || val.is_empty() || test.is_empty() {
        return Err(TrainError::Empty);
    }
    let _one_fit_at_a_time = FIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
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
    let mut opt = optim::Optimizer::new(&vs, &cfg.optimizer, cfg.lr);
    if spec.l2() > 0.0 {
        // Keras adds l2·Σw² to the loss: its gradient is 2·l2·w, i.e. coupled decay 2·l2.
        opt.set_group_decay(L2_GROUP, 2.0 * spec.l2());
    }
    let mut sched = optim::Scheduler::new(cfg.schedule.clone(), cfg.lr, cfg.epochs);
    let weights = cfg.class_weights.then(|| balanced_weights(&train.y, k));
    let val_truth = class_indices(&val.y)?;
    let fingerprint = {
        let what = serde_json::json!([
            spec,
            cfg,
            train.x.size(),
            val.x.size(),
            test.x.size(),
            class_names
        ]);
        blake3::hash(what.to_string().as_bytes()).to_hex()[..16].to_string()
    };
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<(String, Tensor)>)> = None;
    let mut first_epoch = 1;
    let mut finished = false;
    if let Some(dir) = ctl.checkpoint_dir {
        if let Some((state, snapshot)) = load_checkpoint(dir, &fingerprint, &vs, &mut opt)? {
            first_epoch = state.epoch + 1;
            finished = state.finished;
            history = state.history;
            sched = state.scheduler;
            best = Some((state.best_ua, state.best_epoch, snapshot));
        }
    }
    let n = train.len();
    for epoch in first_epoch..=cfg.epochs {
        if finished {
            break;
        }
        // Every random draw of an epoch derives from (seed, epoch), so an epoch's result does not
        // depend on what ran before it (the basis of exact resume).
        tch::manual_seed(cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64) as i64);
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        opt.lr = sched.lr_at(epoch, opt.lr);
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in order.chunks(cfg.batch_size.max(1)) {
            let idx = Tensor::from_slice(chunk);
            let mut xb = xtr.index_select(0, &idx);
            if let Some(sa) = &cfg.spec_augment {
                let mask = sa.mask(&xb.size(), &mut rng);
                xb = xb * mask;
            }
            let logits = model.forward_t(&xb, true);
            let loss = logits.cross_entropy_loss(
                &train.y.index_select(0, &idx),
                weights.as_ref(),
                Reduction::Mean,
                -100,
                cfg.label_smoothing,
            );
            opt.zero_grad();
            loss.backward();
            if let Some(c) = cfg.clip_grad {
                opt.clip_grad_norm(c);
            }
            opt.step();
            total += loss.double_value(&[]) * chunk.len() as f64;
        }
        let (pred, val_loss) = predict(&model, &xva, &val.y, 256)?;
        let mv = metrics::compute(&val_truth, &pred, class_names);
        history.push(EpochStats {
            epoch,
            train_loss: total / n as f64,
            val_loss,
            val_ua: mv.ua,
            val_wa: mv.wa,
            lr: opt.lr,
        });
        opt.lr = sched.after_epoch(val_loss, opt.lr);
        if best.as_ref().is_none_or(|(ua, _, _)| mv.ua > *ua) {
            let snapshot = vs
                .variables()
                .into_iter()
                .map(|(name, v)| (name, v.detach().copy()))
                .collect();
            best = Some((mv.ua, epoch, snapshot));
        } else if epoch - best.as_ref().map_or(0, |b| b.1) >= cfg.patience {
            finished = true;
        }
        if let (Some(dir), Some((best_ua, best_epoch, snapshot))) = (ctl.checkpoint_dir, &best) {
            let state = CheckpointState {
                fingerprint: fingerprint.clone(),
                epoch,
                finished,
                history: history.clone(),
                scheduler: sched.clone(),
                best_ua: *best_ua,
                best_epoch: *best_epoch,
            };
            save_checkpoint(dir, &state, &vs, snapshot, &opt)?;
        }
        if ctl.stop_after == Some(epoch) {
            return Ok(None);
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
    let (pred, _) = predict(&model, &xte, &test.y, 256)?;
    let truth = class_indices(&test.y)?;
    Ok(Some(FitResult {
        best_epoch,
        history,
        test: metrics::compute(&truth, &pred, class_names),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_augment_masks_bands_and_spans_deterministically() {
        let sa = SpecAugment {
            freq_masks: 1,
            freq_width: 4,
            time_masks: 1,
            time_width: 5,
        };
        let shape = [8i64, 1, 20, 30];
        let a = sa.mask(&shape, &mut ChaCha8Rng::seed_from_u64(1));
        let b = sa.mask(&shape, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(a.equal(&b));
        assert_eq!(a.size(), shape.to_vec());
        for i in 0..8 {
            let m = a.get(i).get(0);
            // At most 4 full rows and 5 full columns are zero.
            let zero_rows = m
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                .eq(0.0)
                .sum(Kind::Int64)
                .int64_value(&[]);
            let zero_cols = m
                .sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
                .eq(0.0)
                .sum(Kind::Int64)
                .int64_value(&[]);
            assert!(
                zero_rows <= 4 && zero_cols <= 5,
                "{zero_rows} rows, {zero_cols} columns"
            );
            let kept = m.sum(Kind::Float).double_value(&[]);
            assert!(kept >= (20.0 - 4.0) * (30.0 - 5.0));
        }
        let total = a.sum(Kind::Float).double_value(&[]);
        assert!(total < 8.0 * 600.0, "some values are masked");
    }
}
