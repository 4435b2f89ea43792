//! The trainer: fit a model on a fold's training clips, select on validation UA, score the test
//! clips once with the best weights.
//!
//! - [`data`]: datasets straight from the Parquet cache, train-only normalisation, batches built
//!   on a background thread;
//! - [`optim`]: optimizers whose state emolab owns, schedules, gradient clipping;
//! - [`checkpoint`]: per-epoch checkpoints and exact resume;
//! - [`device`]: CPU/CUDA choice, threads, bf16 autocast;
//! - this module: the loop (balanced class weights, label smoothing, SpecAugment, the model's L2
//!   group, early stopping with the best weights restored) and [`Trained`], a fitted model with
//!   its normaliser that saves to and loads from `model.safetensors`.

pub mod checkpoint;
pub mod classical;
pub mod data;
pub mod device;
pub mod optim;

use std::path::Path;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

use crate::metrics::{self, Metrics};
use crate::models::{Input, Model, ModelError, ModelSpec, L2_GROUP};
use checkpoint::{load_checkpoint, save_checkpoint, CheckpointState};
pub use data::{Dataset, NormMode, Normalizer, SpeakerStats, WindowAverage, WindowSpec};
pub use device::{Autocast, DeviceChoice, Precision};

/// Settings of one fit (the `train:` block of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// scikit-learn's "balanced" class weights in the loss.
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
    /// Feature standardisation: `per_mel` / `global` (statistics from training clips only),
    /// `speaker` (each speaker's own clips, transductive) or `utterance` (each clip's own).
    pub normalize: NormMode,
    /// Random crops of this many frames for training (new each epoch) and sliding windows with
    /// averaged outputs for evaluation; `null`: whole clips, all of one length.
    pub window: Option<WindowSpec>,
    /// Mixup (Zhang et al., 2018) with this Beta(α, α) parameter, per training batch.
    pub mixup: Option<f64>,
    /// `auto` (CUDA when present), `cpu` or `cuda`.
    pub device: DeviceChoice,
    /// LibTorch intra-op threads (default: LibTorch's, one per core).
    pub threads: Option<usize>,
    /// `fp32`, or `bf16` autocast.
    pub precision: Precision,
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
            normalize: NormMode::PerMel,
            window: None,
            mixup: None,
            device: DeviceChoice::Auto,
            threads: None,
            precision: Precision::Fp32,
        }
    }
}

impl FitConfig {
    /// Values that parse but cannot train: `(key, message)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |k, m: &str| Err((k, m.to_string()));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing", "must be in [0, 1)");
        }
        if self.patience == 0 {
            return bad("patience", "must be at least 1");
        }
        if self.threads == Some(0) {
            return bad("threads", "must be at least 1");
        }
        if self.clip_grad.is_some_and(|c| c <= 0.0) {
            return bad("clip_grad", "must be positive");
        }
        if let Some(w) = &self.window {
            if w.frames == 0 || w.hop == Some(0) {
                return bad("window", "frames and hop must be at least 1");
            }
        }
        if self.mixup.is_some_and(|a| !(a > 0.0 && a.is_finite())) {
            return bad("mixup", "must be a positive Beta parameter (e.g. 0.2)");
        }
        Ok(())
    }
}

/// SpecAugment (Park et al., 2019): zero (= the training mean, after normalisation) up to
/// `freq_masks` bands of at most `freq_width` bins and `time_masks` spans of at most
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
    /// Mask a normalised `[b, c, m, t]` batch in place (a frequency band is masked in every
    /// channel alike).
    pub fn apply(
        &self,
        x: &mut [f32],
        b: usize,
        c: usize,
        m: usize,
        t: usize,
        rng: &mut ChaCha8Rng,
    ) {
        use rand::Rng;
        let per = c * m * t;
        for i in 0..b {
            let one = &mut x[i * per..(i + 1) * per];
            for _ in 0..self.freq_masks {
                let w = rng.random_range(0..=self.freq_width.min(m));
                let f0 = rng.random_range(0..=m - w);
                for ch in 0..c {
                    one[(ch * m + f0) * t..(ch * m + f0 + w) * t].fill(0.0);
                }
            }
            for _ in 0..self.time_masks {
                let w = rng.random_range(0..=self.time_width.min(t));
                let t0 = rng.random_range(0..=t - w);
                for f in 0..c * m {
                    one[f * t + t0..f * t + t0 + w].fill(0.0);
                }
            }
        }
    }
}

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
static FIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

/// Evaluation of a model on a dataset: predictions, probabilities and mean loss.
struct Scored {
    pred: Vec<usize>,
    probs: Vec<Vec<f32>>,
    loss: f64,
}

/// The mean over each clip's windows (or the clip alone) of `output`, a `[batch, width]` tensor
/// computed in eval mode, batch by batch, with gradients off.
fn clip_means(
    model: &Model,
    ds: &Dataset,
    norm: &Normalizer,
    window: Option<&WindowSpec>,
    device: Device,
    precision: Precision,
    output: impl Fn(&Model, &Tensor, Option<&[i64]>) -> Tensor,
) -> Result<Vec<Vec<f64>>, TrainError> {
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
fn score(
    model: &Model,
    ds: &Dataset,
    norm: &Normalizer,
    window: Option<&WindowSpec>,
    device: Device,
    precision: Precision,
    k: usize,
) -> Result<Scored, TrainError> {
    let average = window.map_or(WindowAverage::Logits, |w| w.average);
    let means = clip_means(model, ds, norm, window, device, precision, |m, x, l| {
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
        let sv = score(&model, val, &norm, window, device, cfg.precision, k)?;
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
    let sv = score(&model, val, &norm, window, device, cfg.precision, k)?;
    let temperature = crate::calibration::fit_temperature(&sv.probs, &val.labels);
    let abstain_entropy = crate::calibration::entropy_threshold(
        &crate::calibration::scale_all(&sv.probs, temperature),
        crate::calibration::ABSTAIN_COVERAGE,
    );
    let st = score(&model, test, &norm, window, device, cfg.precision, k)?;
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

/// A fitted model with everything needed to predict: spec, classes, input shape, normaliser,
/// the normalisation mode and the evaluation windows.
pub struct Trained {
    pub spec: ModelSpec,
    pub class_names: Vec<String>,
    pub n_features: usize,
    pub channels: usize,
    /// Frames of the model's time axis (the window, or the fixed clip length).
    pub frames: usize,
    pub norm: Normalizer,
    /// `speaker` / `utterance`: clips are standardised on their own statistics before `norm`.
    pub normalize: NormMode,
    pub window: Option<WindowSpec>,
    pub vs: nn::VarStore,
    pub model: Model,
    pub precision: Precision,
}

impl std::fmt::Debug for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Trained({}, {} classes, {}×{})",
            self.spec.family(),
            self.class_names.len(),
            self.n_features,
            self.frames
        )
    }
}

impl Trained {
    /// Number of trainable parameters.
    pub fn parameters(&self) -> i64 {
        crate::models::parameter_count(&self.vs)
    }

    /// Write weights and normaliser as safetensors (`normalizer.mean`, `normalizer.std`, and
    /// every variable under its var-store name), atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.to_device(Device::Cpu)))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.push((
            "normalizer.mean".into(),
            Tensor::from_slice(&self.norm.mean),
        ));
        named.push(("normalizer.std".into(), Tensor::from_slice(&self.norm.std)));
        let tmp = crate::util::temp_path(path);
        Tensor::write_safetensors(&named, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| TrainError::ModelFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Rebuild `spec` for the inputs `fit` saw (`n_features` per frame in `channels`, on a time
    /// axis of `frames`), trained under `cfg`, and load its weights from `path`.
    pub fn load(
        path: &Path,
        spec: &ModelSpec,
        class_names: &[String],
        n_features: usize,
        channels: usize,
        frames: usize,
        cfg: &FitConfig,
        device: Device,
    ) -> Result<Trained, TrainError> {
        let err = |message: String| TrainError::ModelFile {
            path: path.display().to_string(),
            message,
        };
        let named = Tensor::read_safetensors(path).map_err(|e| err(e.to_string()))?;
        let get = |n: &str| -> Result<Vec<f32>, TrainError> {
            let t = named
                .iter()
                .find(|(k, _)| k == n)
                .ok_or_else(|| err(format!("no tensor {n}")))?;
            Ok(Vec::<f32>::try_from(&t.1)?)
        };
        let norm = Normalizer {
            mean: get("normalizer.mean")?,
            std: get("normalizer.std")?,
        };
        if norm.mean.len() != n_features {
            return Err(err(format!(
                "normaliser has {} bins, the pipeline {n_features}",
                norm.mean.len()
            )));
        }
        if channels == 0 || n_features % channels != 0 {
            return Err(err(format!(
                "{n_features} features do not split into {channels} channels"
            )));
        }
        let vs = nn::VarStore::new(device);
        let input = Input {
            channels: channels as i64,
            bins: (n_features / channels) as i64,
            frames: frames as i64,
        };
        let model = {
            let _rng = torch_rng_guard();
            spec.build(&vs.root(), input, class_names.len() as i64)?
        };
        let vars = vs.variables();
        if vars.len() + 2 != named.len() {
            return Err(err(format!(
                "{} tensors, the model has {} variables",
                named.len() - 2,
                vars.len()
            )));
        }
        tch::no_grad(|| -> Result<(), TrainError> {
            for (name, v) in &vars {
                let t = named
                    .iter()
                    .find(|(k, _)| k == name)
                    .ok_or_else(|| err(format!("no weights for {name}")))?;
                if t.1.size() != v.size() {
                    return Err(err(format!(
                        "{name} is {:?}, the model wants {:?}",
                        t.1.size(),
                        v.size()
                    )));
                }
                let mut v = v.shallow_clone();
                v.copy_(&t.1);
            }
            Ok(())
        })?;
        Ok(Trained {
            spec: spec.clone(),
            class_names: class_names.to_vec(),
            n_features,
            channels,
            frames,
            norm,
            normalize: cfg.normalize,
            window: cfg.window.clone(),
            vs,
            model,
            precision: Precision::Fp32,
        })
    }

    /// The penultimate representation of every clip of `ds` ([`Model::embed`]; a windowed model
    /// gives the mean over the clip's windows), prepared as [`Trained::predict_proba`] prepares
    /// its input.
    pub fn embed(&self, ds: &Dataset) -> Result<Vec<Vec<f32>>, TrainError> {
        self.on_input(ds, |ds| {
            let means = clip_means(
                &self.model,
                ds,
                &self.norm,
                self.window.as_ref(),
                self.vs.device(),
                self.precision,
                |m, x, l| m.embed(x, l, false),
            )?;
            Ok(means
                .into_iter()
                .map(|v| v.into_iter().map(|x| x as f32).collect())
                .collect())
        })
    }

    /// `run` on `ds` once it is checked against the model's input and normalised as the model
    /// was trained (nothing for no clips), holding the fit lock.
    fn on_input<T>(
        &self,
        ds: &Dataset,
        run: impl FnOnce(&Dataset) -> Result<Vec<T>, TrainError>,
    ) -> Result<Vec<T>, TrainError> {
        self.check_input(ds)?;
        if ds.is_empty() {
            return Ok(Vec::new());
        }
        let ds = with_norm(ds, self.normalize)?;
        let _lock = FIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        run(&ds)
    }

    /// `ds` has the features, channels and (without windows) the frames the model takes.
    fn check_input(&self, ds: &Dataset) -> Result<(), TrainError> {
        if (ds.n_features, ds.channels) != (self.n_features, self.channels) {
            return Err(TrainError::Shape(format!(
                "the model takes {} features per frame in {} channels, these clips have {} in {}",
                self.n_features, self.channels, ds.n_features, ds.channels
            )));
        }
        if self.window.is_none() && !(ds.fixed_length() && ds.frames == self.frames) {
            return Err(TrainError::Shape(format!(
                "the model takes {} frames, these clips have {} to {}",
                self.frames,
                ds.lengths.iter().min().unwrap_or(&0),
                ds.frames
            )));
        }
        Ok(())
    }

    /// Class probabilities of every clip of `ds` (labels are ignored). With `normalize:
    /// speaker`, clips without per-clip statistics are standardised per speaker of `ds` (clips
    /// without a speaker id form one group).
    pub fn predict_proba(&self, ds: &Dataset) -> Result<Vec<Vec<f32>>, TrainError> {
        self.on_input(ds, |ds| {
            let s = score(
                &self.model,
                ds,
                &self.norm,
                self.window.as_ref(),
                self.vs.device(),
                self.precision,
                self.class_names.len(),
            )?;
            Ok(s.probs)
        })
    }
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
