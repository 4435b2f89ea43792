//! Multinomial logistic regression (linfa-logistic, L-BFGS) with an L2 penalty in
//! scikit-learn's convention: minimise Σ log-loss + ‖W‖² / (2C).

use linfa::prelude::*;
use linfa::Dataset as LinfaDataset;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{fit_error, ClassicalError};

/// `model: {family: logistic, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogisticSpec {
    /// Inverse regularisation strength.
    pub c: f64,
    pub max_iterations: u64,
}

impl Default for LogisticSpec {
    fn default() -> Self {
        LogisticSpec {
            c: 1.0,
            max_iterations: 500,
        }
    }
}

#[derive(Debug)]
pub struct Logistic {
    k: usize,
    model: MultiFittedLogisticRegression<f64, usize>,
}

impl Logistic {
    pub fn fit(
        spec: &LogisticSpec,
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
    ) -> Result<Logistic, ClassicalError> {
        if !(spec.c > 0.0) {
            return Err(fit_error(
                "logistic",
                format!("c must be > 0, got {}", spec.c),
            ));
        }
        let data = LinfaDataset::new(x.clone(), y.iter().copied().collect::<Array1<usize>>());
        let model = MultiLogisticRegression::default()
            .alpha(1.0 / spec.c)
            .max_iterations(spec.max_iterations)
            .fit(&data)
            .map_err(|e| fit_error("logistic", e))?;
        Ok(Logistic { k, model })
    }

    pub fn predict_proba(&self, x: &Array2<f64>) -> Vec<Vec<f32>> {
        let p = self.model.predict_probabilities(x);
        let classes = self.model.classes();
        p.outer_iter()
            .map(|row| {
                let mut out = vec![0f32; self.k];
                for (j, &c) in classes.iter().enumerate() {
                    out[c] = row[j] as f32;
                }
                out
            })
            .collect()
    }

    pub fn size(&self) -> i64 {
        (self.model.params().len() + self.model.intercept().len()) as i64
    }
}
