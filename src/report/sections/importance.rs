//! Feature importance (permutation, on the validation speakers) of clip-vector models.

use super::prelude::*;

impl Builder<'_> {
    /// The most important features of each clip-vector entry (permutation importance on the
    /// validation speakers).
    pub(in crate::report) fn importance(&mut self) -> Result<Section> {
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
}
