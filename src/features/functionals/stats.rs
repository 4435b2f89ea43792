//! Functionals: statistics that summarise a descriptor contour into fixed values.
//!
//! Percentiles interpolate linearly between order statistics (numpy's default); slopes are
//! differences of consecutive values of one contiguous segment per second; an empty contour
//! gives zeros, never NaN, so that every clip has a finite vector.

/// Mean and population standard deviation.
pub fn mean_std(x: &[f32]) -> (f32, f32) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let n = x.len() as f64;
    let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let v = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
    (m as f32, v.sqrt() as f32)
}

/// The `q`-th percentile (0..=100) with linear interpolation; 0 for an empty contour.
pub fn percentile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = (pos - lo as f64) as f32;
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

/// Mean rising and mean falling slope (both ≥ 0, units per second) over `segments`, each a
/// contiguous run of values `dt` seconds apart.
pub fn slopes(segments: &[Vec<f32>], dt: f32) -> (f32, f32) {
    let (mut rise, mut nr, mut fall, mut nf) = (0f64, 0usize, 0f64, 0usize);
    for s in segments {
        for w in s.windows(2) {
            let d = (w[1] - w[0]) as f64 / dt as f64;
            if d > 0.0 {
                rise += d;
                nr += 1;
            } else if d < 0.0 {
                fall -= d;
                nf += 1;
            }
        }
    }
    (
        (rise / nr.max(1) as f64) as f32,
        (fall / nf.max(1) as f64) as f32,
    )
}

/// The eight contour functionals of F0 and loudness: mean, std, percentiles 20/50/80, range
/// 20-80, mean rising and mean falling slope.
pub const CONTOUR: [&str; 8] = [
    "mean",
    "std",
    "p20",
    "p50",
    "p80",
    "range20_80",
    "rise_slope",
    "fall_slope",
];

/// [`CONTOUR`] functionals of `segments` (contiguous runs of one contour).
pub fn contour(segments: &[Vec<f32>], dt: f32) -> [f32; 8] {
    let mut all: Vec<f32> = segments.iter().flatten().copied().collect();
    let (m, s) = mean_std(&all);
    all.sort_by(f32::total_cmp);
    let (p20, p50, p80) = (
        percentile(&all, 20.0),
        percentile(&all, 50.0),
        percentile(&all, 80.0),
    );
    let (r, f) = slopes(segments, dt);
    [m, s, p20, p50, p80, p80 - p20, r, f]
}

/// Lengths (in frames) of the runs of `true` and of `false` in `flags`.
pub fn runs(flags: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < flags.len() {
        let j = (i..flags.len())
            .find(|&j| flags[j] != flags[i])
            .unwrap_or(flags.len());
        if flags[i] {
            on.push(j - i);
        } else {
            off.push(j - i);
        }
        i = j;
    }
    (on, off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [20, 50, 80]) = [1.8, 3.0, 5.2]
        let x = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((percentile(&x, 20.0) - 1.8).abs() < 1e-6);
        assert!((percentile(&x, 50.0) - 3.0).abs() < 1e-6);
        assert!((percentile(&x, 80.0) - 5.2).abs() < 1e-6);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn slopes_and_runs() {
        // Rises of 1 and 3 per step, one fall of 2, steps 0.01 s apart; the jump between
        // segments is not a slope.
        let (r, f) = slopes(&[vec![0.0, 1.0, 4.0], vec![10.0, 8.0]], 0.01);
        assert!(
            (r - 200.0).abs() < 1e-3 && (f - 200.0).abs() < 1e-3,
            "{r} {f}"
        );
        let (on, off) = runs(&[true, true, false, true, false, false]);
        assert_eq!((on, off), (vec![2, 1], vec![1, 2]));
        let c = contour(&[], 0.01);
        assert!(c.iter().all(|v| *v == 0.0));
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }
}
