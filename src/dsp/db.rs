//! Power → decibel conversion matching `librosa.power_to_db`.

use serde::{Deserialize, Serialize};

use super::error::DspError;
use super::fastmath::ten_log10;
use super::simd::avx2_dispatch;

/// Reference power that maps to 0 dB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum DbRef {
    /// The maximum of the input (`ref=np.max`).
    Max,
    /// A fixed reference (`ref=value`; librosa's default is 1.0). Its absolute value is used.
    Value(f32),
}

/// Arguments of [`power_to_db_in_place`]. [`Default`] is librosa's
/// (`ref=1.0, amin=1e-10, top_db=80`); use [`DbParams::ref_max`] for `ref=np.max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbParams {
    /// Reference power.
    pub reference: DbRef,
    /// Floor applied to the input and the reference before the logarithm (> 0).
    pub amin: f32,
    /// When set, values are clipped from below at `max(output) - top_db` (>= 0).
    pub top_db: Option<f32>,
}

impl Default for DbParams {
    fn default() -> Self {
        DbParams {
            reference: DbRef::Value(1.0),
            amin: 1e-10,
            top_db: Some(80.0),
        }
    }
}

impl DbParams {
    /// librosa defaults with `ref=np.max` (0 dB at the loudest bin of the clip).
    pub fn ref_max() -> Self {
        DbParams {
            reference: DbRef::Max,
            ..DbParams::default()
        }
    }

    /// Rejects `amin` that is not a positive normal `f32` (>= 1.2e-38), `top_db < 0` and
    /// non-finite values.
    pub fn validate(&self) -> Result<(), DspError> {
        if !(self.amin.is_finite() && self.amin >= f32::MIN_POSITIVE) {
            return Err(DspError::invalid(
                "amin",
                format!(
                    "must be finite and >= {:e}, got {}",
                    f32::MIN_POSITIVE,
                    self.amin
                ),
            ));
        }
        if let Some(t) = self.top_db {
            if !(t.is_finite() && t >= 0.0) {
                return Err(DspError::invalid(
                    "top_db",
                    format!("must be finite and >= 0, got {t}"),
                ));
            }
        }
        if let DbRef::Value(r) = self.reference {
            if !r.is_finite() {
                return Err(DspError::invalid("reference", "must be finite"));
            }
        }
        Ok(())
    }
}

/// In-place `10·log10(max(amin, S)) − 10·log10(max(amin, |ref|))`, then (with `top_db`)
/// `max(x, max(x) − top_db)` over the whole slice — `librosa.power_to_db`. Computed in `f32`
/// like librosa (NaN inputs are treated as `amin`).
pub fn power_to_db_in_place(s: &mut [f32], params: &DbParams) -> Result<(), DspError> {
    params.validate()?;
    if s.is_empty() {
        return Ok(());
    }
    let amin = params.amin;
    let reference = match params.reference {
        DbRef::Max => max_of(s),
        DbRef::Value(r) => r.abs(),
    };
    let offset = ten_log10(amin.max(reference));
    to_db(s, amin, offset, params.top_db);
    Ok(())
}

/// The dB loops of [`power_to_db_in_place`] once the reference offset is known.
#[inline(always)]
fn to_db_kernel(s: &mut [f32], amin: f32, offset: f32, top_db: Option<f32>) {
    for v in s.iter_mut() {
        *v = ten_log10(amin.max(*v)) - offset;
    }
    if let Some(top_db) = top_db {
        let floor = max_of(s) - top_db;
        for v in s.iter_mut() {
            *v = v.max(floor);
        }
    }
}

avx2_dispatch! {
    fn to_db(s: &mut [f32], amin: f32, offset: f32, top_db: Option<f32>) => to_db_kernel;
}

/// Maximum of a slice with eight independent lanes (vectorises; NaNs are ignored).
#[inline(always)]
fn max_of(s: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = s.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    lanes.into_iter().fold(tail, f32::max)
}

/// Allocating version of [`power_to_db_in_place`].
pub fn power_to_db(s: &[f32], params: &DbParams) -> Result<Vec<f32>, DspError> {
    let mut out = s.to_vec();
    power_to_db_in_place(&mut out, params)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_amin_and_top_db() {
        let s = [1.0, 0.1, 1e-3, 1e-12, 0.0];
        let db = power_to_db(&s, &DbParams::default()).unwrap();
        let expect = [0.0, -10.0, -30.0, -80.0, -80.0]; // 1e-12 → amin 1e-10 → -100 → clipped
        for (a, b) in db.iter().zip(expect) {
            assert!((a - b).abs() < 1e-5, "{db:?}");
        }
        let no_clip = DbParams {
            top_db: None,
            ..DbParams::default()
        };
        let db = power_to_db(&s, &no_clip).unwrap();
        assert!((db[3] + 100.0).abs() < 1e-4);

        let s = [4.0, 2.0, 4e-9];
        let db = power_to_db(&s, &DbParams::ref_max()).unwrap();
        assert!(db[0].abs() < 1e-6);
        assert!((db[1] + 3.0103).abs() < 1e-4);
        assert!((db[2] + 80.0).abs() < 1e-4);
    }

    #[test]
    fn rejects_bad_params() {
        let mut s = [1.0f32];
        let p = DbParams {
            amin: 0.0,
            ..DbParams::default()
        };
        assert!(power_to_db_in_place(&mut s, &p).is_err());
        let p = DbParams {
            amin: 1e-40,
            ..DbParams::default()
        };
        assert!(power_to_db_in_place(&mut s, &p).is_err());
        let p = DbParams {
            top_db: Some(-1.0),
            ..DbParams::default()
        };
        assert!(power_to_db_in_place(&mut s, &p).is_err());
    }
}
