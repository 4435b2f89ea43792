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

/// The EmoDB folder and a librosa fixture of `tests/fixtures/librosa/`; `None` (with a message)
/// when the corpus is absent.
fn emodb_and_fixture(name: &str) -> Option<(PathBuf, serde_json::Value)> {
    let Some(corpus) = common::emodb() else {
        eprintln!("skipped: EmoDB not found (set EMODB=/path/to/emodb/wav to run this test)");
        return None;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/librosa")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    Some((corpus, serde_json::from_str(&text).unwrap()))
}

/// emolab's default F0 tracker against `librosa.pyin` (fixtures from
/// `tests/fixtures/librosa/make_pitch_fixtures.py`, same frames): on frames both call voiced,
/// the median error is at most 20 cents; voicing decisions agree on at least 90 % of frames.
#[test]
fn f0_tracks_pyin_on_real_voiced_frames() {
    let Some((corpus, manifest)) = emodb_and_fixture("pitch_manifest.json") else {
        return;
    };
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

/// The spectral descriptors librosa also defines (RMS, zero-crossing rate, centroid, 85 %
/// roll-off, MFCC 1-13 of 26 mel bands) against librosa on real EmoDB clips at their own
/// 22,050 Hz, on the same frames (fixtures from
/// `tests/fixtures/librosa/make_spectral_fixtures.py`). Frames more than 50 dB under the clip's
/// loudest (where single-precision noise decides centroid and roll-off) are left out of the
/// spectral-shape checks, as the functionals leave out frames under `silence_db`.
#[test]
fn spectral_descriptors_match_librosa_on_real_clips() {
    use emolab::features::functionals::spectral::SpectralAnalyzer;
    let Some((corpus, manifest)) = emodb_and_fixture("spectral_manifest.json") else {
        return;
    };
    let frame = manifest["frame_length"].as_u64().unwrap() as usize;
    let hop = manifest["hop_length"].as_u64().unwrap() as usize;
    let n_mfcc = manifest["n_mfcc"].as_u64().unwrap() as usize;
    let vals = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (mut rms_err, mut zcr_err, mut mfcc_err) = (0f64, 0f64, 0f64);
    let (mut centroid_rel, mut rolloff_same, mut active) = (Vec::new(), 0usize, 0usize);
    for c in manifest["clips"].as_array().unwrap() {
        let sr = c["sample_rate"].as_u64().unwrap() as u32;
        let y = emolab::features::stage::load_clip(&corpus.join(c["clip"].as_str().unwrap()), sr)
            .unwrap();
        let a = SpectralAnalyzer::new(sr as f32, frame, n_mfcc);
        let ours = a.frames(&y, hop);
        assert_eq!(
            ours.len() as u64,
            c["frames"].as_u64().unwrap(),
            "{}",
            c["clip"]
        );
        let (rms, zcr) = (vals(&c["rms_db"]), vals(&c["zcr"]));
        let (centroid, rolloff) = (vals(&c["centroid"]), vals(&c["rolloff"]));
        let mfcc: Vec<Vec<f64>> = c["mfcc"].as_array().unwrap().iter().map(vals).collect();
        let loudest = rms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        for (t, f) in ours.iter().enumerate() {
            // Digital silence: the two floors differ (10 log10(0 + 1e-10) against
            // 20 log10(max(0, 1e-10))).
            if rms[t] > -150.0 {
                rms_err = rms_err.max((f.rms_db as f64 - rms[t]).abs());
            }
            // librosa divides the crossings by the frame length, emolab by the frame's
            // frame - 1 neighbouring pairs.
            let z = f.zcr as f64 * (frame - 1) as f64 / frame as f64;
            zcr_err = zcr_err.max((z - zcr[t]).abs());
            if rms[t] < loudest - 50.0 {
                continue;
            }
            active += 1;
            centroid_rel.push((f.centroid as f64 - centroid[t]).abs() / centroid[t]);
            rolloff_same += ((f.rolloff as f64 - rolloff[t]).abs() < 1e-2) as usize;
            for (k, m) in mfcc.iter().enumerate() {
                mfcc_err = mfcc_err.max((f.mfcc[k] as f64 - m[t]).abs());
            }
        }
    }
    centroid_rel.sort_by(f64::total_cmp);
    let worst_centroid = centroid_rel.last().copied().unwrap_or(0.0);
    let rolloff_share = rolloff_same as f64 / active as f64;
    eprintln!(
        "spectral descriptors vs librosa on {active} active frames: RMS {rms_err:.2e} dB, ZCR \
         {zcr_err:.2e}, centroid worst relative {worst_centroid:.2e}, roll-off on the same bin \
         in {:.2} % of frames, MFCC 1-{n_mfcc} max {mfcc_err:.2e}",
        100.0 * rolloff_share
    );
    assert!(active > 400, "{active} active frames");
    assert!(rms_err < 1e-2, "RMS differs by {rms_err} dB");
    assert!(zcr_err < 1e-4, "ZCR differs by {zcr_err}");
    assert!(
        worst_centroid < 1e-4,
        "centroid differs by {worst_centroid} (relative)"
    );
    assert!(rolloff_share >= 0.99, "roll-off agrees on {rolloff_share}");
    assert!(mfcc_err < 1e-3, "MFCC differs by {mfcc_err}");
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
    let good = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&c)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        v.sort();
        v.into_iter().next()
    };
    let (ok, out, err) = emolab(&[
        "predict",
        run.to_str().unwrap(),
        good.as_ref().unwrap().to_str().unwrap(),
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
    // The experiment's folder instead of a run: the error names a run to use.
    let exp_dir = run.parent().unwrap();
    let (ok, _, err) = emolab(&[
        "predict",
        exp_dir.to_str().unwrap(),
        good.as_ref().unwrap().to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("name one of them, e.g."), "{err}");

    // Speaker-normalised inference: a file alone uses the training speakers' statistics (said
    // in the output and on stderr), and gets the same answer beside other speakers' files;
    // with enough clips of its own speaker it uses theirs.
    assert!(run.join("speaker_norm.json").exists());
    let good = good.unwrap();
    let speaker_of = |p: &Path| p.file_name().unwrap().to_string_lossy()[..4].to_string();
    let wavs: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&c)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav") && *p != good)
            .collect();
        v.sort();
        v
    };
    let (same, others): (Vec<&PathBuf>, Vec<&PathBuf>) = wavs
        .iter()
        .partition(|p| speaker_of(p) == speaker_of(&good));
    assert!(
        same.len() >= 6 && others.len() >= 3,
        "{} / {}",
        same.len(),
        others.len()
    );
    let predict = |files: &[&PathBuf]| -> (serde_json::Value, String) {
        let mut args = vec!["predict".to_string(), run.display().to_string()];
        args.extend(files.iter().map(|p| p.display().to_string()));
        args.push("--json".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = emolab(&args);
        assert!(ok, "{err}");
        (serde_json::from_str(&out).unwrap(), err)
    };
    let (alone, err) = predict(&[&good]);
    assert_eq!(alone[0]["normalisation"], "training speakers", "{alone}");
    assert!(err.contains("training speakers' statistics"), "{err}");
    let (mixed, _) = predict(&[others[0], &good, others[1], others[2]]);
    assert_eq!(mixed[1]["probabilities"], alone[0]["probabilities"]);
    assert_eq!(mixed[1]["normalisation"], "training speakers");
    let mut group = vec![&good];
    group.extend(&same[..6]);
    let (grouped, _) = predict(&group);
    assert_eq!(
        grouped[0]["normalisation"],
        format!("speaker {} (7 clips)", speaker_of(&good))
    );
    // --speaker with --enroll: the same statistics, the enrolled clips not predicted.
    let enroll = tmp.path().join("enroll");
    std::fs::create_dir_all(&enroll).unwrap();
    for p in &same[..6] {
        std::fs::copy(p, enroll.join(p.file_name().unwrap())).unwrap();
    }
    let (ok, out, err) = emolab(&[
        "predict",
        run.to_str().unwrap(),
        good.to_str().unwrap(),
        "--speaker",
        "s",
        "--enroll",
        enroll.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let enrolled: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(enrolled.as_array().unwrap().len(), 1);
    assert_eq!(enrolled[0]["normalisation"], "speaker s (7 clips)");
    assert_eq!(enrolled[0]["probabilities"], grouped[0]["probabilities"]);

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
