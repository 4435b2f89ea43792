//! Clip-level functionals and classical models as users drive them: F0 against librosa's pYIN
//! on real EmoDB clips, the functionals cache with named columns, a classical experiment end to
//! end (run, evaluate, predict from the saved model), and the functionals SVM on two held-out
//! EmoDB speakers. Real-data tests skip with a message when the corpus folder is absent.

mod common;

use std::path::{Path, PathBuf};

use common::{emolab, read_parquet};
use emolab::features::functionals::pitch::{track, PitchParams};
use emolab::features::functionals::FunctionalsSpec;
use emolab::synth::{self, Layout, SynthOptions};

/// emolab's default F0 tracker against `librosa.pyin` (fixtures from
/// `tests/fixtures/librosa/make_pitch_fixtures.py`, same frames): on frames both call voiced,
/// the median error is at most 20 cents; voicing decisions agree on at least 90 % of frames.
#[test]
fn f0_tracks_pyin_on_real_voiced_frames() {
    let Some(corpus) = common::emodb() else {
        eprintln!("skipped: EmoDB not found (set EMODB=/path/to/emodb/wav to run this test)");
        return;
    };
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/librosa/pitch_manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let spec = FunctionalsSpec::default();
    let sr = 16000u32;
    let params = PitchParams {
        sample_rate: sr as f32,
        frame: (spec.pitch_frame_s * sr as f32).round() as usize,
        hop: (spec.hop_s * sr as f32).round() as usize,
        fmin: spec.fmin,
        fmax: spec.fmax,
    };
    assert_eq!(
        (params.frame, params.hop),
        (
            manifest["frame_length"].as_u64().unwrap() as usize,
            manifest["hop_length"].as_u64().unwrap() as usize
        )
    );
    let (mut cents, mut agree, mut frames) = (Vec::new(), 0usize, 0usize);
    let (mut only_ours, mut only_pyin) = (0usize, 0usize);
    for c in manifest["clips"].as_array().unwrap() {
        let y = emolab::features::stage::load_clip(&corpus.join(c["clip"].as_str().unwrap()), sr)
            .unwrap();
        let ours = track(&y, &params);
        let f0: Vec<f64> = c["f0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let voiced: Vec<bool> = c["voiced"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        assert!(
            (ours.len() as i64 - f0.len() as i64).abs() <= 1,
            "{}: {} frames vs pyin's {}",
            c["clip"],
            ours.len(),
            f0.len()
        );
        for (o, (&f, &v)) in ours.iter().zip(f0.iter().zip(&voiced)) {
            frames += 1;
            agree += (o.voiced == v) as usize;
            only_ours += (o.voiced && !v) as usize;
            only_pyin += (!o.voiced && v) as usize;
            if o.voiced && v && f > 0.0 {
                cents.push((1200.0 * (o.f0 as f64 / f).log2()).abs());
            }
        }
    }
    cents.sort_by(f64::total_cmp);
    let median = cents[cents.len() / 2];
    let agreement = agree as f64 / frames as f64;
    eprintln!(
        "F0 vs librosa.pyin on {} EmoDB clips: {} frames both voiced, median error {median:.1} cents, \
         voicing agreement {:.1} % of {frames} frames ({only_ours} voiced only here, {only_pyin} only by pyin)",
        manifest["clips"].as_array().unwrap().len(),
        cents.len(),
        100.0 * agreement
    );
    assert!(cents.len() > 300, "too few voiced frames to compare");
    assert!(median <= 20.0, "median F0 error {median:.1} cents");
    assert!(agreement >= 0.90, "voicing agreement {agreement:.3}");
}

fn corpus(dir: &Path) -> PathBuf {
    let out = dir.join("synth");
    synth::generate(&SynthOptions {
        layout: Layout::Cremad,
        out: out.clone(),
        actors: Some(6),
        seed: 5,
        progress: false,
    })
    .unwrap();
    out
}

/// A functionals pipeline caches one named vector per clip; an SVM experiment on it writes a
/// run folder like the networks' (history with a validation UA, predictions, metrics, a model
/// file), `evaluate` reproduces its test metrics from the saved model, and `predict` scores
/// files; a classical model on a spectrogram pipeline is refused with the reason.
#[test]
fn a_functionals_svm_experiment_runs_evaluates_and_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    let exp = common::write_exp(
        tmp.path(),
        "fsvm",
        &c,
        "protocol: {kind: speaker_kfold, k: 3, val_fraction: 0.2}",
        "",
    );
    // common::write_exp writes a CNN on log-mels; swap in the functionals SVM.
    let text = std::fs::read_to_string(&exp).unwrap();
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("pipeline:") {
                format!("pipeline: {}/functionals.yaml", pipelines.display())
            } else if l.starts_with("model:") {
                "model: {family: svm, c: 1.0}".to_string()
            } else if l.starts_with("train:") {
                "train: {normalize: speaker}".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&exp, &text).unwrap();
    let (ok, out, err) = emolab(&["run", exp.to_str().unwrap(), "--set", "folds=[0]"]);
    assert!(ok, "{out}\n{err}");
    let run = tmp.path().join("results/fsvm/fold0-seed0");
    for f in [
        "model.json",
        "history.parquet",
        "predictions.parquet",
        "metrics.json",
        "split.parquet",
        "importance.parquet",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    // Permutation importance: one named row per functional, finite.
    let imp = read_parquet(&run.join("importance.parquet"));
    assert_eq!(imp.height(), FunctionalsSpec::default().len());
    assert!(imp
        .column("importance")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .all(f64::is_finite));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let ua = metrics["test"]["ua"].as_f64().unwrap();
    assert!(metrics["val_ua"].as_f64().unwrap().is_finite());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["family"], "svm");
    assert_eq!(meta["transductive"], true);

    // The cache holds one vector per clip with the names as Parquet metadata and a listing.
    let cache = tmp.path().join("cache");
    let dir = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("feature_names.json").exists())
        .expect("a functionals cache folder");
    let names: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("feature_names.json")).unwrap())
            .unwrap();
    assert_eq!(names.len(), FunctionalsSpec::default().len());
    assert!(names.contains(&"f0_semitone_mean".to_string()));
    let part = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&part).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let stored = kv
        .iter()
        .find(|k| k.key == "feature_names")
        .and_then(|k| k.value.clone())
        .expect("feature_names metadata");
    assert_eq!(serde_json::from_str::<Vec<String>>(&stored).unwrap(), names);
    let rows = read_parquet(&part);
    assert!(rows
        .column("n_frames")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .all(|n| n == 1));

    // evaluate refits from model.json and reproduces the test metrics.
    let (ok, out, err) = emolab(&["evaluate", run.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        (again["test"]["ua"].as_f64().unwrap() - ua).abs() < 1e-12,
        "{again} vs {ua}"
    );
    let good = std::fs::read_dir(&c)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wav"));
    let (ok, out, err) = emolab(&[
        "predict",
        run.to_str().unwrap(),
        good.unwrap().to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let preds: serde_json::Value = serde_json::from_str(&out).unwrap();
    let total: f64 = preds[0]["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "{preds}");

    // The seed's Conv1D on the 40-MFCC means trains on the same corpus (a network on vectors).
    let (ok, out, err) = emolab(&[
        "run",
        exp.to_str().unwrap(),
        "--set",
        &format!("pipeline={}/mfcc_mean40.yaml", pipelines.display()),
        "--set",
        "model={preset: seed_conv1d}",
        "--set",
        "train={epochs: 3, normalize: per_mel, threads: 2, device: cpu}",
        "--set",
        "name=seedconv",
    ]);
    assert!(ok, "{out}\n{err}");
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("results/seedconv/fold0-seed0/metrics.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(m["test"]["ua"].as_f64().unwrap() > 0.0);
    let (ok, _, err) = emolab(&[
        "evaluate",
        tmp.path()
            .join("results/seedconv/fold0-seed0")
            .to_str()
            .unwrap(),
    ]);
    assert!(ok, "a vector network reloads from its run folder: {err}");

    // A classical model needs clip vectors.
    let (ok, _, err) = emolab(&[
        "run",
        exp.to_str().unwrap(),
        "--set",
        &format!("pipeline={}/logmel64.yaml", pipelines.display()),
    ]);
    assert!(!ok);
    assert!(err.contains("one vector per clip"), "{err}");
}

/// The functionals SVM (experiments/emodb_functionals_svm.yaml) trained on 7 EmoDB speakers and
/// tested once on 2 held-out speakers clearly beats chance, in seconds.
#[test]
fn functionals_svm_clearly_beats_chance_on_two_held_out_emodb_speakers() {
    let Some(corpus) = common::emodb() else {
        eprintln!("skipped: EmoDB not found (set EMODB=/path/to/emodb/wav to run this test)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("EMODB", &corpus)
        .args([
            "--quiet",
            "run",
            "experiments/emodb_functionals_svm.yaml",
            "--set",
            "protocol={kind: speaker_holdout, test_fraction: 0.2, val_fraction: 0.15}",
            "--set",
            &format!("cache={}", tmp.path().join("cache").display()),
            "--set",
            &format!("results={}", tmp.path().join("results").display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = tmp.path().join("results/emodb_functionals_svm/fold0-seed0");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let ua = metrics["test"]["ua"].as_f64().unwrap();
    eprintln!("EmoDB functionals SVM, 2 held-out speakers: test UA {ua:.3} (chance 0.143)");
    assert!(ua > 0.45, "test UA {ua:.3} is not clearly above chance");
}
