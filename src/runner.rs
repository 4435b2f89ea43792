//! The experiment runner: every fold × seed of a prepared experiment ([`crate::prepare`]) trained
//! and evaluated into its run folder ([`crate::results`]), with the post-fit steps every model
//! shares (importance, embeddings, calibration, predictions).
//!
//! Splits depend only on (manifest, protocol, split seed), so every model of every experiment on
//! the same corpus and protocol sees the same folds and comparisons are paired. A run whose
//! folder says `complete` is skipped; a `running` one resumes from its checkpoint; `--force`
//! recomputes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// Re-exported where the integration tests look for them.
pub use crate::prepare::{folds_for, prepare};
use crate::prepare::{speaker_stats, Prepared};
use crate::results::CLASSICAL_MODEL;

use crate::corpus::ClipRecord;
use crate::experiment::Experiment;
use crate::importance;
use crate::metrics;
use crate::results::{
    git_revision, Predictions, RunDir, RunMeta, RunMetrics, RunStatus, SplitRows,
};
use crate::speakers::TrainingSpeakers;
use crate::split::Fold;
use crate::train::{self, device, Dataset, FitControl, NormMode};

/// How runs are run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Recompute complete runs.
    pub force: bool,
    pub progress: bool,
    /// Sweep trial (id and parameter values) the runs belong to.
    pub trial: Option<(String, BTreeMap<String, serde_json::Value>)>,
}

/// What happened to one run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub status: RunStatus,
    /// Already complete before this invocation.
    pub skipped: bool,
    pub error: Option<String>,
}

/// The folder name of a run.
pub fn run_name(trial: Option<&str>, fold: usize, seed: u64) -> String {
    match trial {
        Some(t) => format!("{t}-fold{fold}-seed{seed}"),
        None => format!("fold{fold}-seed{seed}"),
    }
}

/// The folder of a run.
pub fn run_dir(exp: &Experiment, trial: Option<&str>, fold: usize, seed: u64) -> RunDir {
    RunDir::new(
        exp.results
            .join(&exp.name)
            .join(run_name(trial, fold, seed)),
    )
}

/// The runs of `exp` in the order they are run: (fold, seed, split seed) for every seed, then
/// every selected fold. [`crate::cluster::plan`] numbers them the same way.
pub fn planned_runs(exp: &Experiment, prep: &Prepared) -> Result<Vec<(Fold, u64, u64)>> {
    let mut plan = Vec::new();
    for &seed in &exp.seeds {
        let split_seed = exp.split_seed.unwrap_or(seed);
        let folds = folds_for(exp, prep, split_seed)?;
        if let Some(sel) = &exp.folds {
            if let Some(f) = sel.iter().find(|&&f| f >= folds.len()) {
                return Err(exp
                    .error(
                        "folds",
                        format!("fold {f} does not exist ({} folds)", folds.len()),
                    )
                    .into());
            }
        }
        for f in folds {
            if exp.folds.as_ref().is_none_or(|s| s.contains(&f.index)) {
                plan.push((f, seed, split_seed));
            }
        }
    }
    Ok(plan)
}

/// The first line where two configurations differ, as `was → now`.
fn first_difference(old: &str, new: &str) -> String {
    let (mut o, mut n) = (old.lines(), new.lines());
    for i in 1.. {
        match (o.next(), n.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {i}: `{}` → `{}`",
                    a.unwrap_or("").trim(),
                    b.unwrap_or("").trim()
                )
            }
        }
    }
    "formatting only".into()
}

/// Train and evaluate every selected fold × seed of `exp`.
pub fn run_experiment(
    exp: &Experiment,
    prep: &Prepared,
    opts: &RunOptions,
) -> Result<Vec<RunOutcome>> {
    let plan = planned_runs(exp, prep)?;
    let trial = opts.trial.as_ref().map(|t| t.0.as_str());
    let mut out = Vec::new();
    let total = plan.len();
    // Refuse before anything runs when run folders hold another configuration: nothing is
    // trained, and no stale table is printed as if it were the answer.
    if !opts.force {
        let clashes: Vec<(PathBuf, String)> = plan
            .iter()
            .filter_map(|(fold, seed, _)| {
                let dir = run_dir(exp, trial, fold.index, *seed);
                let old = std::fs::read_to_string(dir.path("config.yaml")).ok()?;
                let wanted = exp.run_yaml(fold.index, *seed);
                (old != wanted).then(|| (dir.dir, first_difference(&old, &wanted)))
            })
            .collect();
        if let Some((first, diff)) = clashes.first() {
            bail!(
                "{} of the {} runs in {} were made with another configuration (first \
                 difference, in {}/config.yaml: {diff}). Nothing was run. Rerun with --force to \
                 replace them, or give this variant its own name: --set name={}_v2",
                clashes.len(),
                plan.len(),
                exp.dir().display(),
                first.display(),
                exp.name
            );
        }
    }
    for (i, (fold, seed, split_seed)) in plan.into_iter().enumerate() {
        let dir = run_dir(exp, trial, fold.index, seed);
        if dir.is_complete() && !opts.force {
            out.push(RunOutcome {
                dir: dir.dir,
                status: RunStatus::Complete,
                skipped: true,
                error: None,
            });
            continue;
        }
        // One process per run folder: a run another live process is training is left to it.
        let _lock = match crate::runlock::try_lock(&dir.dir)? {
            Ok(lock) => lock,
            Err(owner) => {
                eprintln!("run {} skipped: {owner} is training it", dir.dir.display());
                out.push(RunOutcome {
                    dir: dir.dir,
                    status: RunStatus::Running,
                    skipped: false,
                    error: None,
                });
                continue;
            }
        };
        // It may have been completed while we waited for the lock.
        if dir.is_complete() && !opts.force {
            out.push(RunOutcome {
                dir: dir.dir,
                status: RunStatus::Complete,
                skipped: true,
                error: None,
            });
            continue;
        }
        if opts.force && dir.dir.exists() {
            // Everything but the lock we hold.
            for e in std::fs::read_dir(&dir.dir)
                .with_context(|| format!("cannot read {}", dir.dir.display()))?
                .flatten()
            {
                if e.file_name() == crate::runlock::FILE {
                    continue;
                }
                let p = e.path();
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                r.with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        if opts.progress {
            eprintln!(
                "[{}/{total}] {} {} fold {} seed {} → {}",
                i + 1,
                exp.name,
                exp.model_name,
                fold.index,
                seed,
                dir.dir.display()
            );
        }
        match run_one(exp, prep, &fold, seed, split_seed, &dir, opts) {
            Ok(()) => out.push(RunOutcome {
                dir: dir.dir,
                status: RunStatus::Complete,
                skipped: false,
                error: None,
            }),
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("run {} failed: {msg}", dir.dir.display());
                if let Ok(mut m) = dir.meta() {
                    m.status = RunStatus::Failed;
                    m.error = Some(msg.clone());
                    let _ = dir.write_meta(&m);
                }
                out.push(RunOutcome {
                    dir: dir.dir,
                    status: RunStatus::Failed,
                    skipped: false,
                    error: Some(msg),
                });
            }
        }
    }
    if trial.is_none() {
        // Seeds of one split also give their average as an entry of its own.
        for d in crate::ensemble::write_seed_ensembles(&exp.dir(), &exp.seeds)? {
            if opts.progress {
                eprintln!("seed ensemble → {}", d.display());
            }
        }
    }
    Ok(out)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Train one fold with one seed into `dir`.
pub fn run_one(
    exp: &Experiment,
    prep: &Prepared,
    fold: &Fold,
    seed: u64,
    split_seed: u64,
    dir: &RunDir,
    opts: &RunOptions,
) -> Result<()> {
    let started = Instant::now();
    let mut cfg = exp.train.clone();
    cfg.seed = seed;
    let dev = cfg
        .device
        .resolve()
        .map_err(|m| exp.error("train.device", m))?;
    std::fs::create_dir_all(&dir.dir)
        .with_context(|| format!("cannot create {}", dir.dir.display()))?;
    dir.write_config(&exp.run_yaml(fold.index, seed))?;
    // Speaker statistics come from each speaker's original clips only (augmented copies exist
    // for training speakers alone); they read audio features and speaker ids, never labels.
    let speakers = (cfg.normalize == NormMode::Speaker).then(|| speaker_stats(prep));
    // What new audio of too few clips per speaker is standardised with (`predict`): the
    // training speakers' statistics, never the validation or test speakers'.
    if speakers.is_some() {
        let f = prep.rows.first().map_or(0, |r| r[0].n_features as usize);
        let train = fold.train.iter().map(|&i| {
            (
                prep.clips[i].speaker.as_deref(),
                &prep.rows[i][0].features[..],
            )
        });
        if let Some(t) = TrainingSpeakers::pooled(train, f) {
            t.save(&dir.dir)?;
        }
    }
    let pick = |idx: &[usize], all_variants: bool| -> Result<Dataset> {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for &i in idx {
            let take = if all_variants { prep.rows[i].len() } else { 1 };
            for r in &prep.rows[i][..take] {
                rows.push(r);
                labels.push(prep.labels[i]);
            }
        }
        let mut ds = Dataset::from_rows(&rows, &labels)?.with_channels(exp.pipeline.channels())?;
        ds.attach_norm(cfg.normalize, speakers.as_ref())?;
        Ok(ds)
    };
    let train_ds = pick(&fold.train, true)?;
    let val_ds = pick(&fold.val, false)?;
    let test_ds = pick(&fold.test, false)?;
    let (test_as_val, leaky) = match &exp.protocol {
        crate::split::Protocol::Random { test_as_val, .. } => (*test_as_val, true),
        _ => (false, false),
    };
    let mut meta = RunMeta {
        experiment: exp.name.clone(),
        run: dir
            .dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        status: RunStatus::Running,
        error: None,
        model: exp.model_name.clone(),
        family: exp.model.family().into(),
        protocol: exp.protocol.name().into(),
        speaker_leaky: leaky,
        test_as_val,
        transductive: cfg.normalize.transductive(),
        ensemble: Vec::new(),
        target: exp.corpus.target.name().into(),
        corpus: exp.corpus.path.display().to_string(),
        pipeline: exp.pipeline.name.clone(),
        feature_key: exp.pipeline.feature_key(),
        duplicates_dropped: prep.duplicates.extra_copies(),
        duplicates_cross_speaker: prep.duplicates.cross_speaker(),
        fold: fold.index,
        seed,
        split_seed,
        trial: opts.trial.as_ref().map(|t| t.0.clone()),
        params: opts.trial.as_ref().map(|t| t.1.clone()).unwrap_or_default(),
        classes: prep.classes.clone(),
        n_train: fold.train.len(),
        n_train_variants: train_ds.len(),
        n_val: fold.val.len(),
        n_test: fold.test.len(),
        parameters: 0,
        device: device::device_name(dev),
        threads: cfg.threads.map_or_else(tch::get_num_threads, |t| t as i32),
        precision: format!("{:?}", cfg.precision).to_lowercase(),
        emolab_version: env!("CARGO_PKG_VERSION").into(),
        tch_version: env!("EMOLAB_TCH_VERSION").into(),
        libtorch_version: env!("EMOLAB_LIBTORCH_VERSION").into(),
        git_revision: git_revision(),
        started_at: now(),
        finished_at: None,
        seconds: None,
        epochs_run: 0,
        best_epoch: 0,
        train_seconds_per_epoch: None,
        host: crate::util::hostname(),
        pid: Some(std::process::id()),
        slurm_job: crate::util::current_job(),
        classical: None,
        encoder: exp.pipeline.encoder.as_ref().and_then(|e| e.info()),
    };
    dir.write_meta(&meta)?;
    let mut split = SplitRows::default();
    for (role, idx) in [
        ("train", &fold.train),
        ("val", &fold.val),
        ("test", &fold.test),
    ] {
        for &i in idx.iter() {
            let c = &prep.clips[i];
            split.clip_id.push(c.clip_id.clone());
            split.speaker.push(c.speaker.clone());
            split.sex.push(c.sex.clone());
            split.label.push(prep.classes[prep.labels[i]].clone());
            split.role.push(role);
        }
    }
    dir.write_split(&split)?;
    let ctl = FitControl {
        checkpoint_dir: Some(&dir.dir),
        stop_after: None,
        progress: opts.progress,
    };
    let mut layer_weights = None;
    let groups = exp.pipeline.importance_groups();
    let group_cols = groups.as_ref().map(|(_, g)| g.as_slice());
    let (fit, parameters) = match exp.model.classical() {
        Some(spec) => {
            let (fit, probe) =
                train::classical::fit(&spec, &prep.classes, &train_ds, &val_ds, &test_ds, &cfg)?;
            fit.model.save(&dir.path(CLASSICAL_MODEL))?;
            let timer = Instant::now();
            let mut fit = fit;
            fit.importance = Some(importance::measure(
                importance::Subject::Classical(&probe),
                &prep.classes,
                seed,
                group_cols,
            )?);
            // Network parameters: none; the model's own size is in `classical`.
            meta.classical = fit.model.info.map(|mut c| {
                c.importance_seconds = timer.elapsed().as_secs_f64();
                c
            });
            (fit.without_model(), 0)
        }
        None => {
            let fit = train::fit_with(
                &exp.model,
                &prep.classes,
                &train_ds,
                &val_ds,
                &test_ds,
                &cfg,
                &ctl,
            )?
            .expect("no stop_after");
            fit.model.save(&dir.path("model.safetensors"))?;
            let p = fit.model.parameters();
            layer_weights = learned_layer_weights(&fit.model, exp);
            held_out_embeddings(&fit.model, prep, fold, &val_ds, &test_ds)?.write(&dir.dir)?;
            let mut fit = fit;
            if exp.pipeline.clip_vectors() {
                fit.importance = Some(importance::measure(
                    importance::Subject::Network {
                        model: &fit.model,
                        val: &val_ds,
                    },
                    &prep.classes,
                    seed,
                    group_cols,
                )?);
            }
            (fit.without_model(), p)
        }
    };
    let names = match groups {
        Some((names, _)) => Some(names),
        None => exp.pipeline.feature_names(),
    };
    if let (Some(imp), Some(names)) = (&fit.importance, names) {
        if names.len() == imp.len() {
            importance::write(&dir.dir, &names, imp)?;
        }
    }
    dir.write_history(&fit.history)?;
    let predictions_of = |idx: &[usize], probs: &[Vec<f32>], pred: &[usize]| Predictions {
        clip_id: idx.iter().map(|&i| prep.clips[i].clip_id.clone()).collect(),
        path: idx.iter().map(|&i| prep.clips[i].path.clone()).collect(),
        speaker: idx.iter().map(|&i| prep.clips[i].speaker.clone()).collect(),
        sex: idx.iter().map(|&i| prep.clips[i].sex.clone()).collect(),
        truth: idx
            .iter()
            .map(|&i| prep.classes[prep.labels[i]].clone())
            .collect(),
        prediction: pred.iter().map(|&p| prep.classes[p].clone()).collect(),
        classes: prep.classes.clone(),
        probs: probs.to_vec(),
    };
    let test_clips: Vec<&ClipRecord> = fold.test.iter().map(|&i| &prep.clips[i]).collect();
    let preds = predictions_of(&fold.test, &fit.test_probs, &fit.test_pred);
    if fit.val_probs.len() == fold.val.len() {
        let val_pred: Vec<usize> = fit
            .val_probs
            .iter()
            .map(|p| crate::metrics::argmax(p))
            .collect();
        let val = predictions_of(&fold.val, &fit.val_probs, &val_pred);
        dir.write_predictions(&val, Some(&dir.path(crate::results::VAL_PREDICTIONS)))?;
    }
    if let Some(w) = &layer_weights {
        crate::results::write_json(&dir.path(crate::results::LAYER_WEIGHTS), w)?;
    }
    dir.write_predictions(&preds, None)?;
    let truth: Vec<usize> = fold.test.iter().map(|&i| prep.labels[i]).collect();
    let sexes: Vec<Option<String>> = test_clips.iter().map(|c| c.sex.clone()).collect();
    let best = &fit.history[fit.best_epoch - 1];
    dir.write_metrics(&RunMetrics {
        test: fit.test.clone(),
        by_sex: metrics::by_group(&truth, &fit.test_pred, &sexes, &prep.classes),
        best_epoch: fit.best_epoch,
        val_ua: best.val_ua,
        temperature: Some(fit.temperature),
        abstain_entropy: fit.abstain_entropy,
    })?;
    meta.parameters = parameters;
    meta.epochs_run = fit.history.len();
    meta.best_epoch = fit.best_epoch;
    // A classical model has one fit, not epochs.
    meta.train_seconds_per_epoch = exp.model.classical().is_none().then(|| {
        fit.history.iter().map(|h| h.train_seconds).sum::<f64>() / fit.history.len() as f64
    });
    meta.finished_at = Some(now());
    meta.seconds = Some(started.elapsed().as_secs_f64());
    meta.status = RunStatus::Complete;
    dir.write_meta(&meta)?;
    let _ = std::fs::remove_file(dir.path(train::checkpoint::CHECKPOINT));
    if opts.progress {
        eprintln!(
            "{}",
            fold_line(
                &meta.run,
                &fit,
                cfg.epochs,
                meta.classical.as_ref(),
                started.elapsed().as_secs_f64()
            )
        );
    }
    Ok(())
}

/// The line a run prints when it ends: how training stopped, the epoch kept, validation and
/// test UA, time.
fn fold_line<M>(
    run: &str,
    fit: &train::FitResult<M>,
    planned: usize,
    classical: Option<&crate::results::ClassicalInfo>,
    seconds: f64,
) -> String {
    let ran = fit.history.len();
    let how = if let Some(c) = classical {
        format!(
            "fitted in {:.2} s, importance {:.2} s, refitted on training + validation in {:.2} s \
             ({})",
            c.fit_seconds, c.importance_seconds, c.refit_seconds, c.model
        )
    } else if ran < planned {
        format!(
            "stopped early after epoch {ran}/{planned}, kept epoch {}",
            fit.best_epoch
        )
    } else {
        format!("all {planned} epochs, kept epoch {}", fit.best_epoch)
    };
    let val = fit
        .history
        .get(fit.best_epoch.saturating_sub(1))
        .map_or(f64::NAN, |h| h.val_ua);
    format!(
        "{run} done: {how}; val UA {val:.3}, test UA {:.3}; {seconds:.1} s",
        fit.test.ua
    )
}

/// The softmax weights a probe or a fine-tuned encoder learned over the hidden states it reads,
/// with those states' indices; `None` for other models.
fn learned_layer_weights(
    model: &train::Trained,
    exp: &Experiment,
) -> Option<crate::results::LayerWeights> {
    let vars = model.vs.variables();
    let logits = vars
        .iter()
        .find(|(name, _)| name.ends_with("layer_logits"))
        .map(|(_, t)| t)?;
    let weights: Vec<f64> = Vec::<f32>::try_from(
        logits
            .softmax(0, tch::Kind::Float)
            .to_device(tch::Device::Cpu),
    )
    .ok()?
    .into_iter()
    .map(f64::from)
    .collect();
    let cached = exp
        .pipeline
        .encoder
        .as_ref()
        .and_then(|e| e.layer_indices())
        .unwrap_or_default();
    // A probe reads the cached states; a fine-tuned encoder starts from its one cached state
    // and adds the output of each layer it runs.
    let states = if cached.len() == weights.len() {
        cached
    } else {
        let first = cached.first().copied().unwrap_or(0);
        (first..first + weights.len()).collect()
    };
    Some(crate::results::LayerWeights { states, weights })
}

/// The penultimate-layer vectors of the validation and the test clips of `fold`
/// ([`crate::embedding`]).
fn held_out_embeddings(
    model: &train::Trained,
    prep: &Prepared,
    fold: &Fold,
    val_ds: &Dataset,
    test_ds: &Dataset,
) -> Result<crate::embedding::Embeddings> {
    let mut e = crate::embedding::Embeddings::default();
    for (role, idx, ds) in [("val", &fold.val, val_ds), ("test", &fold.test, test_ds)] {
        let vectors = model.embed(ds)?;
        if vectors.len() != idx.len() {
            bail!(
                "{} {role} embeddings for {} {role} clips",
                vectors.len(),
                idx.len()
            );
        }
        e.vectors.extend(vectors);
        for &i in idx.iter() {
            let c = &prep.clips[i];
            e.clip_id.push(c.clip_id.clone());
            e.speaker.push(c.speaker.clone());
            e.label.push(prep.classes[prep.labels[i]].clone());
            e.role.push(role.to_string());
        }
    }
    Ok(e)
}
