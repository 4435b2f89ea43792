//! Commands whose dispatch is more than one call: running work here or through Slurm, the
//! status table, metrics as text, clips from a manifest or a folder.

use std::process::ExitCode;

use anyhow::Result;

use emolab::corpus::{self, Format, ScanOptions};
use emolab::work::{self, Kind, Work};
use emolab::sweep;

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
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

#[cfg(test)]
mod help_tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every subcommand says what it is for (clap's own `--help` and
    /// `--version` aside); hidden plumbing is exempt.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                let empty = a
                    .get_help()
                    .map_or(true, |h| h.to_string().trim().is_empty());
                if empty {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_name() == "help" || s.is_hide_set() {
                    continue;
                }
                if s.get_about().is_none() {
                    missing.push(format!("{path} {} (no description)", s.get_name()));
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "emolab", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a description:\n{}",
            missing.join("\n")
        );
    }

    /// The README's command table and the CLI list the same top-level commands.
    #[test]
    fn readme_lists_every_command() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let cli: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(|s| s.get_name().to_string())
            .collect();
        let missing: Vec<&String> = cli
            .iter()
            .filter(|c| !readme.contains(&format!("| `emolab {c}")))
            .collect();
        assert!(
            missing.is_empty(),
            "commands missing from the README: {missing:?}"
        );
        let listed: std::collections::BTreeSet<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `emolab "))
            .filter_map(|l| l.split([' ', '`']).next())
            .collect();
        let unknown: Vec<&&str> = listed
            .iter()
            .filter(|c| !cli.iter().any(|k| k == **c))
            .collect();
        assert!(
            unknown.is_empty(),
            "README lists commands the CLI lacks: {unknown:?}"
        );
    }
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
