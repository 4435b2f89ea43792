//! Paired comparisons of entries on the same folds (bootstrap confidence intervals).

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn paired(
        &mut self,
        paired: &DataFrame,
        bootstrap: usize,
    ) -> Result<Section> {
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
}
