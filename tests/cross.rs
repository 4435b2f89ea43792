//! `emolab cross`: the cross-corpus matrix on synthetic corpora of two layouts (EmoDB-shaped
//! and RAVDESS-shaped), on the labels they share.

mod common;

use std::path::Path;

use common::emolab;

fn exp(dir: &Path, name: &str, corpus: &Path, format: &str) -> std::path::PathBuf {
    let text = format!(
        "name: {name}
corpus: {{path: {corpus}, format: {format}}}
pipeline: {{file: {pipelines}/logmel64.yaml, n_mels: 32, augment: []}}
protocol: {{kind: speaker_kfold, k: 2, val_fraction: 0.25}}
model: {{preset: cnn_v1, channels: [8, 16], dense: 32}}
train: {{epochs: 1, batch_size: 64, threads: 2, device: cpu}}
folds: [0]
cache: {cache}
results: {results}
",
        corpus = corpus.display(),
        pipelines = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("pipelines")
            .display(),
        cache = dir.join("cache").display(),
        results = dir.join("results").display(),
    );
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Files whose name says `code` at byte range `at` (the emotion field of the layout).
fn count(dir: &Path, f: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| f(&e.file_name().to_string_lossy()))
        .count()
}

#[test]
fn the_matrix_uses_the_shared_labels_and_counts_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let (emo, rav) = (tmp.path().join("emo"), tmp.path().join("rav"));
    for (layout, out) in [
        (emolab::synth::Layout::Emodb, &emo),
        (emolab::synth::Layout::Ravdess, &rav),
    ] {
        emolab::synth::generate(&emolab::synth::SynthOptions {
            layout,
            out: out.clone(),
            actors: None,
            seed: 3,
            progress: false,
        })
        .unwrap();
    }
    let a = exp(tmp.path(), "emo", &emo, "emodb");
    let b = exp(tmp.path(), "rav", &rav, "ravdess");
    let (ok, out, err) = emolab(&[
        "cross",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--name",
        "xc",
    ]);
    assert!(ok, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("results/xc/cross.json")).unwrap(),
    )
    .unwrap();
    // EmoDB's boredom (L) and RAVDESS' calm (02) and surprise (08) are not shared.
    let labels: Vec<&str> = j["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "anger",
            "disgust",
            "fear",
            "happiness",
            "neutral",
            "sadness"
        ]
    );
    let boredom = count(&emo, |n| n.len() > 5 && &n[5..6] == "L");
    let ravdess_field = |n: &str, code: &str| n.split('-').nth(2) == Some(code);
    let calm = count(&rav, |n| ravdess_field(n, "02"));
    let surprise = count(&rav, |n| ravdess_field(n, "08"));
    assert!(boredom > 0 && calm > 0 && surprise > 0);
    assert_eq!(j["left_out"]["emo"]["boredom (not shared)"], boredom);
    assert_eq!(j["left_out"]["rav"]["calm (not shared)"], calm);
    assert_eq!(j["left_out"]["rav"]["surprise (not shared)"], surprise);
    // Four cells: two within-corpus, two across, each UA in [0, 1]; the models know only the
    // shared labels, and each corpus is tested on all its clips with them.
    let cells = j["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for c in cells {
        let ua = c["ua"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ua), "{c}");
        assert_eq!(c["within"].as_bool().unwrap(), c["train"] == c["test"]);
    }
    let across = cells
        .iter()
        .find(|c| c["train"] == "emo" && c["test"] == "rav")
        .unwrap();
    let wav = count(&rav, |n| n.ends_with(".wav"));
    assert_eq!(
        across["clips"].as_u64().unwrap() as usize,
        wav - calm - surprise
    );
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("results/xc-emo/fold0-seed0/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["classes"].as_array().unwrap().len(), 6);
    for f in ["cross.csv", "cross.parquet", "cross.svg"] {
        assert!(tmp.path().join("results/xc").join(f).exists(), "{f}");
    }
    assert!(
        out.contains("rows: trained on, columns: tested on"),
        "{out}"
    );
    // The same matrix from a cross file: its `set` reaches every experiment (here a value each
    // already has, so the complete runs are reused) and the cells come out the same.
    let file = tmp.path().join("xc_file.yaml");
    std::fs::write(
        &file,
        "cross:\n  name: xc\n  experiments: [emo.yaml, rav.yaml]\n  set: {train.epochs: 1}\n",
    )
    .unwrap();
    let (ok, out2, err) = emolab(&["cross", file.to_str().unwrap()]);
    assert!(ok, "{out2}\n{err}");
    let j2: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("results/xc/cross.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(j2["cells"], j["cells"]);
    assert!(
        !tmp.path().join("results/xc_file").exists(),
        "the block's name is used"
    );
    // A cross file with one experiment, or a missing one, is refused with the file named.
    std::fs::write(&file, "cross:\n  experiments: [emo.yaml]\n").unwrap();
    let (ok, _, err) = emolab(&["cross", file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("xc_file.yaml") && err.contains("at least two"),
        "{err}"
    );
    std::fs::write(&file, "cross:\n  experiments: [emo.yaml, nope.yaml]\n").unwrap();
    let (ok, _, err) = emolab(&["cross", file.to_str().unwrap()]);
    assert!(!ok && err.contains("nope.yaml"), "{err}");
    let (ok, _, err) = emolab(&["cross", a.to_str().unwrap()]);
    assert!(!ok && err.contains("not a cross file"), "{err}");
    // Too few shared labels is an error that lists each corpus' labels.
    let c = exp(tmp.path(), "emo2", &emo, "emodb");
    let (ok, _, err) = emolab(&[
        "cross",
        a.to_str().unwrap(),
        c.to_str().unwrap(),
        "--set",
        "corpus.labels=[anger]",
    ]);
    assert!(!ok);
    assert!(err.contains("anger") || err.contains("2 classes"), "{err}");
}
