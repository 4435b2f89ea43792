//! Calibration of class probabilities: expected calibration error and reliability bins (Guo et
//! al., "On Calibration of Modern Neural Networks", ICML 2017), temperature scaling fitted on
//! the validation speakers, and accuracy against coverage when the least confident clips are
//! left out (selective classification).
//!
//! Temperature scaling divides the logits by one scalar T > 0. Only probabilities are stored
//! per clip; since `log p` equals the logits up to a per-clip constant, `softmax(log p / T)`
//! is exactly the temperature-scaled distribution, so T can be fitted and applied on stored
//! probabilities.

/// Equal-width confidence bins of a reliability diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    /// Lower edge of the bin (confidence), width `1 / bins`.
    pub lower: f64,
    pub count: usize,
    /// Mean confidence (top probability) of the clips in the bin.
    pub confidence: f64,
    /// Fraction of them predicted right.
    pub accuracy: f64,
}

fn top(p: &[f32]) -> (usize, f64) {
    let (i, v) = p.iter().enumerate().fold(
        (0, f32::MIN),
        |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
    );
    (i, v as f64)
}

/// Reliability bins of `probs` (one distribution per clip) against `labels`.
pub fn reliability(probs: &[Vec<f32>], labels: &[usize], bins: usize) -> Vec<Bin> {
    let bins = bins.max(1);
    let mut acc = vec![(0usize, 0f64, 0usize); bins];
    for (p, &y) in probs.iter().zip(labels) {
        let (pred, conf) = top(p);
        let b = ((conf * bins as f64) as usize).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += conf;
        acc[b].2 += usize::from(pred == y);
    }
    acc.into_iter()
        .enumerate()
        .map(|(i, (n, c, k))| Bin {
            lower: i as f64 / bins as f64,
            count: n,
            confidence: if n > 0 { c / n as f64 } else { 0.0 },
            accuracy: if n > 0 { k as f64 / n as f64 } else { 0.0 },
        })
        .collect()
}

/// Expected calibration error: Σ_b (n_b / n) · |accuracy_b − confidence_b| over `bins`
/// equal-width bins (15 in Guo et al.).
pub fn ece(probs: &[Vec<f32>], labels: &[usize], bins: usize) -> f64 {
    let n = probs.len().max(1) as f64;
    reliability(probs, labels, bins)
        .iter()
        .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
        .sum()
}

/// Mean negative log-likelihood of the labels.
pub fn nll(probs: &[Vec<f32>], labels: &[usize]) -> f64 {
    let n = probs.len().max(1) as f64;
    probs
        .iter()
        .zip(labels)
        .map(|(p, &y)| -(p[y].max(1e-12) as f64).ln())
        .sum::<f64>()
        / n
}

/// One distribution at temperature `t`: `softmax(log p / t)`.
pub fn scale(p: &[f32], t: f64) -> Vec<f32> {
    let logs: Vec<f64> = p.iter().map(|&v| (v.max(1e-12) as f64).ln() / t).collect();
    let m = logs.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = logs.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| (v / s) as f32).collect()
}

/// Every distribution at temperature `t`.
pub fn scale_all(probs: &[Vec<f32>], t: f64) -> Vec<Vec<f32>> {
    probs.iter().map(|p| scale(p, t)).collect()
}

/// The temperature minimising the NLL of `labels` (golden-section search on log T over
/// [1/20, 20]); 1.0 for an empty set.
pub fn fit_temperature(probs: &[Vec<f32>], labels: &[usize]) -> f64 {
    if probs.is_empty() {
        return 1.0;
    }
    let f = |lt: f64| nll(&scale_all(probs, lt.exp()), labels);
    let (mut a, mut b) = (-(20f64.ln()), 20f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp()
}

/// UA ([`crate::metrics::compute`]: mean recall over the classes present) of the `coverage`
/// fraction of clips the model is most confident about, for each coverage asked: selective
/// classification, a model abstaining on the rest.
pub fn ua_at_coverage(
    probs: &[Vec<f32>],
    labels: &[usize],
    classes: &[String],
    coverages: &[f64],
) -> Vec<f64> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&i, &j| {
        top(&probs[j])
            .1
            .total_cmp(&top(&probs[i]).1)
            .then(i.cmp(&j))
    });
    coverages
        .iter()
        .map(|&c| {
            let k = ((c * probs.len() as f64).round() as usize).clamp(1, probs.len().max(1));
            ua_of(probs, labels, classes, &order[..k.min(order.len())])
        })
        .collect()
}

/// UA of the top-probability predictions of the clips `kept`.
fn ua_of(probs: &[Vec<f32>], labels: &[usize], classes: &[String], kept: &[usize]) -> f64 {
    let truth: Vec<usize> = kept.iter().map(|&i| labels[i]).collect();
    let pred: Vec<usize> = kept.iter().map(|&i| top(&probs[i]).0).collect();
    crate::metrics::compute(&truth, &pred, classes).ua
}

/// Fraction of the validation clips a run keeps when it abstains: its abstain threshold is the
/// prediction entropy under which this share of its validation speakers' clips falls.
pub const ABSTAIN_COVERAGE: f64 = 0.8;

/// Shannon entropy (nats) of a probability vector.
pub fn entropy(p: &[f32]) -> f64 {
    -p.iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| v as f64 * (v as f64).ln())
        .sum::<f64>()
}

/// The entropy threshold that keeps a fraction `coverage` of `probs` (the smallest entropy at or
/// under which `ceil(coverage · n)` of them fall); `None` without clips.
pub fn entropy_threshold(probs: &[Vec<f32>], coverage: f64) -> Option<f64> {
    let mut h: Vec<f64> = probs.iter().map(|p| entropy(p)).collect();
    if h.is_empty() {
        return None;
    }
    h.sort_by(f64::total_cmp);
    let k = ((coverage * h.len() as f64).ceil() as usize).clamp(1, h.len());
    Some(h[k - 1])
}

/// Abstaining on clips whose entropy exceeds `threshold`: (share of clips kept, UA of the kept
/// clips; `None` when none is kept).
pub fn abstain(
    probs: &[Vec<f32>],
    labels: &[usize],
    classes: &[String],
    threshold: f64,
) -> (f64, Option<f64>) {
    let kept: Vec<usize> = (0..probs.len())
        .filter(|&i| entropy(&probs[i]) <= threshold)
        .collect();
    if kept.is_empty() {
        return (0.0, None);
    }
    (
        kept.len() as f64 / probs.len() as f64,
        Some(ua_of(probs, labels, classes, &kept)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abstain_threshold_keeps_the_asked_share_and_the_surest_clips() {
        let probs = vec![
            vec![0.98, 0.02],
            vec![0.9, 0.1],
            vec![0.6, 0.4],
            vec![0.5, 0.5],
            vec![0.05, 0.95],
        ];
        assert!((entropy(&[0.5, 0.5]) - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
        // 80% of 5 = 4 clips: the threshold is the 4th smallest entropy (the 0.6/0.4 clip).
        let t = entropy_threshold(&probs, 0.8).unwrap();
        assert!((t - entropy(&[0.6, 0.4])).abs() < 1e-12);
        let classes = vec!["a".to_string(), "b".to_string()];
        // Truth: the 0.6 clip is wrong; abstaining drops only the 0.5/0.5 clip.
        let labels = [0, 0, 1, 0, 1];
        let (kept, ua) = abstain(&probs, &labels, &classes, t);
        assert!((kept - 0.8).abs() < 1e-12);
        // Kept: a,a (right), b-truth predicted a (wrong), b (right): recall a 1, b 0.5.
        assert!((ua.unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(entropy_threshold(&[], 0.8), None);
    }

    #[test]
    fn ece_on_a_hand_computed_case() {
        // Two clips at confidence 0.92 (one right), two at 0.62 (both right).
        let probs = vec![
            vec![0.92, 0.08],
            vec![0.08, 0.92],
            vec![0.62, 0.38],
            vec![0.38, 0.62],
        ];
        let labels = [0, 0, 0, 1];
        // 2 bins: all four in [0.5, 1), confidence 0.77, accuracy 0.75 → 0.02.
        assert!((ece(&probs, &labels, 2) - 0.02).abs() < 1e-6);
        // 10 bins: [0.9, 1) holds 2 (accuracy 0.5, confidence 0.92), [0.6, 0.7) 2 (1, 0.62):
        // ECE = 0.5 · 0.42 + 0.5 · 0.38 = 0.40.
        assert!((ece(&probs, &labels, 10) - 0.4).abs() < 1e-6);
        let bins = reliability(&probs, &labels, 10);
        assert_eq!(bins[9].count, 2);
        assert_eq!(bins[6].count, 2);
        assert!((bins[9].accuracy - 0.5).abs() < 1e-9);
    }

    #[test]
    fn temperature_scaling_lowers_the_nll_of_an_overconfident_model() {
        // Always 95 % sure, right 60 % of the time.
        let mut probs = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100 {
            probs.push(vec![0.95, 0.025, 0.025]);
            labels.push(if i % 5 < 3 { 0 } else { 1 + i % 2 });
        }
        let t = fit_temperature(&probs, &labels);
        assert!(t > 1.0, "an overconfident model needs T > 1, got {t}");
        let before = nll(&probs, &labels);
        let after = nll(&scale_all(&probs, t), &labels);
        assert!(after < before - 0.1, "NLL {before} → {after}");
        assert!(ece(&scale_all(&probs, t), &labels, 15) < ece(&probs, &labels, 15));
        // Scaling keeps the ranking (and so every prediction).
        let s = scale(&[0.7, 0.2, 0.1], 3.0);
        assert!(s[0] > s[1] && s[1] > s[2]);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn coverage_keeps_the_most_confident() {
        let probs = vec![
            vec![0.99, 0.01],
            vec![0.6, 0.4],
            vec![0.2, 0.8],
            vec![0.55, 0.45],
        ];
        let labels = [0, 1, 1, 0];
        let classes = ["a".to_string(), "b".to_string()];
        let ua = ua_at_coverage(&probs, &labels, &classes, &[1.0, 0.5]);
        // All four: class 0 2/2 right, class 1 1/2 → 0.75; the top two (0.99, 0.8): both right.
        assert!(
            (ua[0] - 0.75).abs() < 1e-9 && (ua[1] - 1.0).abs() < 1e-9,
            "{ua:?}"
        );
    }
}
