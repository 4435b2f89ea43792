//! Test UA per speaker sex.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn by_sex(&mut self) -> Result<Section> {
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
        let sexes = value_columns(wide);
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
}
