//! The leaderboard: every entry (experiment, or sweep trial) with UA, WA and macro-F1 over its runs.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn leaderboard(&mut self) -> Result<Section> {
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
                if e.classical {
                    e.model_size.clone()
                } else {
                    count(e.parameters)
                },
                if e.classical {
                    e.fit_seconds
                        .map(|s| format!("{s:.2} fit"))
                        .unwrap_or_default()
                } else {
                    e.seconds_per_epoch
                        .map(|s| format!("{s:.2}"))
                        .unwrap_or_default()
                },
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
}
