//! The report as a document: sections of text, warnings, tables and charts, built from the
//! tables; [`super::markdown`] and [`super::html`] render it. Every number shown is formatted
//! here (percentages with one decimal, mean ± sample standard deviation), the exported tables
//! keep full precision.

use std::collections::HashMap;

use polars::prelude::DataFrame;

use super::load::Loaded;
use super::tables::{bool_col, f64_col, opt_str_col, str_col, u64_col, Tables};
use super::{plural, ReportOptions, Result};
use crate::charts::{palette, Mark, Reference};

/// A whole report.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    /// Shown above the sections.
    pub summary: Vec<Block>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone)]
pub struct Section {
    /// Anchor (`#leaderboard`).
    pub id: String,
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Section {
    pub(in crate::report) fn new(id: &str, title: &str, blocks: Vec<Block>) -> Section {
        Section {
            id: id.into(),
            title: title.into(),
            blocks,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Block {
    /// A paragraph; `code` spans in backticks.
    Text(String),
    /// Something the reader must not miss (leakage, non-emotion targets).
    Warning(String),
    /// A sub-heading.
    Heading(String),
    Table(Table),
    /// Charts shown side by side.
    Charts(Vec<Chart>),
    /// A bulleted list.
    List(Vec<String>),
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Rows to highlight as not speaker-independent emotion results.
    pub flagged: Vec<bool>,
    /// Right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
    /// The exported table this one shows (`tables/<name>.csv`).
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem and HTML id.
    pub id: String,
    pub title: String,
    pub svg: String,
}

impl Document {
    /// Every chart, in order.
    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.sections.iter().flat_map(|s| {
            s.blocks.iter().flat_map(|b| match b {
                Block::Charts(c) => c.iter().collect::<Vec<_>>(),
                _ => Vec::new(),
            })
        })
    }
}

/// Published reference figures for CREMA-D, 6 emotions (human raters: Cao et al., 2014).
pub const CREMA_D_REFERENCES: [(&str, f64, f64); 4] = [
    ("human raters, audio only: 40.9%", 0.409, 0.409),
    ("CNNs from scratch, speaker-independent: 55–65%", 0.55, 0.65),
    ("wav2vec2, frozen + linear probe: 65.5%", 0.655, 0.655),
    (
        "Whisper-large-v3, frozen + linear probe: 76.2%",
        0.762,
        0.762,
    ),
];

pub(in crate::report) fn crema_references() -> Vec<Reference> {
    let colors = [
        palette::HUMAN,
        palette::CNN_BAND,
        palette::WAV2VEC2,
        palette::WHISPER,
    ];
    CREMA_D_REFERENCES
        .iter()
        .zip(colors)
        .map(|((label, from, to), color)| Reference {
            label: label.to_string(),
            from: *from,
            to: *to,
            color,
        })
        .collect()
}

/// A leaderboard row, typed.
#[derive(Debug, Clone)]
pub(in crate::report) struct Entry {
    pub(in crate::report) name: String,
    pub(in crate::report) experiment: String,
    pub(in crate::report) trial: Option<String>,
    pub(in crate::report) params: String,
    pub(in crate::report) protocol: String,
    pub(in crate::report) target: String,
    pub(in crate::report) corpus: String,
    pub(in crate::report) n_classes: u64,
    pub(in crate::report) runs: u64,
    pub(in crate::report) folds: u64,
    pub(in crate::report) seeds: u64,
    pub(in crate::report) ua: (Option<f64>, Option<f64>),
    pub(in crate::report) wa: (Option<f64>, Option<f64>),
    pub(in crate::report) f1: (Option<f64>, Option<f64>),
    pub(in crate::report) val_ua: Option<f64>,
    pub(in crate::report) parameters: u64,
    /// A classical model (or a fusion with one): no parameter count or epochs to show.
    pub(in crate::report) classical: bool,
    pub(in crate::report) seconds_per_epoch: Option<f64>,
    /// A classical model's size in its own terms (`412 SVs`, `300 trees`) and its mean fit
    /// time (fit, importance, refit), where the runs recorded them.
    pub(in crate::report) model_size: String,
    pub(in crate::report) fit_seconds: Option<f64>,
    pub(in crate::report) device: String,
    pub(in crate::report) leaky: bool,
    pub(in crate::report) test_as_val: bool,
    pub(in crate::report) crema_d: bool,
    pub(in crate::report) synthetic: bool,
    pub(in crate::report) chance: Option<f64>,
    pub(in crate::report) warnings: String,
    /// Said about the entry without flagging it (transductive normalisation).
    pub(in crate::report) notes: String,
}

impl Entry {
    pub(in crate::report) fn flagged(&self) -> bool {
        !self.warnings.is_empty()
    }

    /// The leaderboard's warnings cell: flags (⚠) and notes (ℹ).
    pub(in crate::report) fn remarks(&self) -> String {
        let mut out = Vec::new();
        if !self.warnings.is_empty() {
            out.push(format!("⚠ {}", self.warnings));
        }
        if !self.notes.is_empty() {
            out.push(format!("ℹ {}", self.notes));
        }
        out.join(" ")
    }

    /// Whether the CREMA-D reference figures apply: CREMA-D (or its stand-in), 6 emotions.
    pub(in crate::report) fn has_references(&self) -> bool {
        self.crema_d && self.target == "emotion" && self.n_classes == 6
    }

    pub(in crate::report) fn color(&self) -> plotters::style::RGBColor {
        if self.target != "emotion" {
            palette::OTHER_TARGET
        } else if self.leaky || self.test_as_val {
            palette::LEAKY
        } else {
            palette::CLEAN
        }
    }
}

fn entries(lb: &DataFrame) -> Result<Vec<Entry>> {
    let name = str_col(lb, "entry")?;
    let experiment = str_col(lb, "experiment")?;
    let model = str_col(lb, "model")?;
    let trial = opt_str_col(lb, "trial")?;
    let params = str_col(lb, "params")?;
    let protocol = str_col(lb, "protocol")?;
    let target = str_col(lb, "target")?;
    let corpus = str_col(lb, "corpus")?;
    let n_classes = u64_col(lb, "n_classes")?;
    let runs = u64_col(lb, "runs")?;
    let folds = u64_col(lb, "folds")?;
    let seeds = u64_col(lb, "seeds")?;
    let f = |c: &str| f64_col(lb, c);
    let (ua, ua_s, wa, wa_s, f1, f1_s) = (
        f("ua_mean")?,
        f("ua_std")?,
        f("wa_mean")?,
        f("wa_std")?,
        f("macro_f1_mean")?,
        f("macro_f1_std")?,
    );
    let val = f("val_ua_mean")?;
    let parameters = u64_col(lb, "parameters")?;
    let family = str_col(lb, "family")?;
    let spe = f("train_seconds_per_epoch")?;
    let model_size = str_col(lb, "model_size")?;
    let fit_seconds = f("fit_seconds")?;
    let chance = f("chance")?;
    let device = str_col(lb, "device")?;
    let leaky = bool_col(lb, "speaker_leaky")?;
    let tav = bool_col(lb, "test_as_val")?;
    let crema = bool_col(lb, "crema_d")?;
    let synth = bool_col(lb, "synthetic")?;
    let warnings = str_col(lb, "warnings")?;
    let notes = str_col(lb, "notes")?;
    Ok((0..lb.height())
        .map(|i| Entry {
            name: name[i].clone(),
            experiment: experiment[i].clone(),
            trial: trial[i].clone(),
            params: params[i].clone(),
            protocol: protocol[i].clone(),
            target: target[i].clone(),
            corpus: corpus[i].clone(),
            n_classes: n_classes[i],
            runs: runs[i],
            folds: folds[i],
            seeds: seeds[i],
            ua: (ua[i], ua_s[i]),
            wa: (wa[i], wa_s[i]),
            f1: (f1[i], f1_s[i]),
            val_ua: val[i],
            parameters: parameters[i],
            classical: is_classical(&family[i], &model[i]),
            seconds_per_epoch: spe[i],
            model_size: model_size[i].clone(),
            fit_seconds: fit_seconds[i],
            device: device[i].clone(),
            leaky: leaky[i],
            test_as_val: tav[i],
            crema_d: crema[i],
            synthetic: synth[i],
            chance: chance[i],
            warnings: warnings[i].clone(),
            notes: notes[i].clone(),
        })
        .collect())
}

/// `41.2` (a fraction as a percentage, one decimal).
pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{:.1}", v * 100.0),
        None => "–".into(),
    }
}

/// Mean and sample standard deviation of `v` (no deviation for fewer than two values, nothing
/// for none), as [`pm`] takes them.
pub fn mean_sd(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd =
        (v.len() > 1).then(|| (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (Some(m), sd)
}

/// `41.2 ± 3.1` (percentages; no ± with a single run).
pub fn pm(v: (Option<f64>, Option<f64>)) -> String {
    match v {
        (Some(m), Some(s)) => format!("{:.1} ± {:.1}", m * 100.0, s * 100.0),
        (Some(m), None) => format!("{:.1}", m * 100.0),
        _ => "–".into(),
    }
}

pub(in crate::report) fn count(n: u64) -> String {
    match n {
        0 => "–".into(),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Builds chart ids that are unique and safe as file names and HTML ids.
#[derive(Default)]
pub(in crate::report) struct Ids(HashMap<String, usize>);

impl Ids {
    pub(in crate::report) fn id(&mut self, parts: &[&str]) -> String {
        let mut s = String::new();
        for c in parts.join("-").to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                s.push(c);
            } else if !s.ends_with('-') {
                s.push('-');
            }
        }
        let s = s.trim_matches('-').to_string();
        let n = self.0.entry(s.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            s
        } else {
            format!("{s}-{n}")
        }
    }
}

pub(in crate::report) struct Builder<'a> {
    pub(in crate::report) loaded: &'a Loaded,
    pub(in crate::report) tables: &'a Tables,
    pub(in crate::report) entries: Vec<Entry>,
    pub(in crate::report) by_name: HashMap<String, usize>,
    /// Classes of each entry, in the runs' order.
    pub(in crate::report) classes: HashMap<String, Vec<String>>,
    pub(in crate::report) ids: Ids,
}

/// Whether an entry's models include a classical one (`svm`, `random_forest`, `logistic`;
/// a fusion names its members' models `a + b`).
fn is_classical(family: &str, model: &str) -> bool {
    const CLASSICAL: [&str; 3] = ["svm", "random_forest", "logistic"];
    CLASSICAL.contains(&family)
        || model
            .split(" + ")
            .any(|m| CLASSICAL.contains(&m.trim()) || m.trim().starts_with("svm"))
}

/// Build the document of a report.
pub fn build(
    opts: &ReportOptions,
    loaded: &Loaded,
    tables: &Tables,
    paired: &DataFrame,
) -> Result<Document> {
    let entries = entries(&tables.leaderboard)?;
    let by_name = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.clone(), i))
        .collect();
    let mut classes = HashMap::new();
    for r in &loaded.runs {
        classes
            .entry(r.entry())
            .or_insert_with(|| r.meta.classes.clone());
    }
    let mut b = Builder {
        loaded,
        tables,
        entries,
        by_name,
        classes,
        ids: Ids::default(),
    };
    let summary = b.summary(opts);
    let cx = super::sections::Context { opts, paired };
    let mut sections = Vec::new();
    for build in super::sections::SECTIONS {
        if let Some(s) = build(&mut b, &cx)? {
            sections.push(s);
        }
    }
    Ok(Document {
        title: "emolab report".into(),
        summary,
        sections,
    })
}

impl Builder<'_> {
    pub(in crate::report) fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|i| &self.entries[*i])
    }
    fn summary(&self, opts: &ReportOptions) -> Vec<Block> {
        let l = self.loaded;
        let mut out = Vec::new();
        if l.runs.is_empty() {
            out.push(Block::Text(format!(
                "No complete runs in `{}`{} yet: nothing to compare. Run an experiment first \
                 (`emolab run experiments/demo.yaml`, or `make demo`), then `emolab report` again.",
                opts.results.display(),
                if l.experiments.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", l.experiments.join(", "))
                }
            )));
        } else {
            out.push(Block::Text(format!(
                "{} from {} ({}) in `{}`: {}. {}",
                plural(l.runs.len(), "complete run"),
                plural(l.experiments.len(), "experiment"),
                l.experiments.join(", "),
                opts.results.display(),
                plural(self.entries.len(), "entry"),
                if l.issues.is_empty() {
                    "No missing or partial runs.".to_string()
                } else {
                    format!(
                        "{} run folder{} listed under Missing or partial runs.",
                        l.issues.len(),
                        if l.issues.len() == 1 { " is" } else { "s are" }
                    )
                }
            )));
        }
        let flagged: Vec<&Entry> = self.entries.iter().filter(|e| e.flagged()).collect();
        if !flagged.is_empty() {
            out.push(Block::Warning(format!(
                "{} of {} entries are not speaker-independent emotion results ({}): their \
                 figures are inflated by leakage or measure another task. They are marked and \
                 ranked after the others; see the leakage panel.",
                flagged.len(),
                self.entries.len(),
                flagged
                    .iter()
                    .map(|e| format!("`{}`: {}", e.name, e.warnings))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let synthetic: Vec<&str> = {
            let mut v: Vec<&str> = self
                .entries
                .iter()
                .filter(|e| e.synthetic)
                .map(|e| e.corpus.as_str())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        if !synthetic.is_empty() {
            out.push(Block::Warning(format!(
                "Corpus {} is the synthetic stand-in (`emolab synth`): these figures exercise \
                 the pipeline and say nothing about emotion recognition on real speech. The \
                 CREMA-D reference lines are for the real corpus.",
                synthetic
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        out
    }
}

pub(in crate::report) fn legend_for(entries: &[Entry]) -> Vec<(String, Mark)> {
    let mut l = vec![(
        "speaker-independent emotion".to_string(),
        Mark::Swatch(palette::CLEAN),
    )];
    if entries
        .iter()
        .any(|e| e.target == "emotion" && (e.leaky || e.test_as_val))
    {
        l.push((
            "speaker-leaky / test as val".into(),
            Mark::Swatch(palette::LEAKY),
        ));
    }
    if entries.iter().any(|e| e.target != "emotion") {
        l.push((
            "target not emotion".into(),
            Mark::Swatch(palette::OTHER_TARGET),
        ));
    }
    l.push(("chance (per task)".into(), Mark::Tick(palette::CHANCE)));
    l
}
