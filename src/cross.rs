//! Cross-corpus evaluation: train on each corpus, test on every other, on the labels they share.
//!
//! Every corpus is already mapped onto the canonical label set (`corpus::labels`: `W` → anger in
//! EmoDB, `05` → anger in RAVDESS, `ANG` in CREMA-D, …), after each experiment's own `merge`.
//! The shared set is the intersection of the classes of all the experiments; clips with other
//! labels (EmoDB's boredom, RAVDESS' calm and surprise without a merge) are counted and left out.
//!
//! Each experiment is run with `corpus.labels` set to the shared set, under its own name with a
//! `<cross name>-` prefix, by its own protocol (speaker-independent folds): the diagonal of the
//! matrix is that within-corpus UA (mean over its runs). Cell (A, B) is the mean UA of A's runs
//! (every fold × seed model) on all of B's clips with shared labels: B's speakers are never in
//! A's training data. Results: `results/<cross name>/cross.{json,csv,parquet,svg}`.
//!
//! The matrix is named on the command line (`emolab cross A.yaml B.yaml --name ab`) or in a
//! cross file ([`CrossSpec`]: `cross: {name, experiments, set}`, `emolab cross FILE.yaml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::experiment::Experiment;
use crate::runner::{self, RunOptions};

/// Whether an experiment-folder YAML tree is a cross file (a top-level `cross:` block).
pub fn is_cross(tree: &serde_yaml::Value) -> bool {
    tree.get("cross").is_some()
}

/// A cross file's `cross:` block:
///
/// ```yaml
/// cross:
///   name: cross_crnn                  # results/<name>/; default: the file's name
///   experiments: [emodb_crnn.yaml, ravdess_crnn.yaml, cremad_crnn.yaml]  # beside this file
///   set: {train.epochs: 30}           # overrides for every experiment (as --set)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossSpec {
    /// The matrix's folder name (and the prefix of the experiments it runs).
    pub name: String,
    /// Experiment files, resolved against the cross file's folder.
    pub experiments: Vec<PathBuf>,
    /// `key.path → value` applied to every experiment, before the command line's `--set`.
    pub set: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossFile {
    cross: RawCross,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCross {
    #[serde(default)]
    name: Option<String>,
    experiments: Vec<PathBuf>,
    #[serde(default)]
    set: BTreeMap<String, serde_yaml::Value>,
}

impl CrossSpec {
    /// Read and check a cross file: at least two experiments, each an existing file, a name
    /// that is a plain folder name.
    pub fn load(file: &Path) -> Result<CrossSpec> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let tree: serde_yaml::Value = serde_yaml::from_str(&text)
            .with_context(|| format!("{} is not valid YAML", file.display()))?;
        anyhow::ensure!(
            is_cross(&tree),
            "{}: not a cross file (no top-level `cross:` block); give two or more experiment \
             files instead",
            file.display()
        );
        let raw: CrossFile = serde_path_to_error::deserialize(tree)
            .map_err(|e| anyhow::anyhow!("{}: {} ({})", file.display(), e.inner(), e.path()))?;
        let raw = raw.cross;
        let dir = file.parent().unwrap_or(Path::new("."));
        let name = match raw.name {
            Some(n) => n,
            None => file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "cross".into()),
        };
        anyhow::ensure!(
            !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..",
            "{}: cross.name `{name}` must be a plain folder name",
            file.display()
        );
        anyhow::ensure!(
            raw.experiments.len() >= 2,
            "{}: cross.experiments lists {} experiment(s); a matrix needs at least two",
            file.display(),
            raw.experiments.len()
        );
        let experiments: Vec<PathBuf> = raw.experiments.iter().map(|e| dir.join(e)).collect();
        for e in &experiments {
            anyhow::ensure!(
                e.is_file(),
                "{}: cross.experiments: {} does not exist",
                file.display(),
                e.display()
            );
        }
        Ok(CrossSpec {
            name,
            experiments,
            set: raw.set,
        })
    }

    /// The `set` block as `--set` assignments, followed by `extra`.
    pub fn assignments(&self, extra: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (k, v) in &self.set {
            let text = serde_yaml::to_string(v)?;
            out.push(format!("{k}={}", text.trim_end()));
        }
        out.extend(extra.iter().cloned());
        Ok(out)
    }

    /// Every experiment, loaded with [`CrossSpec::assignments`].
    pub fn load_experiments(&self, extra: &[String]) -> Result<Vec<Experiment>> {
        let sets = self.assignments(extra)?;
        self.experiments
            .iter()
            .map(|f| Experiment::load(f, &sets).map_err(anyhow::Error::from))
            .collect()
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub train: String,
    pub test: String,
    /// Mean and standard deviation of UA over the training experiment's runs.
    pub ua: f64,
    pub ua_std: f64,
    pub runs: usize,
    /// Test clips scored (per run).
    pub clips: usize,
    /// Within-corpus (speaker-independent folds) rather than another corpus.
    pub within: bool,
}

/// `cross.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cross {
    pub name: String,
    /// Corpus (experiment) names, in the order given.
    pub corpora: Vec<String>,
    /// The shared labels every model is trained and tested on.
    pub labels: Vec<String>,
    /// Per corpus: clips left out, by reason (labels outside the shared set, …).
    pub left_out: BTreeMap<String, BTreeMap<String, usize>>,
    pub cells: Vec<Cell>,
    pub out: PathBuf,
}

impl Cross {
    /// The `cross.json` of a matrix folder, if it is one.
    pub fn read(dir: &std::path::Path) -> Option<Cross> {
        let text = std::fs::read_to_string(dir.join("cross.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The matrix as a heat map (rows: trained on; columns: tested on; UA %).
    pub fn heatmap(&self) -> crate::charts::Heatmap {
        let cell = |a: &String, b: &String| self.cell(a, b);
        crate::charts::Heatmap {
            title: format!(
                "Cross-corpus UA on {} shared labels (diagonal: within-corpus, speaker-independent)",
                self.labels.len()
            ),
            rows: self.corpora.clone(),
            cols: self.corpora.clone(),
            intensity: self
                .corpora
                .iter()
                .map(|a| {
                    self.corpora
                        .iter()
                        .map(|b| cell(a, b).map_or(0.0, |x| x.ua.clamp(0.0, 1.0)))
                        .collect()
                })
                .collect(),
            text: self
                .corpora
                .iter()
                .map(|a| {
                    self.corpora
                        .iter()
                        .map(|b| cell(a, b).map_or("–".into(), |x| format!("{:.1}", x.ua * 100.0)))
                        .collect()
                })
                .collect(),
            row_axis: "trained on".into(),
            col_axis: "tested on".into(),
        }
    }

    /// The cell of (train, test).
    pub fn cell(&self, train: &str, test: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.train == train && c.test == test)
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// The labels every experiment has (in the first experiment's order).
pub fn shared_labels(classes: &[Vec<String>]) -> Vec<String> {
    let Some(first) = classes.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|l| classes.iter().all(|c| c.contains(l)))
        .cloned()
        .collect()
}

/// Run the matrix of `exps` (at least two) into `results/<name>/`.
pub fn cross(exps: &[Experiment], name: &str, force: bool, progress: bool) -> Result<Cross> {
    anyhow::ensure!(
        exps.len() >= 2,
        "cross-corpus needs at least two experiments"
    );
    let corpora: Vec<String> = exps.iter().map(|e| e.name.clone()).collect();
    for (i, c) in corpora.iter().enumerate() {
        anyhow::ensure!(
            !corpora[..i].contains(c),
            "two experiments are named `{c}`: give one another name (--set name=…)"
        );
    }
    // Clips and labels of each corpus (no features yet); each corpus is scanned once.
    let mut scans = Vec::new();
    let mut preps = Vec::new();
    for e in exps {
        let all = crate::prepare::load_corpus(e, &e.corpus.path, progress)?;
        preps.push(crate::prepare::prepare_from(
            e,
            all.clone(),
            progress,
            false,
        )?);
        scans.push(all);
    }
    let classes: Vec<Vec<String>> = preps.iter().map(|p| p.classes.clone()).collect();
    let labels = shared_labels(&classes);
    if labels.len() < 2 {
        anyhow::bail!(
            "the corpora share fewer than two labels ({}): {}",
            labels.join(", "),
            corpora
                .iter()
                .zip(&classes)
                .map(|(n, c)| format!("{n}: {}", c.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let mut left_out = BTreeMap::new();
    for (n, p) in corpora.iter().zip(&preps) {
        let mut why = p.skipped.clone();
        for (k, c) in p.classes.iter().enumerate() {
            if !labels.contains(c) {
                let count = p.labels.iter().filter(|&&l| l == k).count();
                why.insert(format!("{c} (not shared)"), count);
            }
        }
        left_out.insert(n.clone(), why);
    }
    // Each corpus on the shared labels, within-corpus.
    let label_value = serde_yaml::to_value(&labels).expect("labels serialise");
    let mut variants = Vec::new();
    for (e, all) in exps.iter().zip(scans) {
        let mut v = e.with(&[("corpus.labels".to_string(), label_value.clone())])?;
        v.name = format!("{name}-{}", e.name);
        let prep = crate::prepare::prepare_from(&v, all, progress, true)?;
        if progress {
            eprintln!(
                "{}: {} clips on {} shared labels",
                v.name,
                prep.clips.len(),
                labels.len()
            );
        }
        let outcomes = runner::run_experiment(
            &v,
            &prep,
            &RunOptions {
                force,
                progress,
                trial: None,
            },
        )?;
        if let Some(f) = outcomes.iter().find(|o| o.error.is_some()) {
            anyhow::bail!(
                "{}: run {} failed: {}",
                v.name,
                f.dir.display(),
                f.error.as_deref().unwrap_or("")
            );
        }
        crate::results::write_summary(&v.dir())?;
        variants.push((v, outcomes));
    }
    // Test clips of each corpus: all its clips with a shared label.
    let mut cells = Vec::new();
    for (a, (_, outcomes)) in variants.iter().enumerate() {
        let runs: Vec<PathBuf> = outcomes.iter().map(|o| o.dir.clone()).collect();
        let within: Vec<f64> = runs
            .iter()
            .filter_map(|r| crate::results::RunDir::new(r).metrics().ok())
            .map(|m| m.test.ua)
            .collect();
        let (m, s) = mean_std(&within);
        cells.push(Cell {
            train: corpora[a].clone(),
            test: corpora[a].clone(),
            ua: m,
            ua_std: s,
            runs: within.len(),
            clips: 0,
            within: true,
        });
        // Each model is loaded once and tested on every other corpus: all the clips the
        // corpus' experiment kept (read once, above); the model's classes select the shared ones.
        let others: Vec<usize> = (0..variants.len()).filter(|&b| b != a).collect();
        let mut uas: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut n = vec![0usize; variants.len()];
        for r in &runs {
            let lr = crate::infer::load_run(r, tch::Device::cuda_if_available())?;
            for &b in &others {
                let (met, _, _) = crate::infer::evaluate_clips(
                    r,
                    &lr,
                    &preps[b].clips,
                    &format!("{name}-{}", corpora[b]),
                    &variants[b].0.corpus.merge,
                    crate::speakers::DEFAULT_MIN_CLIPS,
                    false,
                )
                .with_context(|| format!("{} on {}", r.display(), corpora[b]))?;
                n[b] = met.test.n as usize;
                uas[b].push(met.test.ua);
            }
        }
        for &b in &others {
            let (m, s) = mean_std(&uas[b]);
            cells.push(Cell {
                train: corpora[a].clone(),
                test: corpora[b].clone(),
                ua: m,
                ua_std: s,
                runs: uas[b].len(),
                clips: n[b],
                within: false,
            });
        }
    }
    let out = exps[0].results.join(name);
    let result = Cross {
        name: name.to_string(),
        corpora,
        labels,
        left_out,
        cells,
        out: out.clone(),
    };
    write(&result)?;
    Ok(result)
}

fn write(c: &Cross) -> Result<()> {
    crate::results::write_json(&c.out.join("cross.json"), c)?;
    let mut df = DataFrame::new(vec![
        Column::new(
            "train".into(),
            c.cells.iter().map(|x| x.train.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "test".into(),
            c.cells.iter().map(|x| x.test.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "ua".into(),
            c.cells.iter().map(|x| x.ua).collect::<Vec<_>>(),
        ),
        Column::new(
            "ua_std".into(),
            c.cells.iter().map(|x| x.ua_std).collect::<Vec<_>>(),
        ),
        Column::new(
            "runs".into(),
            c.cells.iter().map(|x| x.runs as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "within".into(),
            c.cells.iter().map(|x| x.within).collect::<Vec<_>>(),
        ),
    ])?;
    crate::util::atomic_write(&c.out.join("cross.parquet"), |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })?;
    crate::util::atomic_write(&c.out.join("cross.csv"), |w| {
        CsvWriter::new(w).finish(&mut df)?;
        Ok(())
    })?;
    let svg = crate::charts::heatmap(&c.heatmap())?;
    crate::util::atomic_write_bytes(&c.out.join("cross.svg"), svg.as_bytes())
}

impl std::fmt::Display for Cross {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: UA on {} shared labels ({}); rows: trained on, columns: tested on; diagonal: within-corpus (speaker-independent folds)",
            self.name,
            self.labels.len(),
            self.labels.join(", ")
        )?;
        let w = self
            .corpora
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .max(13);
        write!(f, "  {:<w$}", "")?;
        for c in &self.corpora {
            write!(f, "  {c:>w$}")?;
        }
        writeln!(f)?;
        for a in &self.corpora {
            write!(f, "  {a:<w$}")?;
            for b in &self.corpora {
                let v = self.cell(a, b).map_or("-".to_string(), |x| {
                    format!("{:.3} ± {:.3}", x.ua, x.ua_std)
                });
                write!(f, "  {v:>w$}")?;
            }
            writeln!(f)?;
        }
        for (c, why) in &self.left_out {
            if !why.is_empty() {
                writeln!(
                    f,
                    "  {c}: left out {}",
                    why.iter()
                        .map(|(k, n)| format!("{n} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            }
        }
        write!(f, "  → {}", self.out.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_labels_keep_the_first_order() {
        let a = vec!["anger".to_string(), "boredom".into(), "sadness".into()];
        let b = vec!["sadness".to_string(), "anger".into(), "calm".into()];
        assert_eq!(shared_labels(&[a, b]), vec!["anger", "sadness"]);
    }
}
