//! The numbered runs of an experiment or a sweep (`results/<name>/plan.json`): Slurm array task
//! `i` runs entry `i`, and `emolab status` lists every entry, started or not.
//!
//! Entries are numbered trial by trial (a plain experiment is one trial), then seed by seed,
//! then fold by fold: the order in which `emolab run` and `emolab sweep` run them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::experiment::Experiment;
use crate::prepare::Prepared;
use crate::runner;
use crate::sweep::{self, Trial};

pub const PLAN: &str = "plan.json";

/// One run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub index: usize,
    /// The run folder's name under `results/<name>/`.
    pub run: String,
    /// The sweep trial: its number in the sweep and its id.
    pub trial: Option<usize>,
    pub trial_id: Option<String>,
    pub fold: usize,
    pub seed: u64,
}

/// `run` (one experiment) or `sweep` (its trials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Run,
    Sweep,
}

/// The command line that states the work, as a job repeats it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub kind: Kind,
    /// The experiment file (absolute).
    pub file: PathBuf,
    pub sets: Vec<String>,
    /// `sweep --grid` arguments.
    #[serde(default)]
    pub grid: Vec<String>,
    /// `sweep --budget`.
    #[serde(default)]
    pub budget: Option<usize>,
}

impl Invocation {
    /// The arguments after `emolab`: `run FILE --set …` or `sweep FILE --grid … --set …`.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            match self.kind {
                Kind::Run => "run".to_string(),
                Kind::Sweep => "sweep".to_string(),
            },
            self.file.display().to_string(),
        ];
        for s in &self.sets {
            a.extend(["--set".to_string(), s.clone()]);
        }
        for g in &self.grid {
            a.extend(["--grid".to_string(), g.clone()]);
        }
        if let Some(b) = self.budget {
            a.extend(["--budget".to_string(), b.to_string()]);
        }
        a
    }
}

/// `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub experiment: String,
    pub invocation: Invocation,
    pub tasks: Vec<Task>,
}

impl Plan {
    pub fn path(exp_dir: &Path) -> PathBuf {
        exp_dir.join(PLAN)
    }

    /// The plan written in `exp_dir`, if any.
    pub fn read(exp_dir: &Path) -> Result<Option<Plan>> {
        let p = Self::path(exp_dir);
        if !p.exists() {
            return Ok(None);
        }
        crate::results::read_json(&p).map(Some)
    }

    pub fn write(&self, exp_dir: &Path) -> Result<()> {
        crate::results::write_json(&Self::path(exp_dir), self)
    }
}

/// What `emolab run` or `emolab sweep` was asked to do: the experiment and, for a sweep, its
/// trials.
pub struct Work {
    pub exp: Experiment,
    pub trials: Option<Vec<Trial>>,
    pub invocation: Invocation,
}

impl Work {
    pub fn exp_dir(&self) -> PathBuf {
        self.exp.dir()
    }

    /// The trials (a plain experiment is one trial without an id).
    fn trial_list(&self) -> Vec<Option<(usize, &Trial)>> {
        match &self.trials {
            Some(ts) => ts.iter().enumerate().map(Some).collect(),
            None => vec![None],
        }
    }

    /// Whether trials change the corpus (so each needs its own clips and folds).
    pub fn trials_change_clips(&self) -> bool {
        self.trials.as_ref().is_some_and(|ts| {
            ts.iter()
                .flat_map(|t| &t.params)
                .any(|(k, _)| k.starts_with("corpus."))
        })
    }

    /// Whether trials change the features (so each needs its own cache).
    pub fn trials_change_features(&self) -> bool {
        self.trials.as_ref().is_some_and(|ts| {
            ts.iter()
                .flat_map(|t| &t.params)
                .any(|(k, _)| k.starts_with("pipeline.") || k.starts_with("corpus."))
        })
    }

    /// The experiment of one trial.
    pub fn trial_experiment(&self, trial: Option<&Trial>) -> Result<Experiment> {
        Ok(match trial {
            Some(t) => sweep::trial_experiment(&self.exp, t)?,
            None => self.exp.clone(),
        })
    }

    /// Number every run. `shared` is the prepared corpus when the caller has it (features or
    /// not); otherwise the clips are read without features (as a submission does before any
    /// feature exists).
    pub fn plan(&self, shared: Option<&Prepared>) -> Result<Plan> {
        // Trials that change the corpus read their own clips; the others share one reading.
        let per_trial = self.trials_change_clips();
        let mut own = None;
        let mut tasks = Vec::new();
        for t in self.trial_list() {
            let e = self.trial_experiment(t.map(|x| x.1))?;
            let fresh;
            let prep = if per_trial {
                fresh = crate::prepare::prepare_with(&e, false, false)?;
                &fresh
            } else if let Some(p) = shared {
                p
            } else {
                if own.is_none() {
                    own = Some(crate::prepare::prepare_with(&e, false, false)?);
                }
                own.as_ref().expect("set")
            };
            let trial_id = t.map(|x| x.1.id.as_str());
            for (fold, seed, _) in runner::planned_runs(&e, prep)? {
                tasks.push(Task {
                    index: tasks.len(),
                    run: runner::run_name(trial_id, fold.index, seed),
                    trial: t.map(|x| x.0),
                    trial_id: trial_id.map(str::to_string),
                    fold: fold.index,
                    seed,
                });
            }
        }
        Ok(Plan {
            experiment: self.exp.name.clone(),
            invocation: self.invocation.clone(),
            tasks,
        })
    }
}

/// A plan for an experiment folder that has none (runs made before plans existed, or by
/// `emolab train`): every run folder in it, in name order.
pub fn from_folders(exp_dir: &Path) -> Result<Plan> {
    let names: Vec<String> = crate::results::run_folders(exp_dir)
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let name = exp_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Plan {
        experiment: name,
        invocation: Invocation {
            kind: Kind::Run,
            file: PathBuf::new(),
            sets: Vec::new(),
            grid: Vec::new(),
            budget: None,
        },
        tasks: names
            .into_iter()
            .enumerate()
            .map(|(index, run)| {
                let meta = crate::results::RunDir::new(exp_dir.join(&run)).meta().ok();
                Task {
                    index,
                    trial: None,
                    trial_id: meta.as_ref().and_then(|m| m.trial.clone()),
                    fold: meta.as_ref().map_or(0, |m| m.fold),
                    seed: meta.as_ref().map_or(0, |m| m.seed),
                    run,
                }
            })
            .collect(),
    })
}
