//! Classification metrics for SER, defined as scikit-learn defines them.
//!
//! - WA (weighted accuracy) = plain accuracy.
//! - UA (unweighted average recall) = mean recall over the classes present in the truth
//!   (`balanced_accuracy_score`).
//! - macro-F1 = mean F1 over the classes present in the truth or the predictions
//!   (`f1_score(average="macro")`, zero where precision or recall is undefined).
//! - per-class precision / recall / F1 / support, and the confusion matrix (rows = truth).
//!
//! [`by_group`] gives the same broken down by a clip attribute such as speaker sex.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metrics of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Metrics of a set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub n: u64,
    pub wa: f64,
    pub ua: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[truth][prediction]`, in the order of `labels`.
    pub confusion: Vec<Vec<u64>>,
    pub labels: Vec<String>,
}

/// Metrics of predictions `pred` against `truth` (class indices into `labels`).
/// The index of the largest probability (the last of equal maxima), 0 for an empty row.
pub fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&i, &j| p[i].total_cmp(&p[j]))
        .unwrap_or(0)
}

pub fn compute(truth: &[usize], pred: &[usize], labels: &[String]) -> Metrics {
    assert_eq!(
        truth.len(),
        pred.len(),
        "truth and predictions differ in length"
    );
    let k = labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    for (&t, &p) in truth.iter().zip(pred) {
        confusion[t][p] += 1;
    }
    let n = truth.len() as u64;
    let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let per_class: Vec<ClassMetrics> = (0..k)
        .map(|i| {
            let tp = confusion[i][i] as f64;
            let support: u64 = confusion[i].iter().sum();
            let predicted: u64 = confusion.iter().map(|row| row[i]).sum();
            let precision = div(tp, predicted as f64);
            let recall = div(tp, support as f64);
            ClassMetrics {
                label: labels[i].clone(),
                precision,
                recall,
                f1: div(2.0 * precision * recall, precision + recall),
                support,
            }
        })
        .collect();
    let in_truth: Vec<&ClassMetrics> = per_class.iter().filter(|c| c.support > 0).collect();
    let seen: Vec<&ClassMetrics> = per_class
        .iter()
        .enumerate()
        .filter(|(i, c)| c.support > 0 || confusion.iter().any(|row| row[*i] > 0))
        .map(|(_, c)| c)
        .collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Metrics {
        n,
        wa: div(correct as f64, n as f64),
        ua: mean(&in_truth.iter().map(|c| c.recall).collect::<Vec<_>>()),
        macro_f1: mean(&seen.iter().map(|c| c.f1).collect::<Vec<_>>()),
        per_class,
        confusion,
        labels: labels.to_vec(),
    }
}

/// Metrics per group (e.g. speaker sex); items whose group is unknown are left out.
pub fn by_group(
    truth: &[usize],
    pred: &[usize],
    groups: &[Option<String>],
    labels: &[String],
) -> BTreeMap<String, Metrics> {
    let mut idx: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        if let Some(g) = g {
            idx.entry(g.clone()).or_default().push(i);
        }
    }
    idx.into_iter()
        .map(|(g, ix)| {
            let t: Vec<usize> = ix.iter().map(|&i| truth[i]).collect();
            let p: Vec<usize> = ix.iter().map(|&i| pred[i]).collect();
            (g, compute(&t, &p, labels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn matches_scikit_learn() {
        // sklearn: accuracy 0.5, balanced_accuracy 0.5, f1 macro 0.4555..., per class below.
        let truth = [0, 0, 0, 0, 1, 1, 2, 2];
        let pred = [0, 0, 1, 2, 1, 0, 2, 1];
        let m = compute(&truth, &pred, &labels(3));
        assert_eq!(m.n, 8);
        assert!((m.wa - 0.5).abs() < 1e-12);
        assert!((m.ua - (0.5 + 0.5 + 0.5) / 3.0).abs() < 1e-12);
        // precision c0 2/3, c1 1/3, c2 1/2; recall 1/2 each.
        let f1 = |p: f64, r: f64| 2.0 * p * r / (p + r);
        let expect = (f1(2.0 / 3.0, 0.5) + f1(1.0 / 3.0, 0.5) + f1(0.5, 0.5)) / 3.0;
        assert!((m.macro_f1 - expect).abs() < 1e-12);
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 1], vec![1, 1, 0], vec![0, 1, 1]]
        );
        assert_eq!(m.per_class[0].support, 4);
    }

    #[test]
    fn absent_classes_follow_sklearn() {
        // Class 2 never true, predicted once: UA ignores it, macro-F1 counts it as 0.
        let truth = [0, 0, 1, 1];
        let pred = [0, 2, 1, 1];
        let m = compute(&truth, &pred, &labels(4));
        assert!((m.ua - 0.75).abs() < 1e-12);
        let f1_0 = 2.0 * 1.0 * 0.5 / 1.5;
        let f1_1 = 1.0;
        assert!((m.macro_f1 - (f1_0 + f1_1 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn chance_and_perfect() {
        let truth: Vec<usize> = (0..60).map(|i| i % 6).collect();
        let m = compute(&truth, &truth, &labels(6));
        assert_eq!((m.wa, m.ua, m.macro_f1), (1.0, 1.0, 1.0));
        let m = compute(&truth, &vec![0; 60], &labels(6));
        assert!((m.ua - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn groups_split_items() {
        let truth = [0, 1, 0, 1, 0];
        let pred = [0, 1, 1, 1, 0];
        let g = [
            Some("female".to_string()),
            Some("female".into()),
            Some("male".into()),
            Some("male".into()),
            None,
        ];
        let m = by_group(&truth, &pred, &g, &labels(2));
        assert_eq!(m["female"].wa, 1.0);
        assert_eq!(m["male"].wa, 0.5);
        assert_eq!(m["male"].n + m["female"].n, 4);
    }
}
