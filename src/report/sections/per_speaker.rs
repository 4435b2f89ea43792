//! UA per test speaker: how far the mean hides a speaker the model fails on.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn per_speaker(&mut self) -> Result<Section> {
        let df = &self.tables.per_speaker;
        let mut blocks = vec![Block::Text(
            "Test UA per speaker (each speaker is tested in one fold; with several seeds, the \
             mean over them), for every focus entry: the spread over speakers, and the five \
             worst speakers first."
                .into(),
        )];
        if df.height() == 0 {
            blocks.push(Block::Text("No run records its test speakers.".into()));
            return Ok(Section::new("speakers", "Per speaker", blocks));
        }
        let entry = str_col(df, "entry")?;
        let speaker = str_col(df, "speaker")?;
        let ua = f64_col(df, "ua_mean")?;
        let clips = u64_col(df, "clips")?;
        let mut t = Table {
            header: [
                "entry",
                "speakers",
                "UA % mean ± sd over speakers",
                "min",
                "max",
                "worst speakers (UA %, clips)",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            numeric: vec![false, true, true, true, true, false],
            source: Some("per_speaker".into()),
            ..Default::default()
        };
        let mut bars = Vec::new();
        for name in self.tables.focus.clone() {
            let rows: Vec<usize> = (0..df.height())
                .filter(|&i| entry[i] == name && ua[i].is_some())
                .collect();
            if rows.is_empty() {
                continue;
            }
            let v: Vec<f64> = rows.iter().map(|&i| ua[i].expect("filtered")).collect();
            // Rows are sorted by UA within the entry: the first are the worst.
            let worst: Vec<String> = rows
                .iter()
                .take(5)
                .map(|&i| format!("{} ({}, {})", speaker[i], pct(ua[i]), clips[i]))
                .collect();
            t.rows.push(vec![
                name.clone(),
                v.len().to_string(),
                pm(mean_sd(&v)),
                pct(v.iter().cloned().reduce(f64::min)),
                pct(v.iter().cloned().reduce(f64::max)),
                worst.join(", "),
            ]);
            t.flagged
                .push(self.entry(&name).is_some_and(Entry::flagged));
            if bars.len() < 60 {
                for &i in &rows {
                    bars.push(Bar {
                        label: format!("{name} · {}", speaker[i]),
                        value: ua[i].expect("filtered"),
                        err: None,
                        color: self.entry(&name).map_or(palette::CLEAN, Entry::color),
                        chance: self.entry(&name).and_then(|e| e.chance),
                    });
                }
            }
        }
        blocks.push(Block::Table(t));
        if !bars.is_empty() {
            let chart = BarChart {
                title: "Test UA per speaker".into(),
                axis: "UA".into(),
                bars,
                references: Vec::new(),
                legend: legend_for(&self.entries),
            };
            blocks.push(Block::Charts(vec![Chart {
                id: self.ids.id(&["per-speaker"]),
                title: chart.title.clone(),
                svg: charts::bars(&chart)?,
            }]));
        }
        Ok(Section::new("speakers", "Per speaker", blocks))
    }
}
