//! Real speech: emolab's recommended recipe (experiments/emodb_crnn.yaml) on the Berlin EmoDB,
//! trained on 7 speakers, selected on 1, tested once on 2 held-out speakers. Skipped with a
//! message when the corpus folder (`../shared/corpora/emodb/wav`, or `$EMODB`) is absent.

mod common;

use std::process::Command;

#[test]
fn recommended_recipe_clearly_beats_chance_on_two_held_out_emodb_speakers() {
    let Some(corpus) = common::emodb() else {
        eprintln!("skipped: EmoDB not found (set EMODB=/path/to/emodb/wav to run this test)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let sets = [
        "protocol={kind: speaker_holdout, test_fraction: 0.2, val_fraction: 0.15}".to_string(),
        "train.epochs=12".into(),
        "train.threads=2".into(),
        "train.device=cpu".into(),
        format!("cache={}", tmp.path().join("cache").display()),
        format!("results={}", tmp.path().join("results").display()),
    ];
    let mut cmd = Command::new(common::BIN);
    cmd.current_dir(root).env("EMODB", &corpus).args([
        "--quiet",
        "run",
        "experiments/emodb_crnn.yaml",
    ]);
    for s in &sets {
        cmd.args(["--set", s]);
    }
    let t = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run = tmp.path().join("results/emodb_crnn/fold0-seed0");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let ua = metrics["test"]["ua"].as_f64().unwrap();
    eprintln!(
        "EmoDB, 2 held-out speakers ({} test clips), {} epochs: test UA {ua:.3} (chance 0.143), val UA {:.3}, {:.0} s",
        meta["n_test"],
        meta["epochs_run"],
        metrics["val_ua"].as_f64().unwrap(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        meta["transductive"], true,
        "speaker normalisation is marked"
    );
    let split = common::read_parquet(&run.join("split.parquet"));
    let roles = split.column("role").unwrap().str().unwrap().clone();
    let speakers = split.column("speaker").unwrap().str().unwrap().clone();
    let test_speakers: std::collections::BTreeSet<&str> = roles
        .into_iter()
        .zip(speakers.into_iter())
        .filter(|(r, _)| *r == Some("test"))
        .filter_map(|(_, s)| s)
        .collect();
    let test_speakers = test_speakers.len();
    assert_eq!(test_speakers, 2);
    assert!(
        ua > 0.40,
        "test UA {ua:.3} is not clearly above chance (0.143)"
    );
}
