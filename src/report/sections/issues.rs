//! Missing or partial runs.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn issues(&mut self) -> Result<Section> {
        let df = &self.tables.issues;
        let mut blocks = Vec::new();
        if df.height() == 0 {
            blocks.push(Block::Text(
                "None: every run folder is complete with all its files.".into(),
            ));
        } else {
            blocks.push(Block::Text(
                "Run folders that are not (entirely) in this report. Running or interrupted \
                 runs resume with `emolab run`; failed runs give their error."
                    .into(),
            ));
            let exp = str_col(df, "experiment")?;
            let run = str_col(df, "run")?;
            let status = str_col(df, "status")?;
            let inc = bool_col(df, "in_report")?;
            let problem = str_col(df, "problem")?;
            let mut t = Table {
                header: ["experiment", "run", "status", "in report", "problem"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                numeric: vec![false; 5],
                source: Some("issues".into()),
                ..Default::default()
            };
            for i in 0..df.height() {
                t.rows.push(vec![
                    exp[i].clone(),
                    run[i].clone(),
                    status[i].clone(),
                    if inc[i] { "partly" } else { "no" }.into(),
                    problem[i].clone(),
                ]);
                t.flagged.push(!inc[i]);
            }
            blocks.push(Block::Table(t));
        }
        Ok(Section::new("issues", "Missing or partial runs", blocks))
    }
}
