//! The trainer: fit a model on a fold's training clips, select on validation UA, score the test
//! clips once with the best weights.
//!
//! - [`data`]: datasets straight from the Parquet cache, train-only normalisation, batches built
//!   on a background thread;
//! - [`optim`]: optimizers whose state emolab owns, schedules, gradient clipping;
//! - [`checkpoint`]: per-epoch checkpoints and exact resume;
//! - [`device`]: CPU/CUDA choice, threads, bf16 autocast;
//! - [`config`]: the typed `train:` block and SpecAugment;
//! - [`classical`]: the fit of a classical model (no epochs);
//! - `scorer`: a network scored on a dataset, whole clips or windows averaged;
//! - [`Trained`]: a fitted network with its normaliser, saved to `model.safetensors`;
//! - this module: the loop (balanced class weights, label smoothing, SpecAugment, the model's L2
//!   group, early stopping with the best weights restored).

pub mod checkpoint;
pub mod classical;
mod config;
pub mod data;
pub mod device;
pub mod optim;
mod scorer;
mod trained;

use std::path::Path;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

use crate::metrics::{self, Metrics};
use crate::models::{Input, Model, ModelError, ModelSpec, L2_GROUP};
use checkpoint::{load_checkpoint, save_checkpoint, CheckpointState};
pub use config::{FitConfig, SpecAugment};
pub use data::{Dataset, NormMode, Normalizer, SpeakerStats, WindowAverage, WindowSpec};
pub use device::{Autocast, DeviceChoice, Precision};
use scorer::Scorer;
pub use trained::Trained;

pub use crate::results::EpochStats;

/// What a fit produced (`M`: the fitted network, or [`classical::ClassicalTrained`]).
#[derive(Debug)]
pub struct FitResult<M = Trained> {
    pub best_epoch: usize,
    pub history: Vec<EpochStats>,
    /// Test metrics with the best weights.
    pub test: Metrics,
    /// Test predictions and class probabilities, in test-set order.
    pub test_pred: Vec<usize>,
    pub test_probs: Vec<Vec<f32>>,
    /// Validation-clip probabilities of a model that was not fitted on them (the selected
    /// network; a classical model before its refit on training + validation clips): what
    /// late-fusion weights are chosen on.
    pub val_probs: Vec<Vec<f32>>,
    /// Temperature minimising the validation NLL of the selected model ([`crate::calibration`]).
    pub temperature: f64,
    /// Entropy (of the temperature-scaled probabilities) under which
    /// [`crate::calibration::ABSTAIN_COVERAGE`] of the validation clips fall.
    pub abstain_entropy: Option<f64>,
    /// Permutation importance `(mean, std)` per feature on the validation clips, where the
    /// learner measures it (classical models; see [`crate::importance`]).
    pub importance: Option<Vec<(f64, f64)>>,
    /// The fitted model (best weights) with its normaliser.
    pub model: M,
}

impl<M> FitResult<M> {
    /// The same figures without the model (once it is saved).
    pub fn without_model(self) -> FitResult<()> {
        FitResult {
            best_epoch: self.best_epoch,
            history: self.history,
            test: self.test,
            test_pred: self.test_pred,
            test_probs: self.test_probs,
            val_probs: self.val_probs,
            temperature: self.temperature,
            abstain_entropy: self.abstain_entropy,
            importance: self.importance,
            model: (),
        }
    }
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
    #[error("train.{0}: {1}")]
    Config(&'static str, String),
    #[error("model file {path}: {message}")]
    ModelFile { path: String, message: String },
}

/// How a fit is run: where it checkpoints, whether it shows progress, and (for tests of resume)
/// where it stops.
#[derive(Debug, Clone, Default)]
pub struct FitControl<'a> {
    /// Checkpoint after every epoch into `<dir>/checkpoint.ot`; resume from it when present.
    pub checkpoint_dir: Option<&'a Path>,
    /// Stop (as if killed) right after this epoch's checkpoint.
    pub stop_after: Option<usize>,
    /// Show an indicatif bar of epochs.
    pub progress: bool,
}

/// LibTorch draws dropout masks and initial weights from one process-wide generator, so two
/// fits running at once in a process would interleave their draws and neither would be
/// reproducible. Fits take this lock (each already uses every intra-op thread).
pub(crate) static FIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hold LibTorch's process-wide generator (the fit lock) while building a model outside a fit:
/// initialising weights draws from it, and would shift the draws of a fit running meanwhile.
pub fn torch_rng_guard() -> std::sync::MutexGuard<'static, ()> {
    FIT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The best epoch so far: validation UA, epoch, a copy of every variable.
type Snapshot = (f64, usize, Vec<(String, Tensor)>);

/// `sklearn`'s "balanced" weights: n / (k · count_c); absent classes get 0.
fn balanced_weights(labels: &[usize], k: usize) -> Vec<f32> {
    let mut counts = vec![0usize; k];
    for &l in labels {
        counts[l] += 1;
    }
    let n = labels.len() as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (n / (k as f64 * c as f64)) as f32
            }
        })
        .collect()
}

/// Class indices held in an integer tensor (labels, or argmax of logits).
fn class_indices(t: &Tensor) -> Result<Vec<usize>, tch::TchError> {
    Ok(Vec::<i64>::try_from(t)?
        .into_iter()
        .map(|v| v as usize)
        .collect())
}

/// Input tensor of a batch on `device`, and its rows' lengths when some row is padded.
fn batch_tensor(b: &data::Batch, ds: &Dataset, device: Device) -> (Tensor, Option<Vec<i64>>) {
    let x = Tensor::from_slice(&b.x)
        .reshape([
            b.len() as i64,
            ds.channels as i64,
            ds.bins() as i64,
            b.frames as i64,
        ])
        .to_device(device);
    (x, b.padded().then(|| b.lengths.clone()))
}

/// The time axis of batches: the window, or the clips' common length.
fn time_axis(ds: &Dataset, window: Option<&WindowSpec>) -> Result<usize, TrainError> {
    match window {
        Some(w) => Ok(w.frames),
        None if ds.fixed_length() => Ok(ds.frames),
        None => Err(TrainError::Shape(format!(
            "clips have {} to {} frames: use a frames policy that fixes the length, or train.window",
            ds.lengths.iter().min().unwrap_or(&0),
            ds.frames
        ))),
    }
}

/// The model's input for batches of `ds`.
fn input_of(ds: &Dataset, t: usize) -> crate::models::Input {
    crate::models::Input {
        channels: ds.channels as i64,
        bins: ds.bins() as i64,
        frames: t as i64,
    }
}

/// `ds` with the per-clip statistics `mode` needs (when it has none yet).
fn with_norm(ds: &Dataset, mode: NormMode) -> Result<std::borrow::Cow<'_, Dataset>, TrainError> {
    let needs = matches!(mode, NormMode::Speaker | NormMode::Utterance);
    if !needs || ds.clip_norm.is_some() {
        return Ok(std::borrow::Cow::Borrowed(ds));
    }
    let mut owned = ds.clone();
    owned.attach_norm(mode, None)?;
    Ok(std::borrow::Cow::Owned(owned))
}

/// Mixup weight (the larger of λ and 1 - λ, λ ~ Beta(α, α)) and the partner of each row.
fn mixup_draw(rng: &mut ChaCha8Rng, alpha: f64, n: usize) -> (f64, Vec<i64>) {
    use rand_distr::Distribution;
    let lam = rand_distr::Beta::new(alpha, alpha)
        .expect("alpha checked positive")
        .sample(rng);
    let mut perm: Vec<i64> = (0..n as i64).collect();
    perm.shuffle(rng);
    (lam.max(1.0 - lam), perm)
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

/// [`fit`] with checkpoints, progress and resume. Returns `None` when stopped by `stop_after`.
pub fn fit_with(
    spec: &ModelSpec,
    class_names: &[String],
    train: &Dataset,
    val: &Dataset,
    test: &Dataset,
    cfg: &FitConfig,
    ctl: &FitControl,
) -> Result<Option<FitResult>, TrainError> {
    if spec.classical().is_some() {
        return Err(TrainError::Config(
            "model",
            format!(
                "{} is a classical model: fit it with train::classical::fit",
                spec.family()
            ),
        ));
    }
    if train.is_empty() || val.is_empty() || test.is_empty() {
        return Err(TrainError::Empty);
    }
    let window = cfg.window.as_ref();
    let t = time_axis(train, window)?;
    for other in [val, test] {
        let shape = (other.n_features, other.channels);
        if shape != (train.n_features, train.channels) || time_axis(other, window)? != t {
            return Err(TrainError::Shape(format!(
                "training clips are {}×{} ({} channels), evaluation clips {}×{} ({} channels)",
                t, train.n_features, train.channels, other.frames, other.n_features, other.channels
            )));
        }
    }
    cfg.check().map_err(|(k, m)| TrainError::Config(k, m))?;
    let device = cfg
        .device
        .resolve()
        .map_err(|m| TrainError::Config("device", m))?;
    let (train, val, test) = (
        with_norm(train, cfg.normalize)?,
        with_norm(val, cfg.normalize)?,
        with_norm(test, cfg.normalize)?,
    );
    let (train, val, test) = (train.as_ref(), val.as_ref(), test.as_ref());
    let _one_fit_at_a_time = FIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = cfg.threads {
        tch::set_num_threads(n as i32);
    }
    tch::manual_seed(cfg.seed as i64);
    let k = class_names.len();
    let norm = match cfg.normalize {
        NormMode::Speaker | NormMode::Utterance | NormMode::None => {
            Normalizer::identity(train.n_features)
        }
        mode => Normalizer::fit(train, mode),
    };
    let scorer = |model| Scorer {
        model,
        norm: &norm,
        window,
        device,
        precision: cfg.precision,
    };
    let vs = nn::VarStore::new(device);
    let model = spec.build(&vs.root(), input_of(train, t), k as i64)?;
    let mut opt = optim::Optimizer::new(&vs, &cfg.optimizer, cfg.lr);
    if spec.l2() > 0.0 {
        // Keras adds l2·Σw² to the loss: its gradient is 2·l2·w, i.e. coupled decay 2·l2.
        opt.set_group_decay(L2_GROUP, 2.0 * spec.l2());
    }
    for (group, factor) in spec.group_lr() {
        opt.set_group_lr_scale(group, factor);
    }
    let mut sched = optim::Scheduler::new(cfg.schedule.clone(), cfg.lr, cfg.epochs);
    let weights = cfg
        .class_weights
        .then(|| Tensor::from_slice(&balanced_weights(&train.labels, k)).to_device(device));
    let fingerprint = {
        // Where and with how many threads it runs does not change what a checkpoint means.
        let what = FitConfig {
            device: DeviceChoice::Auto,
            threads: None,
            ..cfg.clone()
        };
        let what = serde_json::json!([
            spec,
            what,
            train.shape(),
            val.shape(),
            test.shape(),
            class_names
        ]);
        blake3::hash(what.to_string().as_bytes()).to_hex()[..16].to_string()
    };
    let mut history = Vec::new();
    // (validation UA, epoch, weights) of the best epoch so far.
    let mut best: Option<Snapshot> = None;
    let mut first_epoch = 1;
    let mut finished = false;
    if let Some(dir) = ctl.checkpoint_dir {
        if let Some((state, snapshot)) = load_checkpoint(dir, &fingerprint, &vs, &mut opt)? {
            first_epoch = state.epoch + 1;
            finished = state.finished;
            if ctl.progress && !finished {
                eprintln!(
                    "{}: resuming from the checkpoint of epoch {} of {}",
                    dir.display(),
                    state.epoch,
                    cfg.epochs
                );
            }
            history = state.history;
            sched = state.scheduler;
            best = Some((state.best_ua, state.best_epoch, snapshot));
        }
    }
    // Unattended, the epoch lines below say more than a bar would.
    let resumed_from = first_epoch;
    let bar = crate::util::progress_bar(
        cfg.epochs as u64,
        "epochs",
        ctl.progress && !crate::util::plain_progress(),
    );
    bar.set_position(first_epoch as u64 - 1);
    let n = train.len();
    for epoch in first_epoch..=cfg.epochs {
        if finished {
            break;
        }
        let started = Instant::now();
        // Every random draw of an epoch derives from (seed, epoch), so an epoch's result does not
        // depend on what ran before it (the basis of exact resume).
        tch::manual_seed(cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64) as i64);
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        opt.lr = sched.lr_at(epoch, opt.lr);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let items = match window {
            Some(w) => data::random_crops(train, &order, w.frames, &mut rng),
            None => data::whole_clips(train, &order),
        };
        // Mixup draws come from their own stream (the batch producer owns `rng`).
        let mut mix_rng = ChaCha8Rng::seed_from_u64(rng.random::<u64>());
        let mut total = 0.0;
        let (mut seen_truth, mut seen_pred) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let augment = cfg.spec_augment.as_ref().map(|sa| (sa, &mut rng));
        data::stream_batches(train, &items, t, cfg.batch_size, &norm, augment, |b| {
            let (mut x, mut lengths) = batch_tensor(&b, train, device);
            let y = Tensor::from_slice(&b.y).to_device(device);
            let mix = cfg
                .mixup
                .map(|alpha| mixup_draw(&mut mix_rng, alpha, b.len()));
            let mut y2 = None;
            if let Some((lam, perm)) = &mix {
                let p = Tensor::from_slice(perm).to_device(device);
                x = &x * *lam + x.index_select(0, &p) * (1.0 - *lam);
                y2 = Some(y.index_select(0, &p));
                lengths = lengths.map(|ls| {
                    ls.iter()
                        .zip(perm)
                        .map(|(&a, &j)| a.max(ls[j as usize]))
                        .collect()
                });
            }
            let logits = {
                let _ac = Autocast::new(cfg.precision, device);
                model.forward(&x, lengths.as_deref(), true)
            }
            .to_kind(Kind::Float);
            let ce = |target: &Tensor| {
                logits.cross_entropy_loss(
                    target,
                    weights.as_ref(),
                    Reduction::Mean,
                    -100,
                    cfg.label_smoothing,
                )
            };
            let loss = match (&mix, &y2) {
                (Some((lam, _)), Some(y2)) => ce(&y) * *lam + ce(y2) * (1.0 - *lam),
                _ => ce(&y),
            };
            opt.zero_grad();
            loss.backward();
            if let Some(c) = cfg.clip_grad {
                opt.clip_grad_norm(c);
            }
            opt.step();
            total += loss.double_value(&[]) * b.len() as f64;
            seen_pred.extend(class_indices(
                &logits.argmax(-1, false).to_device(Device::Cpu),
            )?);
            seen_truth.extend(b.y.iter().map(|&v| v as usize));
            Ok::<(), TrainError>(())
        })?;
        let train_seconds = started.elapsed().as_secs_f64();
        let mt = metrics::compute(&seen_truth, &seen_pred, class_names);
        let sv = scorer(&model).score(val, k)?;
        let mv = metrics::compute(&val.labels, &sv.pred, class_names);
        history.push(EpochStats {
            epoch,
            train_loss: total / n as f64,
            train_ua: mt.ua,
            train_wa: mt.wa,
            val_loss: sv.loss,
            val_ua: mv.ua,
            val_wa: mv.wa,
            lr: opt.lr,
            train_seconds,
            epoch_seconds: 0.0,
        });
        opt.lr = sched.after_epoch(sv.loss, opt.lr);
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
        history.last_mut().expect("pushed").epoch_seconds = started.elapsed().as_secs_f64();
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
            let h = history.last().expect("pushed");
            checkpoint::write_progress(
                dir,
                &checkpoint::Progress {
                    epoch,
                    epochs: cfg.epochs,
                    train_loss: h.train_loss,
                    val_ua: h.val_ua,
                    best_val_ua: *best_ua,
                    lr: h.lr,
                    epoch_seconds: h.epoch_seconds,
                    resumed_from: resumed_from.max(1),
                    updated_at: chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                },
            )?;
        }
        bar.set_message(format!(
            "loss {:.3} val UA {:.3} (best {:.3})",
            total / n as f64,
            mv.ua,
            best.as_ref().map_or(0.0, |b| b.0)
        ));
        bar.inc(1);
        if ctl.progress && crate::util::plain_progress() {
            // Nobody watches a bar (Slurm, nohup, CI): one line per epoch instead.
            let h = history.last().expect("pushed");
            eprintln!(
                "{} epoch {epoch}/{}: train loss {:.4}, val UA {:.3}, lr {:.2e}, {:.1} s",
                ctl.checkpoint_dir
                    .and_then(|d| d.file_name())
                    .map_or("fit".into(), |n| n.to_string_lossy()),
                cfg.epochs,
                h.train_loss,
                h.val_ua,
                h.lr,
                h.epoch_seconds
            );
        }
        if ctl.stop_after == Some(epoch) {
            bar.finish_and_clear();
            return Ok(None);
        }
    }
    bar.finish_and_clear();
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
    let sv = scorer(&model).score(val, k)?;
    let temperature = crate::calibration::fit_temperature(&sv.probs, &val.labels);
    let abstain_entropy = crate::calibration::entropy_threshold(
        &crate::calibration::scale_all(&sv.probs, temperature),
        crate::calibration::ABSTAIN_COVERAGE,
    );
    let st = scorer(&model).score(test, k)?;
    let test_metrics = metrics::compute(&test.labels, &st.pred, class_names);
    Ok(Some(FitResult {
        best_epoch,
        history,
        test: test_metrics,
        test_pred: st.pred,
        test_probs: st.probs,
        val_probs: sv.probs,
        temperature,
        abstain_entropy,
        importance: None,
        model: Trained {
            spec: spec.clone(),
            class_names: class_names.to_vec(),
            n_features: train.n_features,
            channels: train.channels,
            frames: t,
            norm,
            normalize: cfg.normalize,
            window: cfg.window.clone(),
            vs,
            model,
            precision: cfg.precision,
        },
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
        let (b, m, t) = (8, 20, 30);
        let run = |seed| {
            let mut x = vec![1f32; b * m * t];
            sa.apply(&mut x, b, 1, m, t, &mut ChaCha8Rng::seed_from_u64(seed));
            x
        };
        let a = run(1);
        assert_eq!(a, run(1));
        for i in 0..b {
            let one = &a[i * m * t..(i + 1) * m * t];
            let zero_rows = (0..m)
                .filter(|&f| one[f * t..(f + 1) * t].iter().all(|&v| v == 0.0))
                .count();
            let zero_cols = (0..t)
                .filter(|&c| (0..m).all(|f| one[f * t + c] == 0.0))
                .count();
            assert!(
                zero_rows <= 4 && zero_cols <= 5,
                "{zero_rows} rows, {zero_cols} columns"
            );
            let kept: f32 = one.iter().sum();
            assert!(kept >= (20.0 - 4.0) * (30.0 - 5.0));
        }
        assert!(
            a.iter().sum::<f32>() < (b * m * t) as f32,
            "some values are masked"
        );
    }

    #[test]
    fn balanced_weights_follow_sklearn() {
        // sklearn: n / (k * count) = 6 / (3 * [3, 2, 1]) ; absent class 3 gets 0.
        let w = balanced_weights(&[0, 0, 0, 1, 1, 2], 4);
        let expect = [6.0 / 12.0, 6.0 / 8.0, 6.0 / 4.0, 0.0];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
    }
}
