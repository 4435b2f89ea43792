//! Parity of `emolab::dsp` with librosa 0.11 golden fixtures.
//!
//! Fixtures live in `tests/fixtures/librosa/` and are produced by `make_fixtures.py` there
//! (see its docstring). Synthetic clips ship as WAVs next to the fixtures; the EmoDB clips
//! are read from `../shared/corpora/emodb/wav/` relative to the crate root and the EmoDB
//! checks are skipped (with a message) when that corpus is absent.
//!
//! # Error measures and tolerances
//! * Mel power / magnitude — `rel_err = max_i |a_i − b_i| / max(|b_i|, 1e-6 · max_j |b_j|)`:
//!   elementwise relative error for every element above 1e-6 of the clip maximum (−60 dB for a
//!   power spectrogram), and absolute error measured in units of that floor below it (so
//!   f32 round-off on near-silent bands cannot dominate, but any error above the floor
//!   counts). Tolerance [`MEL_REL_TOL`].
//! * dB spectrograms — max absolute difference in dB, tolerance [`DB_ABS_TOL`].
//! * MFCCs — max absolute difference, tolerance [`MFCC_ABS_TOL`] (c0 is in the hundreds, the
//!   other coefficients in the tens).
//! * Time stretch (same algorithm, only FFT rounding differs) — waveform relative RMS error
//!   `‖a − b‖ / ‖b‖` and log-mel max dB difference over elements above −60 dB.
//! * Pitch shift — our sinc resampler replaces librosa's `soxr_hq`, so the outputs are not
//!   sample-identical: waveform relative RMS error plus log-mel mean/max dB differences.
//!
//! Run with `cargo test --release --test librosa_parity -- --nocapture` to see the measured
//! figures. `tolerances_are_discriminative` checks that typical bugs (wrong window length, wrong
//! mel formula, a one-sample framing offset, fmax off by 1 Hz) exceed the tolerances by a wide
//! margin (measured 170× to 2e9× the mel tolerance).
//!
//! Measured with librosa 0.11.0 (4 EmoDB clips + 2 synthetic clips):
//! * mel power, default config: rel err 1.8e-6 … 1.0e-5; 512-point HTK magnitude mel ≤ 2.9e-5.
//! * dB (ref=max and ref=1): ≤ 1.7e-4 dB. MFCC (|c| up to 905): ≤ 1.9e-4.
//! * time stretch ×1.25: waveform rel RMS 1.9e-4; log-mel max 0.016 dB, mean 2e-4 dB.
//! * pitch shift +2: waveform rel RMS 3.1e-3; log-mel mean ≤ 0.038 dB (> −60 dB) and max
//!   0.012 dB (> −40 dB). The residual sits in the top mel bands (> 7.2 kHz at 16 kHz), where
//!   the anti-aliasing filters of rubato's sinc and soxr_hq differ; below 7 kHz the band-mean
//!   differences are < 0.005 dB.

use std::path::{Path, PathBuf};

use emolab::dsp::{
    mfcc, pitch_shift, time_stretch, DbParams, DbRef, MelExtractor, MelParams, Spectrogram,
};
use serde_json::Value;

/// Max relative error (definition above) allowed for mel power / magnitude spectrograms.
const MEL_REL_TOL: f64 = 1e-4;
/// Relative floor (fraction of the clip maximum) of the mel relative-error measure.
const MEL_REL_FLOOR: f64 = 1e-6;
/// Max absolute dB difference allowed for dB mel spectrograms.
const DB_ABS_TOL: f64 = 2e-3;
/// Max absolute difference allowed for MFCCs.
const MFCC_ABS_TOL: f64 = 2e-3;
/// Time stretch: max waveform relative RMS error.
const STRETCH_WAVE_REL_RMS_TOL: f64 = 1e-3;
/// Time stretch: max log-mel difference (dB) over elements above −60 dB.
const STRETCH_LOGMEL_MAX_DB_TOL: f64 = 0.05;
/// Pitch shift: max waveform relative RMS error (resampler differs from soxr_hq).
const PITCH_WAVE_REL_RMS_TOL: f64 = 0.02;
/// Pitch shift: max mean absolute log-mel difference (dB) over elements above −60 dB.
const PITCH_LOGMEL_MEAN_DB_TOL: f64 = 0.15;
/// Pitch shift: max log-mel difference (dB) over elements above −40 dB.
const PITCH_LOGMEL_MAX_DB_TOL: f64 = 0.1;

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_dir() -> PathBuf {
    crate_root().join("tests/fixtures/librosa")
}

fn emodb_dir() -> PathBuf {
    crate_root().join("../shared/corpora/emodb/wav")
}

fn manifest() -> Value {
    let path = fixture_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is valid JSON")
}

/// Reads a 16-bit PCM mono WAV as `x / 32768` (what `librosa.load(sr=None)` returns).
fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.channels, 1, "{} is not mono", path.display());
    assert_eq!(spec.bits_per_sample, 16, "{} is not 16-bit", path.display());
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    let y = reader
        .samples::<i16>()
        .map(|s| s.expect("valid PCM sample") as f32 / 32768.0)
        .collect();
    (y, spec.sample_rate)
}

/// Audio of a manifest clip, or `None` (after printing why) when the EmoDB corpus is absent.
fn load_clip(manifest: &Value, clip: &str) -> Option<(Vec<f32>, u32)> {
    let info = &manifest["clips"][clip];
    let path = match info["source"].as_str() {
        Some("synthetic") => fixture_dir().join(info["wav"].as_str().unwrap()),
        Some("emodb") => {
            let p = emodb_dir().join(info["emodb_file"].as_str().unwrap());
            if !p.exists() {
                println!(
                    "skipping {clip}: EmoDB file {} not found (corpus not present)",
                    p.display()
                );
                return None;
            }
            p
        }
        other => panic!("unknown source {other:?} for clip {clip}"),
    };
    let (y, sr) = read_wav(&path);
    assert_eq!(
        y.len() as u64,
        info["n_samples"].as_u64().unwrap(),
        "{clip}"
    );
    assert_eq!(sr as u64, info["sample_rate"].as_u64().unwrap(), "{clip}");
    Some((y, sr))
}

/// A fixture array and its declared shape.
fn load_array(entry: &Value) -> (Vec<f32>, Vec<usize>) {
    let path = fixture_dir().join(entry["file"].as_str().unwrap());
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let shape: Vec<usize> = entry["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{path:?}");
    (data, shape)
}

fn mel_params(entry: &Value) -> MelParams {
    serde_json::from_value(entry["mel"].clone()).expect("manifest mel params match MelParams")
}

fn db_params(entry: &Value) -> DbParams {
    let db = &entry["db"];
    DbParams {
        reference: match &db["ref"] {
            Value::String(s) if s == "max" => DbRef::Max,
            v => DbRef::Value(v.as_f64().expect("numeric ref") as f32),
        },
        amin: db["amin"].as_f64().unwrap() as f32,
        top_db: db["top_db"].as_f64().map(|v| v as f32),
    }
}

/// `max_i |a_i − b_i| / max(|b_i|, floor · max_j |b_j|)`.
fn max_rel_err(a: &[f32], b: &[f32], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    let peak = b.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    let floor = (floor * peak).max(f64::MIN_POSITIVE);
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs() / (y as f64).abs().max(floor))
        .fold(0.0, f64::max)
}

fn max_abs_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
}

/// `‖a − b‖₂ / ‖b‖₂`.
fn rel_rms_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// (max, mean) absolute dB difference over reference elements above `floor_db`.
fn logmel_diff(a: &[f32], b: &[f32], floor_db: f32) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let diffs: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, &y)| y > floor_db)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .collect();
    let max = diffs.iter().cloned().fold(0.0, f64::max);
    (max, diffs.iter().sum::<f64>() / diffs.len().max(1) as f64)
}

fn check_shape(got: &Spectrogram, shape: &[usize], what: &str) {
    assert_eq!(
        [got.n_frames, got.n_mels],
        [shape[0], shape[1]],
        "{what}: shape (frames, bands)"
    );
}

fn entries_of<'a>(m: &'a Value, kinds: &'a [&str]) -> impl Iterator<Item = &'a Value> + 'a {
    m["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |e| kinds.contains(&e["kind"].as_str().unwrap()))
}

#[test]
fn mel_db_mfcc_match_librosa() {
    let m = manifest();
    let mut checked = 0;
    for entry in entries_of(
        &m,
        &["power_mel", "custom_mel", "db_ref_max", "db_ref_1", "mfcc"],
    ) {
        let clip = entry["clip"].as_str().unwrap();
        let kind = entry["kind"].as_str().unwrap();
        let Some((y, sr)) = load_clip(&m, clip) else {
            continue;
        };
        let params = mel_params(entry);
        assert_eq!(params.sample_rate, sr);
        let (want, shape) = load_array(entry);
        let power = MelExtractor::new(params).unwrap().power_mel(&y);
        let what = format!("{clip}/{kind}");
        match kind {
            "power_mel" | "custom_mel" => {
                check_shape(&power, &shape, &what);
                let err = max_rel_err(&power.data, &want, MEL_REL_FLOOR);
                println!("{what:<36} max rel err {err:.3e}");
                assert!(
                    err <= MEL_REL_TOL,
                    "{what}: rel err {err:e} > {MEL_REL_TOL:e}"
                );
            }
            "db_ref_max" | "db_ref_1" => {
                let db = power.power_to_db(&db_params(entry)).unwrap();
                check_shape(&db, &shape, &what);
                let err = max_abs_err(&db.data, &want);
                println!("{what:<36} max abs err {err:.3e} dB");
                assert!(err <= DB_ABS_TOL, "{what}: {err} dB > {DB_ABS_TOL}");
            }
            "mfcc" => {
                let db = power.power_to_db(&db_params(entry)).unwrap();
                let n_mfcc = entry["n_mfcc"].as_u64().unwrap() as usize;
                let c = mfcc(&db, n_mfcc).unwrap();
                assert_eq!([c.n_frames, c.n_mfcc], [shape[0], shape[1]], "{what}");
                let err = max_abs_err(&c.data, &want);
                let scale = max_abs_err(&want, &vec![0.0; want.len()]);
                println!("{what:<36} max abs err {err:.3e} (max |mfcc| {scale:.1})");
                assert!(err <= MFCC_ABS_TOL, "{what}: {err} > {MFCC_ABS_TOL}");
            }
            _ => unreachable!(),
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} fixture arrays were checked");
}

#[test]
fn time_stretch_matches_librosa() {
    let m = manifest();
    for entry in entries_of(&m, &["time_stretch", "time_stretch_logmel"]) {
        let clip = entry["clip"].as_str().unwrap();
        let Some((y, _)) = load_clip(&m, clip) else {
            continue;
        };
        let rate = entry["args"]["rate"].as_f64().unwrap();
        let out = time_stretch(&y, rate, 2048, 512).unwrap();
        let (want, shape) = load_array(entry);
        let what = format!("{clip}/{}", entry["kind"].as_str().unwrap());
        if entry["kind"] == "time_stretch" {
            assert_eq!(out.len(), shape[0], "{what}: length");
            let rel = rel_rms_err(&out, &want);
            let abs = max_abs_err(&out, &want);
            println!("{what:<36} rel rms err {rel:.3e}, max abs err {abs:.3e}");
            assert!(rel <= STRETCH_WAVE_REL_RMS_TOL, "{what}: rel rms {rel:e}");
        } else {
            let ex = MelExtractor::new(mel_params(entry)).unwrap();
            let logmel = ex.log_mel(&out, &db_params(entry)).unwrap();
            check_shape(&logmel, &shape, &what);
            let (max, mean) = logmel_diff(&logmel.data, &want, -60.0);
            println!("{what:<36} log-mel diff (> -60 dB): max {max:.3e} dB, mean {mean:.3e} dB");
            assert!(max <= STRETCH_LOGMEL_MAX_DB_TOL, "{what}: max {max} dB");
        }
    }
}

#[test]
fn pitch_shift_close_to_librosa() {
    let m = manifest();
    for entry in entries_of(&m, &["pitch_shift", "pitch_shift_logmel"]) {
        let clip = entry["clip"].as_str().unwrap();
        let Some((y, sr)) = load_clip(&m, clip) else {
            continue;
        };
        let args = &entry["args"];
        let n_steps = args["n_steps"].as_f64().unwrap();
        let bpo = args["bins_per_octave"].as_u64().unwrap() as u32;
        let out = pitch_shift(&y, sr, n_steps, bpo).unwrap();
        assert_eq!(out.len(), y.len());
        let (want, shape) = load_array(entry);
        let what = format!("{clip}/{}", entry["kind"].as_str().unwrap());
        if entry["kind"] == "pitch_shift" {
            assert_eq!(out.len(), shape[0], "{what}: length");
            let rel = rel_rms_err(&out, &want);
            println!("{what:<36} rel rms err {rel:.3e}");
            assert!(rel <= PITCH_WAVE_REL_RMS_TOL, "{what}: rel rms {rel:e}");
        } else {
            let ex = MelExtractor::new(mel_params(entry)).unwrap();
            let logmel = ex.log_mel(&out, &db_params(entry)).unwrap();
            check_shape(&logmel, &shape, &what);
            let (_, mean) = logmel_diff(&logmel.data, &want, -60.0);
            let (max, _) = logmel_diff(&logmel.data, &want, -40.0);
            println!("{what:<36} log-mel diff: mean {mean:.3e} dB (> -60 dB), max {max:.3e} dB (> -40 dB)");
            assert!(mean <= PITCH_LOGMEL_MEAN_DB_TOL, "{what}: mean {mean} dB");
            assert!(max <= PITCH_LOGMEL_MAX_DB_TOL, "{what}: max {max} dB");
        }
    }
}

/// The tolerances must flag realistic bugs, not just pass: each perturbation below has to
/// push the mel error at least 10× past [`MEL_REL_TOL`].
#[test]
fn tolerances_are_discriminative() {
    let m = manifest();
    let entry = entries_of(&m, &["power_mel"])
        .find(|e| e["clip"] == "synth_chirp_16k")
        .expect("chirp power_mel fixture");
    let (y, _) = load_clip(&m, "synth_chirp_16k").unwrap();
    let (want, _) = load_array(entry);
    let params = mel_params(entry);
    let err = |p: MelParams, y: &[f32]| {
        let got = MelExtractor::new(p).unwrap().power_mel(y);
        max_rel_err(&got.data, &want, MEL_REL_FLOOR)
    };
    let shifted: Vec<f32> = std::iter::once(0.0)
        .chain(y[..y.len() - 1].iter().copied())
        .collect();
    let cases = [
        (
            "window 2 taps short",
            err(
                MelParams {
                    win_length: params.n_fft - 2,
                    ..params
                },
                &y,
            ),
        ),
        (
            "HTK mel formula",
            err(
                MelParams {
                    htk: true,
                    ..params
                },
                &y,
            ),
        ),
        ("one-sample framing offset", err(params, &shifted)),
        (
            "fmax 1 Hz low",
            err(
                MelParams {
                    fmax: Some(params.sample_rate as f32 / 2.0 - 1.0),
                    ..params
                },
                &y,
            ),
        ),
    ];
    for (name, e) in cases {
        println!("perturbation {name:<28} max rel err {e:.3e}");
        assert!(e > 10.0 * MEL_REL_TOL, "{name} is not detected: {e:e}");
    }
}

/// Δ / ΔΔ of a real dB mel (EmoDB 03a01Wa, 87 frames × 128 bands) against
/// `librosa.feature.delta(width, order, mode="interp")`, edges included. Measured: ≤ 6.6e-6
/// (values up to 20 dB per frame). `make_delta_fixtures.py` writes the fixtures.
#[test]
fn deltas_match_librosa() {
    use emolab::features::delta::delta;
    let path = fixture_dir().join("delta_manifest.json");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let input = serde_json::json!({"file": m["input"], "shape": m["arrays"][0]["shape"]});
    let (db, shape) = load_array(&input);
    let f = shape[1];
    for entry in m["arrays"].as_array().unwrap() {
        let (want, _) = load_array(entry);
        let (order, width) = (
            entry["order"].as_u64().unwrap() as usize,
            entry["width"].as_u64().unwrap() as usize,
        );
        let got = delta(&db, f, order, width);
        let err = max_abs_err(&got, &want);
        let scale = want.iter().fold(0f32, |a, &b| a.max(b.abs()));
        eprintln!("delta order {order} width {width}: max abs err {err:.2e} (max |Δ| {scale:.1})");
        assert!(err < 1e-3, "order {order} width {width}: {err}");
        // Edges (mode interp) are part of the comparison: a plain zero-padded filter fails.
        let edge = max_abs_err(&got[..f * 4], &want[..f * 4]);
        assert!(edge < 1e-3, "edge frames differ by {edge}");
    }
    // The comparison can fail: the Δ of a neighbouring width is far off.
    let (want, _) = load_array(&m["arrays"][0]);
    assert!(max_abs_err(&delta(&db, f, 1, 7), &want) > 0.05);
}
