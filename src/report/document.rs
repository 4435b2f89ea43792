//! The report as a document: sections of text, warnings, tables and charts, built from the
//! tables; [`super::markdown`] and [`super::html`] render it. Every number shown is formatted
//! here (percentages with one decimal, mean ± sample standard deviation), the exported tables
//! keep full precision.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::DataFrame;

use super::charts::{
    self, palette, Bar, BarChart, Heatmap, Interval, LineChart, Mark, Reference, Series,
};
use super::load::Loaded;
use super::tables::{bool_col, f64_col, opt_str_col, rows_where, str_col, u64_col, Tables};
use super::{plural, ReportOptions, Result};

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
    fn new(id: &str, title: &str, blocks: Vec<Block>) -> Section {
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

fn crema_references() -> Vec<Reference> {
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
struct Entry {
    name: String,
    experiment: String,
    trial: Option<String>,
    params: String,
    protocol: String,
    target: String,
    corpus: String,
    n_classes: u64,
    runs: u64,
    folds: u64,
    seeds: u64,
    ua: (Option<f64>, Option<f64>),
    wa: (Option<f64>, Option<f64>),
    f1: (Option<f64>, Option<f64>),
    val_ua: Option<f64>,
    parameters: u64,
    seconds_per_epoch: Option<f64>,
    device: String,
    leaky: bool,
    test_as_val: bool,
    crema_d: bool,
    synthetic: bool,
    chance: Option<f64>,
    warnings: String,
    /// Said about the entry without flagging it (transductive normalisation).
    notes: String,
}

impl Entry {
    fn flagged(&self) -> bool {
        !self.warnings.is_empty()
    }

    /// The leaderboard's warnings cell: flags (⚠) and notes (ℹ).
    fn remarks(&self) -> String {
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
    fn has_references(&self) -> bool {
        self.crema_d && self.target == "emotion" && self.n_classes == 6
    }

    fn color(&self) -> plotters::style::RGBColor {
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
    let spe = f("train_seconds_per_epoch")?;
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
            seconds_per_epoch: spe[i],
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

/// `41.2 ± 3.1` (percentages; no ± with a single run).
pub fn pm(v: (Option<f64>, Option<f64>)) -> String {
    match v {
        (Some(m), Some(s)) => format!("{:.1} ± {:.1}", m * 100.0, s * 100.0),
        (Some(m), None) => format!("{:.1}", m * 100.0),
        _ => "–".into(),
    }
}

fn count(n: u64) -> String {
    match n {
        0 => "–".into(),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Builds chart ids that are unique and safe as file names and HTML ids.
#[derive(Default)]
struct Ids(HashMap<String, usize>);

impl Ids {
    fn id(&mut self, parts: &[&str]) -> String {
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

struct Builder<'a> {
    loaded: &'a Loaded,
    tables: &'a Tables,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// Classes of each entry, in the runs' order.
    classes: HashMap<String, Vec<String>>,
    ids: Ids,
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
    let mut sections = Vec::new();
    let summary = b.summary(opts);
    if !b.entries.is_empty() {
        sections.push(b.leaderboard()?);
        sections.push(b.leakage()?);
        sections.push(b.paired(paired, opts.bootstrap)?);
        sections.push(b.per_class()?);
        sections.push(b.confusion()?);
        sections.push(b.curves()?);
        if b.tables.sweep_trials.height() > 0 {
            sections.push(b.sweeps()?);
        }
        sections.push(b.by_sex()?);
        if b.tables.importance.height() > 0 {
            sections.push(b.importance()?);
        }
    }
    sections.push(b.issues()?);
    sections.push(b.about(opts));
    Ok(Document {
        title: "emolab report".into(),
        summary,
        sections,
    })
}

impl Builder<'_> {
    fn entry(&self, name: &str) -> Option<&Entry> {
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

    fn leaderboard(&mut self) -> Result<Section> {
        let any_trial = self.entries.iter().any(|e| e.trial.is_some());
        let mut header: Vec<&str> = vec!["#", "entry"];
        if any_trial {
            header.push("trial parameters");
        }
        header.extend([
            "protocol",
            "target",
            "runs (folds × seeds)",
            "UA %",
            "WA %",
            "macro-F1 %",
            "val UA %",
            "parameters",
            "s / epoch",
            "device",
            "warnings",
        ]);
        let mut t = Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            source: Some("leaderboard".into()),
            ..Default::default()
        };
        for (i, e) in self.entries.iter().enumerate() {
            let mut row = vec![(i + 1).to_string(), e.name.clone()];
            if any_trial {
                row.push(e.params.clone());
            }
            row.extend([
                e.protocol.clone(),
                format!("{} ({} classes)", e.target, e.n_classes),
                format!("{} ({} × {})", e.runs, e.folds, e.seeds),
                pm(e.ua),
                pm(e.wa),
                pm(e.f1),
                pct(e.val_ua),
                count(e.parameters),
                e.seconds_per_epoch
                    .map(|s| format!("{s:.2}"))
                    .unwrap_or_else(|| "–".into()),
                e.device.clone(),
                e.remarks(),
            ]);
            t.rows.push(row);
            t.flagged.push(e.flagged());
        }
        t.numeric = t
            .header
            .iter()
            .map(|h| {
                h == "#"
                    || h.ends_with('%')
                    || h == "parameters"
                    || h == "s / epoch"
                    || h.starts_with("runs")
            })
            .collect();

        let bars: Vec<Bar> = self
            .entries
            .iter()
            .map(|e| Bar {
                label: e.name.clone(),
                value: e.ua.0.unwrap_or(0.0),
                err: e.ua.1,
                color: e.color(),
                chance: e.chance,
            })
            .collect();
        let references = if self.entries.iter().any(Entry::has_references) {
            crema_references()
        } else {
            Vec::new()
        };
        let chart = BarChart {
            title: "Test UA by entry (mean ± std over runs)".into(),
            axis: "UA (unweighted average recall)".into(),
            bars,
            references,
            legend: legend_for(&self.entries),
        };
        let chart = Chart {
            id: self.ids.id(&["leaderboard-ua"]),
            title: chart.title.clone(),
            svg: charts::bars(&chart)?,
        };
        let mut blocks = vec![
            Block::Text(
                "One row per experiment × model (× sweep trial). UA (unweighted average \
                 recall, the mean of per-class recalls), WA (accuracy) and macro-F1 on the \
                 test clips, as mean ± sample standard deviation over the entry's runs \
                 (folds × seeds; no ± with a single run). Speaker-independent emotion \
                 results come first, by mean UA; flagged entries follow."
                    .into(),
            ),
            Block::Table(t),
            Block::Charts(vec![chart]),
        ];
        if self.entries.iter().any(Entry::has_references) {
            blocks.push(Block::Text(
                "Grey ticks: chance (1 / number of classes) for each bar's task. Dashed lines \
                 and the band: published reference figures for CREMA-D with 6 emotions \
                 (they apply to the emotion entries only)."
                    .into(),
            ));
        } else {
            blocks.push(Block::Text(
                "Grey ticks: chance (1 / number of classes) for each bar's task.".into(),
            ));
        }
        Ok(Section::new("leaderboard", "Leaderboard", blocks))
    }

    fn leakage(&mut self) -> Result<Section> {
        let lk = &self.tables.leakage;
        let mut blocks = vec![Block::Text(
            "The same model under a speaker-leaky protocol (`random`: a clip-level split, the \
             same speakers on both sides; the seed's protocol also validated on the test \
             clips) next to a speaker-independent one. Matched on model and corpus; the gap \
             is the leaky mean UA minus the speaker-independent mean UA of the same target."
                .into(),
        )];
        if lk.height() == 0 {
            blocks.push(Block::Text(
                "No speaker-leaky runs among these results. To see the inflation, run the \
                 same model under the seed's protocol next to a speaker-independent one, e.g. \
                 `emolab run experiments/demo_random.yaml` next to `demo`, or \
                 `seed_m3_emotion` and `seed_m3_sentence` next to `cnn_v3`."
                    .into(),
            ));
            return Ok(Section::new("leakage", "Leakage panel", blocks));
        }
        let model = str_col(lk, "model")?;
        let corpus = str_col(lk, "corpus")?;
        let names = str_col(lk, "entry")?;
        let reference = opt_str_col(lk, "reference")?;
        let gap = f64_col(lk, "gap")?;
        let mut groups: Vec<(String, String)> = Vec::new();
        for i in 0..lk.height() {
            let k = (model[i].clone(), corpus[i].clone());
            if !groups.contains(&k) {
                groups.push(k);
            }
        }
        let mut all = Table {
            header: [
                "model",
                "corpus",
                "entry",
                "protocol",
                "target",
                "chance %",
                "runs",
                "UA %",
                "gap vs speaker-independent (points)",
                "warnings",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            numeric: vec![
                false, false, false, false, false, true, true, true, true, false,
            ],
            source: Some("leakage".into()),
            ..Default::default()
        };
        let mut group_charts = Vec::new();
        for (m, c) in &groups {
            let rows: Vec<usize> = (0..lk.height())
                .filter(|&i| &model[i] == m && &corpus[i] == c)
                .collect();
            let mut bars = Vec::new();
            let mut crema = false;
            for &i in &rows {
                let Some(e) = self.entry(&names[i]).cloned() else {
                    continue;
                };
                crema |= e.crema_d;
                let gap_text = match (gap[i], &reference[i]) {
                    (Some(g), Some(r)) => format!("{:+.1} (vs `{r}`)", g * 100.0),
                    _ if e.leaky => "– (no speaker-independent run of this target)".into(),
                    _ => "reference".into(),
                };
                all.rows.push(vec![
                    m.clone(),
                    c.clone(),
                    e.name.clone(),
                    e.protocol.clone(),
                    format!("{} ({} classes)", e.target, e.n_classes),
                    pct(e.chance),
                    e.runs.to_string(),
                    pm(e.ua),
                    gap_text,
                    e.remarks(),
                ]);
                all.flagged.push(e.flagged());
                bars.push(Bar {
                    label: format!("{} ({}, {})", e.experiment, e.protocol, e.target),
                    value: e.ua.0.unwrap_or(0.0),
                    err: e.ua.1,
                    color: e.color(),
                    chance: e.chance,
                });
                let mut warn = Vec::new();
                if e.leaky {
                    warn.push(
                        "speaker-leaky: the same speakers are in training and test, so the \
                         model can recognise voices instead of emotions",
                    );
                }
                if e.test_as_val {
                    warn.push(
                        "the test clips were also the validation set (learning-rate schedule \
                         and model selection saw them)",
                    );
                }
                if e.target != "emotion" {
                    warn.push(
                        "the target is not the emotion: this is the seed's sentence-ID \
                         protocol (its \"86–94%\" were sentence accuracies), not emotion \
                         recognition",
                    );
                }
                if !warn.is_empty() {
                    blocks.push(Block::Warning(format!(
                        "`{}` (UA {}%): {}.",
                        e.name,
                        pm(e.ua),
                        warn.join("; ")
                    )));
                }
            }
            let chart = BarChart {
                title: format!("{m} on {c}: leaky vs speaker-independent"),
                axis: "test UA".into(),
                bars,
                references: if crema {
                    crema_references()
                } else {
                    Vec::new()
                },
                legend: vec![
                    ("speaker-independent".into(), Mark::Swatch(palette::CLEAN)),
                    (
                        "speaker-leaky / test as val".into(),
                        Mark::Swatch(palette::LEAKY),
                    ),
                    (
                        "target not emotion".into(),
                        Mark::Swatch(palette::OTHER_TARGET),
                    ),
                    ("chance (per task)".into(), Mark::Tick(palette::CHANCE)),
                ],
            };
            group_charts.push(Chart {
                id: self.ids.id(&["leakage", m, c]),
                title: chart.title.clone(),
                svg: charts::bars(&chart)?,
            });
        }
        blocks.push(Block::Table(all));
        blocks.push(Block::Charts(group_charts));
        blocks.push(Block::Text(
            "Grey ticks: each bar's chance level (1 / number of classes: CREMA-D's sentence \
             target has 12 classes, its emotions 6). Reference lines and the band, on \
             CREMA-D: published figures for the 6-emotion task, speaker-independent. \
             Random clip splits with augmentation applied before splitting report 90%+: that \
             is leakage, not skill."
                .into(),
        ));
        Ok(Section::new("leakage", "Leakage panel", blocks))
    }

    fn paired(&mut self, paired: &DataFrame, bootstrap: usize) -> Result<Section> {
        let mut blocks = vec![Block::Text(format!(
            "Entries evaluated on the same test clips (runs joined on corpus, protocol, \
             target, class set, split seed, fold and seed; predictions joined on `clip_id`). \
             The difference is the mean over paired runs of UA(A) − UA(B), A being the entry \
             ranked higher. The 95% interval is a percentile bootstrap with {bootstrap} \
             resamples of the test clips, drawn with replacement within each paired run and \
             each true class, from a fixed seed (the report is deterministic). Clips of one \
             speaker are correlated, so the interval is on the optimistic side: read it with \
             the number of paired runs A wins. Sweep trials other than the selected one are \
             left out."
        ))];
        if paired.height() == 0 {
            blocks.push(Block::Text(
                "No two entries share test sets (same corpus, protocol, target, classes, \
                 split seed, fold and seed) with predictions: nothing to pair."
                    .into(),
            ));
            return Ok(Section::new("paired", "Paired comparisons", blocks));
        }
        let a = str_col(paired, "a")?;
        let b = str_col(paired, "b")?;
        let protocol = str_col(paired, "protocol")?;
        let runs = u64_col(paired, "paired_runs")?;
        let clips = u64_col(paired, "clips")?;
        let ua_a = f64_col(paired, "ua_a")?;
        let ua_b = f64_col(paired, "ua_b")?;
        let diff = f64_col(paired, "difference")?;
        let lo = f64_col(paired, "ci_low")?;
        let hi = f64_col(paired, "ci_high")?;
        let wins = u64_col(paired, "a_wins")?;
        let verdict = str_col(paired, "verdict")?;
        let mut t = Table {
            header: [
                "A",
                "B",
                "protocol",
                "paired runs",
                "clips",
                "UA A %",
                "UA B %",
                "A − B (points)",
                "95% interval",
                "A wins",
                "verdict",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            numeric: vec![
                false, false, false, true, true, true, true, true, true, true, false,
            ],
            source: Some("paired".into()),
            ..Default::default()
        };
        let mut rows = Vec::new();
        for i in 0..paired.height() {
            let points = |v: Option<f64>| {
                v.map(|v| format!("{:+.1}", v * 100.0))
                    .unwrap_or_else(|| "–".into())
            };
            t.rows.push(vec![
                a[i].clone(),
                b[i].clone(),
                protocol[i].clone(),
                runs[i].to_string(),
                clips[i].to_string(),
                pct(ua_a[i]),
                pct(ua_b[i]),
                points(diff[i]),
                format!("[{}, {}]", points(lo[i]), points(hi[i])),
                format!("{} / {}", wins[i], runs[i]),
                verdict[i].clone(),
            ]);
            let flagged = [&a[i], &b[i]]
                .iter()
                .any(|e| self.entry(e).is_some_and(Entry::flagged));
            t.flagged.push(flagged);
            rows.push(Interval {
                label: format!("{} vs {}", a[i], b[i]),
                estimate: diff[i].unwrap_or(0.0),
                low: lo[i].unwrap_or(0.0),
                high: hi[i].unwrap_or(0.0),
            });
        }
        let chart = Chart {
            id: self.ids.id(&["paired"]),
            title: "Paired UA differences".into(),
            svg: charts::forest(
                "Paired UA differences, A − B, with 95% bootstrap intervals",
                "UA difference (points)",
                &rows,
            )?,
        };
        blocks.push(Block::Table(t));
        blocks.push(Block::Charts(vec![chart]));
        Ok(Section::new("paired", "Paired comparisons", blocks))
    }

    fn per_class(&mut self) -> Result<Section> {
        let wide = &self.tables.per_class_f1;
        let cols: Vec<String> = wide
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .filter(|c| c != "entry")
            .collect();
        let names = str_col(wide, "entry")?;
        let mut values: Vec<Vec<Option<f64>>> = Vec::new();
        for c in &cols {
            values.push(f64_col(wide, c)?);
        }
        let mut t = Table {
            header: std::iter::once("entry".to_string())
                .chain(cols.iter().map(|c| format!("{c} %")))
                .collect(),
            numeric: std::iter::once(false)
                .chain(cols.iter().map(|_| true))
                .collect(),
            source: Some("per_class_f1".into()),
            ..Default::default()
        };
        for (i, n) in names.iter().enumerate() {
            let mut row = vec![n.clone()];
            row.extend(values.iter().map(|v| pct(v[i])));
            t.rows.push(row);
            t.flagged.push(self.entry(n).is_some_and(Entry::flagged));
        }
        // One heat map per class set (emotions and sentences do not share columns).
        let mut sets: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let classes = self.classes.get(n).cloned().unwrap_or_default();
            match sets.iter_mut().find(|s| s.0 == classes) {
                Some(s) => s.1.push(i),
                None => sets.push((classes, vec![i])),
            }
        }
        let mut charts_row = Vec::new();
        for (classes, members) in &sets {
            let idx: Vec<Option<usize>> = classes
                .iter()
                .map(|c| cols.iter().position(|x| x == c))
                .collect();
            let cell = |i: usize, j: usize| idx[j].and_then(|k| values[k][i]);
            let hm = Heatmap {
                title: format!("Per-class F1 ({} classes)", classes.len()),
                rows: members.iter().map(|&i| names[i].clone()).collect(),
                cols: classes.clone(),
                intensity: members
                    .iter()
                    .map(|&i| {
                        (0..classes.len())
                            .map(|j| cell(i, j).unwrap_or(0.0))
                            .collect()
                    })
                    .collect(),
                text: members
                    .iter()
                    .map(|&i| (0..classes.len()).map(|j| pct(cell(i, j))).collect())
                    .collect(),
                row_axis: "entry".into(),
                col_axis: "class (F1 %)".into(),
            };
            charts_row.push(Chart {
                id: self.ids.id(&["per-class-f1", &classes.len().to_string()]),
                title: hm.title.clone(),
                svg: charts::heatmap(&hm)?,
            });
        }
        Ok(Section {
            id: "per-class".into(),
            title: "Per-class F1".into(),
            blocks: vec![
                Block::Text(
                    "Mean F1 per class over each entry's runs (a pivot of `tables/per_class`, \
                     which also has precision, recall and support)."
                        .into(),
                ),
                Block::Table(t),
                Block::Charts(charts_row),
            ],
        })
    }

    fn confusion(&mut self) -> Result<Section> {
        let mut blocks = vec![Block::Text(
            "Test confusion matrices summed over each entry's runs: counts, and row-normalised \
             (each row is a true class; the diagonal is its recall). Shown for every entry \
             except sweep trials other than the selected one."
                .into(),
        )];
        for name in self.tables.focus.clone() {
            let classes = self.classes.get(&name).cloned().unwrap_or_default();
            let df = rows_where(&self.tables.confusion, "entry", &name)?;
            let truth = str_col(&df, "truth")?;
            let pred = str_col(&df, "prediction")?;
            let counts = u64_col(&df, "count")?;
            let share = f64_col(&df, "row_share")?;
            let k = classes.len();
            let pos = |c: &str| classes.iter().position(|x| x == c);
            let mut m = vec![vec![0u64; k]; k];
            let mut s = vec![vec![0f64; k]; k];
            for i in 0..df.height() {
                if let (Some(a), Some(b)) = (pos(&truth[i]), pos(&pred[i])) {
                    m[a][b] = counts[i];
                    s[a][b] = share[i].unwrap_or(0.0);
                }
            }
            let max = m.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
            let counts_map = Heatmap {
                title: format!("{name}: counts"),
                rows: classes.clone(),
                cols: classes.clone(),
                intensity: m
                    .iter()
                    .map(|r| r.iter().map(|v| *v as f64 / max).collect())
                    .collect(),
                text: m
                    .iter()
                    .map(|r| r.iter().map(|v| v.to_string()).collect())
                    .collect(),
                row_axis: "true class".into(),
                col_axis: "predicted class".into(),
            };
            let share_map = Heatmap {
                title: format!("{name}: row-normalised"),
                rows: classes.clone(),
                cols: classes.clone(),
                intensity: s.clone(),
                text: s
                    .iter()
                    .map(|r| r.iter().map(|v| format!("{:.0}%", v * 100.0)).collect())
                    .collect(),
                row_axis: "true class".into(),
                col_axis: "predicted class".into(),
            };
            let mut heading = name.clone();
            if let Some(e) = self.entry(&name) {
                if e.flagged() {
                    heading.push_str(&format!(" (⚠ {})", e.warnings));
                }
            }
            blocks.push(Block::Heading(heading));
            blocks.push(Block::Charts(vec![
                Chart {
                    id: self.ids.id(&["confusion-counts", &name]),
                    title: counts_map.title.clone(),
                    svg: charts::heatmap(&counts_map)?,
                },
                Chart {
                    id: self.ids.id(&["confusion-share", &name]),
                    title: share_map.title.clone(),
                    svg: charts::heatmap(&share_map)?,
                },
            ]));
        }
        Ok(Section::new("confusion", "Confusion matrices", blocks))
    }

    fn curves(&mut self) -> Result<Section> {
        let mut blocks = vec![Block::Text(
            "Training and validation loss and UA per epoch, averaged over each entry's runs \
             (runs stopped early drop out of the later epochs' means). Training UA is measured \
             on the training batches in training mode (dropout and augmentation on). For \
             entries that validated on the test clips, \"val\" is the test set."
                .into(),
        )];
        let mut any = false;
        for name in self.tables.focus.clone() {
            let df = rows_where(&self.tables.curves, "entry", &name)?;
            if df.height() == 0 {
                continue;
            }
            any = true;
            let epoch: Vec<f64> = u64_col(&df, "epoch")?
                .into_iter()
                .map(|e| e as f64)
                .collect();
            let pts = |c: &str| -> Result<Vec<(f64, f64)>> {
                Ok(epoch
                    .iter()
                    .zip(f64_col(&df, c)?)
                    .filter_map(|(x, y)| y.map(|y| (*x, y)))
                    .collect())
            };
            let e = self.entry(&name).cloned();
            let val_name = if e.as_ref().is_some_and(|e| e.test_as_val) {
                "val (= test clips)"
            } else {
                "val"
            };
            let loss = LineChart {
                title: format!("{name}: loss"),
                x_axis: "epoch".into(),
                y_axis: "loss".into(),
                series: vec![
                    Series {
                        name: "train".into(),
                        points: pts("train_loss")?,
                        color: palette::TRAIN,
                        dashed: true,
                        dots: false,
                    },
                    Series {
                        name: val_name.into(),
                        points: pts("val_loss")?,
                        color: palette::VAL,
                        dashed: false,
                        dots: false,
                    },
                ],
                y_range: None,
                hlines: Vec::new(),
                x_names: None,
                percent: false,
            };
            let ua = LineChart {
                title: format!("{name}: UA"),
                x_axis: "epoch".into(),
                y_axis: "UA".into(),
                series: vec![
                    Series {
                        name: "train".into(),
                        points: pts("train_ua")?,
                        color: palette::TRAIN,
                        dashed: true,
                        dots: false,
                    },
                    Series {
                        name: val_name.into(),
                        points: pts("val_ua")?,
                        color: palette::VAL,
                        dashed: false,
                        dots: false,
                    },
                ],
                y_range: Some((0.0, 1.0)),
                hlines: e
                    .and_then(|e| e.chance)
                    .map(|c| vec![("chance".to_string(), c, palette::CHANCE)])
                    .unwrap_or_default(),
                x_names: None,
                percent: true,
            };
            blocks.push(Block::Heading(name.clone()));
            blocks.push(Block::Charts(vec![
                Chart {
                    id: self.ids.id(&["curve-loss", &name]),
                    title: loss.title.clone(),
                    svg: charts::lines(&loss)?,
                },
                Chart {
                    id: self.ids.id(&["curve-ua", &name]),
                    title: ua.title.clone(),
                    svg: charts::lines(&ua)?,
                },
            ]));
        }
        if !any {
            blocks.push(Block::Text(
                "No `history.parquet` in these runs: no learning curves.".into(),
            ));
        }
        Ok(Section::new("curves", "Learning curves", blocks))
    }

    fn sweeps(&mut self) -> Result<Section> {
        let trials = &self.tables.sweep_trials;
        let mut blocks = vec![Block::Text(
            "Each sweep's trials ranked by mean validation UA, the only figure used to \
             choose (★ = selected); test figures are reported, never used to choose. The \
             charts give, for each parameter value, the mean over the trials that have it."
                .into(),
        )];
        let exps = str_col(trials, "experiment")?;
        let mut seen = Vec::new();
        for e in &exps {
            if !seen.contains(e) {
                seen.push(e.clone());
            }
        }
        for exp in seen {
            let t = rows_where(trials, "experiment", &exp)?;
            let id = str_col(&t, "trial")?;
            let params = str_col(&t, "params")?;
            let runs = u64_col(&t, "runs")?;
            let val = f64_col(&t, "val_ua")?;
            let ua = f64_col(&t, "test_ua")?;
            let wa = f64_col(&t, "test_wa")?;
            let f1 = f64_col(&t, "test_macro_f1")?;
            let sel = bool_col(&t, "selected")?;
            let mut table = Table {
                header: [
                    "trial",
                    "parameters",
                    "runs",
                    "val UA %",
                    "test UA %",
                    "test WA %",
                    "test macro-F1 %",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                numeric: vec![false, false, true, true, true, true, true],
                source: Some("sweep_trials".into()),
                ..Default::default()
            };
            for i in 0..t.height() {
                table.rows.push(vec![
                    if sel[i] {
                        format!("★ {}", id[i])
                    } else {
                        id[i].clone()
                    },
                    params[i].clone(),
                    runs[i].to_string(),
                    pct(val[i]),
                    pct(ua[i]),
                    pct(wa[i]),
                    pct(f1[i]),
                ]);
                table.flagged.push(false);
            }
            blocks.push(Block::Heading(format!("Sweep {exp}")));
            blocks.push(Block::Table(table));

            let marg = rows_where(&self.tables.sweep_params, "experiment", &exp)?;
            let pname = str_col(&marg, "parameter")?;
            let value = str_col(&marg, "value")?;
            let mval = f64_col(&marg, "val_ua")?;
            let mua = f64_col(&marg, "test_ua")?;
            let mut keys: Vec<String> = Vec::new();
            for p in &pname {
                if !keys.contains(p) {
                    keys.push(p.clone());
                }
            }
            let mut row = Vec::new();
            for k in keys {
                let idx: Vec<usize> = (0..marg.height()).filter(|&i| pname[i] == k).collect();
                let names: Vec<String> = idx.iter().map(|&i| value[i].clone()).collect();
                let series = |v: &[Option<f64>]| -> Vec<(f64, f64)> {
                    idx.iter()
                        .enumerate()
                        .filter_map(|(x, &i)| v[i].map(|y| (x as f64, y)))
                        .collect()
                };
                let chart = LineChart {
                    title: format!("{exp}: UA by {k}"),
                    x_axis: k.clone(),
                    y_axis: "UA".into(),
                    series: vec![
                        Series {
                            name: "validation UA (selects)".into(),
                            points: series(&mval),
                            color: palette::VAL,
                            dashed: false,
                            dots: true,
                        },
                        Series {
                            name: "test UA (reported)".into(),
                            points: series(&mua),
                            color: palette::TRAIN,
                            dashed: true,
                            dots: true,
                        },
                    ],
                    y_range: None,
                    hlines: Vec::new(),
                    x_names: Some(names),
                    percent: true,
                };
                row.push(Chart {
                    id: self.ids.id(&["sweep", &exp, &k]),
                    title: chart.title.clone(),
                    svg: charts::lines(&chart)?,
                });
            }
            if !row.is_empty() {
                blocks.push(Block::Charts(row));
            }
        }
        Ok(Section::new("sweeps", "Sweeps", blocks))
    }

    /// The most important features of each clip-vector entry (permutation importance on the
    /// validation speakers).
    fn importance(&mut self) -> Result<Section> {
        const TOP: usize = 15;
        let df = &self.tables.importance;
        let entries = str_col(df, "entry")?;
        let features = str_col(df, "feature")?;
        let values = f64_col(df, "importance")?;
        let stds = f64_col(df, "importance_std")?;
        let runs = u64_col(df, "runs")?;
        let mut blocks = vec![Block::Text(
            "Permutation importance: how much validation UA drops when one feature is shuffled \
             across the validation speakers' clips (mean of 5 shuffles, with the model fitted on \
             the training clips; test clips are not used), averaged over the entry's runs (± \
             standard deviation over runs). The chart shows each feature's share of the summed \
             positive drops."
                .into(),
        )];
        let mut order: Vec<String> = Vec::new();
        for e in &entries {
            if !order.contains(e) {
                order.push(e.clone());
            }
        }
        for entry in order {
            let idx: Vec<usize> = (0..entries.len())
                .filter(|&i| entries[i] == entry)
                .collect();
            let mut t = Table {
                header: vec![
                    "feature".into(),
                    "UA drop (points)".into(),
                    "± over runs".into(),
                    "runs".into(),
                ],
                numeric: vec![false, true, true, true],
                source: Some("importance".into()),
                ..Default::default()
            };
            let total: f64 = idx
                .iter()
                .filter_map(|&i| values[i])
                .filter(|v| *v > 0.0)
                .sum();
            let mut bars = Vec::new();
            for &i in idx.iter().take(TOP) {
                let v = values[i].unwrap_or(0.0);
                t.rows.push(vec![
                    features[i].clone(),
                    format!("{:+.2}", v * 100.0),
                    stds[i].map_or("–".into(), |s| format!("{:.2}", s * 100.0)),
                    runs[i].to_string(),
                ]);
                t.flagged.push(false);
                bars.push(Bar {
                    label: features[i].clone(),
                    value: if total > 0.0 { v.max(0.0) / total } else { 0.0 },
                    err: None,
                    color: palette::CLEAN,
                    chance: None,
                });
            }
            blocks.push(Block::Heading(entry.clone()));
            blocks.push(Block::Table(t));
            let chart = BarChart {
                title: format!("{entry}: share of the validation UA drop"),
                axis: "share".into(),
                bars,
                references: Vec::new(),
                legend: Vec::new(),
            };
            blocks.push(Block::Charts(vec![Chart {
                id: self.ids.id(&["importance", &entry]),
                title: chart.title.clone(),
                svg: charts::bars(&chart)?,
            }]));
        }
        Ok(Section::new("importance", "Feature importance", blocks))
    }

    fn by_sex(&mut self) -> Result<Section> {
        let long = &self.tables.by_sex;
        let mut blocks = vec![Block::Text(
            "Test UA per speaker sex (where the corpus records it), mean over each entry's \
             runs; the gap is female − male."
                .into(),
        )];
        if long.height() == 0 {
            blocks.push(Block::Text(
                "Speaker sex is not known for these runs' corpora.".into(),
            ));
            return Ok(Section::new("sex", "By speaker sex", blocks));
        }
        let wide = &self.tables.by_sex_ua;
        let sexes: Vec<String> = wide
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .filter(|c| c != "entry")
            .collect();
        let names = str_col(wide, "entry")?;
        let mut values = BTreeMap::new();
        for s in &sexes {
            values.insert(s.clone(), f64_col(wide, s)?);
        }
        let gap_ok = values.contains_key("female") && values.contains_key("male");
        let mut header = vec!["entry".to_string()];
        header.extend(sexes.iter().map(|s| format!("{s} UA %")));
        if gap_ok {
            header.push("female − male (points)".into());
        }
        let mut t = Table {
            numeric: header.iter().map(|h| h != "entry").collect(),
            header,
            source: Some("by_sex_ua".into()),
            ..Default::default()
        };
        let mut bars = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let mut row = vec![n.clone()];
            for s in &sexes {
                row.push(pct(values[s][i]));
            }
            if gap_ok {
                row.push(match (values["female"][i], values["male"][i]) {
                    (Some(f), Some(m)) => format!("{:+.1}", (f - m) * 100.0),
                    _ => "–".into(),
                });
            }
            t.rows.push(row);
            t.flagged.push(self.entry(n).is_some_and(Entry::flagged));
            if self.tables.focus.contains(n) {
                for s in &sexes {
                    if let Some(v) = values[s][i] {
                        bars.push(Bar {
                            label: format!("{n} · {s}"),
                            value: v,
                            err: None,
                            color: if s == "female" {
                                palette::FEMALE
                            } else {
                                palette::MALE
                            },
                            chance: self.entry(n).and_then(|e| e.chance),
                        });
                    }
                }
            }
        }
        let chart = BarChart {
            title: "Test UA by speaker sex".into(),
            axis: "UA".into(),
            bars,
            references: Vec::new(),
            legend: vec![
                ("female".into(), Mark::Swatch(palette::FEMALE)),
                ("male".into(), Mark::Swatch(palette::MALE)),
                ("chance".into(), Mark::Tick(palette::CHANCE)),
            ],
        };
        blocks.push(Block::Table(t));
        blocks.push(Block::Charts(vec![Chart {
            id: self.ids.id(&["by-sex"]),
            title: chart.title.clone(),
            svg: charts::bars(&chart)?,
        }]));
        Ok(Section::new("sex", "By speaker sex", blocks))
    }

    fn issues(&mut self) -> Result<Section> {
        let df = &self.tables.issues;
        let mut blocks = Vec::new();
        if df.height() == 0 {
            blocks.push(Block::Text(
                "None: every run folder is complete with all its files.".into(),
            ));
        } else {
            blocks.push(Block::Text(
                "Run folders that are not (entirely) in this report. Running or interrupted \
                 runs resume with `emolab run`; failed runs give their error."
                    .into(),
            ));
            let exp = str_col(df, "experiment")?;
            let run = str_col(df, "run")?;
            let status = str_col(df, "status")?;
            let inc = bool_col(df, "in_report")?;
            let problem = str_col(df, "problem")?;
            let mut t = Table {
                header: ["experiment", "run", "status", "in report", "problem"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                numeric: vec![false; 5],
                source: Some("issues".into()),
                ..Default::default()
            };
            for i in 0..df.height() {
                t.rows.push(vec![
                    exp[i].clone(),
                    run[i].clone(),
                    status[i].clone(),
                    if inc[i] { "partly" } else { "no" }.into(),
                    problem[i].clone(),
                ]);
                t.flagged.push(!inc[i]);
            }
            blocks.push(Block::Table(t));
        }
        Ok(Section::new("issues", "Missing or partial runs", blocks))
    }

    fn about(&self, opts: &ReportOptions) -> Section {
        let mut list = vec![
            "Protocols: `speaker_kfold` (folds of disjoint speakers; validation speakers \
             carved from training speakers), `loso` (leave one speaker out), \
             `speaker_holdout` (one fixed speaker split) are speaker-independent; `random` \
             (a clip-level split, the seed's protocol) is speaker-leaky."
                .to_string(),
            "UA: mean recall over the classes present in the test truth (balanced accuracy); \
             WA: accuracy; macro-F1: mean F1 over the classes present in the truth or the \
             predictions (scikit-learn's definitions)."
                .to_string(),
            "CREMA-D reference figures (6 emotions): human raters, audio only (Cao et al., 2014), \
             40.9%; frozen self-supervised encoders with linear probes on an actor-disjoint \
             split: wav2vec2 65.5%, Whisper-large-v3 76.2%; CNNs from scratch on log-mel with \
             speaker-independent splits: roughly 55–65%. They are drawn for runs on a corpus \
             in CREMA-D format (or whose path names CREMA-D) with the 6-emotion target."
                .to_string(),
            format!(
                "Tables: every table is in `tables/` as CSV and Parquet; charts are in \
                 `charts/` as SVG. Bootstrap: {} resamples, seed {}.",
                opts.bootstrap, opts.seed
            ),
        ];
        list.push(format!(
            "Generated by emolab {} from `{}`.",
            env!("CARGO_PKG_VERSION"),
            opts.results.display()
        ));
        Section {
            id: "about".into(),
            title: "How to read this report".into(),
            blocks: vec![Block::List(list)],
        }
    }
}

fn legend_for(entries: &[Entry]) -> Vec<(String, Mark)> {
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
