//! Sweeps: every trial and the one selected on validation.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn sweeps(&mut self) -> Result<Section> {
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
}
