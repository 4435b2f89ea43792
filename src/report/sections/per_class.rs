//! Per-class recall and F1 of each entry.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn per_class(&mut self) -> Result<Section> {
        let wide = &self.tables.per_class_f1;
        let cols = value_columns(wide);
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
}
