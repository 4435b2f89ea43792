//! Learning curves: training and validation loss and UA per epoch.

use super::prelude::*;

impl Builder<'_> {
    pub(in crate::report) fn curves(&mut self) -> Result<Section> {
        let mut blocks = vec![Block::Text(
            "Training and validation loss and UA per epoch, averaged over each entry's runs \
             (runs stopped early drop out of the later epochs' means). Training UA is measured \
             on the training batches in training mode (dropout and augmentation on). For \
             entries that validated on the test clips, \"val\" is the test set."
                .into(),
        )];
        let mut any = false;
        for name in self.tables.focus.clone() {
            let df = rows_where(&self.tables.curves, "entry", &name)?;
            // A classical model's one fit is not a curve.
            if df.height() < 2 {
                continue;
            }
            any = true;
            let epoch: Vec<f64> = u64_col(&df, "epoch")?
                .into_iter()
                .map(|e| e as f64)
                .collect();
            let pts = |c: &str| -> Result<Vec<(f64, f64)>> {
                Ok(epoch
                    .iter()
                    .zip(f64_col(&df, c)?)
                    .filter_map(|(x, y)| y.map(|y| (*x, y)))
                    .collect())
            };
            let e = self.entry(&name).cloned();
            let val_name = if e.as_ref().is_some_and(|e| e.test_as_val) {
                "val (= test clips)"
            } else {
                "val"
            };
            let loss = LineChart {
                title: format!("{name}: loss"),
                x_axis: "epoch".into(),
                y_axis: "loss".into(),
                series: vec![
                    Series {
                        name: "train".into(),
                        points: pts("train_loss")?,
                        color: palette::TRAIN,
                        dashed: true,
                        dots: false,
                    },
                    Series {
                        name: val_name.into(),
                        points: pts("val_loss")?,
                        color: palette::VAL,
                        dashed: false,
                        dots: false,
                    },
                ],
                y_range: None,
                hlines: Vec::new(),
                x_names: None,
                percent: false,
            };
            let ua = LineChart {
                title: format!("{name}: UA"),
                x_axis: "epoch".into(),
                y_axis: "UA".into(),
                series: vec![
                    Series {
                        name: "train".into(),
                        points: pts("train_ua")?,
                        color: palette::TRAIN,
                        dashed: true,
                        dots: false,
                    },
                    Series {
                        name: val_name.into(),
                        points: pts("val_ua")?,
                        color: palette::VAL,
                        dashed: false,
                        dots: false,
                    },
                ],
                y_range: Some((0.0, 1.0)),
                hlines: e
                    .and_then(|e| e.chance)
                    .map(|c| vec![("chance".to_string(), c, palette::CHANCE)])
                    .unwrap_or_default(),
                x_names: None,
                percent: true,
            };
            blocks.push(Block::Heading(name.clone()));
            blocks.push(Block::Charts(vec![
                Chart {
                    id: self.ids.id(&["curve-loss", &name]),
                    title: loss.title.clone(),
                    svg: charts::lines(&loss)?,
                },
                Chart {
                    id: self.ids.id(&["curve-ua", &name]),
                    title: ua.title.clone(),
                    svg: charts::lines(&ua)?,
                },
            ]));
        }
        if !any {
            blocks.push(Block::Text(
                "No `history.parquet` in these runs: no learning curves.".into(),
            ));
        }
        Ok(Section::new("curves", "Learning curves", blocks))
    }
}
