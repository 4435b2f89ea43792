//! Confusion matrices of the focus entries.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn confusion(&mut self) -> Result<Section> {
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
}
