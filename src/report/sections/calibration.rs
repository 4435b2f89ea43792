//! Calibration: how far the probabilities can be trusted, before and after the temperature
//! each run fitted on its validation speakers, and what abstaining on unsure clips buys.

use super::prelude::*;
use crate::report::analyses::{BINS, COVERAGES};

impl Builder<'_> {
    pub(in crate::report) fn calibration(&mut self) -> Result<Section> {
        let df = &self.tables.calibration;
        let mut blocks = vec![Block::Text(format!(
            "Expected calibration error (ECE, {BINS} equal-width confidence bins; Guo et al., \
             ICML 2017) and negative log-likelihood of the test probabilities, as stored and \
             after temperature scaling with the temperature each run fitted on its validation \
             speakers (stored in `metrics.json` and applied by `emolab predict`). Selective \
             classification: test UA of the most confident fraction of clips, the model \
             abstaining on the rest; and at the abstain threshold each run chose on its \
             validation speakers (the prediction entropy under which 80% of them fall, \
             stored in `metrics.json` and flagged by `emolab predict`), the share of test \
             clips kept and their UA."
        ))];
        if df.height() == 0 {
            blocks.push(Block::Text("No run has test probabilities.".into()));
            return Ok(Section::new(
                "calibration",
                "Calibration and uncertainty",
                blocks,
            ));
        }
        let entry = str_col(df, "entry")?;
        let temp = f64_col(df, "temperature_mean")?;
        let ece = f64_col(df, "ece_mean")?;
        let ece_t = f64_col(df, "ece_scaled_mean")?;
        let nll = f64_col(df, "nll_mean")?;
        let nll_t = f64_col(df, "nll_scaled_mean")?;
        let cov: Vec<Vec<Option<f64>>> = COVERAGES
            .iter()
            .map(|c| f64_col(df, &format!("ua_at_{}", (c * 100.0).round() as u32)))
            .collect::<Result<_>>()?;
        let ab_cov = f64_col(df, "abstain_coverage_mean")?;
        let ab_ua = f64_col(df, "abstain_ua_mean")?;
        let mut header: Vec<String> = ["entry", "T", "ECE %", "ECE % (T)", "NLL", "NLL (T)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        header.extend(
            COVERAGES
                .iter()
                .map(|c| format!("UA % at {:.0}%", c * 100.0)),
        );
        header.extend([
            "kept % (val threshold)".to_string(),
            "UA % kept".to_string(),
        ]);
        let mut t = Table {
            numeric: header.iter().map(|h| h != "entry").collect(),
            header,
            source: Some("calibration".into()),
            ..Default::default()
        };
        let f2 = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
        for name in self.tables.focus.clone() {
            let Some(i) = (0..df.height()).find(|&i| entry[i] == name) else {
                continue;
            };
            let mut row = vec![
                name.clone(),
                f2(temp[i]),
                pct(ece[i]),
                pct(ece_t[i]),
                f2(nll[i]),
                f2(nll_t[i]),
            ];
            row.extend(cov.iter().map(|c| pct(c[i])));
            row.extend([pct(ab_cov[i]), pct(ab_ua[i])]);
            t.rows.push(row);
            t.flagged
                .push(self.entry(&name).is_some_and(Entry::flagged));
        }
        blocks.push(Block::Table(t));
        // Reliability diagrams of up to four focus entries.
        let bins = &self.tables.reliability;
        let b_entry = str_col(bins, "entry")?;
        let conf = f64_col(bins, "confidence")?;
        let acc = f64_col(bins, "accuracy")?;
        let mut series = vec![Series {
            name: "perfect calibration".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            color: palette::CHANCE,
            dashed: true,
            dots: false,
        }];
        for (k, name) in self.tables.focus.iter().take(4).enumerate() {
            let points: Vec<(f64, f64)> = (0..bins.height())
                .filter(|&i| &b_entry[i] == name)
                .filter_map(|i| Some((conf[i]?, acc[i]?)))
                .collect();
            if points.len() >= 2 {
                series.push(Series {
                    name: name.clone(),
                    points,
                    color: palette::SERIES[k % palette::SERIES.len()],
                    dashed: false,
                    dots: true,
                });
            }
        }
        if series.len() > 1 {
            let chart = LineChart {
                title: "Reliability (temperature-scaled)".into(),
                x_axis: "confidence".into(),
                y_axis: "accuracy".into(),
                series,
                y_range: Some((0.0, 1.0)),
                hlines: Vec::new(),
                x_names: None,
                percent: true,
            };
            blocks.push(Block::Charts(vec![Chart {
                id: self.ids.id(&["reliability"]),
                title: chart.title.clone(),
                svg: charts::lines(&chart)?,
            }]));
        }
        Ok(Section::new(
            "calibration",
            "Calibration and uncertainty",
            blocks,
        ))
    }
}
