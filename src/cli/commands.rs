//! Commands whose dispatch is more than one call: running work here or through Slurm, the
//! status table, metrics as text, clips from a manifest or a folder.

use std::process::ExitCode;

use anyhow::Result;

use emolab::corpus::{self, Format, ScanOptions};
use emolab::sweep;
use emolab::work::{self, Kind, Work};

use super::*;

pub fn print_metrics(m: &emolab::results::RunMetrics, left_out: usize) {
    let t = &m.test;
    println!(
        "{} clips ({left_out} left out): UA {:.3}  WA {:.3}  macro-F1 {:.3}",
        t.n, t.ua, t.wa, t.macro_f1
    );
    for c in &t.per_class {
        println!(
            "  {:<12} precision {:.3} recall {:.3} F1 {:.3} support {}",
            c.label, c.precision, c.recall, c.f1, c.support
        );
    }
    for (sex, s) in &m.by_sex {
        println!("  {sex:<12} UA {:.3} WA {:.3} ({} clips)", s.ua, s.wa, s.n);
    }
}

pub fn sweep(a: SweepArgs, progress: bool) -> Result<ExitCode> {
    let work = Work::of(
        Some(Kind::Sweep),
        &a.experiment,
        &a.sets,
        &a.cluster.slurm_opt,
        &a.grid,
        a.budget,
    )?;
    if let Some(code) = cluster_mode(&work, &a.cluster, progress)? {
        return Ok(code);
    }
    let (table, failed) = work::run_sweep(&work, a.trial, a.force, progress)?;
    println!("{}", emolab::util::plain_table(&table));
    if let Some(line) = sweep::selection_line(&table)? {
        println!("{line}");
    }
    Ok(exit(failed == 0))
}

/// Clips from a manifest (.parquet) or by scanning a folder (problems are reported and skipped).
pub fn load_clips(
    input: &std::path::Path,
    format: Format,
    progress: bool,
) -> Result<Vec<corpus::ClipRecord>> {
    emolab::prepare::clips_from(
        input,
        &ScanOptions {
            format,
            progress,
            ..Default::default()
        },
    )
}

/// Success or failure as the process's exit status.
pub fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--slurm`, `--task`, `--collect` and `--prepare-only`; `None` when none was given.
pub fn cluster_mode(work: &Work, a: &ClusterArgs, progress: bool) -> Result<Option<ExitCode>> {
    if a.slurm {
        emolab::cluster::submit(work, a.dry_run)?;
    } else if a.prepare_only {
        work::prepare_here(work, progress)?;
    } else if let Some(i) = a.task {
        return Ok(Some(exit(work::run_task_here(work, i, progress)?)));
    } else if a.collect {
        work::collect(work)?;
    } else {
        return Ok(None);
    }
    Ok(Some(ExitCode::SUCCESS))
}

/// `emolab status`.
pub fn status(a: StatusArgs) -> Result<ExitCode> {
    let targets = work::status_targets(&a.experiments, a.results)?;
    let interval = std::time::Duration::from_secs_f64(a.interval.max(0.1));
    let all = emolab::status::watch(&targets, a.wait, interval)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for s in &all {
            print!("{s}");
        }
    }
    Ok(exit(
        !a.wait || all.iter().all(emolab::status::Status::all_complete),
    ))
}
