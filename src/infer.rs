//! Inference with a saved run: its model loaded back (a network, or a classical model refitted
//! from its `model.json`), re-scored on its own test clips or another corpus (`emolab
//! evaluate`), and applied to new audio files (`emolab predict`, the timeline), each file
//! standardised as the run was trained.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::cache::CacheRow;
use crate::corpus::{ClipRecord, ScanOptions};
use crate::experiment::Experiment;
use crate::features::{self, FeatureExtractor};
use crate::metrics;
use crate::prepare::{cached_features, clips_from, label_of, load_corpus};
use crate::results::{Predictions, RunStatus};
use crate::results::{RunDir, RunMeta, RunMetrics, CLASSICAL_MODEL};
use crate::speakers::{self as spk, Source, TrainingSpeakers};
use crate::train::{self, Dataset, NormMode, Trained};

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
    let candidates = [run.to_path_buf(), crate::config::results_dir().join(run)];
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
            let test = RunDir::new(run).split_ids("test")?;
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

/// A run's clips of one role (`val`, `test`) with their labels, original variants from the
/// cache (computed where missing), without per-clip statistics.
pub fn role_dataset(run: &Path, lr: &LoadedRun, role: &str, progress: bool) -> Result<Dataset> {
    let exp = &lr.exp;
    let ids = RunDir::new(run).split_ids(role)?;
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
    let train = RunDir::new(run).split_ids("train")?;
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
