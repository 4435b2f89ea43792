//! What to run, in order, here: the experiment or sweep a command line names ([`Work`]), its
//! numbered runs ([`Plan`], `results/<name>/plan.json`), and running them on this machine: all of
//! them, one plan entry (what a batch-system array task does), only the features, or only the
//! summary. A batch system is a backend that submits plan entries ([`crate::cluster`] for Slurm);
//! it never runs anything a local `emolab run` would not.

pub mod plan;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use plan::{from_folders, Invocation, Kind, Plan, Task, Work};

use crate::experiment::Experiment;
use crate::runner::{self, RunOptions, RunOutcome};
use crate::sweep;

impl Work {
    /// The experiment (and, for a sweep, its trials) of a `run` or `sweep` command line; with no
    /// kind, a sweep when the file has a `sweep:` block. `--slurm-opt k=v` is `--set slurm.k=v`,
    /// kept out of what the jobs repeat.
    pub fn of(
        kind: Option<Kind>,
        file: &Path,
        sets: &[String],
        slurm_opt: &[String],
        grid: &[String],
        budget: Option<usize>,
    ) -> Result<Work> {
        let mut all = sets.to_vec();
        for o in slurm_opt {
            if !o.contains('=') {
                anyhow::bail!("--slurm-opt `{o}`: expected key=value, e.g. partition=gpu");
            }
            all.push(format!("slurm.{o}"));
        }
        let exp = Experiment::load(file, &all)?;
        let kind = kind.unwrap_or(if exp.sweep.is_some() {
            Kind::Sweep
        } else {
            Kind::Run
        });
        let trials = match kind {
            Kind::Run => None,
            Kind::Sweep => {
                let mut spec = exp.sweep.clone().unwrap_or_default();
                let extra = sweep::grid_from_args(grid).map_err(anyhow::Error::msg)?;
                spec.params.extend(extra.params);
                if budget.is_some() {
                    spec.budget = budget;
                }
                if spec.params.is_empty() {
                    anyhow::bail!(
                        "{}: nothing to sweep: add a `sweep:` block or --grid key=v1,v2",
                        file.display()
                    );
                }
                Some(sweep::trials(&spec))
            }
        };
        Ok(Work {
            exp,
            trials,
            invocation: Invocation {
                kind,
                file: std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()),
                sets: sets.to_vec(),
                grid: grid.to_vec(),
                budget,
            },
        })
    }
}

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
    let prep = crate::prepare::prepare(&e, progress)?;
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
                out.push(crate::prepare::prepare(&e, progress)?.clips.len());
            }
        }
        _ => out.push(crate::prepare::prepare(&work.exp, progress)?.clips.len()),
    }
    Ok(out)
}

/// Run the trials of a sweep here (all, or only trial `only`), then write and return the sweep
/// table (`results/<name>/sweep.parquet`). Returns the table and the number of failed runs.
pub fn run_sweep(
    work: &Work,
    only: Option<usize>,
    force: bool,
    progress: bool,
) -> Result<(polars::prelude::DataFrame, usize)> {
    let trials = work.trials.as_deref().unwrap_or_default();
    let selected: Vec<&sweep::Trial> = match only {
        Some(i) => vec![trials.get(i).ok_or_else(|| {
            anyhow::anyhow!("--trial {i}: the sweep has {} trials", trials.len())
        })?],
        None => trials.iter().collect(),
    };
    let reprepare = work.trials_change_features();
    // One preparation for every trial unless trials change the features.
    let shared = if reprepare {
        None
    } else {
        Some(crate::prepare::prepare(
            &sweep::trial_experiment(&work.exp, selected[0])?,
            progress,
        )?)
    };
    if only.is_none() {
        // The numbered runs, for `emolab status` (before any runs, so it lists them all).
        work.plan(shared.as_ref())?.write(&work.exp_dir())?;
    }
    let bar = crate::util::progress_bar(selected.len() as u64, "trials", progress);
    let mut failed = 0;
    let mut best: Option<(f64, String)> = None;
    for t in &selected {
        let e = sweep::trial_experiment(&work.exp, t)?;
        let fresh;
        let prep = match &shared {
            Some(p) => p,
            None => {
                fresh = crate::prepare::prepare(&e, false)?;
                &fresh
            }
        };
        let opts = crate::runner::RunOptions {
            force,
            progress: false,
            trial: Some((t.id.clone(), t.json_params())),
        };
        bar.set_message(format!("{} {}", t.id, t.label()));
        let outcomes = crate::runner::run_experiment(&e, prep, &opts)?;
        failed += outcomes.iter().filter(|o| o.error.is_some()).count();
        let vals: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| crate::results::RunDir::new(&o.dir).metrics().ok())
            .map(|m| m.val_ua)
            .collect();
        if !vals.is_empty() {
            let v = vals.iter().sum::<f64>() / vals.len() as f64;
            if best.as_ref().is_none_or(|b| v > b.0) {
                best = Some((v, t.id.clone()));
            }
            crate::util::bar_println(
                &bar,
                format!(
                    "{} {}: val UA {v:.3} over {} runs{}",
                    t.id,
                    t.label(),
                    vals.len(),
                    if outcomes.iter().all(|o| o.skipped) {
                        " (already complete)"
                    } else {
                        ""
                    }
                ),
            );
        }
        bar.inc(1);
        if let Some((v, id)) = &best {
            bar.set_message(format!("best so far {id} val UA {v:.3}"));
        }
    }
    bar.finish_and_clear();
    Ok((sweep::write_table(&work.exp, trials)?, failed))
}

/// Prepare the corpus, run every fold × seed, write and print the summary.
/// With `work` (a whole `run`, not one `train`), also number the runs in `plan.json` for
/// `emolab status`.
pub fn run_here(
    exp: &Experiment,
    work: Option<&Work>,
    force: bool,
    progress: bool,
) -> Result<bool> {
    let prep = crate::prepare::prepare(exp, progress)?;
    if let Some(w) = work {
        w.plan(Some(&prep))?.write(&w.exp_dir())?;
    }
    eprintln!(
        "{}: {} clips, {} classes ({}), protocol {}{}",
        exp.name,
        prep.clips.len(),
        prep.classes.len(),
        prep.classes.join(", "),
        exp.protocol.name(),
        if exp.protocol.speaker_leaky() {
            " (SPEAKER-LEAKY: the same speakers are in train and test)"
        } else {
            ""
        }
    );
    for (why, n) in &prep.skipped {
        eprintln!("  left out {n} clips: {why}");
    }
    let opts = runner::RunOptions {
        force,
        progress,
        trial: None,
    };
    let outcomes = runner::run_experiment(exp, &prep, &opts)?;
    let skipped = outcomes.iter().filter(|o| o.skipped).count();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let busy = outcomes
        .iter()
        .filter(|o| o.status == crate::results::RunStatus::Running)
        .count();
    let agg = crate::results::write_summary(&exp.dir())?;
    println!(
        "{}: {} runs ({} already complete, {} failed{}) → {}",
        exp.name,
        outcomes.len(),
        skipped,
        failed.len(),
        if busy > 0 {
            format!(", {busy} left to the process training them")
        } else {
            String::new()
        },
        exp.dir().display()
    );
    println!(
        "{}",
        crate::util::plain_table(&crate::results::pretty(&agg)?)
    );
    for f in &failed {
        eprintln!(
            "failed: {}: {}",
            f.dir.display(),
            f.error.as_deref().unwrap_or("")
        );
    }
    Ok(failed.is_empty())
}

/// Whether `file` is a late-fusion experiment (`ensemble: [exp_a, exp_b]`).
pub fn is_fusion_file(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .is_some_and(|v| crate::ensemble::is_fusion(&v))
}

/// Average the test probabilities of complete experiments run by run, write and print the
/// summary.
pub fn run_fusion(file: &Path, sets: &[String]) -> Result<bool> {
    let (name, root, written, left_out) = crate::ensemble::run_fusion(file, sets)?;
    for why in &left_out {
        eprintln!("left out: {why}");
    }
    let dir = root.join(&name);
    let agg = crate::results::aggregate(&crate::results::summary(&dir)?)?;
    println!(
        "{name}: {} fused runs ({} left out) → {}",
        written.len(),
        left_out.len(),
        dir.display()
    );
    println!(
        "{}",
        crate::util::plain_table(&crate::results::pretty(&agg)?)
    );
    Ok(!written.is_empty())
}

/// Compute the features of every preparation (`--prepare-only`, a batch system's prepare job)
/// and say for how many clips.
pub fn prepare_here(work: &Work, progress: bool) -> Result<()> {
    let n = prepare_only(work, progress)?;
    println!(
        "{}: features ready for {} clips",
        work.exp.name,
        n.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Run plan entry `index` (`--task i`) and print each run's outcome; `false` when one failed.
pub fn run_task_here(work: &Work, index: usize, progress: bool) -> Result<bool> {
    let out = run_task(work, index, progress)?;
    for o in &out {
        println!(
            "task {index}: {} {}",
            o.dir.display(),
            match (&o.error, o.skipped) {
                (Some(e), _) => format!("failed: {e}"),
                (None, true) => "already complete".into(),
                (None, false) => "complete".into(),
            }
        );
    }
    Ok(out.iter().all(|o| o.error.is_none()))
}

/// Write and print what a finished plan sums up to (`--collect`): the sweep table, or the seed
/// ensembles and the summary.
pub fn collect(work: &Work) -> Result<()> {
    let exp = &work.exp;
    match &work.trials {
        Some(trials) => {
            let table = sweep::write_table(exp, trials)?;
            println!("{}", crate::util::plain_table(&table));
            if let Some(line) = sweep::selection_line(&table)? {
                println!("{line}");
            }
        }
        None => {
            crate::ensemble::write_seed_ensembles(&exp.dir(), &exp.seeds)?;
            let agg = crate::results::write_summary(&exp.dir())?;
            println!(
                "{}",
                crate::util::plain_table(&crate::results::pretty(&agg)?)
            );
        }
    }
    Ok(())
}

/// The experiment folders and plans `emolab status` shows: every name given (an experiment
/// file, whose runs are looked for in `results` when it is given, or a folder of `results`), or
/// every experiment folder in `results`.
pub fn status_targets(names: &[String], results: Option<PathBuf>) -> Result<Vec<(PathBuf, Plan)>> {
    let file_sets: Vec<String> = results
        .iter()
        .map(|r| format!("results={}", r.display()))
        .collect();
    let results = results.unwrap_or_else(crate::config::results_dir);
    let mut targets: Vec<(PathBuf, Plan)> = Vec::new();
    let named = if names.is_empty() {
        experiment_folders(&results)?
    } else {
        names.to_vec()
    };
    for x in &named {
        let p = Path::new(x);
        let is_file =
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if is_file {
            let work = Work::of(None, p, &file_sets, &[], &[], None)?;
            let dir = work.exp_dir();
            let plan = match Plan::read(&dir)? {
                Some(plan) => plan,
                None => work.plan(None)?,
            };
            targets.push((dir, plan));
        } else {
            let dir = results.join(x);
            if !dir.is_dir() {
                let folders = experiment_folders(&results).unwrap_or_default();
                let hint = crate::config::closest(
                    x,
                    folders.iter().map(String::as_str),
                    x.len().max(3) / 2 + 1,
                )
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
                anyhow::bail!(
                    "{x}: neither an experiment file nor a folder in {}{hint}",
                    results.display()
                );
            }
            let plan = match Plan::read(&dir)? {
                Some(plan) => plan,
                None => from_folders(&dir)?,
            };
            if plan.tasks.is_empty() {
                continue;
            }
            targets.push((dir, plan));
        }
    }
    Ok(targets)
}

/// The experiment folders in `results` (every folder but `report`), sorted.
fn experiment_folders(results: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(results).map_err(|e| {
        anyhow::anyhow!(
            "cannot read results folder {}: {e} (run from the folder that holds `results/`, set \
             EMOLAB_RESULTS, or pass --results DIR)",
            results.display()
        )
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir() && e.file_name() != "report")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_closest_experiment_folder_and_the_missing_results_folder() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["emodb_functionals_svm", "demo", "report"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let err = status_targets(
            &["emodb_funtionals_svm".to_string()],
            Some(dir.path().to_path_buf()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("did you mean `emodb_functionals_svm`?"),
            "{err}"
        );
        let err = status_targets(&["zzz".to_string()], Some(dir.path().to_path_buf()))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("did you mean"), "{err}");
        // Empty experiment folders have no runs to show; `report` is not an experiment.
        assert!(status_targets(&[], Some(dir.path().to_path_buf()))
            .unwrap()
            .is_empty());
        let err = status_targets(&[], Some(dir.path().join("absent")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--results DIR"), "{err}");
    }
}
