//! Branch-free `f32` elementary functions for the hot loops (`10·log10`, `atan2`, `sin/cos`).
//!
//! `f32::log10`, `atan2` and `sin_cos` are scalar libm calls; in the dB conversion and the
//! phase vocoder they cost more than the FFTs. These versions use the Cephes single-precision
//! polynomials (≲ 2 ulp on the reduced range) behind a branch-free argument reduction, so
//! loops over them vectorise. Accuracy is checked against `f64` in the tests below.

/// `10·log10(x)` for positive **normal** `x` (callers clamp with a normal `amin` first).
#[inline(always)]
pub(crate) fn ten_log10(x: f32) -> f32 {
    const TEN_OVER_LN10: f32 = 4.342_944_8;
    let bits = x.to_bits();
    // x = m · 2^e with m in [0.5, 1)
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    // Move m into [sqrt(1/2), sqrt(2)) so that |m - 1| <= 0.29.
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    m = if small { m + m } else { m };
    let x = m - 1.0;
    let z = x * x;
    let poly = ((((((((7.037_683_6e-2 * x - 1.151_461e-1) * x + 1.167_699_9e-1) * x
        - 1.242_014_1e-1)
        * x
        + 1.424_932_3e-1)
        * x
        - 1.666_805_8e-1)
        * x
        + 2.000_071_4e-1)
        * x
        - 2.499_999_4e-1)
        * x
        + 3.333_333e-1)
        * x
        * z;
    let fe = e as f32;
    // ln 2 split in two parts (0.693359375 is exact in f32) to keep e·ln2 accurate.
    let ln = x + (poly - 2.121_944_4e-4 * fe - 0.5 * z) + 0.693_359_4 * fe;
    TEN_OVER_LN10 * ln
}

/// `atan2(y, x)` in `(-π, π]` with `atan2(±0, +0) = ±0` and `atan2(±0, -0 or x<0) = ±π`
/// (signs as in `f32::atan2`); max error ≈ 2e-7 rad.
#[inline(always)]
pub(crate) fn atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, FRAC_PI_4, PI};
    const TAN_PI_8: f32 = 0.414_213_57;
    let (ax, ay) = (x.abs(), y.abs());
    let (lo, hi) = (ax.min(ay), ax.max(ay));
    // a = min/max in [0, 1] (0 when both are zero).
    let a = if hi > 0.0 { lo / hi } else { 0.0 };
    // atan(a) = π/4 + atan((a - 1) / (a + 1)) brings the argument into |z| <= tan(π/8).
    let big = a > TAN_PI_8;
    let z = if big { (a - 1.0) / (a + 1.0) } else { a };
    let z2 = z * z;
    let p = (((8.053_744_5e-2 * z2 - 1.387_768_6e-1) * z2 + 1.997_771_1e-1) * z2 - 3.333_295e-1)
        * z2
        * z
        + z;
    let mut r = if big { FRAC_PI_4 + p } else { p };
    r = if ay > ax { FRAC_PI_2 - r } else { r };
    r = if x.is_sign_negative() { PI - r } else { r };
    r.copysign(y)
}

/// `(sin x, cos x)` for any finite `x`. The reduction by π/2 is done in `f64`, so it stays
/// exact for the large accumulated phases of the phase vocoder (|x| up to ~1e7); max error
/// ≈ 1e-7 absolute.
#[inline(always)]
pub(crate) fn sin_cos(x: f32) -> (f32, f32) {
    let xd = x as f64;
    let k = (xd * std::f64::consts::FRAC_2_PI).round();
    let r = (xd - k * std::f64::consts::FRAC_PI_2) as f32; // |r| <= π/4
    let quadrant = k - 4.0 * (k * 0.25).floor(); // k mod 4, in {0, 1, 2, 3}
    let r2 = r * r;
    let s = ((-1.951_529_6e-4 * r2 + 8.332_161e-3) * r2 - 1.666_665_5e-1) * r2 * r + r;
    let c =
        ((2.443_315_7e-5 * r2 - 1.388_731_6e-3) * r2 + 4.166_664_6e-2) * r2 * r2 - 0.5 * r2 + 1.0;
    // sin(r + qπ/2), cos(r + qπ/2) for q = 0..3: (s, c), (c, -s), (-s, -c), (-c, s).
    let swap = quadrant == 1.0 || quadrant == 3.0;
    let (sv, cv) = if swap { (c, s) } else { (s, c) };
    let sin = if quadrant >= 2.0 { -sv } else { sv };
    let cos = if quadrant == 1.0 || quadrant == 2.0 {
        -cv
    } else {
        cv
    };
    (sin, cos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_log10_matches_f64() {
        let mut worst = 0.0f64;
        let mut x = f32::MIN_POSITIVE as f64;
        while x < f32::MAX as f64 / 1.01 {
            for v in [x as f32, (x * 1.000_123) as f32] {
                let exact = 10.0 * (v as f64).log10();
                let err = (ten_log10(v) as f64 - exact).abs();
                // <= ~3 ulp of the result (|dB| <= 385 over the normal range).
                assert!(
                    err <= 3.0 * f32::EPSILON as f64 * exact.abs().max(1.0),
                    "{v:e}: {err:e}"
                );
                worst = worst.max(err);
            }
            x *= 1.003;
        }
        for i in 0..100_000 {
            let v = 0.5 + i as f32 * 1e-5;
            let err = (ten_log10(v) as f64 - 10.0 * (v as f64).log10()).abs();
            assert!(err <= 1e-6, "x = {v}: err {err:e}");
        }
        assert!(worst < 1e-4, "worst {worst:e}");
    }

    #[test]
    fn atan2_matches_f64_on_all_octants() {
        let mut worst = 0.0f64;
        for i in 0..20_000 {
            let ang = -std::f64::consts::PI + 2.0 * std::f64::consts::PI * i as f64 / 20_000.0;
            for radius in [1e-30, 1e-3, 1.0, 7.5e4] {
                let (y, x) = ((radius * ang.sin()) as f32, (radius * ang.cos()) as f32);
                let exact = (y as f64).atan2(x as f64);
                let err = (atan2(y, x) as f64 - exact).abs();
                worst = worst.max(err);
            }
        }
        assert!(worst < 3e-7, "worst {worst:e}");
        // Axes and signed zeros follow f32::atan2.
        for (y, x) in [
            (0.0f32, 0.0f32),
            (-0.0, 0.0),
            (0.0, -0.0),
            (-0.0, -0.0),
            (0.0, -2.0),
            (-0.0, -2.0),
            (3.0, 0.0),
            (-3.0, 0.0),
            (1.0, 1.0),
            (-1.0, -1.0),
        ] {
            let (a, b) = (atan2(y, x), y.atan2(x));
            assert!(
                (a - b).abs() < 3e-7 && a.is_sign_negative() == b.is_sign_negative(),
                "{y} {x}"
            );
        }
    }

    #[test]
    fn sin_cos_matches_f64_for_large_phases() {
        let mut worst = 0.0f64;
        let mut x = -3.0e5f64;
        while x < 3.0e5 {
            let v = x as f32;
            let (s, c) = sin_cos(v);
            let (es, ec) = (v as f64).sin_cos();
            worst = worst.max((s as f64 - es).abs()).max((c as f64 - ec).abs());
            x += 0.731;
        }
        for i in 0..10_000 {
            let v = -7.0 + i as f32 * 1.4e-3;
            let (s, c) = sin_cos(v);
            let (es, ec) = (v as f64).sin_cos();
            worst = worst.max((s as f64 - es).abs()).max((c as f64 - ec).abs());
        }
        assert!(worst < 2e-7, "worst {worst:e}");
    }
}
