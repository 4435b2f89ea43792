//! Frame policies: bring a (frames × features) matrix to a common number of frames.

use super::pipeline::{FrameMode, FramesSpec};

/// Apply the policy to a frame-major matrix of `n_feat` columns. Returns the new frame count.
pub fn apply(spec: &FramesSpec, data: &mut Vec<f32>, n_feat: usize) -> usize {
    let n = data.len() / n_feat.max(1);
    if spec.mode == FrameMode::Mean {
        *data = mean_frame(data, n, n_feat);
        return 1;
    }
    let Some(size) = spec.size else {
        return n;
    };
    match spec.mode {
        FrameMode::None | FrameMode::Mean => n,
        FrameMode::Pad => pad_to(data, size.max(n), n_feat, spec.pad_value),
        FrameMode::Crop => crop_to(data, size.min(n), n_feat),
        FrameMode::PadCrop if n < size => pad_to(data, size, n_feat, spec.pad_value),
        FrameMode::PadCrop => crop_to(data, size, n_feat),
        FrameMode::Resize => {
            *data = resize(data, n, size, n_feat, spec.pad_value);
            size
        }
    }
}

/// The mean of the `n` frames (zeros for an empty clip).
fn mean_frame(data: &[f32], n: usize, n_feat: usize) -> Vec<f32> {
    let mut sum = vec![0f64; n_feat];
    for frame in data.chunks_exact(n_feat.max(1)) {
        for (s, &v) in sum.iter_mut().zip(frame) {
            *s += v as f64;
        }
    }
    sum.iter().map(|&s| (s / n.max(1) as f64) as f32).collect()
}

fn pad_to(data: &mut Vec<f32>, size: usize, n_feat: usize, value: f32) -> usize {
    data.resize(size * n_feat, value);
    size
}

fn crop_to(data: &mut Vec<f32>, size: usize, n_feat: usize) -> usize {
    data.truncate(size * n_feat);
    size
}

/// Linear interpolation along time with the end frames aligned (n → size).
fn resize(data: &[f32], n: usize, size: usize, n_feat: usize, empty: f32) -> Vec<f32> {
    if n == 0 {
        return vec![empty; size * n_feat];
    }
    let mut out = Vec::with_capacity(size * n_feat);
    for j in 0..size {
        let pos = if size == 1 {
            0.0
        } else {
            j as f64 * (n - 1) as f64 / (size - 1) as f64
        };
        let i0 = pos.floor() as usize;
        let i1 = (i0 + 1).min(n - 1);
        let w = (pos - i0 as f64) as f32;
        let (a, b) = (
            &data[i0 * n_feat..][..n_feat],
            &data[i1 * n_feat..][..n_feat],
        );
        out.extend(a.iter().zip(b).map(|(x, y)| x + w * (y - x)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: FrameMode, size: usize) -> FramesSpec {
        FramesSpec {
            mode,
            size: Some(size),
            pad_value: -80.0,
        }
    }

    #[test]
    fn policies() {
        let m = |n: usize| (0..n * 2).map(|v| v as f32).collect::<Vec<_>>();
        let mut d = m(3);
        assert_eq!(apply(&spec(FrameMode::PadCrop, 5), &mut d, 2), 5);
        assert_eq!(&d[6..], &[-80.0; 4]);
        let mut d = m(7);
        assert_eq!(apply(&spec(FrameMode::PadCrop, 5), &mut d, 2), 5);
        assert_eq!(d, m(5));
        let mut d = m(7);
        assert_eq!(apply(&spec(FrameMode::Pad, 5), &mut d, 2), 7);
        let mut d = m(3);
        assert_eq!(apply(&spec(FrameMode::Crop, 5), &mut d, 2), 3);
        let mut d = m(3);
        assert_eq!(apply(&spec(FrameMode::Resize, 5), &mut d, 2), 5);
        // frames 0,1,2 -> 0, .5, 1, 1.5, 2 (column 0 holds 0, 2, 4)
        assert_eq!(
            d.iter().step_by(2).copied().collect::<Vec<_>>(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0]
        );
    }
}
