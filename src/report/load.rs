//! Finding the runs of a results folder: every `<root>/<experiment>/<run>/` is read, complete
//! runs are kept, and anything else (no `meta.json`, still running, failed, unreadable
//! `metrics.json`, a missing file) becomes an [`Issue`] that the report lists. Only a missing
//! results folder, or a named experiment that has no folder, is an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::results::{RunDir, RunMeta, RunMetrics, RunStatus};

use super::{ReportError, Result};

/// A complete run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Experiment folder name.
    pub experiment: String,
    /// Run folder name.
    pub run: String,
    pub dir: PathBuf,
    pub meta: RunMeta,
    pub metrics: RunMetrics,
    /// `corpus.format` of the run's `config.yaml`, when readable.
    pub corpus_format: Option<String>,
    /// `history.parquet`, when present.
    pub history: Option<PathBuf>,
    /// `importance.parquet` (clip-vector models), when present.
    pub importance: Option<PathBuf>,
    /// `predictions.parquet`, when present.
    pub predictions: Option<PathBuf>,
    /// `embeddings.parquet` (network runs), when present.
    pub embeddings: Option<PathBuf>,
}

impl Run {
    /// One line per system compared in the report: experiment, model and sweep trial.
    pub fn entry(&self) -> String {
        entry_name(
            &self.experiment,
            &self.meta.model,
            self.meta.trial.as_deref(),
        )
    }
}

/// The report's name of an experiment × model (× trial).
pub fn entry_name(experiment: &str, model: &str, trial: Option<&str>) -> String {
    match trial {
        Some(t) => format!("{experiment} · {model} · {t}"),
        None => format!("{experiment} · {model}"),
    }
}

/// A run that is not (entirely) in the report, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub experiment: String,
    pub run: String,
    /// `complete`, `running`, `failed`, or `unknown` (no readable `meta.json`).
    pub status: String,
    pub problem: String,
    /// Whether the run still counts in the report's tables.
    pub included: bool,
}

/// Everything read from the results folder.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub root: PathBuf,
    /// Experiment folders looked at, sorted.
    pub experiments: Vec<String>,
    /// Complete runs, sorted by experiment and run.
    pub runs: Vec<Run>,
    pub issues: Vec<Issue>,
}

/// Files a complete run folder holds besides `meta.json` and `metrics.json`.
const RUN_FILES: [&str; 5] = [
    "config.yaml",
    "split.parquet",
    "history.parquet",
    "predictions.parquet",
    "model.safetensors",
];

/// Read `root`, restricted to `selection` (experiment folder names; empty: all). `skip` (the
/// report's own output folder, when it lies inside `root`) is never read as an experiment.
pub fn load(root: &Path, selection: &[String], skip: Option<&Path>) -> Result<Loaded> {
    if !root.is_dir() {
        return Err(ReportError::NoResults(root.to_path_buf()));
    }
    let skip = skip.and_then(|p| p.canonicalize().ok());
    let entries = std::fs::read_dir(root).map_err(|e| super::file_error(root, e))?;
    let mut all = BTreeSet::new();
    for e in entries.flatten() {
        let path = e.path();
        if !path.is_dir() || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if skip.is_some() && path.canonicalize().ok() == skip {
            continue;
        }
        // Another report folder (`--out` elsewhere under the results).
        if path.join("report.html").exists() || path.join("report.md").exists() {
            continue;
        }
        all.insert(e.file_name().to_string_lossy().into_owned());
    }
    let experiments: Vec<String> = if selection.is_empty() {
        all.iter().cloned().collect()
    } else {
        for name in selection {
            if !all.contains(name) {
                return Err(ReportError::UnknownExperiment {
                    name: name.clone(),
                    root: root.to_path_buf(),
                    available: if all.is_empty() {
                        "none".into()
                    } else {
                        all.iter().cloned().collect::<Vec<_>>().join(", ")
                    },
                });
            }
        }
        let chosen: BTreeSet<&String> = selection.iter().collect();
        chosen.into_iter().cloned().collect()
    };

    let mut loaded = Loaded {
        root: root.to_path_buf(),
        experiments: experiments.clone(),
        ..Default::default()
    };
    for exp in &experiments {
        let dir = root.join(exp);
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| super::file_error(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.join("report.html").exists())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        runs.sort();
        if runs.is_empty() {
            loaded.issues.push(Issue {
                experiment: exp.clone(),
                run: String::new(),
                status: "unknown".into(),
                problem: "no run folders".into(),
                included: false,
            });
        }
        for run_dir in runs {
            load_run(exp, &run_dir, &mut loaded);
        }
    }
    Ok(loaded)
}

fn load_run(experiment: &str, path: &Path, loaded: &mut Loaded) {
    let run = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut issue = |status: &str, problem: String, included: bool| {
        loaded.issues.push(Issue {
            experiment: experiment.to_string(),
            run: run.clone(),
            status: status.to_string(),
            problem,
            included,
        })
    };
    let dir = RunDir::new(path);
    if !dir.path("meta.json").exists() {
        issue(
            "unknown",
            "no meta.json: never started, or not a run folder".into(),
            false,
        );
        return;
    }
    let meta = match dir.meta() {
        Ok(m) => m,
        Err(e) => {
            issue("unknown", format!("{e:#}"), false);
            return;
        }
    };
    match meta.status {
        RunStatus::Complete => {}
        RunStatus::Running => {
            issue(
                "running",
                "not finished: still running, or interrupted (`emolab run` resumes it)".into(),
                false,
            );
            return;
        }
        RunStatus::Failed => {
            issue(
                "failed",
                meta.error.clone().unwrap_or_else(|| "failed".into()),
                false,
            );
            return;
        }
    }
    let metrics = match dir.metrics() {
        Ok(m) => m,
        Err(e) => {
            issue("complete", format!("{e:#}"), false);
            return;
        }
    };
    // An ensemble has no weights or history of its own (its members do).
    let own_files = |f: &&str| {
        meta.ensemble.is_empty() || !matches!(*f, "history.parquet" | "model.safetensors")
    };
    let missing: Vec<&str> = RUN_FILES
        .iter()
        .copied()
        .filter(own_files)
        // A classical model is saved as model.json (its training vectors) instead.
        .filter(|f| !(*f == "model.safetensors" && dir.path("model.json").exists()))
        .filter(|f| !dir.path(f).exists())
        .collect();
    // Present but not Parquet (a copy cut short, a file written by something else).
    let broken: Vec<&str> = ["history.parquet", "predictions.parquet"]
        .into_iter()
        .filter(|f| dir.path(f).exists() && !looks_like_parquet(&dir.path(f)))
        .collect();
    let unusable = |f: &str| missing.contains(&f) || broken.contains(&f);
    if !missing.is_empty() || !broken.is_empty() {
        let mut what = Vec::new();
        if !missing.is_empty() {
            what.push(format!("missing {}", missing.join(", ")));
        }
        if !broken.is_empty() {
            what.push(format!("not a Parquet file: {}", broken.join(", ")));
        }
        if unusable("history.parquet") {
            what.push("no learning curve".into());
        }
        if unusable("predictions.parquet") {
            what.push("left out of the paired comparisons".into());
        }
        issue("complete", what.join("; "), true);
    }
    let corpus_format = std::fs::read_to_string(dir.path("config.yaml"))
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .and_then(|v| {
            v.get("corpus")
                .and_then(|c| c.get("format"))
                .and_then(|f| f.as_str())
                .map(str::to_string)
        });
    let present = |name: &str| Some(dir.path(name)).filter(|_| !unusable(name));
    loaded.runs.push(Run {
        experiment: experiment.to_string(),
        run,
        history: present("history.parquet"),
        importance: Some(dir.path(crate::importance::FILE))
            .filter(|p| p.exists() && looks_like_parquet(p)),
        predictions: present("predictions.parquet"),
        embeddings: Some(dir.path(crate::embedding::FILE))
            .filter(|p| p.exists() && looks_like_parquet(p)),
        dir: path.to_path_buf(),
        meta,
        metrics,
        corpus_format,
    });
}

/// Whether `path` starts and ends with Parquet's magic bytes.
fn looks_like_parquet(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let check = || -> std::io::Result<bool> {
        let mut f = std::fs::File::open(path)?;
        let (mut head, mut tail) = ([0u8; 4], [0u8; 4]);
        f.read_exact(&mut head)?;
        f.seek(SeekFrom::End(-4))?;
        f.read_exact(&mut tail)?;
        Ok(&head == b"PAR1" && &tail == b"PAR1")
    };
    check().unwrap_or(false)
}

/// Whether a run is on CREMA-D (or its synthetic stand-in): the corpus format, or the corpus
/// path naming it.
pub fn is_crema_d(run: &Run) -> bool {
    run.corpus_format.as_deref() == Some("cremad")
        || run.meta.corpus.to_lowercase().contains("crema")
}

/// Whether the corpus is the synthetic stand-in (`emolab synth`), not real recordings.
pub fn is_synthetic(run: &Run) -> bool {
    run.meta.corpus.to_lowercase().contains("synth")
}
