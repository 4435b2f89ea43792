//! `emolab report`: every complete run under a results folder, compared in one report.
//!
//! Writes into the output folder:
//! - `report.md` (charts linked from `charts/*.svg`) and a self-contained `report.html` (the same
//!   charts inline as SVG; no script, stylesheet, font or image is fetched);
//! - `tables/<name>.csv` and `tables/<name>.parquet` for every table of the report.
//!
//! The stages, one module each:
//! - [`load`]: find the run folders, read `meta.json` / `metrics.json`, and list every run that
//!   is missing, running, failed or lacks a file (never fatal);
//! - [`tables`]: the Polars tables: the runs, leaderboard, per-class F1 pivot, confusion
//!   matrices, learning curves (lazy scans of `history.parquet`), sweeps, speaker sex, leakage;
//! - [`paired`]: models compared on the same test clips, with a seeded bootstrap interval;
//! - [`analyses`]: per-run analyses read back (calibration, embedding maps, per speaker,
//!   importance, layer weights, seed ensembles);
//! - [`document`]: the report as sections of text, warnings, tables and charts (`sections`:
//!   one builder per section; the SVG charts come from [`crate::charts`]);
//! - [`markdown`], [`html`]: the two renderings of that document;
//! - [`export`]: the tables as CSV and Parquet.

pub mod analyses;
pub mod document;
pub mod export;
pub mod html;
pub mod load;
pub mod markdown;
pub mod paired;
mod sections;
pub mod tables;

use std::path::{Path, PathBuf};

use polars::prelude::PolarsError;

/// What went wrong while building a report. Missing or partial runs are not errors: they are
/// listed in the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "results folder {0} does not exist (run `emolab run EXPERIMENT.yaml` first, or pass --results DIR)"
    )]
    NoResults(PathBuf),
    #[error("experiment `{name}` has no folder in {root} (experiments there: {available})")]
    UnknownExperiment {
        name: String,
        root: PathBuf,
        available: String,
    },
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("table {table}: {error}")]
    Table { table: String, error: PolarsError },
    #[error(transparent)]
    Chart(#[from] crate::charts::ChartError),
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Attach the name of the table being built to a Polars error.
pub(crate) trait TableContext<T> {
    fn table(self, name: &str) -> Result<T>;
}

impl<T> TableContext<T> for std::result::Result<T, PolarsError> {
    fn table(self, name: &str) -> Result<T> {
        self.map_err(|error| ReportError::Table {
            table: name.to_string(),
            error,
        })
    }
}

/// A file error naming the file.
pub(crate) fn file_error(path: &Path, problem: impl std::fmt::Display) -> ReportError {
    ReportError::File {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// `1 run`, `2 runs`, `3 entries`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("1 {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}

/// What to report on and where.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The results root (`<root>/<experiment>/<run>/`).
    pub results: PathBuf,
    /// Experiments (folder names) to include; empty: all of them.
    pub experiments: Vec<String>,
    /// Output folder.
    pub out: PathBuf,
    /// Bootstrap resamples of the paired comparisons.
    pub bootstrap: usize,
    /// Seed of the bootstrap: the same runs give the same report, byte for byte.
    pub seed: u64,
}

impl ReportOptions {
    /// `results` with the defaults: out `<results>/report`, 2,000 resamples, seed 0.
    pub fn new(results: impl Into<PathBuf>) -> ReportOptions {
        let results = results.into();
        ReportOptions {
            out: results.join("report"),
            results,
            experiments: Vec::new(),
            bootstrap: 2000,
            seed: 0,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub out: PathBuf,
    pub experiments: Vec<String>,
    /// Complete runs in the report.
    pub runs: usize,
    /// Runs listed as missing, partial or failed.
    pub issues: usize,
    /// Every file written (report.md, report.html, charts, tables).
    pub files: Vec<PathBuf>,
}

impl ReportOutcome {
    pub fn html(&self) -> PathBuf {
        self.out.join("report.html")
    }
    pub fn markdown(&self) -> PathBuf {
        self.out.join("report.md")
    }
}

impl std::fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables = self
            .files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count();
        if self.runs == 0 {
            write!(
                f,
                "no complete runs to compare yet (run `emolab run experiments/demo.yaml` first)"
            )?;
        } else {
            write!(
                f,
                "report of {} from {} ({})",
                plural(self.runs, "complete run"),
                plural(self.experiments.len(), "experiment"),
                self.experiments.join(", ")
            )?;
        }
        if self.issues > 0 {
            write!(
                f,
                "; {} listed as missing or partial",
                plural(self.issues, "run folder")
            )?;
        }
        write!(
            f,
            "\n  {}\n  {}\n  {} ({tables} tables as CSV and Parquet)",
            self.html().display(),
            self.markdown().display(),
            self.out.join("tables").display()
        )
    }
}

/// Build the report of `opts.results` into `opts.out`.
pub fn generate(opts: &ReportOptions) -> Result<ReportOutcome> {
    let loaded = load::load(&opts.results, &opts.experiments, Some(&opts.out))?;
    let tables = tables::Tables::build(&loaded)?;
    let paired = paired::compare(&loaded, &tables, opts.bootstrap, opts.seed)?;
    let doc = document::build(opts, &loaded, &tables, &paired)?;

    let mut files = Vec::new();
    export::clear_outputs(&opts.out)?;
    for (name, df) in tables.exports(&paired)? {
        files.extend(export::write_table(&opts.out.join("tables"), name, &df)?);
    }
    for chart in doc.charts() {
        let path = opts.out.join("charts").join(format!("{}.svg", chart.id));
        export::write_text(&path, &chart.svg)?;
        files.push(path);
    }
    let md = opts.out.join("report.md");
    export::write_text(&md, &markdown::render(&doc))?;
    files.push(md);
    let html = opts.out.join("report.html");
    export::write_text(&html, &html::render(&doc))?;
    files.push(html);

    Ok(ReportOutcome {
        out: opts.out.clone(),
        experiments: loaded.experiments.clone(),
        runs: loaded.runs.len(),
        issues: loaded.issues.len(),
        files,
    })
}
