//! Beyond one machine: the numbered plan of an experiment's runs ([`plan`]), Slurm submission
//! and job states ([`slurm`]), and `emolab status` ([`status`]).
//!
//! A job never does anything a local `emolab run` would not: array task `i` is
//! `emolab run FILE --task i` (or `emolab sweep FILE --task i`), which prepares the corpus from
//! the shared feature cache and runs plan entry `i` into the same run folder, resuming from its
//! checkpoint when a previous task was killed. See `docs/cluster.md`.

pub mod plan;
pub mod slurm;
pub mod status;

use anyhow::{Context, Result};

pub use plan::{Invocation, Kind, Plan, Task, Work};
pub use slurm::SlurmSpec;

use crate::runner::{self, RunOptions, RunOutcome};

/// The plan entry `index` (from `plan.json` when it was written for this same invocation, else
/// numbered afresh) and its trial.
fn task_of(work: &Work, index: usize) -> Result<Task> {
    let plan = match Plan::read(&work.exp_dir())? {
        Some(p) if p.invocation == work.invocation => p,
        _ => work.plan(None)?,
    };
    plan.tasks.get(index).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "--task {index}: the plan of {} has {} runs (0 to {})",
            work.exp.name,
            plan.tasks.len(),
            plan.tasks.len().saturating_sub(1)
        )
    })
}

/// Run plan entry `index`: what Slurm array task `index` does.
pub fn run_task(work: &Work, index: usize, progress: bool) -> Result<Vec<RunOutcome>> {
    let task = task_of(work, index)?;
    let trial = match task.trial {
        Some(i) => {
            let t = work
                .trials
                .as_ref()
                .and_then(|ts| ts.get(i))
                .with_context(|| format!("--task {index}: the sweep has no trial {i}"))?;
            if Some(&t.id) != task.trial_id.as_ref() {
                anyhow::bail!(
                    "--task {index}: plan.json names trial {:?} but the sweep's trial {i} is {}: the sweep changed since it was planned; submit again",
                    task.trial_id,
                    t.id
                );
            }
            Some(t)
        }
        None => None,
    };
    let mut e = work.trial_experiment(trial)?;
    let prep = runner::prepare(&e, progress)?;
    e.seeds = vec![task.seed];
    e.folds = Some(vec![task.fold]);
    let opts = RunOptions {
        force: false,
        progress,
        trial: trial.map(|t| (t.id.clone(), t.json_params())),
    };
    let out = runner::run_experiment(&e, &prep, &opts)?;
    for o in &out {
        if o.dir.file_name().map(|n| n.to_string_lossy().into_owned()) != Some(task.run.clone()) {
            anyhow::bail!(
                "--task {index}: ran {} but the plan says {}: the corpus or experiment changed since it was planned; submit again",
                o.dir.display(),
                task.run
            );
        }
    }
    Ok(out)
}

/// Compute every feature the work needs (the prepare job): once, or per trial when trials
/// change the pipeline or corpus. Returns the number of clips of each preparation.
pub fn prepare_only(work: &Work, progress: bool) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    match (&work.trials, work.trials_change_features()) {
        (Some(ts), true) => {
            for t in ts {
                let e = work.trial_experiment(Some(t))?;
                out.push(runner::prepare(&e, progress)?.clips.len());
            }
        }
        _ => out.push(runner::prepare(&work.exp, progress)?.clips.len()),
    }
    Ok(out)
}
