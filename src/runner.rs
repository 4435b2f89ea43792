//! The experiment runner: corpus → labels → features (cached) → split → train and evaluate every
//! fold × seed → run folders → summary; plus re-evaluation of a saved run on any corpus and
//! prediction on new audio.
//!
//! Splits depend only on (manifest, protocol, split seed), so every model of every experiment on
//! the same corpus and protocol sees the same folds and comparisons are paired. A run whose
//! folder says `complete` is skipped; a `running` one resumes from its checkpoint; `--force`
//! recomputes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use serde_yaml::Value;

use crate::cache::{row_key, Cache, CacheRow};
use crate::config::ConfigError;
use crate::corpus::{self, ClipRecord, ScanOptions};
use crate::experiment::{Experiment, Target};
use crate::features::{self, FeatureExtractor};
use crate::metrics;
use crate::results::{
    git_revision, Predictions, RunDir, RunMeta, RunMetrics, RunStatus, SplitRows,
};
use crate::speakers::{self as spk, Source, TrainingSpeakers};
use crate::split::{make_folds, Fold, SplitError};
use crate::train::{self, device, Dataset, FitControl, NormMode, SpeakerStats, Trained};

/// A corpus made ready for an experiment: kept clips, their labels and cached features.
pub struct Prepared {
    pub clips: Vec<ClipRecord>,
    pub labels: Vec<usize>,
    pub classes: Vec<String>,
    /// Per clip (same order as `clips`): the original variant first, then augmented ones.
    pub rows: Vec<Vec<CacheRow>>,
    /// Clips left out: no label for the target, label not kept, duplicate content, or
    /// features failed.
    pub skipped: BTreeMap<String, usize>,
    /// Byte-identical clips found in the corpus (one copy of each was kept).
    pub duplicates: corpus::Duplicates,
}

/// A clip's label for `target`, after `merge`.
pub fn label_of(
    c: &ClipRecord,
    target: Target,
    merge: &BTreeMap<String, String>,
) -> Option<String> {
    let raw = match target {
        Target::Emotion => Some(c.emotion.clone()),
        Target::Sentence => c.sentence.clone(),
        Target::Intensity => c.intensity.clone(),
        Target::Sex => c.sex.clone(),
    }?;
    Some(merge.get(&raw).cloned().unwrap_or(raw))
}

/// Clips from a manifest (`.parquet`), or by scanning a folder; scan problems are counted on
/// stderr and left out.
pub fn clips_from(path: &Path, opts: &ScanOptions) -> Result<Vec<ClipRecord>> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return corpus::read_manifest(path);
    }
    let scan = corpus::scan(path, opts)?;
    if !scan.problems.is_empty() {
        eprintln!(
            "scan: {} files skipped (run `emolab corpus scan {}` for the list)",
            scan.problems.len(),
            path.display()
        );
    }
    Ok(scan.clips)
}

/// An experiment's corpus (or another one at `path`, read with the experiment's settings).
pub fn load_corpus(exp: &Experiment, path: &Path, progress: bool) -> Result<Vec<ClipRecord>> {
    clips_from(
        path,
        &ScanOptions {
            format: exp.corpus.format,
            demographics: exp.corpus.demographics.clone(),
            speaker_pattern: exp
                .corpus
                .speaker_pattern
                .as_deref()
                .map(regex::Regex::new)
                .transpose()?,
            progress,
        },
    )
}

/// Scan, label, featurize (cached) and load the features of an experiment's corpus.
pub fn prepare(exp: &Experiment, progress: bool) -> Result<Prepared> {
    prepare_with(exp, progress, true)
}

/// [`prepare`], or with `features: false` only the clips and labels (no feature is computed or
/// read; `rows` is empty): enough to plan the folds, as a Slurm submission does before the
/// features exist.
pub fn prepare_with(exp: &Experiment, progress: bool, features: bool) -> Result<Prepared> {
    let all = load_corpus(exp, &exp.corpus.path, progress)?;
    prepare_from(exp, all, progress, features)
}

/// [`prepare_with`] on clips already scanned from `exp.corpus.path` ([`load_corpus`]).
pub fn prepare_from(
    exp: &Experiment,
    all: Vec<ClipRecord>,
    progress: bool,
    features: bool,
) -> Result<Prepared> {
    if all.is_empty() {
        return Err(exp
            .error(
                "corpus.path",
                format!("{} has no usable clips", exp.corpus.path.display()),
            )
            .into());
    }
    let mut skipped = BTreeMap::new();
    // The same audio twice (possibly under two speakers) would sit on both sides of a
    // speaker-independent split: keep one copy of each content.
    let (all, duplicates) = corpus::dedupe(all);
    if let Some(line) = duplicates.summary() {
        eprintln!(
            "corpus: {line}; one copy of each kept (`emolab corpus scan {}` lists them)",
            exp.corpus.path.display()
        );
        skipped.insert("duplicate content".into(), duplicates.extra_copies());
    }
    let mut labelled = Vec::new();
    for c in all {
        if let Some(want) = &exp.corpus.vocal_channel {
            if c.vocal_channel.as_deref() != Some(want.as_str()) {
                *skipped.entry(format!("not {want}")).or_insert(0) += 1;
                continue;
            }
        }
        match label_of(&c, exp.corpus.target, &exp.corpus.merge) {
            Some(l) => labelled.push((c, l)),
            None => {
                *skipped
                    .entry(format!("no {}", exp.corpus.target.name()))
                    .or_insert(0) += 1
            }
        }
    }
    let present: std::collections::BTreeSet<String> =
        labelled.iter().map(|(_, l)| l.clone()).collect();
    let classes: Vec<String> = match &exp.corpus.labels {
        Some(keep) => {
            for l in keep {
                if !present.contains(l) {
                    let best = present
                        .iter()
                        .min_by_key(|p| crate::config::edit_distance(l, p))
                        .cloned()
                        .unwrap_or_default();
                    return Err(ConfigError {
                        file: exp.file.clone(),
                        key: Some("corpus.labels".into()),
                        message: format!(
                            "no clip has {} `{l}` (present: {})",
                            exp.corpus.target.name(),
                            present.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        hint: (crate::config::edit_distance(l, &best) <= l.len() / 2 + 1)
                            .then(|| format!("did you mean `{best}`?")),
                    }
                    .into());
                }
            }
            keep.clone()
        }
        None => present.into_iter().collect(),
    };
    if classes.len() < 2 {
        return Err(exp
            .error(
                "corpus.labels",
                format!("needs at least 2 classes, has {classes:?}"),
            )
            .into());
    }
    let (mut clips, mut labels) = (Vec::new(), Vec::new());
    for (c, l) in labelled {
        match classes.iter().position(|k| *k == l) {
            Some(i) => {
                clips.push(c);
                labels.push(i);
            }
            None => *skipped.entry(format!("label {l} not kept")).or_insert(0) += 1,
        }
    }
    if !features {
        return Ok(Prepared {
            clips,
            labels,
            classes,
            rows: Vec::new(),
            skipped,
            duplicates,
        });
    }
    let rows = cached_features(&clips, &exp.pipeline, &exp.cache, progress)?;
    let mut out = Prepared {
        clips: Vec::new(),
        labels: Vec::new(),
        classes,
        rows: Vec::new(),
        skipped,
        duplicates,
    };
    for ((c, l), rows) in clips.into_iter().zip(labels).zip(rows) {
        match rows {
            Some(rows) => {
                out.clips.push(c);
                out.labels.push(l);
                out.rows.push(rows);
            }
            None => *out.skipped.entry("features failed".into()).or_insert(0) += 1,
        }
    }
    Ok(out)
}

/// Compute what the cache lacks for `clips` under `pipeline`, then read every variant of each
/// clip (original first), in clip order: `None` for a clip whose features failed.
fn cached_features(
    clips: &[ClipRecord],
    pipeline: &features::Pipeline,
    cache_root: &Path,
    progress: bool,
) -> Result<Vec<Option<Vec<CacheRow>>>> {
    let report = features::featurize(clips, pipeline, cache_root, progress)?;
    if !report.failed.is_empty() {
        eprintln!("{report}");
    }
    let failed: HashSet<&str> = report.failed.iter().map(|p| p.path.as_str()).collect();
    let variants = pipeline.variants();
    let key = |c: &ClipRecord, v: &features::pipeline::Variant| row_key(&c.content_hash, &v.key);
    let wanted: HashSet<String> = clips
        .iter()
        .flat_map(|c| variants.iter().map(move |v| key(c, v)))
        .collect();
    let by_key: HashMap<String, CacheRow> = Cache::open(cache_root, &pipeline.feature_key())?
        .read_all(Some(&wanted))?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    Ok(clips
        .iter()
        .map(|c| {
            if failed.contains(c.path.as_str()) {
                return None;
            }
            // Two identical files share rows: clone (the features buffer is shared).
            variants
                .iter()
                .map(|v| by_key.get(&key(c, v)).cloned())
                .collect()
        })
        .collect())
}

/// Folds of a seed, with protocol errors turned into config errors on the right key.
pub fn folds_for(exp: &Experiment, prep: &Prepared, split_seed: u64) -> Result<Vec<Fold>> {
    make_folds(
        &prep.clips,
        &prep.labels,
        &prep.classes,
        &exp.protocol,
        split_seed,
    )
    .map_err(|e| {
        let key = match &e {
            SplitError::TooFewSpeakers { .. } | SplitError::MissingClass { .. } => "protocol.k",
            SplitError::NoSpeaker(_) => "protocol.kind",
            SplitError::Invalid(_) => "protocol",
        };
        exp.error(key, e.to_string()).into()
    })
}

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
                exp.results.join(&exp.name).display(),
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
        for d in crate::ensemble::write_seed_ensembles(&exp.results.join(&exp.name), &exp.seeds)? {
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

/// Per-speaker statistics of every clip's original variant.
pub fn speaker_stats(prep: &Prepared) -> SpeakerStats {
    let f = prep.rows.first().map_or(0, |r| r[0].n_features as usize);
    SpeakerStats::fit(prep.rows.iter().map(|r| (&r[0].speaker, &r[0].features)), f)
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
        slurm_job: crate::cluster::slurm::current_job(),
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
            let fit = train::classical::fit(
                &spec,
                &prep.classes,
                &train_ds,
                &val_ds,
                &test_ds,
                &cfg,
                group_cols,
            )?;
            fit.model.save(&dir.path(CLASSICAL_MODEL))?;
            // Network parameters: none; the model's own size is in `classical`.
            meta.classical = fit.model.info;
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
                fit.importance = Some(crate::importance::of_network(
                    &fit.model,
                    &val_ds,
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
            crate::importance::write(&dir.dir, &names, imp)?;
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
    classical: Option<&crate::train::classical::ClassicalInfo>,
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

/// The model file of a classical run (its training vectors; see `train::classical`).
pub const CLASSICAL_MODEL: &str = "model.json";

/// One row per complete run of `exp` (optionally one trial): the summary table.
pub fn summary(exp_dir: &Path) -> Result<DataFrame> {
    let mut rows: Vec<(RunMeta, RunMetrics)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(exp_dir) {
        for e in entries.flatten() {
            let d = RunDir::new(e.path());
            if d.is_complete() {
                if let (Ok(m), Ok(x)) = (d.meta(), d.metrics()) {
                    rows.push((m, x));
                }
            }
        }
    }
    rows.sort_by(|a, b| a.0.run.cmp(&b.0.run));
    let s = |f: &dyn Fn(&(RunMeta, RunMetrics)) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let x = |f: &dyn Fn(&(RunMeta, RunMetrics)) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    let df = DataFrame::new(vec![
        Column::new("experiment".into(), s(&|r| r.0.experiment.clone())),
        Column::new("run".into(), s(&|r| r.0.run.clone())),
        Column::new("model".into(), s(&|r| r.0.model.clone())),
        Column::new("family".into(), s(&|r| r.0.family.clone())),
        Column::new(
            "trial".into(),
            rows.iter().map(|r| r.0.trial.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "params".into(),
            s(&|r| serde_json::to_string(&r.0.params).unwrap_or_default()),
        ),
        Column::new("protocol".into(), s(&|r| r.0.protocol.clone())),
        Column::new(
            "speaker_leaky".into(),
            rows.iter().map(|r| r.0.speaker_leaky).collect::<Vec<_>>(),
        ),
        Column::new("target".into(), s(&|r| r.0.target.clone())),
        Column::new(
            "fold".into(),
            rows.iter().map(|r| r.0.fold as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.0.seed).collect::<Vec<_>>(),
        ),
        Column::new("ua".into(), x(&|r| r.1.test.ua)),
        Column::new("wa".into(), x(&|r| r.1.test.wa)),
        Column::new("macro_f1".into(), x(&|r| r.1.test.macro_f1)),
        Column::new("val_ua".into(), x(&|r| r.1.val_ua)),
        Column::new(
            "best_epoch".into(),
            rows.iter()
                .map(|r| r.1.best_epoch as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "parameters".into(),
            rows.iter().map(|r| r.0.parameters).collect::<Vec<_>>(),
        ),
        Column::new(
            "train_seconds_per_epoch".into(),
            x(&|r| r.0.train_seconds_per_epoch.unwrap_or(f64::NAN)),
        ),
        Column::new("device".into(), s(&|r| r.0.device.clone())),
    ])?;
    Ok(df)
}

/// Mean ± std of UA, WA and macro-F1 per model (and trial) of a summary.
pub fn aggregate(summary: &DataFrame) -> Result<DataFrame> {
    let agg = summary
        .clone()
        .lazy()
        .group_by_stable([col("experiment"), col("model"), col("trial")])
        .agg([
            len().alias("runs"),
            col("ua").mean().alias("ua_mean"),
            col("ua").std(1).alias("ua_std"),
            col("wa").mean().alias("wa_mean"),
            col("wa").std(1).alias("wa_std"),
            col("macro_f1").mean().alias("f1_mean"),
            col("macro_f1").std(1).alias("f1_std"),
            col("val_ua").mean().alias("val_ua_mean"),
            col("speaker_leaky").any(true).alias("speaker_leaky"),
        ])
        .collect()?;
    Ok(agg)
}

/// The aggregate as printable `mean ± std` strings.
pub fn pretty(agg: &DataFrame) -> Result<DataFrame> {
    let f = |name: &str| -> Result<Vec<Option<f64>>> {
        Ok(agg.column(name)?.f64()?.into_iter().collect())
    };
    let pm = |m: &str, s: &str| -> Result<Vec<String>> {
        Ok(f(m)?
            .into_iter()
            .zip(f(s)?)
            .map(|(m, s)| match m {
                Some(m) => match s {
                    Some(s) => format!("{m:.3} ± {s:.3}"),
                    None => format!("{m:.3}"), // one run: no spread to show
                },
                None => "-".into(),
            })
            .collect())
    };
    Ok(DataFrame::new(vec![
        agg.column("model")?.clone(),
        agg.column("trial")?.clone(),
        agg.column("runs")?.clone(),
        Column::new("UA".into(), pm("ua_mean", "ua_std")?),
        Column::new("WA".into(), pm("wa_mean", "wa_std")?),
        Column::new("macro-F1".into(), pm("f1_mean", "f1_std")?),
        agg.column("speaker_leaky")?
            .clone()
            .with_name("leaky".into()),
    ])?)
}

/// A data frame as a plain, aligned text table (header, rule, one line per row; text left,
/// numbers right; nulls as `-`): what `run` prints, readable in a log file.
pub fn plain_table(df: &DataFrame) -> String {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let cell = |v: AnyValue| match v {
        AnyValue::Null => "-".to_string(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        v => v.to_string(),
    };
    let cols = df.get_columns();
    let rows: Vec<Vec<String>> = (0..df.height())
        .map(|i| {
            cols.iter()
                .map(|c| c.get(i).map(cell).unwrap_or_else(|_| "-".into()))
                .collect()
        })
        .collect();
    let numeric: Vec<bool> = cols
        .iter()
        .map(|c| c.dtype().is_primitive_numeric())
        .collect();
    let width: Vec<usize> = (0..names.len())
        .map(|j| {
            rows.iter()
                .map(|r| r[j].chars().count())
                .chain([names[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let pad = width[j].saturating_sub(c.chars().count());
                if numeric[j] {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(&names)];
    out.push(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}

/// Write `results/<exp>/summary.parquet` and return the aggregate.
pub fn write_summary(exp: &Experiment) -> Result<DataFrame> {
    let dir = exp.results.join(&exp.name);
    let mut df = summary(&dir)?;
    crate::util::atomic_write(&dir.join("summary.parquet"), |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })?;
    aggregate(&df)
}

/// A run folder's experiment, model and classes, loaded for evaluation or prediction.
pub struct LoadedRun {
    pub exp: Experiment,
    pub meta: RunMeta,
    pub model: LoadedModel,
}

/// A saved run's model: a network, or a classical model refitted from its `model.json`.
pub enum LoadedModel {
    Net(Trained),
    Classical(train::classical::ClassicalTrained),
}

impl LoadedModel {
    /// Probabilities and predicted classes: the most probable class, or for an SVM its
    /// pairwise vote (what its run's own test predictions used).
    pub fn predict(&self, ds: &Dataset) -> Result<(Vec<Vec<f32>>, Vec<usize>), train::TrainError> {
        match self {
            LoadedModel::Net(m) => {
                let p = m.predict_proba(ds)?;
                let pred = p.iter().map(|r| metrics::argmax(r)).collect();
                Ok((p, pred))
            }
            LoadedModel::Classical(m) => m.predict(ds),
        }
    }

    /// How clips are standardised before the model.
    pub fn normalize(&self) -> NormMode {
        match self {
            LoadedModel::Net(m) => m.normalize,
            LoadedModel::Classical(m) => m.normalize,
        }
    }

    /// The frame count every input must have (a network without windows).
    pub fn fixed_frames(&self) -> Option<usize> {
        match self {
            LoadedModel::Net(m) if m.window.is_none() => Some(m.frames),
            _ => None,
        }
    }
}

/// Where `run` names an experiment (a folder of runs, here or in the results folder) rather
/// than one run: which runs to name instead.
fn runs_hint(run: &Path) -> String {
    let candidates = [run.to_path_buf(), crate::doctor::results_dir().join(run)];
    for exp in candidates.iter().filter(|p| p.is_dir()) {
        let runs: Vec<_> = crate::results::run_folders(exp)
            .into_iter()
            .filter(|r| r != exp)
            .collect();
        if let Some(first) = runs.first() {
            return format!(
                " but an experiment's folder of {} runs: name one of them, e.g. {}",
                runs.len(),
                first.display()
            );
        }
    }
    String::new()
}

/// Load a complete run's model.
pub fn load_run(run: &Path, device: tch::Device) -> Result<LoadedRun> {
    let dir = RunDir::new(run);
    let meta = dir
        .meta()
        .with_context(|| format!("{} is not a run folder{}", run.display(), runs_hint(run)))?;
    if meta.status != RunStatus::Complete {
        bail!(
            "run {} is {:?}, not complete: finish it first (`emolab run` resumes it)",
            run.display(),
            meta.status
        );
    }
    let config = dir.path("config.yaml");
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let tree: Value = crate::config::parse_yaml(&config, &text)?;
    let exp = Experiment::from_tree_unchecked(&config, tree)?;
    if exp.model.classical().is_some() {
        let model = train::classical::ClassicalTrained::load(&dir.path(CLASSICAL_MODEL))?;
        return Ok(LoadedRun {
            exp,
            meta,
            model: LoadedModel::Classical(model),
        });
    }
    let frames = dir_frames(&exp)?;
    let model = Trained::load(
        &dir.path("model.safetensors"),
        &exp.model,
        &meta.classes,
        exp.pipeline.n_features(),
        exp.pipeline.channels(),
        frames,
        &exp.train,
        device,
    )?;
    Ok(LoadedRun {
        exp,
        meta,
        model: LoadedModel::Net(model),
    })
}

/// The time axis of a saved model: its window, or the pipeline's fixed frame count.
fn dir_frames(exp: &Experiment) -> Result<usize> {
    if exp.pipeline.clip_vectors() {
        return Ok(1);
    }
    if let Some(w) = &exp.train.window {
        return Ok(w.frames);
    }
    exp.pipeline.frames.size.ok_or_else(|| {
        anyhow::anyhow!(
            "pipeline {} has no fixed frame count and train.window is not set; a saved model needs one of them",
            exp.pipeline.name
        )
    })
}

/// Re-score a saved run on its own test clips, or on any corpus (`on`): a folder or manifest.
/// Clips whose label the model does not know are left out and counted. Writes
/// `<run>/eval/<name>/{metrics.json,predictions.parquet}`.
pub fn evaluate(
    run: &Path,
    on: Option<&Path>,
    min_clips: usize,
    progress: bool,
) -> Result<(RunMetrics, PathBuf, usize)> {
    let lr = load_run(run, tch::Device::cuda_if_available())?;
    let exp = &lr.exp;
    let (clips, name): (Vec<ClipRecord>, String) = match on {
        // Another corpus follows its own naming convention, not the run's.
        Some(p) => (
            clips_from(
                p,
                &ScanOptions {
                    format: crate::corpus::Format::Auto,
                    progress,
                    ..Default::default()
                },
            )?,
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "corpus".into()),
        ),
        None => {
            let all = load_corpus(exp, &exp.corpus.path, progress)?;
            let test = split_ids(run, "test")?;
            (
                all.into_iter()
                    .filter(|c| test.contains(&c.clip_id))
                    .collect(),
                "test".into(),
            )
        }
    };
    evaluate_clips(
        run,
        &lr,
        &clips,
        &name,
        &exp.corpus.merge,
        min_clips,
        progress,
    )
}

/// The clip ids of one role (`train`, `val`, `test`) in a run's `split.parquet`.
pub fn split_ids(run: &Path, role: &str) -> Result<HashSet<String>> {
    let path = run.join("split.parquet");
    let split = ParquetReader::new(
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
    )
    .finish()?;
    Ok(split
        .lazy()
        .filter(col("role").eq(lit(role)))
        .collect()?
        .column("clip_id")?
        .str()?
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect())
}

/// A run's clips of one role (`val`, `test`) with their labels, original variants from the
/// cache (computed where missing), without per-clip statistics.
pub fn role_dataset(run: &Path, lr: &LoadedRun, role: &str, progress: bool) -> Result<Dataset> {
    let exp = &lr.exp;
    let ids = split_ids(run, role)?;
    let clips: Vec<ClipRecord> = load_corpus(exp, &exp.corpus.path, progress)?
        .into_iter()
        .filter(|c| ids.contains(&c.clip_id))
        .collect();
    let mut pipeline = exp.pipeline.clone();
    pipeline.augment.clear();
    let cached = cached_features(&clips, &pipeline, &exp.cache, progress)?;
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (c, r) in clips.iter().zip(&cached) {
        let label = label_of(c, exp.corpus.target, &exp.corpus.merge)
            .and_then(|l| lr.meta.classes.iter().position(|k| *k == l));
        if let (Some(r), Some(l)) = (r, label) {
            rows.push(&r[0]);
            labels.push(l);
        }
    }
    Ok(Dataset::from_rows(&rows, &labels)?.with_channels(exp.pipeline.channels())?)
}

/// The statistics a `normalize: speaker` run standardises clips of too-few-clip speakers
/// with: `<run>/speaker_norm.json`, or for a run from before it was stored, computed from its
/// training clips in the cache (and then stored).
pub fn training_speakers(run: &Path, exp: &Experiment, progress: bool) -> Result<TrainingSpeakers> {
    if let Some(t) = TrainingSpeakers::load(run)? {
        return Ok(t);
    }
    let train = split_ids(run, "train")?;
    let clips: Vec<ClipRecord> = load_corpus(exp, &exp.corpus.path, progress)
        .with_context(|| {
            format!(
                "run {} has no {} (it predates it) and its corpus cannot be read to compute it; \
                 train the run again",
                run.display(),
                spk::FILE
            )
        })?
        .into_iter()
        .filter(|c| train.contains(&c.clip_id))
        .collect();
    let mut pipeline = exp.pipeline.clone();
    pipeline.augment.clear();
    let rows: Vec<CacheRow> = cached_features(&clips, &pipeline, &exp.cache, progress)?
        .into_iter()
        .flatten()
        .filter_map(|r| r.into_iter().next())
        .collect();
    let f = rows.first().map_or(0, |r| r.n_features as usize);
    let t = TrainingSpeakers::pooled(
        rows.iter().map(|r| (r.speaker.as_deref(), &r.features[..])),
        f,
    )
    .ok_or_else(|| anyhow::anyhow!("run {}: no training clip in the cache", run.display()))?;
    t.save(run)?;
    eprintln!(
        "{}: computed the training speakers' statistics ({} speakers) from the cache; stored in {}",
        run.display(),
        t.speakers,
        spk::FILE
    );
    Ok(t)
}

/// Per-clip statistics for `ds` under `lr`'s normalisation, and what each clip used. Only
/// `normalize: speaker` groups clips (by `ds.speaker`): see [`crate::speakers`].
pub fn attach_inference_norm(
    run: &Path,
    lr: &LoadedRun,
    ds: &mut Dataset,
    enroll: &[(String, Vec<f32>)],
    min_clips: usize,
    progress: bool,
) -> Result<Vec<Source>> {
    let mode = lr.model.normalize();
    if mode != NormMode::Speaker {
        let name = match mode {
            NormMode::PerMel => "training clips (per feature)",
            NormMode::Global => "training clips (global)",
            NormMode::Utterance => "the clip's own frames",
            _ => "none",
        };
        return Ok(vec![Source::Mode(name); ds.len()]);
    }
    let fallback = training_speakers(run, &lr.exp, progress)?.normalizer();
    let feats: Vec<&[f32]> = ds.features.iter().map(|x| &x[..]).collect();
    let enroll: Vec<(String, &[f32])> = enroll.iter().map(|(s, x)| (s.clone(), &x[..])).collect();
    let assigned = spk::assign(
        &ds.speaker,
        &feats,
        &enroll,
        ds.n_features,
        min_clips,
        &fallback,
    );
    let (norms, sources) = assigned.into_iter().unzip();
    ds.clip_norm = Some(norms);
    Ok(sources)
}

/// Score a loaded run on `clips` (labels renamed by `merge`; clips whose label the model does
/// not know are left out and counted), writing `<run>/eval/<name>/`. A `normalize: speaker`
/// run standardises a speaker with fewer than `min_clips` clips on its training speakers'
/// statistics, and says so.
pub fn evaluate_clips(
    run: &Path,
    lr: &LoadedRun,
    clips: &[ClipRecord],
    name: &str,
    merge: &BTreeMap<String, String>,
    min_clips: usize,
    progress: bool,
) -> Result<(RunMetrics, PathBuf, usize)> {
    let exp = &lr.exp;
    let classes = &lr.meta.classes;
    let mut kept = Vec::new();
    let mut labels = Vec::new();
    let mut left_out = 0;
    for c in clips {
        match label_of(c, exp.corpus.target, merge)
            .and_then(|l| classes.iter().position(|k| *k == l))
        {
            Some(i) => {
                kept.push(c.clone());
                labels.push(i);
            }
            None => left_out += 1,
        }
    }
    if kept.is_empty() {
        bail!(
            "no clip has one of the model's labels ({}); {left_out} clips left out",
            classes.join(", ")
        );
    }
    // Only the original variant is needed.
    let mut pipeline = exp.pipeline.clone();
    pipeline.augment.clear();
    let cached = cached_features(&kept, &pipeline, &exp.cache, progress)?;
    let (mut rows, mut lab, mut used) = (Vec::new(), Vec::new(), Vec::new());
    for ((c, l), r) in kept.iter().zip(&labels).zip(&cached) {
        match r {
            Some(r) => {
                rows.push(&r[0]);
                lab.push(*l);
                used.push(c);
            }
            None => left_out += 1,
        }
    }
    let mut ds = Dataset::from_rows(&rows, &lab)?.with_channels(exp.pipeline.channels())?;
    let sources = attach_inference_norm(run, lr, &mut ds, &[], min_clips, progress)?;
    let fell_back = sources.iter().filter(|s| s.falls_back()).count();
    if fell_back > 0 {
        eprintln!(
            "warning: {fell_back} of {} clips belong to speakers with fewer than {min_clips} clips \
             (or none named) and were standardised on the training speakers' statistics",
            sources.len()
        );
    }
    let (probs, pred) = lr.model.predict(&ds)?;
    let sexes: Vec<Option<String>> = used.iter().map(|c| c.sex.clone()).collect();
    let m = RunMetrics {
        test: metrics::compute(&lab, &pred, classes),
        by_sex: metrics::by_group(&lab, &pred, &sexes, classes),
        best_epoch: lr.meta.best_epoch,
        val_ua: f64::NAN,
        temperature: None,
        abstain_entropy: None,
    };
    let out = run.join("eval").join(name);
    crate::results::write_json(&out.join("metrics.json"), &m)?;
    let preds = Predictions {
        clip_id: used.iter().map(|c| c.clip_id.clone()).collect(),
        path: used.iter().map(|c| c.path.clone()).collect(),
        speaker: used.iter().map(|c| c.speaker.clone()).collect(),
        sex: sexes,
        truth: lab.iter().map(|&i| classes[i].clone()).collect(),
        prediction: pred.iter().map(|&i| classes[i].clone()).collect(),
        classes: classes.clone(),
        probs,
    };
    RunDir::new(run).write_predictions(&preds, Some(&out.join("predictions.parquet")))?;
    Ok((m, out, left_out))
}

/// The prediction for one audio file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FilePrediction {
    pub file: String,
    pub prediction: Option<String>,
    pub probabilities: BTreeMap<String, f32>,
    /// Entropy (nats) of the probabilities.
    pub entropy: Option<f64>,
    /// Above the run's abstain threshold (chosen on its validation speakers): unsure.
    pub abstain: Option<bool>,
    /// The statistics the file was standardised with: `speaker 03 (23 clips)`, `training
    /// speakers`, or the run's mode (`training clips (per feature)`, ...).
    pub normalisation: Option<String>,
    pub error: Option<String>,
}

/// What to predict and how to group it by speaker (see [`crate::speakers`]).
#[derive(Debug, Clone)]
pub struct PredictInputs {
    /// WAV files, or CSV lists `path,speaker`.
    pub files: Vec<PathBuf>,
    /// The speaker of every file (else: the list's, or the run's corpus naming convention).
    pub speaker: Option<String>,
    /// Folders or files of the same speaker's other clips, for statistics only (the files are
    /// then all that speaker's: `speaker`, or `enrolled`).
    pub enroll: Vec<PathBuf>,
    /// Clips of a speaker needed for their own statistics.
    pub min_clips: usize,
}

impl PredictInputs {
    pub fn files(files: Vec<PathBuf>) -> PredictInputs {
        PredictInputs {
            files,
            speaker: None,
            enroll: Vec::new(),
            min_clips: spk::DEFAULT_MIN_CLIPS,
        }
    }
}

/// The temperature a run fitted on its validation speakers (1 for runs from before it was).
pub fn run_temperature(run: &Path) -> f64 {
    temperature_of(RunDir::new(run).metrics().ok().as_ref())
}

/// The temperature in a run's metrics (1 without metrics or for runs from before it was fitted).
fn temperature_of(m: Option<&RunMetrics>) -> f64 {
    m.and_then(|m| m.temperature)
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(1.0)
}

/// Predict the label of each audio file (any rate, channels, bit depth). A file that cannot be
/// read gets its error; the others are predicted. A file's answer depends only on its own
/// speaker's clips in the call (and `enroll`), never on other files.
pub fn predict_files(run: &Path, inputs: &PredictInputs) -> Result<Vec<FilePrediction>> {
    let lr = load_run(run, tch::Device::cuda_if_available())?;
    let p = &lr.exp.pipeline;
    let fx = FeatureExtractor::new(p).map_err(|e| anyhow::anyhow!("pipeline {}: {e}", p.name))?;
    let fixed = lr.model.fixed_frames();
    let featurize = |f: &Path| -> Result<Vec<f32>, String> {
        let y = features::stage::load_clip(f, p.sample_rate)?;
        if y.is_empty() {
            return Err("no audio samples".into());
        }
        let (frames, feats) = fx.compute(&y).map_err(|e| e.to_string())?;
        if let Some(want) = fixed {
            if frames != want {
                return Err(format!(
                    "{frames} frames, the model takes {want} (pipeline frames policy)"
                ));
            }
        }
        Ok(feats)
    };
    let speaker = inputs
        .speaker
        .clone()
        .or_else(|| (!inputs.enroll.is_empty()).then(|| "enrolled".into()));
    let files = spk::speakers_of(&inputs.files, speaker.as_deref(), lr.exp.corpus.format)?;
    let features: Vec<Result<Vec<f32>, String>> = files.iter().map(|(f, _)| featurize(f)).collect();
    let mut enroll = Vec::new();
    if lr.model.normalize() == NormMode::Speaker {
        for f in inputs
            .enroll
            .iter()
            .map(|e| spk::wav_files(e))
            .collect::<Result<Vec<_>>>()?
            .concat()
        {
            match featurize(&f) {
                Ok(x) => enroll.push((speaker.clone().unwrap_or_default(), x)),
                Err(e) => eprintln!("warning: enrolment clip {} left out: {e}", f.display()),
            }
        }
    } else if !inputs.enroll.is_empty() {
        eprintln!(
            "note: the run standardises with `normalize: {}`; enrolment clips are not used",
            serde_json::to_value(lr.model.normalize())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        );
    }
    // The readable files are scored together (with windows, each file whole, window by
    // window); each one's statistics come from its own speaker's clips only.
    let good: Vec<usize> = (0..features.len())
        .filter(|&i| features[i].is_ok())
        .collect();
    let metrics = RunDir::new(run).metrics().ok();
    let mut probs: Vec<Option<(Vec<f32>, usize, Source)>> = vec![None; features.len()];
    if !good.is_empty() {
        let clips: Vec<Vec<f32>> = good
            .iter()
            .map(|&i| features[i].clone().expect("readable"))
            .collect();
        let mut ds = Dataset::unlabelled(clips, fx.n_features(), p.channels(), None);
        ds.speaker = good.iter().map(|&i| files[i].1.clone()).collect();
        let sources = attach_inference_norm(run, &lr, &mut ds, &enroll, inputs.min_clips, false)?;
        let (p, pred) = lr.model.predict(&ds)?;
        // Calibrated on the run's validation speakers (temperature scaling; the prediction is
        // the same, the probabilities are the calibrated ones).
        let t = temperature_of(metrics.as_ref());
        for (((&i, pr), c), src) in good.iter().zip(p).zip(pred).zip(sources) {
            probs[i] = Some((crate::calibration::scale(&pr, t), c, src));
        }
    }
    let threshold = metrics.and_then(|m| m.abstain_entropy);
    Ok(files
        .iter()
        .zip(features)
        .zip(probs)
        .map(|(((f, _), feats), pr)| match (feats, pr) {
            (Ok(_), Some((probs, best, src))) => {
                let h = crate::calibration::entropy(&probs);
                FilePrediction {
                    file: f.display().to_string(),
                    prediction: Some(lr.meta.classes[best].clone()),
                    probabilities: lr.meta.classes.iter().cloned().zip(probs).collect(),
                    entropy: Some(h),
                    abstain: threshold.map(|t| h > t),
                    normalisation: Some(src.to_string()),
                    error: None,
                }
            }
            (feats, _) => FilePrediction {
                file: f.display().to_string(),
                prediction: None,
                probabilities: BTreeMap::new(),
                entropy: None,
                abstain: None,
                normalisation: None,
                error: Some(feats.err().unwrap_or_else(|| "not scored".into())),
            },
        })
        .collect())
}

#[cfg(test)]
mod plain_table_tests {
    use super::*;

    #[test]
    fn aligned_without_dtypes_or_borders() {
        let df = df!(
            "model" => ["cnn", "svm_linear"],
            "runs" => [10u32, 2],
            "UA" => ["0.703 ± 0.063", "0.745"],
        )
        .unwrap();
        let t = plain_table(&df);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "model       runs  UA");
        assert_eq!(lines[1], "----------  ----  -------------");
        assert_eq!(lines[2], "cnn           10  0.703 ± 0.063");
        assert_eq!(lines[3], "svm_linear     2  0.745");
        assert!(!t.contains("str") && !t.contains('┆'));
    }
}
