//! Which encoder layers carry emotion: the softmax layer weights that probe (and fine-tuned
//! encoder) runs learned, per entry, mean ± standard deviation over its runs.

use super::prelude::*;
use crate::results::{read_json, LayerWeights, LAYER_WEIGHTS};

impl Builder<'_> {
    /// One table and one chart per entry whose runs wrote `layer_weights.json`; `None` when no
    /// run did.
    pub(in crate::report) fn layers(&mut self) -> Result<Option<Section>> {
        // entry -> (states, weights of each run)
        let mut by_entry: BTreeMap<String, (Vec<usize>, Vec<Vec<f64>>)> = BTreeMap::new();
        for r in &self.loaded.runs {
            let Ok(w) = read_json::<LayerWeights>(&r.dir.join(LAYER_WEIGHTS)) else {
                continue;
            };
            let e = by_entry
                .entry(r.entry())
                .or_insert_with(|| (w.states.clone(), Vec::new()));
            if e.0 == w.states {
                e.1.push(w.weights);
            }
        }
        if by_entry.is_empty() {
            return Ok(None);
        }
        let mut blocks = vec![Block::Text(
            "The probe reads a softmax-weighted sum of the encoder's hidden states (state 0 is the \
             input of the first transformer layer, state i the output of layer i). The weights \
             start equal and are learned with the head on the training speakers; a state \
             weighted above 1 / states carries more of what the model uses. Mean ± standard \
             deviation over the entry's runs."
                .into(),
        )];
        for (entry, (states, runs)) in by_entry {
            let n = states.len();
            let mut t = Table {
                header: vec![
                    "hidden state".into(),
                    "weight".into(),
                    "± over runs".into(),
                    "runs".into(),
                ],
                numeric: vec![false, true, true, true],
                ..Default::default()
            };
            let mut bars = Vec::new();
            for (j, s) in states.iter().enumerate() {
                let xs: Vec<f64> = runs.iter().filter_map(|w| w.get(j).copied()).collect();
                let mean = xs.iter().sum::<f64>() / xs.len().max(1) as f64;
                let sd = if xs.len() > 1 {
                    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64)
                        .sqrt()
                } else {
                    0.0
                };
                t.rows.push(vec![
                    format!("state {s}"),
                    format!("{mean:.3}"),
                    format!("{sd:.3}"),
                    xs.len().to_string(),
                ]);
                t.flagged.push(false);
                bars.push(Bar {
                    label: format!("state {s}"),
                    value: mean,
                    err: (xs.len() > 1).then_some(sd),
                    color: palette::WHISPER,
                    chance: Some(1.0 / n as f64),
                });
            }
            blocks.push(Block::Heading(entry.clone()));
            blocks.push(Block::Table(t));
            let chart = BarChart {
                title: format!("{entry}: learned layer weights (tick: equal weight)"),
                axis: "weight".into(),
                bars,
                references: Vec::new(),
                legend: Vec::new(),
            };
            blocks.push(Block::Charts(vec![Chart {
                id: self.ids.id(&["layers", &entry]),
                title: chart.title.clone(),
                svg: charts::bars(&chart)?,
            }]));
        }
        Ok(Some(Section::new(
            "layers",
            "Which encoder layers carry emotion",
            blocks,
        )))
    }
}
