//! Experiments as users drive them: schema errors, speaker-independent splits saved per run,
//! the flagged random protocol, resumable sweeps, and the demo end to end (reduced).

mod common;

use std::path::{Path, PathBuf};

use common::{emolab, read_parquet};
use emolab::experiment::Experiment;
use emolab::results::RunDir;
use emolab::synth::{self, Layout, SynthOptions};
use polars::prelude::*;

/// A synthetic CREMA-D with `actors` actors in `dir/synth`.
fn corpus(dir: &Path, actors: usize) -> PathBuf {
    let out = dir.join("synth");
    synth::generate(&SynthOptions {
        layout: Layout::Cremad,
        out: out.clone(),
        actors: Some(actors),
        seed: 11,
        progress: false,
    })
    .unwrap();
    out
}

const PROTOCOL: &str = "protocol: {kind: speaker_kfold, k: 3, val_fraction: 0.2}";

fn write_exp(dir: &Path, name: &str, corpus: &Path, extra: &str) -> PathBuf {
    common::write_exp(dir, name, corpus, PROTOCOL, extra)
}

fn load_err(path: &Path, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Experiment::load(path, &sets).unwrap_err().to_string()
}

#[test]
fn schema_errors_name_the_file_and_key_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("corpus");
    std::fs::create_dir_all(&c).unwrap();
    let good = write_exp(tmp.path(), "good", &c, "");
    let e = Experiment::load(&good, &[]).unwrap();
    assert_eq!(e.name, "good");
    assert_eq!(e.model_name, "cnn_v1");
    assert_eq!(e.pipeline.n_mels, 32, "pipeline override applied");
    assert_eq!(
        e.pipeline.sample_rate, 16000,
        "rest of the pipeline file kept"
    );

    // A typo in a key: the key path and a did-you-mean.
    let typo = write_exp(tmp.path(), "typo", &c, "");
    let text = std::fs::read_to_string(&typo)
        .unwrap()
        .replace("epochs: 2", "epohcs: 2");
    std::fs::write(&typo, text).unwrap();
    let msg = load_err(&typo, &[]);
    assert!(msg.contains("typo.yaml"), "{msg}");
    assert!(msg.contains("train"), "{msg}");
    assert!(msg.contains("did you mean `epochs`?"), "{msg}");

    // Wrong type, impossible values, via --set.
    let msg = load_err(&good, &["train.batch_size=many"]);
    assert!(msg.contains("train.batch_size"), "{msg}");
    let msg = load_err(&good, &["train.lr=-1"]);
    assert!(
        msg.contains("train.lr") && msg.contains("positive"),
        "{msg}"
    );
    let msg = load_err(&good, &["protocol.k=1"]);
    assert!(msg.contains("protocol.k"), "{msg}");
    let msg = load_err(&good, &["model.preset=cnn_v4"]);
    assert!(
        msg.contains("did you mean `cnn_v1`?") || msg.contains("did you mean `cnn_v3`?"),
        "{msg}"
    );
    let msg = load_err(&good, &["model.dropout=0.2", "model.dropuot=0.3"]);
    assert!(
        msg.contains("model") && msg.contains("did you mean `dropout`?"),
        "{msg}"
    );
    // Missing files.
    let msg = load_err(&good, &["pipeline.file=pipelines/nope.yaml"]);
    assert!(
        msg.contains("pipeline") && msg.contains("nope.yaml"),
        "{msg}"
    );
    let msg = load_err(&good, &["corpus.path=/no/such/corpus"]);
    assert!(
        msg.contains("corpus.path") && msg.contains("/no/such/corpus"),
        "{msg}"
    );
    let msg = load_err(&good, &["sweep.params.model.dropoot=[0.1]"]);
    assert!(msg.contains("sweep"), "{msg}");

    // extends: the base is merged under the file; ${VAR:-default} expands.
    let child = tmp.path().join("child.yaml");
    std::fs::write(
        &child,
        "extends: good.yaml\nmodel: {preset: cnn_v3, batch_norm: true}\ntrain: {lr: 5.0e-4}\nname: ${EMOLAB_TEST_UNSET_VAR:-child_exp}\n",
    )
    .unwrap();
    let e = Experiment::load(&child, &[]).unwrap();
    assert_eq!(
        (e.name.as_str(), e.model_name.as_str()),
        ("child_exp", "cnn_v3")
    );
    assert_eq!(
        (e.train.lr, e.train.epochs),
        (5e-4, 2),
        "child lr, base epochs"
    );
    match &e.model {
        emolab::models::ModelSpec::Cnn(s) => assert!(s.batch_norm && s.l2 > 0.0),
        other => panic!("{other:?}"),
    }
    // An error in an extending file names that file and the line the user wrote (not a line
    // of the merged document); one from --set says so.
    let bad_child = tmp.path().join("bad_child.yaml");
    std::fs::write(
        &bad_child,
        "# a comment\nextends: good.yaml\ntrain:\n  lr: 5.0e-4\n  normalise: speaker\n",
    )
    .unwrap();
    let msg = load_err(&bad_child, &[]);
    assert!(
        msg.starts_with(&format!("{}:5: ", bad_child.display()))
            && msg.contains("did you mean `normalize`?"),
        "{msg}"
    );
    assert!(!msg.contains("at line"), "{msg}");
    let msg = load_err(&child, &["train.epohcs=3"]);
    assert!(msg.starts_with("--set train.epohcs=3: "), "{msg}");
    let cyc = tmp.path().join("cyc.yaml");
    std::fs::write(&cyc, "extends: cyc.yaml\n").unwrap();
    assert!(load_err(&cyc, &[]).contains("cycle"));

    // Every shipped experiment parses (corpus folders need not exist for this check).
    for f in std::fs::read_dir("experiments").unwrap() {
        let p = f.unwrap().path();
        if p.is_dir() {
            continue; // experiments/folds: fold lists, read through the experiments naming them
        }
        // Bases (base_*.yaml) are partial: they are checked through the files extending them.
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("base_")
        {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let mut tree: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        if emolab::cross::is_cross(&tree) {
            let spec = emolab::cross::CrossSpec::load(&p).unwrap();
            assert!(spec.experiments.len() >= 2, "{}", p.display());
            continue;
        }
        if emolab::ensemble::is_fusion(&tree) {
            let spec: emolab::ensemble::FusionSpec = serde_yaml::from_value(tree).unwrap();
            assert!(spec.ensemble.len() >= 2, "{}", p.display());
            continue;
        }
        // Resolve `extends` chains of any depth: each base under the file extending it.
        let mut file = p.clone();
        while let Some(base) = tree
            .get("extends")
            .and_then(|b| b.as_str())
            .map(String::from)
        {
            file = file.with_file_name(base);
            let mut full: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            tree.as_mapping_mut().unwrap().remove("extends");
            let next = full.get("extends").cloned();
            full.as_mapping_mut().unwrap().remove("extends");
            emolab::experiment::merge(&mut full, tree);
            tree = full;
            if let Some(n) = next {
                tree.as_mapping_mut().unwrap().insert("extends".into(), n);
            }
        }
        Experiment::from_tree_unchecked(&p, tree)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn data_checks_splits_and_the_random_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 6);
    // k larger than the number of speakers, and a label no clip has: config errors on the key.
    let exp = write_exp(tmp.path(), "e", &c, "");
    let (ok, _, err) = emolab(&["run", exp.to_str().unwrap(), "--set", "protocol.k=9"]);
    assert!(
        !ok && err.contains("protocol.k") && err.contains("larger than"),
        "{err}"
    );
    let (ok, _, err) = emolab(&[
        "run",
        exp.to_str().unwrap(),
        "--set",
        "corpus.labels=[anger, sadnes]",
    ]);
    assert!(
        !ok && err.contains("corpus.labels") && err.contains("did you mean `sadness`?"),
        "{err}"
    );

    // Two experiments (different models) on the same corpus and protocol: identical splits.
    let a = write_exp(tmp.path(), "a", &c, "folds: [0, 2]");
    let b = write_exp(tmp.path(), "b", &c, "folds: [0, 2]\nmodel_name: small_gap");
    let text = std::fs::read_to_string(&b)
        .unwrap()
        .replace("dense: 32}", "dense: 32, head: gap}");
    std::fs::write(&b, text).unwrap();
    for f in [&a, &b] {
        let (ok, out, err) = emolab(&["run", f.to_str().unwrap()]);
        assert!(ok, "{out}\n{err}");
    }
    let results = tmp.path().join("results");
    for fold in [0, 2] {
        let sa = read_parquet(&results.join(format!("a/fold{fold}-seed0/split.parquet")));
        let sb = read_parquet(&results.join(format!("b/fold{fold}-seed0/split.parquet")));
        assert!(sa.equals(&sb), "fold {fold}: same split for both models");
        // No speaker in two of train/val/test; every class in the test fold.
        let roles = sa
            .clone()
            .lazy()
            .group_by([col("speaker")])
            .agg([col("role").n_unique().alias("roles")])
            .filter(col("roles").gt(lit(1)))
            .collect()
            .unwrap();
        assert_eq!(roles.height(), 0, "speakers in several roles: {roles}");
        let test_labels = sa
            .clone()
            .lazy()
            .filter(col("role").eq(lit("test")))
            .select([col("label").n_unique()])
            .collect()
            .unwrap();
        assert_eq!(
            test_labels.column("label").unwrap().u32().unwrap().get(0),
            Some(6)
        );
        let meta = RunDir::new(results.join(format!("a/fold{fold}-seed0")))
            .meta()
            .unwrap();
        assert!(!meta.speaker_leaky);
    }
    assert!(
        !results.join("a/fold1-seed0").exists(),
        "folds: [0, 2] only"
    );

    // The random protocol mixes speakers across train and test, and is flagged as leaky.
    let r = write_exp(tmp.path(), "r", &c, "split_seed: 42");
    let (ok, out, err) = emolab(&[
        "run",
        r.to_str().unwrap(),
        "--set",
        "protocol={kind: random, test_fraction: 0.2, test_as_val: true}",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("SPEAKER-LEAKY"), "{err}");
    let run = results.join("r/fold0-seed0");
    let meta = RunDir::new(&run).meta().unwrap();
    assert!(meta.speaker_leaky && meta.test_as_val);
    let s = read_parquet(&run.join("split.parquet"));
    let shared = s
        .lazy()
        .filter(col("role").neq(lit("val")))
        .group_by([col("speaker")])
        .agg([col("role").n_unique().alias("roles")])
        .filter(col("roles").gt(lit(1)))
        .collect()
        .unwrap();
    assert!(
        shared.height() >= 5,
        "speakers in both train and test: {shared}"
    );
    assert!(
        out.contains("true"),
        "the summary shows the leaky flag: {out}"
    );
}

#[test]
fn the_demo_runs_end_to_end_and_a_rerun_skips_complete_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 8);
    let results = tmp.path().join("results");
    let sets = [
        format!("corpus.path={}", c.display()),
        format!("cache={}", tmp.path().join("cache").display()),
        format!("results={}", results.display()),
        "train.epochs=2".into(),
        "folds=[0]".into(),
    ];
    let mut args = vec!["run", "experiments/demo.yaml"];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let (ok, out, err) = emolab(&args);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("1 runs (0 already complete, 0 failed)"),
        "{out}"
    );
    let run = results.join("demo/fold0-seed0");
    for f in [
        "config.yaml",
        "meta.json",
        "split.parquet",
        "history.parquet",
        "predictions.parquet",
        "metrics.json",
        "model.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    assert!(
        !run.join("checkpoint.ot").exists(),
        "checkpoint removed when complete"
    );
    let d = RunDir::new(&run);
    let (meta, m) = (d.meta().unwrap(), d.metrics().unwrap());
    assert_eq!(meta.epochs_run, 2);
    let h = read_parquet(&run.join("history.parquet"));
    assert_eq!(h.height(), 2);
    let p = read_parquet(&run.join("predictions.parquet"));
    assert_eq!(p.height(), meta.n_test);
    let acc =
        p.column("correct").unwrap().bool().unwrap().sum().unwrap() as f64 / p.height() as f64;
    assert!(
        (acc - m.test.wa).abs() < 1e-9,
        "predictions agree with metrics"
    );
    let mut sexes: Vec<String> = p
        .column("sex")
        .unwrap()
        .str()
        .unwrap()
        .into_iter()
        .flatten()
        .map(String::from)
        .collect();
    sexes.sort();
    sexes.dedup();
    assert_eq!(
        m.by_sex.keys().cloned().collect::<Vec<_>>(),
        sexes,
        "metrics by speaker sex"
    );
    let n_by_sex: u64 = m.by_sex.values().map(|x| x.n).sum();
    assert_eq!(n_by_sex, m.test.n);
    let summary = read_parquet(&results.join("demo/summary.parquet"));
    assert_eq!(summary.height(), 1);

    // The run's config.yaml re-runs as is: evaluating reproduces the stored test metrics.
    let (ok, out, err) = emolab(&["evaluate", run.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!((again["test"]["ua"].as_f64().unwrap() - m.test.ua).abs() < 1e-12);

    // Predict: a bad file gets an error naming it, the good one is still predicted.
    let bad = tmp.path().join("bad.wav");
    std::fs::write(&bad, b"not audio").unwrap();
    let good = std::fs::read_dir(&c)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (ok, out, err) = emolab(&[
        "predict",
        run.to_str().unwrap(),
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "--json",
    ]);
    assert!(!ok, "a failed file makes the exit status non-zero");
    let preds: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert!(
        preds[0]["error"].as_str().unwrap().contains("not a WAV"),
        "{preds}"
    );
    let probs = preds[1]["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 6);
    let total: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);

    // Another configuration under the same name is refused, not silently skipped.
    let mut changed = args.clone();
    changed.extend(["--set", "train.lr=5e-4"]);
    let (ok, out, err) = emolab(&changed);
    assert!(
        !ok && err.contains("another configuration") && err.contains("--force"),
        "{err}"
    );
    // ... before anything runs, naming what differs, and without the old table.
    assert!(
        err.contains("Nothing was run") && err.contains("lr"),
        "{err}"
    );
    assert!(!out.contains("UA"), "a stale table was printed:\n{out}");

    // Re-running skips the complete run; --force recomputes it to the same metrics (CPU).
    let (ok, out, _) = emolab(&args);
    assert!(
        ok && out.contains("1 runs (1 already complete, 0 failed)"),
        "{out}"
    );
    let mut forced = args.clone();
    forced.push("--force");
    let (ok, out, err) = emolab(&forced);
    assert!(ok && out.contains("(0 already complete"), "{out}{err}");
    assert_eq!(
        RunDir::new(&run).metrics().unwrap().test,
        m.test,
        "same seed, same metrics"
    );
}

#[test]
fn a_two_trial_sweep_runs_once_and_selects_on_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 6);
    let exp = write_exp(tmp.path(), "sw", &c, "folds: [0]");
    let args = [
        "sweep",
        exp.to_str().unwrap(),
        "--grid",
        "train.lr=1e-3,3e-3",
        "--set",
        "train.epochs=1",
    ];
    let (ok, out, err) = emolab(&args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("selected on validation UA"), "{out}");
    let root = tmp.path().join("results/sw");
    let runs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("meta.json").exists())
        .collect();
    assert_eq!(runs.len(), 2, "one run folder per trial");
    let table = read_parquet(&root.join("sweep.parquet"));
    assert_eq!(table.height(), 2);
    let mtime = |p: &Path| {
        std::fs::metadata(p.join("meta.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before: Vec<_> = runs.iter().map(|r| mtime(&r.path())).collect();
    let (ok, out, err) = emolab(&args);
    assert!(ok, "{out}\n{err}");
    let after: Vec<_> = runs.iter().map(|r| mtime(&r.path())).collect();
    assert_eq!(before, after, "the second invocation runs nothing");
    // --slurm --dry-run writes the job script and says what it would submit: nothing is left
    // to run, so the array would be empty.
    let (ok, out, err) = emolab(&[&args[..], &["--slurm", "--dry-run"]].concat());
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("2 runs: 2 complete"), "{out}");
    let script = std::fs::read_to_string(root.join("slurm/job.sbatch")).unwrap();
    assert!(
        script.contains("--task \"$SLURM_ARRAY_TASK_ID\""),
        "{script}"
    );
    assert!(script.contains("'--grid' 'train.lr=1e-3,3e-3'"), "{script}");
    // With one run gone, the array would hold exactly that run.
    let gone = &runs[1].path();
    std::fs::remove_dir_all(gone).unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("plan.json")).unwrap()).unwrap();
    let name = gone.file_name().unwrap().to_string_lossy().into_owned();
    let index = plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["run"] == name.as_str())
        .unwrap()["index"]
        .as_u64()
        .unwrap();
    let (ok, out, err) = emolab(&[&args[..], &["--slurm", "--dry-run"]].concat());
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("1 complete, 0 pending or running in Slurm, 1 to submit"),
        "{out}"
    );
    assert!(out.contains(&format!("--array={index} ")), "{out}");
    // What that array task runs, run here, completes it.
    let (ok, out, err) = emolab(&[&args[..], &["--task", &index.to_string()]].concat());
    assert!(ok, "{out}\n{err}");
    assert!(RunDir::new(gone).is_complete(), "{out}\n{err}");
}

/// Two seeds on one split give a seed ensemble per fold (the mean of their test
/// probabilities), and a late-fusion file averages two experiments run by run; both are run
/// folders the summary and the report read like any other.
#[test]
fn seed_ensembles_and_late_fusion_average_their_members() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 6);
    let a = write_exp(tmp.path(), "a", &c, "split_seed: 3\nfolds: [0]");
    let b = write_exp(tmp.path(), "b", &c, "split_seed: 3\nfolds: [0]");
    let results = tmp.path().join("results");
    let (ok, out, err) = emolab(&["run", a.to_str().unwrap(), "--set", "seeds=[0, 1]"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("×2 seeds"),
        "the summary lists the ensemble:\n{out}"
    );
    let probs = |run: &Path| {
        let p = read_parquet(&run.join("predictions.parquet"));
        let cols: Vec<String> = p
            .get_column_names()
            .iter()
            .filter(|c| c.starts_with("prob_"))
            .map(|c| c.to_string())
            .collect();
        cols.iter()
            .map(|c| {
                p.column(c)
                    .unwrap()
                    .f32()
                    .unwrap()
                    .into_no_null_iter()
                    .collect::<Vec<f32>>()
            })
            .collect::<Vec<_>>()
    };
    let (p0, p1) = (
        probs(&results.join("a/fold0-seed0")),
        probs(&results.join("a/fold0-seed1")),
    );
    let ens = results.join("a/fold0-ensemble");
    let pe = probs(&ens);
    for ((x, y), e) in p0
        .iter()
        .flatten()
        .zip(p1.iter().flatten())
        .zip(pe.iter().flatten())
    {
        assert!(((x + y) / 2.0 - e).abs() < 1e-6);
    }
    let meta = RunDir::new(&ens).meta().unwrap();
    assert_eq!(meta.ensemble, vec!["a/fold0-seed0", "a/fold0-seed1"]);
    assert_ne!(
        p0, p1,
        "the two seeds differ, so the average is not trivially one of them"
    );

    let (ok, out, err) = emolab(&[
        "run",
        b.to_str().unwrap(),
        "--set",
        "model={preset: lstm, hidden: 16, layers: 1}",
    ]);
    assert!(ok, "{out}\n{err}");
    let fusion = tmp.path().join("fusion.yaml");
    std::fs::write(
        &fusion,
        format!("ensemble: [a, b]\nresults: {}\n", results.display()),
    )
    .unwrap();
    let (ok, out, err) = emolab(&["run", fusion.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    // a has seeds 0 and 1, b seed 0 only: one fused run, one left out.
    assert!(out.contains("1 fused runs (1 left out)"), "{out}\n{err}");
    let fused = probs(&results.join("fusion/fold0-seed0"));
    let pb = probs(&results.join("b/fold0-seed0"));
    for ((x, y), f) in p0
        .iter()
        .flatten()
        .zip(pb.iter().flatten())
        .zip(fused.iter().flatten())
    {
        assert!(((x + y) / 2.0 - f).abs() < 1e-6);
    }
    // A fusion file without `results:` finds its members under `--set results=DIR`, wherever
    // $EMOLAB_RESULTS points, and writes there.
    let bare = tmp.path().join("bare_fusion.yaml");
    std::fs::write(&bare, "ensemble: [a, b]\n").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--quiet", "run", bare.to_str().unwrap()])
        .arg("--set")
        .arg(format!("results={}", results.display()))
        .env("EMOLAB_RESULTS", tmp.path().join("elsewhere"))
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && so.contains("1 fused runs"),
        "{so}\n{se}"
    );
    assert!(results.join("bare_fusion/fold0-seed0").is_dir());
    // The report reads them (no missing weights or history is held against them).
    let (ok, out, err) = emolab(&[
        "report",
        "--all",
        "--results",
        results.to_str().unwrap(),
        "--out",
        tmp.path().join("report").to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    let md = std::fs::read_to_string(tmp.path().join("report/report.md")).unwrap();
    assert!(md.contains("×2 seeds") && md.contains("fusion"), "{md}");
}

/// When stderr is not a terminal (a log file, Slurm, CI), training prints one plain line per
/// epoch instead of a bar, and the result table is plain text.
#[test]
fn unattended_runs_log_one_line_per_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("synth");
    emolab::synth::generate(&emolab::synth::SynthOptions {
        layout: emolab::synth::Layout::Cremad,
        out: corpus.clone(),
        actors: Some(4),
        seed: 2,
        progress: false,
    })
    .unwrap();
    let exp = common::write_exp(
        tmp.path(),
        "plain",
        &corpus,
        "protocol: {kind: speaker_kfold, k: 2, val_fraction: 0.25}",
        "folds: [0]",
    );
    // Without --quiet, stderr piped (not a terminal).
    let out = std::process::Command::new(common::BIN)
        .args(["run", exp.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let epochs: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" epoch ") && !l.contains(" done: "))
        .collect();
    assert_eq!(epochs.len(), 2, "{stderr}");
    assert!(
        epochs[0].starts_with("fold0-seed0 epoch 1/2: train loss "),
        "{}",
        epochs[0]
    );
    assert!(
        epochs[1].contains("val UA") && epochs[1].contains(" s"),
        "{}",
        epochs[1]
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains("[="),
        "a bar was drawn: {stderr:?}"
    );
    assert!(!stdout.contains("shape:"), "{stdout}");
    // One line when the run ends: how it stopped, the epoch kept, val and test UA, time.
    let done = stderr
        .lines()
        .find(|l| l.starts_with("fold0-seed0 done: "))
        .unwrap_or_else(|| panic!("no end-of-run line:\n{stderr}"));
    assert!(
        done.contains("all 2 epochs, kept epoch")
            && done.contains("val UA 0.")
            && done.contains("test UA 0.")
            && done.ends_with(" s"),
        "{done}"
    );
}

/// Two `emolab run` of one experiment started together (a double start, or a requeued task
/// beside its live original) never train the same run at once: each run folder is trained by
/// exactly one of them, the other skips it while it is held.
#[test]
fn two_runs_of_one_experiment_never_train_a_fold_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 6);
    let exp = write_exp(tmp.path(), "twice", &c, "");
    let text = std::fs::read_to_string(&exp).unwrap().replace(
        "train: {epochs: 2, batch_size: 64,",
        "train: {epochs: 6, batch_size: 16,",
    );
    std::fs::write(&exp, text).unwrap();
    // Features first, so that both processes reach the folds together.
    let (ok, out, err) = emolab(&["run", exp.to_str().unwrap(), "--prepare-only"]);
    assert!(ok, "{out}\n{err}");
    let start = || {
        std::process::Command::new(common::BIN)
            .args(["--quiet", "run", exp.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let trained = |out: std::process::Output| -> usize {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{text}\n{err}");
        let re = regex::Regex::new(
            r"(\d+) runs \((\d+) already complete, 0 failed(?:, (\d+) left to the process training them)?\)",
        )
        .unwrap();
        let c = re
            .captures(&text)
            .unwrap_or_else(|| panic!("no run count:\n{text}\n{err}"));
        let n = |i: usize| c.get(i).map_or(0, |m| m.as_str().parse::<usize>().unwrap());
        assert_eq!(n(1), 3, "{text}");
        n(1) - n(2) - n(3)
    };
    let (ta, tb) = (
        trained(a.wait_with_output().unwrap()),
        trained(b.wait_with_output().unwrap()),
    );
    assert_eq!(ta + tb, 3, "runs trained: {ta} + {tb} for 3 folds");
    for f in 0..3 {
        assert!(
            RunDir::new(tmp.path().join(format!("results/twice/fold{f}-seed0"))).is_complete(),
            "fold {f}"
        );
    }
}

/// A shipped experiment names its pipeline as `pipelines/…`: it loads from any folder (the
/// pipeline is found next to the experiments/ folder), and a missing one says where it looked.
#[test]
fn a_shipped_experiment_runs_from_another_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/emodb_functionals_svm.yaml");
    let status = |exp: &Path| {
        let out = std::process::Command::new(common::BIN)
            .current_dir(tmp.path())
            .env("EMODB", tmp.path())
            .env("EMOLAB_RESULTS", tmp.path().join("results"))
            .args(["--quiet", "status", exp.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Loading passes the pipeline; the (empty) corpus folder is what stops it here.
    let (ok, err) = status(&exp);
    assert!(
        !ok && !err.contains("pipeline") && err.contains("no audio files"),
        "{err}"
    );
    let moved = tmp.path().join("lone.yaml");
    std::fs::write(&moved, std::fs::read_to_string(&exp).unwrap()).unwrap();
    let (ok, err) = status(&moved);
    assert!(
        !ok && err.contains("cannot read pipeline pipelines/functionals.yaml")
            && err.contains("looked in"),
        "{err}"
    );
}

/// A closed pipe (`emolab doctor | head -0`) ends the process quietly (status 0 or SIGPIPE),
/// never with a panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::os::fd::FromRawFd;
    use std::os::unix::process::ExitStatusExt;
    let mut fds = [0i32; 2];
    // SAFETY: a fresh pipe; its read end is closed at once, its write end handed to the child.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    let stdout = unsafe { std::process::Stdio::from_raw_fd(fds[1]) };
    let out = std::process::Command::new(common::BIN)
        .arg("doctor")
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
}
