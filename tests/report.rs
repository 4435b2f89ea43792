//! `emolab report` as users drive it: real (tiny) runs of a speaker-independent experiment, the
//! same model under the seed's leaky protocol and a sweep, plus a running, a failed, an empty
//! and an incomplete run folder; the report's tables are checked against the runs'
//! `metrics.json`, and `report.html` is rendered in headless Chromium (skipped with a message
//! when Chromium is not installed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use emolab::results::{read_json, RunMeta, RunMetrics};
use emolab::synth::{self, Layout, SynthOptions};
use polars::prelude::*;

mod common;

use common::{emolab, read_parquet};

fn strs(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c)
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .into_iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect()
}

fn floats(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .into_iter()
        .collect()
}

fn row_of(df: &DataFrame, col: &str, value: &str) -> usize {
    strs(df, col)
        .iter()
        .position(|s| s == value)
        .unwrap_or_else(|| panic!("no row with {col} = {value} in {df}"))
}

fn write_exp(dir: &Path, name: &str, corpus: &Path, extra: &str) -> PathBuf {
    common::write_exp(dir, name, corpus, "", extra)
}

/// The runs of one experiment folder: (run name, meta, metrics) of the complete ones.
fn complete_runs(dir: &Path) -> Vec<(String, RunMeta, RunMetrics)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let Ok(meta) = read_json::<RunMeta>(&e.path().join("meta.json")) else {
            continue;
        };
        if meta.status == emolab::results::RunStatus::Complete {
            let m: RunMetrics = read_json(&e.path().join("metrics.json")).unwrap();
            out.push((e.file_name().to_string_lossy().into_owned(), meta, m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (m, s)
}

#[test]
fn report_of_runs_tables_partial_runs_and_the_browser() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("synth");
    synth::generate(&SynthOptions {
        layout: Layout::Cremad,
        out: corpus.clone(),
        actors: Some(6),
        seed: 3,
        progress: false,
    })
    .unwrap();
    let results = tmp.path().join("results");

    // Speaker-independent: 2 folds of 3. The same model on the seed's leaky protocol. A sweep
    // of 2 trials on fold 0.
    let kfold = write_exp(
        tmp.path(),
        "kfold",
        &corpus,
        "protocol: {kind: speaker_kfold, k: 3, val_fraction: 0.2}\nfolds: [0, 1]",
    );
    let leaky = write_exp(
        tmp.path(),
        "leaky",
        &corpus,
        "protocol: {kind: random, test_fraction: 0.2, val_fraction: 0.0, test_as_val: true}\nsplit_seed: 42",
    );
    let grid = write_exp(
        tmp.path(),
        "grid",
        &corpus,
        "protocol: {kind: speaker_kfold, k: 3, val_fraction: 0.2}\nfolds: [0]",
    );
    for args in [
        vec!["run", kfold.to_str().unwrap()],
        vec!["run", leaky.to_str().unwrap()],
        vec![
            "sweep",
            grid.to_str().unwrap(),
            "--grid",
            "model.dropout=0.3,0.5",
        ],
    ] {
        let (ok, out, err) = emolab(&args);
        assert!(ok, "{args:?}\n{out}\n{err}");
    }
    let trained = t0.elapsed();

    // Partial runs: running, failed, no meta.json at all, a complete run missing a file.
    let (name0, meta0, _) = complete_runs(&results.join("kfold")).remove(0);
    let template =
        std::fs::read_to_string(results.join("kfold").join(&name0).join("meta.json")).unwrap();
    let running = results.join("kfold/fold2-seed0");
    std::fs::create_dir_all(&running).unwrap();
    std::fs::write(
        running.join("meta.json"),
        template.replace("\"complete\"", "\"running\""),
    )
    .unwrap();
    let failed = results.join("kfold/fold2-seed1");
    std::fs::create_dir_all(&failed).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&template).unwrap();
    m["status"] = "failed".into();
    m["error"] = "CUDA out of memory (simulated)".into();
    std::fs::write(failed.join("meta.json"), m.to_string()).unwrap();
    std::fs::create_dir_all(results.join("kfold/empty-folder")).unwrap();
    let leaky_run = complete_runs(&results.join("leaky")).remove(0).0;
    std::fs::remove_file(
        results
            .join("leaky")
            .join(&leaky_run)
            .join("model.safetensors"),
    )
    .unwrap();
    assert_eq!(meta0.protocol, "speaker_kfold");
    std::fs::write(
        results.join("kfold/fold1-seed0/history.parquet"),
        b"PAR1 cut short",
    )
    .unwrap();

    let out = tmp.path().join("report");
    let (ok, stdout, err) = emolab(&[
        "report",
        "--all",
        "--results",
        results.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{err}");
    assert!(
        stdout.contains("report of 5 complete runs from 3 experiments"),
        "{stdout}"
    );
    assert!(
        stdout.contains("5 run folders listed as missing or partial"),
        "{stdout}"
    );
    for f in ["report.md", "report.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    for t in [
        "leaderboard",
        "runs",
        "per_class",
        "per_class_f1",
        "confusion",
        "learning_curves",
        "sweep_trials",
        "sweep_params",
        "by_sex",
        "leakage",
        "paired",
        "issues",
    ] {
        assert!(out.join(format!("tables/{t}.csv")).exists(), "{t}.csv");
        assert!(
            out.join(format!("tables/{t}.parquet")).exists(),
            "{t}.parquet"
        );
    }

    // Leaderboard: one row per experiment × model (× trial); means over the runs' metrics.json.
    let lb = read_parquet(&out.join("tables/leaderboard.parquet"));
    assert_eq!(lb.height(), 4, "kfold, leaky and 2 sweep trials: {lb}");
    let kf = complete_runs(&results.join("kfold"));
    assert_eq!(kf.len(), 2);
    let i = row_of(&lb, "entry", "kfold · cnn_v1");
    let (m, s) = mean_std(&kf.iter().map(|r| r.2.test.ua).collect::<Vec<_>>());
    assert!((floats(&lb, "ua_mean")[i].unwrap() - m).abs() < 1e-12);
    assert!((floats(&lb, "ua_std")[i].unwrap() - s).abs() < 1e-12);
    let wa = kf.iter().map(|r| r.2.test.wa).sum::<f64>() / 2.0;
    assert!((floats(&lb, "wa_mean")[i].unwrap() - wa).abs() < 1e-12);
    assert_eq!(floats(&lb, "runs")[i], Some(2.0));
    assert_eq!(
        floats(&lb, "parameters")[i],
        Some(kf[0].1.parameters as f64)
    );
    assert_eq!(strs(&lb, "device")[i], "cpu");
    // The leaky entry is flagged and ranked after every speaker-independent one.
    let j = row_of(&lb, "entry", "leaky · cnn_v1");
    assert_eq!(j, lb.height() - 1, "flagged entries last");
    assert!(strs(&lb, "warnings")[j].contains("speaker-leaky"));
    assert!(strs(&lb, "warnings")[j].contains("test used for validation"));
    assert_eq!(strs(&lb, "speaker_leaky")[j], "true");
    assert_eq!(strs(&lb, "warnings")[i], "");

    // Per-class F1 pivot: one column per class; values are means over the runs.
    let pc = read_parquet(&out.join("tables/per_class_f1.parquet"));
    assert_eq!(pc.width(), 7, "entry + 6 classes: {pc}");
    let k = row_of(&pc, "entry", "kfold · cnn_v1");
    let anger = kf.iter().map(|r| r.2.test.per_class[0].f1).sum::<f64>() / 2.0;
    assert!((floats(&pc, "anger")[k].unwrap() - anger).abs() < 1e-12);

    // Confusion: summed counts; rows of the shares sum to 1.
    let cm = read_parquet(&out.join("tables/confusion.parquet"));
    let kcm = cm
        .clone()
        .lazy()
        .filter(col("entry").eq(lit("kfold · cnn_v1")))
        .collect()
        .unwrap();
    let total: f64 = floats(&kcm, "count").iter().map(|c| c.unwrap()).sum();
    assert_eq!(total as u64, kf.iter().map(|r| r.2.test.n).sum::<u64>());

    // Leakage panel: the same model under both protocols, with the gap.
    let lk = read_parquet(&out.join("tables/leakage.parquet"));
    let a = row_of(&lk, "entry", "leaky · cnn_v1");
    let ua_leaky = floats(&lb, "ua_mean")[j].unwrap();
    assert!((floats(&lk, "gap")[a].unwrap() - (ua_leaky - m)).abs() < 1e-12);
    assert_eq!(strs(&lk, "reference")[a], "kfold · cnn_v1");

    // Paired comparison of kfold with the selected sweep trial on fold 0, with an interval.
    let pr = read_parquet(&out.join("tables/paired.parquet"));
    assert!(pr.height() >= 1, "{pr}");
    let (d, lo, hi) = (
        floats(&pr, "difference")[0].unwrap(),
        floats(&pr, "ci_low")[0].unwrap(),
        floats(&pr, "ci_high")[0].unwrap(),
    );
    assert!(lo <= d + 1e-12 && d <= hi + 1e-12, "{lo} {d} {hi}");
    assert_eq!(floats(&pr, "paired_runs")[0], Some(1.0));

    // Sweeps: 2 trials, one selected; marginals per parameter value.
    let st = read_parquet(&out.join("tables/sweep_trials.parquet"));
    assert_eq!(st.height(), 2);
    assert_eq!(strs(&st, "selected"), vec!["true", "false"]);
    let sp = read_parquet(&out.join("tables/sweep_params.parquet"));
    assert_eq!(strs(&sp, "value"), vec!["0.3", "0.5"]);

    // Speaker sex: the synthetic corpus has both.
    let sx = read_parquet(&out.join("tables/by_sex_ua.parquet"));
    assert!(
        sx.column("female").is_ok() && sx.column("male").is_ok(),
        "{sx}"
    );

    // Missing or partial runs: listed with their reason, never fatal.
    let is = read_parquet(&out.join("tables/issues.parquet"));
    let status_of = |run: &str| strs(&is, "status")[row_of(&is, "run", run)].clone();
    let problem_of = |run: &str| strs(&is, "problem")[row_of(&is, "run", run)].clone();
    assert_eq!(status_of("fold2-seed0"), "running");
    assert_eq!(status_of("fold2-seed1"), "failed");
    assert!(problem_of("fold2-seed1").contains("out of memory"));
    assert!(problem_of("empty-folder").contains("no meta.json"));
    assert!(problem_of(&leaky_run).contains("model.safetensors"));
    assert!(problem_of("fold1-seed0").contains("not a Parquet file: history.parquet"));
    // That run still counts everywhere but in the learning curves.
    let lc = read_parquet(&out.join("tables/learning_curves.parquet"));
    let kc = row_of(&lc, "entry", "kfold · cnn_v1");
    assert_eq!(floats(&lc, "runs")[kc], Some(1.0));

    // The Markdown and the HTML say the same things.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for s in [
        "## Leaderboard",
        "## Leakage panel",
        "## Paired comparisons",
        "## Missing or partial runs",
        "## Per speaker",
        "## Calibration and uncertainty",
        "charts/reliability.svg",
        "charts/per-speaker.svg",
        "fold2-seed1",
        "⚠",
        "charts/leaderboard-ua.svg",
    ] {
        assert!(md.contains(s), "report.md lacks {s}");
    }
    // Calibration: one row per entry with finite ECEs, and the temperature each run fitted on
    // its validation speakers; per-speaker UA for every tested speaker.
    let cal = read_parquet(&out.join("tables/calibration.parquet"));
    assert!(cal.height() >= 1);
    for c in [
        "ece_mean",
        "ece_scaled_mean",
        "temperature_mean",
        "ua_at_50",
    ] {
        assert!(
            floats(&cal, c)
                .iter()
                .all(|v| v.is_some_and(f64::is_finite)),
            "{c}"
        );
    }
    let spk = read_parquet(&out.join("tables/per_speaker.parquet"));
    assert!(spk.height() >= 4, "{} per-speaker rows", spk.height());
    // Embedding maps: every network run stored its validation and test clips' penultimate
    // vectors, one per clip of split.parquet's val and test roles, with their labels; the report
    // scores each focus run and maps the first run of each focus entry.
    let kfold_run = results.join("kfold").join(&name0);
    let e = emolab::embedding::Embeddings::read(&kfold_run.join(emolab::embedding::FILE)).unwrap();
    let split = read_parquet(&kfold_run.join("split.parquet"));
    let roles = strs(&split, "role");
    let ids = strs(&split, "clip_id");
    let labels = strs(&split, "label");
    let held_out: Vec<usize> = (0..roles.len()).filter(|&i| roles[i] != "train").collect();
    assert_eq!(e.len(), held_out.len());
    for (k, &i) in held_out.iter().enumerate() {
        assert_eq!(
            (&e.clip_id[k], &e.label[k], &e.role[k]),
            (&ids[i], &labels[i], &roles[i])
        );
    }
    assert!(e.width() > 0 && e.vectors.iter().all(|v| v.len() == e.width()));
    assert!(e.vectors.iter().flatten().all(|v| v.is_finite()));
    assert!(
        e.vectors.iter().any(|v| v != &e.vectors[0]),
        "embeddings do not depend on the clip: {:?}",
        &e.vectors[0][..e.width().min(8)]
    );
    assert!(md.contains("## Embedding maps"), "no embedding section");
    let scores = read_parquet(&out.join("tables/embedding_scores.parquet"));
    let entries = strs(&scores, "entry");
    let runs_of = |entry: &str| entries.iter().filter(|e| *e == entry).count();
    // kfold · cnn_v1 has two complete runs (fold 0, fold 1; fold 2's folders are partial).
    assert_eq!(runs_of("kfold · cnn_v1"), 2, "{entries:?}");
    let k = row_of(&scores, "run", &name0);
    assert_eq!(floats(&scores, "clips")[k], Some(e.len() as f64));
    for c in ["silhouette_emotion", "silhouette_speaker"] {
        let v = floats(&scores, c)[k].unwrap();
        assert!((-1.0..=1.0).contains(&v), "{c} {v}");
    }
    let map = read_parquet(&out.join("tables/embedding_map.parquet"));
    let map_entries = strs(&map, "entry");
    let map_runs = strs(&map, "run");
    let rows: Vec<usize> = (0..map.height())
        .filter(|&i| map_entries[i] == "kfold · cnn_v1")
        .collect();
    let shown = &map_runs[rows[0]];
    assert!(
        rows.iter().all(|&i| &map_runs[i] == shown),
        "one run per map"
    );
    let s = (0..scores.height())
        .find(|&i| entries[i] == "kfold · cnn_v1" && &strs(&scores, "run")[i] == shown)
        .unwrap();
    assert_eq!(Some(rows.len() as f64), floats(&scores, "clips")[s]);
    assert!(
        md.contains("charts/embedding-kfold-cnn-v1-speaker.svg"),
        "no speaker map"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Self-contained: no script, stylesheet, image or link to anything outside the file.
    for bad in ["<script", "<link", "<img", "src=", "@import", "url("] {
        assert!(!html.contains(bad), "report.html has {bad}");
    }
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count(),
        "the only URLs are SVG namespaces"
    );
    let charts = std::fs::read_dir(out.join("charts")).unwrap().count();
    assert!(charts >= 10, "{charts} charts");
    assert_eq!(html.matches("<svg").count(), charts);
    assert!(html.contains("class=\"warning\""));

    // Deterministic: a second report is byte-identical.
    let (ok, _, err) = emolab(&[
        "report",
        "--results",
        results.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        html
    );

    // One experiment only.
    let one = tmp.path().join("one");
    let (ok, stdout, err) = emolab(&[
        "report",
        "kfold",
        "--results",
        results.to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("from 1 experiment (kfold)"), "{stdout}");
    assert_eq!(
        read_parquet(&one.join("tables/leaderboard.parquet")).height(),
        1
    );

    render_in_chromium(&out.join("report.html"), tmp.path());
    eprintln!(
        "report test: {:.1} s training, {:.1} s in all",
        trained.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn empty_or_missing_results_give_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let (ok, _, err) = emolab(&["report", "--results", results.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("does not exist") && err.contains("results"),
        "{err}"
    );

    std::fs::create_dir_all(&results).unwrap();
    let (ok, stdout, err) = emolab(&["report", "--all", "--results", results.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("no complete runs"), "{stdout}");
    let html = std::fs::read_to_string(results.join("report/report.html")).unwrap();
    assert!(html.contains("No complete runs"), "{html}");

    // The report folder inside the results is not taken for an experiment; a named experiment
    // that does not exist is an error naming what is there.
    std::fs::create_dir_all(results.join("demo")).unwrap();
    let (ok, _, err) = emolab(&["report", "demmo", "--results", results.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("`demmo`") && err.contains("demo"), "{err}");
    let (ok, stdout, err) = emolab(&["report", "--results", results.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("1 run folder listed"), "{stdout}");

    let (ok, help, _) = emolab(&["report", "--help"]);
    assert!(ok && help.contains("Examples:") && help.contains("emolab report --all"));
}

/// Run `cmd` with a deadline, its output going to files in `dir` (a pipe left unread would
/// block a large `--dump-dom`); `None` when it ran over (it is then killed).
fn run_with_deadline(cmd: &mut Command, dir: &Path, limit: Duration) -> Option<(String, String)> {
    let (out, err) = (dir.join("chromium.out"), dir.join("chromium.err"));
    let mut child = cmd
        .stdout(Stdio::from(std::fs::File::create(&out).ok()?))
        .stderr(Stdio::from(std::fs::File::create(&err).ok()?))
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Some((read(&out), read(&err)))
}

fn chromium() -> Option<PathBuf> {
    let out = Command::new("which").arg("chromium").output().ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Open the report in headless Chromium: every chart must be parsed as SVG, laid out with a
/// size, and hold drawn shapes; a screenshot of the page must differ from a blank page's.
fn render_in_chromium(report: &Path, tmp: &Path) {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium not installed (make test-setup installs it)");
        return;
    };
    // A copy of the page with a probe that measures each chart once laid out (the report
    // itself has no script).
    let probe = r#"<pre id="probe"></pre><pre id="lb"></pre><script>
const charts = [...document.querySelectorAll('figure.chart')].map(f => {
  const s = f.querySelector('svg');
  if (!s) return { id: f.id, svg: false };
  const r = s.getBoundingClientRect();
  const b = s.getBBox();
  return { id: f.id, svg: s.namespaceURI === 'http://www.w3.org/2000/svg',
           width: r.width, height: r.height, bbox: b.width * b.height,
           shapes: s.querySelectorAll('rect, polyline, path, line, circle').length,
           texts: s.querySelectorAll('text').length };
});
document.getElementById('probe').textContent = JSON.stringify(charts);
const lb = document.querySelector('#leaderboard table');
const ths = lb ? [...lb.querySelectorAll('th')] : [];
const warn = ths.find(t => t.textContent === 'warnings');
document.getElementById('lb').textContent = JSON.stringify({
  viewport: window.innerWidth,
  warnings_right: warn ? warn.getBoundingClientRect().right : -1,
  table_right: lb ? lb.getBoundingClientRect().right : -1 });
</script></body>"#;
    let html = std::fs::read_to_string(report).unwrap();
    let probed = report.with_file_name("probe.html");
    std::fs::write(&probed, html.replace("</body>", probe)).unwrap();
    let profile = tmp.join("chromium-profile");
    let out = run_with_deadline(
        headless(&browser, &profile)
            .arg("--window-size=1400,2000")
            .arg("--virtual-time-budget=5000")
            .arg("--dump-dom")
            .arg(format!("file://{}", probed.display())),
        tmp,
        Duration::from_secs(90),
    )
    .expect("chromium --dump-dom finished in 90 s");
    let (dom, stderr) = out;
    let json = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no probe output in the DOM: {stderr}"));
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let charts: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    // The leaderboard fits a 1400 px window, its warnings column on screen.
    let lb = dom
        .split("<pre id=\"lb\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no leaderboard probe in the DOM: {stderr}"))
        .replace("&quot;", "\"");
    let lb: serde_json::Value = serde_json::from_str(&lb).unwrap();
    let right = lb["warnings_right"].as_f64().unwrap();
    assert!(
        right > 0.0 && right <= lb["viewport"].as_f64().unwrap(),
        "the leaderboard's warnings column is off-screen at 1400 px: {lb}"
    );
    assert_eq!(
        charts.len(),
        html.matches("<figure class=\"chart\"").count()
    );
    assert!(charts.len() >= 10);
    for c in &charts {
        let num = |k: &str| c[k].as_f64().unwrap_or(0.0);
        assert_eq!(c["svg"], true, "{c}");
        assert!(
            num("width") > 100.0 && num("height") > 50.0,
            "not laid out: {c}"
        );
        assert!(num("bbox") > 1000.0, "nothing drawn: {c}");
        assert!(
            num("shapes") >= 5.0 && num("texts") >= 2.0,
            "empty chart: {c}"
        );
    }

    // A screenshot of the report is far from blank: compare with an empty page's.
    let blank = tmp.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let shot = |page: &Path, png: &Path| {
        run_with_deadline(
            headless(&browser, &profile)
                .arg("--window-size=1280,2400")
                .arg(format!("--screenshot={}", png.display()))
                .arg(format!("file://{}", page.display())),
            tmp,
            Duration::from_secs(90),
        )
        .expect("chromium --screenshot finished in 90 s");
        let bytes = std::fs::read(png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        bytes.len()
    };
    let full = shot(report, &tmp.join("report.png"));
    let empty = shot(&blank, &tmp.join("blank.png"));
    assert!(
        full > 10 * empty && full > 50_000,
        "screenshot looks blank: {full} bytes vs {empty} for an empty page"
    );
}
