//! High-quality band-limited resampling built on rubato's windowed-sinc interpolator.
//!
//! Filters are rubato's (256 taps, Blackman-Harris² window, cutoff from
//! `rubato::calculate_cutoff`, scaled by the ratio when downsampling). rubato's chunked
//! `SincFixedIn` starts its read position at a fixed offset, so its output is shifted by a
//! *fractional*, ratio-dependent number of samples (`output_delay()` does not describe it)
//! that cannot be undone by dropping whole output samples. We therefore drive rubato's sinc
//! interpolator directly over the whole zero-padded signal and evaluate output sample `m`
//! exactly at input time `m · from_sr / to_sr`:
//!
//! * **Rational mode** — integer rates whose reduced ratio `P / Q` has `Q <= 1024` phases
//!   (22 050 → 16 000 is 441 / 320): the filter bank holds exactly the `Q` phases ever needed,
//!   so each output sample is a single 256-tap dot product with no interpolation error. On a
//!   CPU with AVX and FMA, [`fir_batch`] computes them phase by phase, eight at a time, with
//!   the interpolator's own filters and arithmetic (bit-identical, several chains in flight).
//! * **Arbitrary mode** — any other ratio (e.g. `sr / rate` in pitch shifting): 128
//!   oversampled phases and cubic interpolation between the four nearest ones (interpolation
//!   error below −120 dB for band-limited content).
//!
//! The output has exactly `round(len · to_sr / from_sr)` samples (or any requested length) and
//! equal rates are a plain copy. [`resample`] keeps a small per-thread cache of resamplers, as
//! building a filter bank costs about as much as resampling a few seconds of audio.

use std::cell::RefCell;
use std::rc::Rc;

#[cfg(target_arch = "x86_64")]
use rubato::sinc_interpolator::sinc_interpolator_avx::AvxInterpolator;
#[cfg(target_arch = "x86_64")]
use rubato::sinc_interpolator::sinc_interpolator_sse::SseInterpolator;
use rubato::sinc_interpolator::{ScalarInterpolator, SincInterpolator};
use rubato::{calculate_cutoff, WindowFunction};

use super::error::DspError;

/// Length of the interpolation filter, in input samples.
pub const SINC_LEN: usize = 256;
/// Oversampling factor (filter phases) of the arbitrary-ratio mode.
pub const OVERSAMPLING: usize = 128;
/// Largest number of exact phases the rational mode precomputes.
pub const MAX_RATIONAL_PHASES: usize = 1024;
/// Window applied to the sinc.
const WINDOW: WindowFunction = WindowFunction::BlackmanHarris2;
/// Resamplers kept per thread by [`resample`].
const CACHE_SIZE: usize = 8;

/// How output times map onto filter phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `from / to = p / q` in lowest terms with `q` phases: output `m` is at input time
    /// `m·p / q`, whose fractional part `(m·p mod q) / q` is always an exact filter phase.
    Rational { p: u64, q: u64 },
    /// Cubic interpolation between [`OVERSAMPLING`] phases.
    Arbitrary,
}

/// A resampler for one fixed pair of rates. Construction builds the filter bank (a few ms for
/// rational ratios with hundreds of phases); reuse it for many signals with the same rates.
/// It is `Send` (not `Sync`).
pub struct SincResampler {
    from_sr: f64,
    to_sr: f64,
    /// `None` when the rates are equal (pass-through).
    filter: Option<(Mode, Box<dyn SincInterpolator<f32>>)>,
    /// In rational mode on a CPU with AVX and FMA (where rubato's AVX interpolator is the one
    /// in use): its filters read back, phase-major (`q × SINC_LEN`), for [`fir_batch`], which
    /// computes eight output samples at a time with the interpolator's exact arithmetic.
    taps: Option<Vec<f32>>,
}

impl std::fmt::Debug for SincResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SincResampler")
            .field("from_sr", &self.from_sr)
            .field("to_sr", &self.to_sr)
            .field("mode", &self.filter.as_ref().map(|(m, _)| *m))
            .finish_non_exhaustive()
    }
}

fn make_interpolator(ratio: f64, phases: usize) -> Box<dyn SincInterpolator<f32>> {
    let base_cutoff: f32 = calculate_cutoff(SINC_LEN, WINDOW);
    // The cutoff is relative to the lower of the two Nyquist frequencies.
    let cutoff = if ratio >= 1.0 {
        base_cutoff
    } else {
        base_cutoff * ratio as f32
    };
    #[cfg(target_arch = "x86_64")]
    {
        if let Ok(i) = AvxInterpolator::<f32>::new(SINC_LEN, phases, cutoff, WINDOW) {
            return Box::new(i);
        }
        if let Ok(i) = SseInterpolator::<f32>::new(SINC_LEN, phases, cutoff, WINDOW) {
            return Box::new(i);
        }
    }
    Box::new(ScalarInterpolator::<f32>::new(
        SINC_LEN, phases, cutoff, WINDOW,
    ))
}

/// Whether the CPU has what rubato's AVX interpolator needs (AVX and FMA).
fn avx_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The taps of every phase of `interp`, phase-major, read back as its responses to unit
/// impulses (each an exact tap: one product with 1, the rest with 0).
fn read_taps(interp: &dyn SincInterpolator<f32>) -> Vec<f32> {
    let (len, phases) = (interp.len(), interp.nbr_sincs());
    let mut wave = vec![0f32; 2 * len + 1];
    wave[len] = 1.0;
    let mut taps = Vec::with_capacity(phases * len);
    for phase in 0..phases {
        // Tap j of a phase multiplies wave[index + j]: the impulse at `len` is tap len − index.
        taps.extend((0..len).map(|j| interp.get_sinc_interpolated(&wave, len - j, phase)));
    }
    taps
}

/// Output samples at `points` (`(index, phase)`: `Σ_j buf[index + j] · taps[phase][j]`) into
/// `out`. Each is computed as rubato's AVX interpolator does (eight lanes of fused
/// multiply-adds over the taps in order, then the lanes summed as
/// `((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7))`), so the results are bit-identical. What differs
/// is the order: the samples are taken phase by phase, eight at a time, so that one phase's taps
/// serve eight independent chains from the L1 cache (several times faster).
fn fir_batch(buf: &[f32], taps: &[f32], points: &[(usize, usize)], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(avx_fma(), "fir_batch needs AVX and FMA");
        // SAFETY: the CPU was just checked for AVX and FMA, all the kernel requires.
        unsafe { fir_batch_avx(buf, taps, points, out) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (buf, taps, points, out);
        unreachable!("fir_batch runs only where rubato's AVX interpolator does (x86-64)")
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn fir_batch_avx(buf: &[f32], taps: &[f32], points: &[(usize, usize)], out: &mut [f32]) {
    use std::arch::x86_64::*;
    const G: usize = 8;
    const CHUNKS: usize = SINC_LEN / 8;
    /// The lane sum of rubato's AVX interpolator.
    #[inline(always)]
    unsafe fn reduce(acc: __m256) -> f32 {
        let high = _mm256_extractf128_ps(acc, 1);
        let low = _mm_add_ps(high, _mm256_castps256_ps128(acc));
        let h = _mm_hadd_ps(low, low);
        _mm_cvtss_f32(_mm_hadd_ps(h, h))
    }
    let phases = taps.len() / SINC_LEN;
    assert!(points
        .iter()
        .all(|&(i, ph)| i + SINC_LEN <= buf.len() && ph < phases));
    assert_eq!(points.len(), out.len());
    // The output samples of each phase, in order (a counting sort by phase).
    let mut start = vec![0usize; phases + 1];
    for &(_, ph) in points {
        start[ph + 1] += 1;
    }
    for p in 0..phases {
        start[p + 1] += start[p];
    }
    let mut fill = start.clone();
    let mut order = vec![0usize; points.len()];
    for (m, &(_, ph)) in points.iter().enumerate() {
        order[fill[ph]] = m;
        fill[ph] += 1;
    }
    let mut rest = Vec::new();
    for ph in 0..phases {
        let filter = taps.as_ptr().add(ph * SINC_LEN);
        let mine = &order[start[ph]..start[ph + 1]];
        let mut groups = mine.chunks_exact(G);
        for g in &mut groups {
            let at: [*const f32; G] = std::array::from_fn(|k| buf.as_ptr().add(points[g[k]].0));
            let mut acc = [_mm256_setzero_ps(); G];
            for c in 0..CHUNKS {
                let t = _mm256_loadu_ps(filter.add(8 * c));
                for k in 0..G {
                    acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(at[k].add(8 * c)), t, acc[k]);
                }
            }
            for (k, &m) in g.iter().enumerate() {
                out[m] = reduce(acc[k]);
            }
        }
        rest.extend_from_slice(groups.remainder());
    }
    // What is left of each phase, eight samples (of different phases) at a time; a last group
    // of fewer repeats its final sample in the unused chains (each chain is independent).
    for g in rest.chunks(G) {
        let m = |k: usize| g[k.min(g.len() - 1)];
        let at: [*const f32; G] = std::array::from_fn(|k| buf.as_ptr().add(points[m(k)].0));
        let filters: [*const f32; G] =
            std::array::from_fn(|k| taps.as_ptr().add(points[m(k)].1 * SINC_LEN));
        let mut acc = [_mm256_setzero_ps(); G];
        for c in 0..CHUNKS {
            for k in 0..G {
                let t = _mm256_loadu_ps(filters[k].add(8 * c));
                acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(at[k].add(8 * c)), t, acc[k]);
            }
        }
        for (k, &m) in g.iter().enumerate() {
            out[m] = reduce(acc[k]);
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `from / to` in lowest terms when both rates are integers and the ratio needs at most
/// [`MAX_RATIONAL_PHASES`] phases.
fn rational_mode(from_sr: f64, to_sr: f64) -> Option<Mode> {
    let is_int = |v: f64| v.fract() == 0.0 && v <= u32::MAX as f64;
    if !(is_int(from_sr) && is_int(to_sr)) {
        return None;
    }
    let (from, to) = (from_sr as u64, to_sr as u64);
    let g = gcd(from, to);
    let (p, q) = (from / g, to / g);
    (q as usize <= MAX_RATIONAL_PHASES).then_some(Mode::Rational { p, q })
}

/// Cubic polynomial through points at x = -1, 0, 1, 2, evaluated at `x` in [0, 1)
/// (the same formula rubato uses between oversampled sinc points).
#[inline]
fn interp_cubic(x: f32, y: &[f32; 4]) -> f32 {
    let a0 = y[1];
    let a1 = -(1.0 / 3.0) * y[0] - 0.5 * y[1] + y[2] - (1.0 / 6.0) * y[3];
    let a2 = 0.5 * (y[0] + y[2]) - y[1];
    let a3 = 0.5 * (y[1] - y[2]) + (1.0 / 6.0) * (y[3] - y[0]);
    a0 + x * (a1 + x * (a2 + x * a3))
}

impl SincResampler {
    /// Resampler from `from_sr` to `to_sr` (Hz; any positive finite values, e.g. `sr / rate`).
    pub fn new(from_sr: f64, to_sr: f64) -> Result<Self, DspError> {
        for (name, v) in [("from_sr", from_sr), ("to_sr", to_sr)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(DspError::invalid(
                    name,
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        let filter = if from_sr == to_sr {
            None
        } else {
            let mode = rational_mode(from_sr, to_sr).unwrap_or(Mode::Arbitrary);
            let phases = match mode {
                Mode::Rational { q, .. } => q as usize,
                Mode::Arbitrary => OVERSAMPLING,
            };
            Some((mode, make_interpolator(to_sr / from_sr, phases)))
        };
        let taps = match &filter {
            Some((Mode::Rational { .. }, interp)) if avx_fma() => Some(read_taps(interp.as_ref())),
            _ => None,
        };
        Ok(SincResampler {
            from_sr,
            to_sr,
            filter,
            taps,
        })
    }

    /// Output/input rate ratio.
    pub fn ratio(&self) -> f64 {
        self.to_sr / self.from_sr
    }

    /// Whether every output sample is an exact filter phase (integer rates with at most
    /// [`MAX_RATIONAL_PHASES`] phases); otherwise phases are interpolated.
    pub fn is_exact(&self) -> bool {
        !matches!(self.filter, Some((Mode::Arbitrary, _)))
    }

    /// `round(len · to_sr / from_sr)`.
    pub fn output_len(&self, input_len: usize) -> usize {
        (input_len as f64 * self.to_sr / self.from_sr).round() as usize
    }

    /// Resamples `y` to [`Self::output_len`]`(y.len())` samples.
    pub fn process(&self, y: &[f32]) -> Vec<f32> {
        self.process_to_len(y, self.output_len(y.len()))
    }

    /// Resamples `y` and returns exactly `n_out` samples (output sample `m` is the signal at
    /// input time `m · from_sr / to_sr`; the signal is zero outside `y`).
    pub fn process_to_len(&self, y: &[f32], n_out: usize) -> Vec<f32> {
        let Some((mode, interp)) = &self.filter else {
            let mut out = y[..n_out.min(y.len())].to_vec();
            out.resize(n_out, 0.0);
            return out;
        };
        if n_out == 0 {
            return Vec::new();
        }
        let taps = interp.len();
        let half = taps / 2;
        // rubato's point (index, phase) with `phases` phases sits at buffer time
        // index + taps/2 - 1 + (phase + 1) / phases; `taps` leading zeros put input time t at
        // buffer time t + taps.
        let last_t = ((n_out - 1) as f64 * self.from_sr / self.to_sr).ceil() as usize;
        let mut buf = vec![0.0f32; taps + last_t.max(y.len()) + taps + 4];
        buf[taps..taps + y.len()].copy_from_slice(y);

        let mut out = Vec::with_capacity(n_out);
        match *mode {
            Mode::Rational { p, q } => {
                let point = |m: u64| -> (usize, usize) {
                    let (whole, frac) = ((m * p / q) as usize, m * p % q);
                    // index + (phase + 1) / q = whole + frac / q + half + 1
                    if frac == 0 {
                        (whole + half, (q - 1) as usize)
                    } else {
                        (whole + half + 1, (frac - 1) as usize)
                    }
                };
                if let Some(taps) = &self.taps {
                    let points: Vec<(usize, usize)> = (0..n_out as u64).map(point).collect();
                    out.resize(n_out, 0.0);
                    fir_batch(&buf, taps, &points, &mut out);
                } else {
                    for m in 0..n_out as u64 {
                        let (index, phase) = point(m);
                        out.push(interp.get_sinc_interpolated(&buf, index, phase));
                    }
                }
            }
            Mode::Arbitrary => {
                let phases = interp.nbr_sincs();
                let phases_i = phases as isize;
                let step = self.from_sr / self.to_sr;
                let offset = half as f64 + 1.0 - 1.0 / phases as f64;
                let mut points = [0.0f32; 4];
                for m in 0..n_out {
                    let idx = m as f64 * step + offset;
                    let base = idx.floor();
                    let scaled = (idx - base) * phases as f64;
                    let phase0 = scaled.floor() as isize;
                    let x = (scaled - scaled.floor()) as f32;
                    for (k, p) in points.iter_mut().enumerate() {
                        let mut index = base as isize;
                        let mut phase = phase0 + k as isize - 1;
                        if phase < 0 {
                            phase += phases_i;
                            index -= 1;
                        } else if phase >= phases_i {
                            phase -= phases_i;
                            index += 1;
                        }
                        *p = interp.get_sinc_interpolated(&buf, index as usize, phase as usize);
                    }
                    out.push(interp_cubic(x, &points));
                }
            }
        }
        out
    }
}

/// Per-thread cache entries: `((from_sr, to_sr), resampler)`, oldest first.
type Cache = Vec<((u32, u32), Rc<SincResampler>)>;

thread_local! {
    /// Most recently built resamplers of this thread.
    static CACHE: RefCell<Cache> = const { RefCell::new(Vec::new()) };
}

/// Resamples `y` from `from_sr` to `to_sr` Hz, returning exactly `round(len · to / from)`
/// time-aligned samples (a copy when the rates are equal). Resamplers are cached per thread.
pub fn resample(y: &[f32], from_sr: u32, to_sr: u32) -> Result<Vec<f32>, DspError> {
    if from_sr == to_sr && from_sr > 0 {
        return Ok(y.to_vec());
    }
    let key = (from_sr, to_sr);
    let cached = CACHE.with(|c| {
        let c = c.borrow();
        c.iter().find(|(k, _)| *k == key).map(|(_, r)| Rc::clone(r))
    });
    let resampler = match cached {
        Some(r) => r,
        None => {
            let r = Rc::new(SincResampler::new(from_sr as f64, to_sr as f64)?);
            CACHE.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() == CACHE_SIZE {
                    c.remove(0);
                }
                c.push((key, Rc::clone(&r)));
            });
            r
        }
    };
    Ok(resampler.process(y))
}

/// Resampling of a signal that arrives in blocks (a recording streamed from disk), with exactly
/// the output [`resample`] gives for the whole signal: in the rational mode each output sample
/// depends only on the inputs within half a filter of its time, so blocks that start on a whole
/// period of the ratio and carry a margin of a filter length on each side reproduce it sample
/// for sample. Ratios without an exact rational mode are refused (`None` from [`Self::new`]).
pub struct StreamResampler {
    inner: Option<SincResampler>,
    /// `from / to = p / q` in lowest terms.
    p: usize,
    q: usize,
    margin: usize,
    chunk: usize,
    /// Input not yet consumed, after `margin` leading zeros at the start.
    buf: Vec<f32>,
    seen: usize,
    emitted: usize,
}

impl StreamResampler {
    pub fn new(from_sr: u32, to_sr: u32) -> Result<Option<StreamResampler>, DspError> {
        if from_sr == to_sr {
            return Ok(Some(StreamResampler {
                inner: None,
                p: 1,
                q: 1,
                margin: 0,
                chunk: 1,
                buf: Vec::new(),
                seen: 0,
                emitted: 0,
            }));
        }
        if from_sr == 0 || to_sr == 0 {
            return Ok(None);
        }
        let Some(Mode::Rational { p, q }) = rational_mode(from_sr as f64, to_sr as f64) else {
            return Ok(None);
        };
        let (p, q) = (p as usize, q as usize);
        let r = SincResampler::new(from_sr as f64, to_sr as f64)?;
        let margin = p * SINC_LEN.div_ceil(p);
        // About ten seconds of input per block, a whole number of periods.
        let chunk = p * (from_sr as usize * 10).div_ceil(p).max(1);
        Ok(Some(StreamResampler {
            inner: Some(r),
            p,
            q,
            margin,
            chunk,
            buf: vec![0.0; margin],
            seen: 0,
            emitted: 0,
        }))
    }

    /// Feed input samples; output samples that are final are appended to `out`.
    pub fn push(&mut self, x: &[f32], out: &mut Vec<f32>) {
        self.seen += x.len();
        let Some(r) = &self.inner else {
            out.extend_from_slice(x);
            self.emitted += x.len();
            return;
        };
        self.buf.extend_from_slice(x);
        let (m, c) = (self.margin, self.chunk);
        while self.buf.len() >= m + c + m {
            let local = r.process_to_len(&self.buf[..m + c + m], (m + c + m) * self.q / self.p);
            let (a, b) = (m * self.q / self.p, (m + c) * self.q / self.p);
            out.extend_from_slice(&local[a..b]);
            self.emitted += b - a;
            self.buf.drain(..c);
        }
    }

    /// The rest of the output: `round(total · to / from)` samples in all, as [`resample`].
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let Some(r) = &self.inner else {
            return;
        };
        let total = r.output_len(self.seen);
        if total <= self.emitted {
            return;
        }
        let a = self.margin * self.q / self.p;
        let local = r.process_to_len(&self.buf, a + total - self.emitted);
        out.extend_from_slice(&local[a..]);
        self.emitted = total;
        self.buf.clear();
    }
}

/// Pads with zeros or truncates `y` to exactly `len` samples (`librosa.util.fix_length`).
pub fn fix_length(mut y: Vec<f32>, len: usize) -> Vec<f32> {
    y.resize(len, 0.0);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, sr: f64, len: usize, phase: f64) -> Vec<f32> {
        (0..len)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / sr + phase).sin() as f32)
            .collect()
    }

    #[test]
    fn the_batched_filter_is_bit_identical_to_the_interpolator() {
        for (from, to) in [(22050.0, 16000.0), (44100.0, 16000.0), (16000.0, 22050.0)] {
            let r = SincResampler::new(from, to).unwrap();
            let n = 3 * from as usize / 2 + 13;
            let mut seed = 11u32;
            let y: Vec<f32> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            let batched = r.process(&y);
            let plain = SincResampler {
                taps: None,
                ..SincResampler::new(from, to).unwrap()
            };
            let reference = plain.process(&y);
            assert_eq!(batched.len(), reference.len());
            let same = batched
                .iter()
                .zip(&reference)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{from} -> {to}: batched output differs");
            // Where the CPU has AVX and FMA the batched path is the one that ran.
            assert_eq!(r.taps.is_some(), avx_fma(), "{from} -> {to}");
        }
    }

    #[test]
    fn a_stream_resamples_exactly_as_the_whole_signal() {
        for (from, to) in [
            (22050u32, 16000u32),
            (44100, 16000),
            (16000, 22050),
            (48000, 16000),
        ] {
            let n = from as usize * 23 + 777;
            let y: Vec<f32> = sine(440.0, from as f64, n, 0.3)
                .iter()
                .zip(sine(3100.0, from as f64, n, 1.0))
                .map(|(a, b)| 0.5 * a + 0.3 * b)
                .collect();
            let whole = resample(&y, from, to).unwrap();
            let mut st = StreamResampler::new(from, to).unwrap().unwrap();
            let mut got = Vec::new();
            for block in y.chunks(12_345) {
                st.push(block, &mut got);
            }
            st.finish(&mut got);
            assert_eq!(got.len(), whole.len(), "{from} -> {to}");
            let worst = got
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-6, "{from} -> {to}: {worst}");
        }
        // Equal rates pass through; a ratio without exact phases is refused.
        let mut st = StreamResampler::new(16000, 16000).unwrap().unwrap();
        let mut got = Vec::new();
        st.push(&[0.5, -0.5], &mut got);
        st.finish(&mut got);
        assert_eq!(got, vec![0.5, -0.5]);
        assert!(StreamResampler::new(16001, 16000).unwrap().is_none());
    }

    #[test]
    fn lengths_and_passthrough() {
        let y = sine(440.0, 22050.0, 44100, 0.0);
        assert_eq!(resample(&y, 22050, 16000).unwrap().len(), 32000);
        assert_eq!(resample(&y[..1001], 22050, 16000).unwrap().len(), 726); // 726.30
        assert_eq!(resample(&y[..1003], 22050, 16000).unwrap().len(), 728); // 727.80
        assert_eq!(resample(&y, 22050, 22050).unwrap(), y);
        assert!(resample(&[], 22050, 16000).unwrap().is_empty());
        assert!(resample(&y, 0, 16000).is_err());
    }

    /// Output sample m must equal the band-limited input at time m / ratio: a sub-sample
    /// misalignment of 1/1000 input sample would already show up as ~8e-4 error at 3 kHz; the
    /// measured errors are 3e-7..1.5e-5 (filter ripple and f32 rounding).
    #[test]
    fn output_is_time_aligned() {
        for (from, to, f, exact) in [
            (22050.0, 16000.0, 3000.0, true),
            (16000.0, 22050.0, 3000.0, true),
            (48000.0, 16000.0, 3000.0, true),
            (8000.0, 16000.0, 2000.0, true),
            (22050.0, 16001.0, 3000.0, false),
            (22050.0 / 0.890899, 22050.0, 2500.0, false),
            (22050.0 / 1.122462, 22050.0, 2500.0, false),
        ] {
            let y = sine(f, from, 20000, 0.3);
            let r = SincResampler::new(from, to).unwrap();
            assert_eq!(r.is_exact(), exact, "{from}->{to}");
            let out = r.process(&y);
            let expect = sine(f, to, out.len(), 0.3);
            // Away from the edges (filter half-length) the error is the filter's ripple only.
            let margin = (SINC_LEN as f64 * to / from) as usize;
            let err = out[margin..out.len() - margin]
                .iter()
                .zip(&expect[margin..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 5e-5, "{from}->{to}: max err {err}");
        }
    }

    #[test]
    fn cache_returns_the_same_result_as_a_fresh_resampler() {
        let y = sine(440.0, 22050.0, 5000, 0.0);
        let fresh = SincResampler::new(22050.0, 16000.0).unwrap().process(&y);
        for _ in 0..3 {
            assert_eq!(resample(&y, 22050, 16000).unwrap(), fresh);
        }
        // More rate pairs than the cache holds still work.
        for to in 8000..8000 + CACHE_SIZE as u32 + 2 {
            assert_eq!(
                resample(&y, 22050, to).unwrap().len(),
                (5000.0 * to as f64 / 22050.0).round() as usize
            );
        }
    }

    #[test]
    fn downsampling_removes_content_above_new_nyquist() {
        // 10 kHz tone at 44.1 kHz resampled to 16 kHz must vanish (it would alias to 6 kHz).
        let y = sine(10000.0, 44100.0, 44100, 0.0);
        let out = resample(&y, 44100, 16000).unwrap();
        let rms = (out[2000..14000].iter().map(|v| v * v).sum::<f32>() / 12000.0).sqrt();
        assert!(rms < 1e-3, "alias rms {rms}");
    }

    #[test]
    fn fix_length_pads_and_truncates() {
        assert_eq!(fix_length(vec![1.0, 2.0], 3), vec![1.0, 2.0, 0.0]);
        assert_eq!(fix_length(vec![1.0, 2.0, 3.0], 2), vec![1.0, 2.0]);
    }
}
