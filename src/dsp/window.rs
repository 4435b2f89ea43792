//! Analysis / synthesis windows, built exactly like `scipy.signal.get_window("hann", n,
//! fftbins=True)` followed by `librosa.util.pad_center`.
//!
//! The window is evaluated in `f64` (as scipy does) and only then rounded to `f32`, so the
//! `f32` taps are the correctly rounded values of the ones librosa uses.

/// Periodic ("DFT-even") Hann window of `len` taps, in `f64`.
///
/// Mirrors scipy's `general_cosine` evaluation: `0.5 + 0.5 * cos(fac)` with
/// `fac = linspace(-pi, pi, len + 1)[..len]`.
pub fn hann_periodic_f64(len: usize) -> Vec<f64> {
    match len {
        0 => Vec::new(),
        1 => vec![1.0],
        _ => {
            // numpy.linspace(-pi, pi, len + 1): start + i * step, step = 2 pi / len.
            let step = (2.0 * std::f64::consts::PI) / len as f64;
            (0..len)
                .map(|i| 0.5 + 0.5 * (i as f64 * step - std::f64::consts::PI).cos())
                .collect()
        }
    }
}

/// Zero-pads `window` to `size` taps, centring it like `librosa.util.pad_center`
/// (left padding `(size - len) / 2`, the remainder on the right).
///
/// # Panics
/// If `window.len() > size` (callers validate `win_length <= n_fft` first).
pub fn pad_center<T: Copy + Default>(window: &[T], size: usize) -> Vec<T> {
    assert!(
        window.len() <= size,
        "window of {} taps does not fit in {size}",
        window.len()
    );
    let left = (size - window.len()) / 2;
    let mut out = vec![T::default(); size];
    out[left..left + window.len()].copy_from_slice(window);
    out
}

/// Hann window of `win_length` taps centred in `n_fft` taps, rounded to `f32`.
pub fn stft_window(win_length: usize, n_fft: usize) -> Vec<f32> {
    let w: Vec<f32> = hann_periodic_f64(win_length)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    pad_center(&w, n_fft)
}

/// Squared Hann window (`f64` taps squared, then rounded) centred in `n_fft` taps, as used
/// by `librosa.filters.window_sumsquare`.
pub fn stft_window_squared(win_length: usize, n_fft: usize) -> Vec<f32> {
    let w: Vec<f32> = hann_periodic_f64(win_length)
        .into_iter()
        .map(|v| (v * v) as f32)
        .collect();
    pad_center(&w, n_fft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hann_is_periodic_and_symmetric() {
        let w = hann_periodic_f64(8);
        assert_eq!(w.len(), 8);
        assert!(w[0].abs() < 1e-15);
        assert!((w[4] - 1.0).abs() < 1e-15);
        for i in 1..8 {
            assert!((w[i] - w[8 - i]).abs() < 1e-15, "periodic symmetry at {i}");
        }
    }

    #[test]
    fn pad_center_puts_window_in_the_middle() {
        let w = stft_window(4, 9);
        assert_eq!(w.len(), 9);
        // left pad (9 - 4) / 2 = 2, right pad 3
        assert_eq!(&w[..2], &[0.0, 0.0]);
        assert_eq!(&w[6..], &[0.0, 0.0, 0.0]);
        assert_eq!(w[2], 0.0); // first Hann tap
        assert!((w[4] - 1.0).abs() < 1e-7); // peak of a 4-tap periodic Hann
    }
}
