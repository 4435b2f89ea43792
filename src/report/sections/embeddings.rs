//! Embedding maps: whether a model's penultimate layer groups the held-out clips by emotion or
//! by speaker (silhouettes per run, and a 2-D PCA map of one run per entry).

use super::prelude::*;
use crate::charts::{categorical, PointGroup, Scatter};

impl Builder<'_> {
    pub(in crate::report) fn embeddings(&mut self) -> Result<Section> {
        let scores = &self.tables.embedding_scores;
        let mut blocks = vec![Block::Text(
            "What each network's penultimate layer (the input of its classifier) makes of the \
             clips its weights never saw: the validation and the test speakers of each run. \
             The silhouette (-1 to 1; Rousseeuw 1987) of those vectors grouped by emotion and \
             grouped by speaker says which grouping the representation separates better: a \
             speaker silhouette above the emotion silhouette means the model encodes who speaks \
             more than how they feel. Mean ± sd over the entry's runs. The maps project one \
             run's vectors onto their first two principal components (their share of the \
             variance on the axes); filled points are test clips, hollow ones validation clips."
                .into(),
        )];
        let entry = str_col(scores, "entry")?;
        let s_emo = f64_col(scores, "silhouette_emotion")?;
        let s_spk = f64_col(scores, "silhouette_speaker")?;
        let speakers = u64_col(scores, "speakers")?;
        let width = u64_col(scores, "width")?;
        let mut t = Table {
            header: [
                "entry",
                "runs",
                "width",
                "speakers per run",
                "silhouette by emotion",
                "silhouette by speaker",
                "separates better",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            numeric: vec![false, true, true, true, true, true, false],
            source: Some("embedding_scores".into()),
            ..Default::default()
        };
        let fmt = |(m, sd): (Option<f64>, Option<f64>)| match (m, sd) {
            (Some(m), Some(sd)) => format!("{m:+.3} ± {sd:.3}"),
            (Some(m), None) => format!("{m:+.3}"),
            _ => "–".into(),
        };
        for name in self.tables.focus.clone() {
            let rows: Vec<usize> = (0..entry.len()).filter(|&i| entry[i] == name).collect();
            if rows.is_empty() {
                continue;
            }
            let emo: Vec<f64> = rows.iter().filter_map(|&i| s_emo[i]).collect();
            let spk: Vec<f64> = rows.iter().filter_map(|&i| s_spk[i]).collect();
            let (e, s) = (mean_sd(&emo), mean_sd(&spk));
            let verdict = match (e.0, s.0) {
                (Some(e), Some(s)) if s > e => "speakers",
                (Some(_), Some(_)) => "emotions",
                _ => "–",
            };
            let mut spk_counts: Vec<u64> = rows.iter().map(|&i| speakers[i]).collect();
            spk_counts.sort_unstable();
            spk_counts.dedup();
            t.rows.push(vec![
                name.clone(),
                rows.len().to_string(),
                width[rows[0]].to_string(),
                spk_counts
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("–"),
                fmt(e),
                fmt(s),
                verdict.into(),
            ]);
            t.flagged.push(verdict == "speakers");
        }
        blocks.push(Block::Table(t));
        blocks.extend(self.embedding_maps()?);
        Ok(Section::new("embeddings", "Embedding maps", blocks))
    }

    /// Per focus entry with a map: its run, and the map coloured by emotion and by speaker.
    fn embedding_maps(&mut self) -> Result<Vec<Block>> {
        let df = &self.tables.embedding_points;
        let scores = &self.tables.embedding_scores;
        let entry = str_col(df, "entry")?;
        let run = str_col(df, "run")?;
        let speaker = opt_str_col(df, "speaker")?;
        let label = str_col(df, "label")?;
        let role = str_col(df, "role")?;
        let x = f64_col(df, "pc1")?;
        let y = f64_col(df, "pc2")?;
        let (s_entry, s_run) = (str_col(scores, "entry")?, str_col(scores, "run")?);
        let (share1, share2) = (f64_col(scores, "pc1_share")?, f64_col(scores, "pc2_share")?);
        let mut blocks = Vec::new();
        for name in self.tables.focus.clone() {
            let idx: Vec<usize> = (0..entry.len()).filter(|&i| entry[i] == name).collect();
            let Some(&first) = idx.first() else {
                continue;
            };
            let r = run[first].clone();
            let k = (0..s_entry.len()).find(|&i| s_entry[i] == name && s_run[i] == r);
            let axis = |n: usize, share: Option<f64>| match share {
                Some(s) => format!("PC{n} ({:.0}% of variance)", s * 100.0),
                None => format!("PC{n}"),
            };
            let (xa, ya) = (
                axis(1, k.and_then(|k| share1[k])),
                axis(2, k.and_then(|k| share2[k])),
            );
            let by = |key: &dyn Fn(usize) -> String| -> Vec<PointGroup> {
                let mut names: Vec<String> = idx.iter().map(|&i| key(i)).collect();
                names.sort();
                names.dedup();
                let n = names.len();
                names
                    .iter()
                    .enumerate()
                    .map(|(j, g)| {
                        let pts = |want: &str| -> Vec<(f64, f64)> {
                            idx.iter()
                                .filter(|&&i| &key(i) == g && role[i] == want)
                                .filter_map(|&i| Some((x[i]?, y[i]?)))
                                .collect()
                        };
                        PointGroup {
                            name: g.clone(),
                            color: categorical(j, n),
                            filled: pts("test"),
                            hollow: pts("val"),
                        }
                    })
                    .collect()
            };
            let emotion = by(&|i| label[i].clone());
            let speakers = by(&|i| speaker[i].clone().unwrap_or_else(|| "(none)".into()));
            let note = Some("● test  ○ validation".to_string());
            let chart = |title: String, groups: Vec<PointGroup>| Scatter {
                title,
                x_axis: xa.clone(),
                y_axis: ya.clone(),
                groups,
                note: note.clone(),
            };
            let a = chart(format!("{name}: by emotion"), emotion);
            let b = chart(format!("{name}: by speaker"), speakers);
            blocks.push(Block::Heading(format!("{name} (run {r})")));
            blocks.push(Block::Charts(vec![
                Chart {
                    id: self.ids.id(&["embedding", &name, "emotion"]),
                    title: a.title.clone(),
                    svg: charts::scatter(&a)?,
                },
                Chart {
                    id: self.ids.id(&["embedding", &name, "speaker"]),
                    title: b.title.clone(),
                    svg: charts::scatter(&b)?,
                },
            ]));
        }
        Ok(blocks)
    }
}
