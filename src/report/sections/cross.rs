//! Cross-corpus matrices (`emolab cross`): every `<results>/<name>/cross.json`, as a table and
//! a heat map beside each corpus' within-corpus, speaker-independent UA.

use super::prelude::*;
use crate::cross::Cross;

impl Builder<'_> {
    /// Every matrix among the report's experiment folders.
    pub(in crate::report) fn cross_corpus(&mut self) -> Result<Option<Section>> {
        let mut found: Vec<Cross> = self
            .loaded
            .experiments
            .iter()
            .filter_map(|n| Cross::read(&self.loaded.root.join(n)))
            .collect();
        if found.is_empty() {
            return Ok(None);
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        let mut blocks = vec![Block::Text(
            "Trained on one corpus (rows), tested on another (columns), on the labels all the \
             corpora of the matrix share. The diagonal is each corpus' within-corpus UA by its own \
             speaker-independent protocol; off the diagonal, the mean UA of that corpus' models \
             (every fold × seed) on all the clips of the other corpus with a shared label. Clips \
             with other labels are left out and counted (`emolab cross`)."
                .into(),
        )];
        for c in &found {
            blocks.push(Block::Heading(format!(
                "{}: {} shared labels ({})",
                c.name,
                c.labels.len(),
                c.labels.join(", ")
            )));
            let mut header = vec!["trained on \\ tested on".to_string()];
            header.extend(c.corpora.iter().cloned());
            let mut t = Table {
                numeric: header.iter().enumerate().map(|(i, _)| i > 0).collect(),
                header,
                source: None,
                ..Default::default()
            };
            for a in &c.corpora {
                let mut row = vec![a.clone()];
                for b in &c.corpora {
                    row.push(c.cell(a, b).map_or("–".into(), |x| {
                        format!("{:.1} ± {:.1}", x.ua * 100.0, x.ua_std * 100.0)
                    }));
                }
                t.rows.push(row);
                t.flagged.push(false);
            }
            blocks.push(Block::Table(t));
            let hm = c.heatmap();
            blocks.push(Block::Charts(vec![Chart {
                id: self.ids.id(&["cross", &c.name]),
                title: hm.title.clone(),
                svg: charts::heatmap(&hm)?,
            }]));
            let left: Vec<String> = c
                .left_out
                .iter()
                .filter(|(_, w)| !w.is_empty())
                .map(|(k, w)| {
                    format!(
                        "{k}: {}",
                        w.iter()
                            .map(|(r, n)| format!("{n} {r}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            if !left.is_empty() {
                blocks.push(Block::List(left));
            }
        }
        Ok(Some(Section::new("cross-corpus", "Cross-corpus", blocks)))
    }
}
