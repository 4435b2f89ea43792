//! The leakage panel: speaker-leaky and test-as-validation entries beside speaker-independent ones.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn leakage(&mut self) -> Result<Section> {
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
}
