//! `emolab status` on runs in every state, and a live single-node Slurm: a 2-trial × 2-fold
//! sweep submitted, watched and collected, and a task cancelled mid-run that resubmission
//! finishes from its checkpoint.
//!
//! The Slurm test needs a running Slurm (`scripts/slurm-local.sh start`); without one it is
//! skipped with the reason, unless `EMOLAB_REQUIRE_SLURM=1` (as in CI), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{emolab, BIN};
use emolab::results::RunDir;

fn corpus(dir: &Path) -> PathBuf {
    let out = dir.join("synth");
    emolab::synth::generate(&emolab::synth::SynthOptions {
        layout: emolab::synth::Layout::Cremad,
        out: out.clone(),
        actors: Some(4),
        seed: 2,
        progress: false,
    })
    .unwrap();
    out
}

/// An experiment of `epochs` epochs (no early stop) with two folds.
fn exp(dir: &Path, name: &str, corpus: &Path, epochs: usize, extra: &str) -> PathBuf {
    let text = format!(
        "corpus: {{path: {corpus}, format: cremad, labels: [anger, disgust, fear, happiness, neutral, sadness]}}
pipeline: {{file: {pipelines}/logmel64.yaml, n_mels: 32, augment: []}}
protocol: {{kind: speaker_kfold, k: 2, val_fraction: 0.25}}
model: {{preset: cnn_v1, channels: [8, 16], dense: 32}}
train: {{epochs: {epochs}, patience: 1000, batch_size: 64, threads: 1, device: cpu}}
cache: {cache}
results: {results}
slurm: {{cpus: 1, time: \"00:30:00\"}}
{extra}",
        corpus = corpus.display(),
        pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").display(),
        cache = dir.join("cache").display(),
        results = dir.join("results").display(),
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn status_json(file: &Path) -> serde_json::Value {
    let (ok, out, err) = emolab(&["status", file.to_str().unwrap(), "--json"]);
    assert!(ok, "{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// (run, state) of every row.
fn states(file: &Path) -> Vec<(String, String)> {
    status_json(file)[0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn progress_epoch(run: &Path) -> usize {
    emolab::train::checkpoint::read_progress(run).map_or(0, |p| p.epoch)
}

#[test]
fn status_tells_complete_running_interrupted_failed_and_missing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    let file = exp(tmp.path(), "st", &c, 400, "seeds: [0, 1]");
    let root = tmp.path().join("results/st");
    let f = file.to_str().unwrap();
    // Before anything ran, the file's plan lists every run as not started.
    let s = states(&file);
    assert_eq!(s.len(), 4, "{s:?}");
    assert!(s.iter().all(|(_, st)| st == "not_started"), "{s:?}");
    // One complete run (few epochs would change its configuration: stop it early instead).
    let (ok, out, err) = emolab(&[
        "train",
        "--config",
        f,
        "--fold",
        "0",
        "--seed",
        "0",
        "--set",
        "train.patience=1",
    ]);
    assert!(ok, "{out}\n{err}");
    let done = root.join("fold0-seed0");
    assert!(RunDir::new(&done).is_complete());
    // Its configuration differs from the file's (patience), which is the run folder's own
    // business: status reads the state, not the configuration.
    // One running run: a training process in the background.
    let mut child = Command::new(BIN)
        .args([
            "--quiet", "train", "--config", f, "--fold", "1", "--seed", "0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = root.join("fold1-seed0");
    wait_for("a second epoch", Duration::from_secs(120), || {
        progress_epoch(&running) >= 2
    });
    // One failed run: its meta.json says so.
    let failed = root.join("fold0-seed1");
    std::fs::create_dir_all(&failed).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(done.join("meta.json")).unwrap()).unwrap();
    meta["status"] = "failed".into();
    meta["error"] = "CUDA out of memory\nmore lines".into();
    meta["run"] = "fold0-seed1".into();
    std::fs::write(failed.join("meta.json"), meta.to_string()).unwrap();
    let st = status_json(&file);
    let rows = st[0]["rows"].as_array().unwrap();
    let row = |run: &str| rows.iter().find(|r| r["run"] == run).unwrap().clone();
    assert_eq!(row("fold0-seed0")["state"], "complete", "{st}");
    assert!(row("fold0-seed0")["detail"]
        .as_str()
        .unwrap()
        .starts_with("test UA "));
    assert_eq!(row("fold1-seed0")["state"], "running", "{st}");
    assert!(
        row("fold1-seed0")["detail"]
            .as_str()
            .unwrap()
            .contains("/400, val UA "),
        "{st}"
    );
    assert_eq!(row("fold0-seed1")["state"], "failed");
    assert_eq!(row("fold0-seed1")["detail"], "CUDA out of memory");
    assert_eq!(row("fold1-seed1")["state"], "not_started");
    // Killed, the running run is interrupted.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        states(&file)[1],
        ("fold1-seed0".to_string(), "interrupted".to_string())
    );
    let (ok, text, _) = emolab(&["status", f]);
    assert!(ok);
    assert!(
        text.contains("st: 4 runs: 1 complete, 1 interrupted, 1 failed, 1 not started"),
        "{text}"
    );
    assert!(text.contains("submit again to resume"), "{text}");
    // --wait returns at once when nothing is active, and fails unless all are complete.
    let (ok, _, _) = emolab(&["status", f, "--wait", "--interval", "0.2"]);
    assert!(!ok, "not every run is complete");
    // By name, from the results folder.
    let (ok, text, err) = emolab(&[
        "status",
        "st",
        "--results",
        tmp.path().join("results").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(text.contains("fold0-seed0"), "{text}");
}

/// Whether a Slurm controller answers and has an idle node; the reason when not.
fn slurm_ready() -> Result<(), String> {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map_err(|e| {
            format!("sinfo not runnable ({e}); start one with scripts/slurm-local.sh start")
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "sinfo failed: {}; start one with scripts/slurm-local.sh start",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if !text
        .lines()
        .any(|l| l.starts_with("idle") || l.starts_with("mixed") || l.starts_with("alloc"))
    {
        return Err(format!("no usable node (sinfo: {})", text.trim()));
    }
    Ok(())
}

fn wait_all(file: &Path) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args([
            "status",
            file.to_str().unwrap(),
            "--wait",
            "--interval",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if t.elapsed() > Duration::from_secs(400) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "status --wait did not return in 400 s:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_sweep_runs_on_a_live_slurm_and_a_cancelled_task_resumes_on_resubmission() {
    if let Err(why) = slurm_ready() {
        if std::env::var_os("EMOLAB_REQUIRE_SLURM").is_some_and(|v| v == "1") {
            panic!("EMOLAB_REQUIRE_SLURM=1 but Slurm is not usable: {why}");
        }
        eprintln!("skipping the live-Slurm test: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    let sweep = exp(
        tmp.path(),
        "slsweep",
        &c,
        3,
        "sweep: {params: {train.lr: [1.0e-3, 3.0e-3]}}",
    );
    let s = sweep.to_str().unwrap();
    // A request no node can meet is refused at submission, not left pending forever.
    let (ok, out, err) = emolab(&["sweep", s, "--slurm", "--slurm-opt", "cpus=4096"]);
    assert!(
        !ok && err.contains("slurm.cpus is 4096") && err.contains("largest node"),
        "{out}\n{err}"
    );
    let (ok, out, err) = emolab(&["sweep", s, "--slurm"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("4 runs: 0 complete, 0 pending or running in Slurm, 4 to submit"),
        "{out}"
    );
    assert!(out.contains("submitted   Array job"), "{out}");
    let (ok, out, err) = wait_all(&sweep);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("slsweep: 4 runs: 4 complete"), "{out}");
    let root = tmp.path().join("results/slsweep");
    let runs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    assert_eq!(runs.len(), 4);
    for r in &runs {
        let m = RunDir::new(r).meta().unwrap();
        assert_eq!(m.status, emolab::results::RunStatus::Complete);
        assert!(m.slurm_job.is_some(), "{} ran under Slurm", r.display());
        assert!(r.join("predictions.parquet").exists());
    }
    // The collect job wrote the sweep table once every task had finished.
    wait_for("sweep.parquet", Duration::from_secs(120), || {
        root.join("sweep.parquet").exists()
    });
    let table = common::read_parquet(&root.join("sweep.parquet"));
    assert_eq!(table.height(), 2);
    // Logs, one per task.
    let logs: Vec<_> = std::fs::read_dir(root.join("slurm"))
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".out") && !n.starts_with("prepare") && !n.starts_with("collect")
        })
        .collect();
    assert_eq!(logs.len(), 4);
    let log = std::fs::read_to_string(logs[0].path()).unwrap();
    assert!(log.contains(" epoch 3/3: train loss "), "{log}");
    // The report reads the runs like any others.
    let (ok, out, err) = emolab(&[
        "report",
        "slsweep",
        "--results",
        tmp.path().join("results").to_str().unwrap(),
        "--bootstrap",
        "50",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(tmp.path().join("results/report/report.md").exists());
    // Submitting again submits nothing.
    let (ok, out, err) = emolab(&["sweep", s, "--slurm"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("4 complete, 0 pending or running in Slurm, 0 to submit"),
        "{out}"
    );
    assert!(out.contains("nothing submitted"), "{out}");

    // A long run cancelled mid-way resumes from its checkpoint when submitted again.
    let long = exp(tmp.path(), "sllong", &c, 150, "folds: [0]");
    let l = long.to_str().unwrap();
    let (ok, out, err) = emolab(&["run", l, "--slurm"]);
    assert!(ok, "{out}\n{err}");
    let run = tmp.path().join("results/sllong/fold0-seed0");
    wait_for("epoch 3 under Slurm", Duration::from_secs(300), || {
        progress_epoch(&run) >= 3
    });
    // While it runs, submitting again leaves it alone.
    let (ok, out, err) = emolab(&["run", l, "--slurm"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("1 pending or running in Slurm, 0 to submit"),
        "{out}"
    );
    let job = RunDir::new(&run).meta().unwrap().slurm_job.unwrap();
    let st = Command::new("scancel").arg(&job).status().unwrap();
    assert!(st.success());
    wait_for("the task to be cancelled", Duration::from_secs(60), || {
        states(&long)[0].1 == "interrupted"
    });
    let stopped_at = progress_epoch(&run);
    assert!(stopped_at < 150, "cancelled before the end");
    let (ok, out, err) = emolab(&["run", l, "--slurm"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("0 complete, 0 pending or running in Slurm, 1 to submit"),
        "{out}"
    );
    let (ok, out, err) = wait_all(&long);
    assert!(ok, "{out}\n{err}");
    let meta = RunDir::new(&run).meta().unwrap();
    assert_eq!(meta.status, emolab::results::RunStatus::Complete);
    assert_ne!(
        meta.slurm_job.as_deref(),
        Some(job.as_str()),
        "a new task finished it"
    );
    let p = emolab::train::checkpoint::read_progress(&run).unwrap();
    assert_eq!(p.epoch, 150);
    assert!(p.resumed_from > 1, "resumed, not restarted: {p:?}");
    let new_job = meta.slurm_job.unwrap();
    let log = std::fs::read_to_string(
        tmp.path()
            .join("results/sllong/slurm")
            .join(format!("{new_job}.out")),
    )
    .unwrap();
    assert!(
        log.contains("resuming from the checkpoint of epoch"),
        "{log}"
    );
}
