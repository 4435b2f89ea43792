//! Δ and ΔΔ features along time, as `librosa.feature.delta(x, width, order, mode="interp")`.
//!
//! librosa runs a Savitzky-Golay filter with `polyorder = deriv = order`: the derivative of the
//! least-squares polynomial of degree `order` over a window of `width` frames. That derivative is
//! a constant over the window, so each frame's value is one weighted sum of its window; in
//! `interp` mode the first and last `width / 2` frames take the value of the first and last full
//! window. A clip shorter than `width` frames (where librosa raises an error) uses the largest
//! odd window it holds; one too short for any fit gets zeros.

/// Weights of the `order`-th derivative of the degree-`order` least-squares fit over a centred
/// window of `width` frames (offsets `-h..=h`).
fn weights(order: usize, width: usize) -> Vec<f64> {
    let h = (width / 2) as i64;
    let ks: Vec<f64> = (-h..=h).map(|k| k as f64).collect();
    match order {
        1 => {
            let d: f64 = ks.iter().map(|k| k * k).sum();
            ks.iter().map(|k| k / d).collect()
        }
        _ => {
            // Second derivative of the fitted quadratic: 2·a2, with a2 the coefficient of the
            // centred k² term.
            let c = ks.iter().map(|k| k * k).sum::<f64>() / ks.len() as f64;
            let d: f64 = ks.iter().map(|k| (k * k - c).powi(2)).sum();
            ks.iter().map(|k| 2.0 * (k * k - c) / d).collect()
        }
    }
}

/// The `order`-th delta of a frame-major `n × f` matrix (`data.len() = n·f`), frame-major.
pub fn delta(data: &[f32], f: usize, order: usize, width: usize) -> Vec<f32> {
    let n = data.len() / f.max(1);
    let mut out = vec![0f32; n * f];
    let mut w = width.min(if n % 2 == 1 { n } else { n.saturating_sub(1) });
    if w % 2 == 0 {
        w = w.saturating_sub(1);
    }
    if w < order + 1 || w < 3 {
        return out;
    }
    let coef = weights(order, w);
    let h = w / 2;
    for t in 0..n {
        // The window's centre: clamped so that it lies inside the clip (interp edges).
        let c = t.clamp(h, n - 1 - h);
        let row = &mut out[t * f..(t + 1) * f];
        for (j, &cw) in coef.iter().enumerate() {
            let src = &data[(c + j - h) * f..(c + j - h + 1) * f];
            for (o, &v) in row.iter_mut().zip(src) {
                *o += (cw * v as f64) as f32;
            }
        }
    }
    out
}

/// Append Δ (order 1) or Δ and ΔΔ (order 2) to each frame: `n × f` → `n × f·(1 + order)`,
/// frame layout `[static | Δ | ΔΔ]`.
pub fn with_deltas(data: &[f32], f: usize, order: usize, width: usize) -> Vec<f32> {
    let n = data.len() / f.max(1);
    let ds: Vec<Vec<f32>> = (1..=order).map(|o| delta(data, f, o, width)).collect();
    let mut out = Vec::with_capacity(n * f * (1 + order));
    for t in 0..n {
        out.extend_from_slice(&data[t * f..(t + 1) * f]);
        for d in &ds {
            out.extend_from_slice(&d[t * f..(t + 1) * f]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_constant_slope_and_no_curvature() {
        // One feature, x_t = 3t + 1: Δ = 3 everywhere (edges included), ΔΔ = 0.
        let x: Vec<f32> = (0..20).map(|t| 3.0 * t as f32 + 1.0).collect();
        for v in delta(&x, 1, 1, 9) {
            assert!((v - 3.0).abs() < 1e-4, "{v}");
        }
        for v in delta(&x, 1, 2, 9) {
            assert!(v.abs() < 1e-4, "{v}");
        }
        // x_t = t²: ΔΔ = 2 everywhere.
        let q: Vec<f32> = (0..20).map(|t| (t * t) as f32).collect();
        for v in delta(&q, 1, 2, 9) {
            assert!((v - 2.0).abs() < 1e-3, "{v}");
        }
        // Interior Δ of t² is 2t; at the edges it is the first / last full window's.
        let d = delta(&q, 1, 1, 9);
        assert!((d[10] - 20.0).abs() < 1e-3 && (d[0] - d[4]).abs() < 1e-6);
    }

    #[test]
    fn short_clips_and_layout() {
        // 5 frames × 2 features, frame t = [2t, 2t + 1]: Δ = 2 for both.
        let x: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let d = delta(&x, 2, 1, 9); // the window shrinks to 5
        assert!(d.iter().all(|&v| (v - 2.0).abs() < 1e-5), "{d:?}");
        assert!(delta(&x[..4], 2, 1, 9).iter().all(|&v| v == 0.0));
        let all = with_deltas(&x, 2, 2, 9);
        assert_eq!(all.len(), 30);
        assert_eq!(&all[..2], &[0.0, 1.0]);
        assert!((all[2] - 2.0).abs() < 1e-5 && all[4].abs() < 1e-5);
    }
}
