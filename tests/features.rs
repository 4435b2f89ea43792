//! The feature stage end to end: caching, incremental runs, augmentation variants, concurrent
//! writers, readability by Polars, and bad clips.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use emolab::cache::Cache;
use emolab::corpus::{self, ClipRecord, ScanOptions};
use emolab::features::stage::wanted_keys;
use emolab::features::{featurize, Pipeline};
use emolab::synth::{self, Layout, SynthOptions};

const PIPE: &str = "
sample_rate: 16000
n_fft: 512
hop: 320
win_length: 400
n_mels: 32
fmax: 8000
frames: {mode: pad_crop, size: 100, pad_value: -80}
augment:
  - {type: noise, snr_db: [10, 20], copies: 1}
  - {type: gain, db: [-6, 6], copies: 1}
";

fn pipeline(text: &str) -> Pipeline {
    let p: Pipeline = emolab::config::parse_yaml(Path::new("test.yaml"), text).unwrap();
    p.validate(Path::new("test.yaml")).unwrap();
    p
}

fn corpus(dir: &Path, layout: Layout, actors: usize) -> Vec<ClipRecord> {
    synth::generate(&SynthOptions {
        layout,
        out: dir.to_path_buf(),
        actors: Some(actors),
        seed: 11,
        progress: false,
    })
    .unwrap();
    corpus::scan(dir, &ScanOptions::default()).unwrap().clips
}

#[test]
fn second_run_computes_nothing_and_changes_compute_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = corpus(&tmp.path().join("emo"), Layout::Emodb, 1);
    let cache = tmp.path().join("cache");
    let p = pipeline(PIPE);
    let r = featurize(&clips, &p, &cache, false).unwrap();
    assert_eq!(
        (r.wanted, r.cached, r.computed),
        (clips.len() * 3, 0, clips.len() * 3)
    );
    assert!(r.failed.is_empty());
    let r = featurize(&clips, &p, &cache, false).unwrap();
    assert_eq!(
        (r.cached, r.computed),
        (clips.len() * 3, 0),
        "a second run computes nothing"
    );

    // New clips: only they are computed.
    let more = corpus(&tmp.path().join("emo"), Layout::Emodb, 2);
    assert!(more.len() > clips.len());
    let r = featurize(&more, &p, &cache, false).unwrap();
    assert_eq!(r.computed, (more.len() - clips.len()) * 3);

    // One augmentation changed: only its variants are computed.
    let p2 = pipeline(&PIPE.replace("db: [-6, 6]", "db: [-3, 3]"));
    assert_eq!(p2.feature_key(), p.feature_key());
    let r = featurize(&more, &p2, &cache, false).unwrap();
    assert_eq!((r.cached, r.computed), (more.len() * 2, more.len()));
    // The old gain variants stay in the folder, but a reader asking for this pipeline's keys
    // gets exactly the current variants.
    let c2 = Cache::open(&cache, &p2.feature_key()).unwrap();
    assert_eq!(c2.keys().unwrap().len(), more.len() * 4);
    let current = c2.read_all(Some(&wanted_keys(&more, &p2))).unwrap();
    assert_eq!(current.len(), more.len() * 3);
    assert!(current.iter().filter(|r| r.variant == "gain#0").all(|r| r
        .variant_params
        .contains("\"db\"")
        && serde_json::from_str::<serde_json::Value>(&r.variant_params).unwrap()["db"]
            .as_f64()
            .unwrap()
            .abs()
            <= 3.0));

    // A feature field changed: a new cache folder, everything computed.
    let p3 = pipeline(&PIPE.replace("n_mels: 32", "n_mels: 40"));
    assert_ne!(p3.feature_key(), p.feature_key());
    let r = featurize(&more, &p3, &cache, false).unwrap();
    assert_eq!(r.computed, more.len() * 3);

    // What is read back has the shapes the pipeline asks for, and variants differ.
    let c = Cache::open(&cache, &p3.feature_key()).unwrap();
    let rows = c.read_all(None).unwrap();
    assert_eq!(rows.len(), more.len() * 3);
    for r in &rows {
        assert_eq!((r.n_frames, r.n_features), (100, 40));
        assert_eq!(r.features.len(), 4000);
        assert!(
            r.features.iter().all(|v| (-80.0..=0.0).contains(v)),
            "dB in [-80, 0]"
        );
    }
    let clip0 = &more[0].clip_id;
    let variants: Vec<_> = rows.iter().filter(|r| &r.clip_id == clip0).collect();
    assert_eq!(variants.len(), 3);
    assert_ne!(variants[0].features, variants[1].features);
    assert!(variants.iter().any(|v| v.variant_params.contains("snr_db")));
}

#[test]
fn features_are_deterministic_across_caches() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = corpus(&tmp.path().join("c"), Layout::Emodb, 1);
    let p = pipeline(PIPE);
    let mut sets = Vec::new();
    for name in ["a", "b"] {
        let root = tmp.path().join(name);
        featurize(&clips, &p, &root, false).unwrap();
        let mut rows = Cache::open(&root, &p.feature_key())
            .unwrap()
            .read_all(None)
            .unwrap();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        sets.push(rows);
    }
    assert_eq!(sets[0], sets[1]);
}

#[test]
fn bad_clips_are_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut clips = corpus(&tmp.path().join("c"), Layout::Emodb, 1);
    // The file changed on disk after the scan: truncated.
    let victim = clips[3].path.clone();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..100]).unwrap();
    clips.push(ClipRecord {
        path: tmp.path().join("gone.wav").display().to_string(),
        content_hash: "gone".into(),
        ..clips[0].clone()
    });
    let r = featurize(&clips, &pipeline(PIPE), &tmp.path().join("cache"), false).unwrap();
    assert_eq!(r.failed.len(), 2);
    assert!(r
        .failed
        .iter()
        .any(|p| p.path == victim && p.reason.contains("truncated")));
    assert_eq!(r.computed, (clips.len() - 2) * 3);
}

#[test]
fn concurrent_writers_and_polars_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let clips = corpus(&dir, Layout::Emodb, 1);
    let manifest = tmp.path().join("m.parquet");
    corpus::write_manifest(&manifest, &clips).unwrap();
    let pfile = tmp.path().join("p.yaml");
    std::fs::write(&pfile, PIPE).unwrap();
    let cache = tmp.path().join("cache");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_emolab"))
            .args(["--quiet", "featurize", "--pipeline"])
            .arg(&pfile)
            .arg("--cache")
            .arg(&cache)
            .arg(&manifest)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let p = Pipeline::load(&pfile).unwrap();
    let c = Cache::open(&cache, &p.feature_key()).unwrap();
    let rows = c.read_all(None).unwrap();
    assert_eq!(rows.len(), clips.len() * 3, "each key read once");
    let keys: HashSet<_> = rows.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), rows.len());
    // A third run computes nothing.
    let o = Command::new(env!("CARGO_BIN_EXE_emolab"))
        .args(["--quiet", "featurize", "--pipeline"])
        .arg(&pfile)
        .arg("--cache")
        .arg(&cache)
        .arg(&manifest)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("{} cached, 0 computed", clips.len() * 3)),
        "{out}"
    );

    // Polars reads every part.
    use polars::prelude::*;
    let mut total = 0;
    for part in c.parts().unwrap() {
        let df = ParquetReader::new(std::fs::File::open(&part).unwrap())
            .finish()
            .unwrap();
        assert!(df.column("spectrogram").unwrap().dtype().is_list());
        assert_eq!(
            df.column("n_features").unwrap().u32().unwrap().get(0),
            Some(32)
        );
        total += df.height();
    }
    assert!(total >= clips.len() * 3);
}

#[test]
fn real_emodb_resamples_and_featurizes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/emodb/wav");
    if !dir.is_dir() {
        eprintln!(
            "skipping: {} not found (the shared corpora are absent)",
            dir.display()
        );
        return;
    }
    let clips = corpus::scan(&dir, &ScanOptions::default()).unwrap().clips;
    let some: Vec<_> = clips.into_iter().step_by(25).collect();
    let tmp = tempfile::tempdir().unwrap();
    let p = Pipeline::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/logmel128.yaml"))
        .unwrap();
    let r = featurize(&some, &p, tmp.path(), false).unwrap();
    assert_eq!(r.computed, some.len());
    let rows = Cache::open(tmp.path(), &p.feature_key())
        .unwrap()
        .read_all(None)
        .unwrap();
    for r in rows {
        assert_eq!((r.n_frames, r.n_features), (128, 128));
        // 2.0 s at 16 kHz (resampled from 22,050) with hop 512: 63 frames, then 0 dB padding.
        let frame = |t: usize| &r.features[t * 128..(t + 1) * 128];
        assert!(frame(62).iter().any(|v| *v < -1.0), "frame 62 holds audio");
        assert!(frame(63).iter().all(|v| *v == 0.0), "frame 63 is padding");
        assert!(r.features.iter().any(|v| *v == 0.0) && r.features.iter().all(|v| *v >= -80.0));
    }
}

#[test]
fn shipped_pipelines_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    for name in ["logmel128", "logmel64", "mfcc40"] {
        let p = Pipeline::load(&dir.join(format!("{name}.yaml"))).unwrap();
        assert_eq!(p.name, name);
    }
    let p = Pipeline::load(&dir.join("logmel128.yaml")).unwrap();
    let m = p.mel_params();
    assert_eq!(
        (p.sample_rate, m.n_fft, m.hop, m.n_mels),
        (16000, 2048, 512, 128)
    );
    assert_eq!(p.frames.size, Some(128));
    let e = Pipeline::load(&dir.join("missing.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.yaml") && e.contains("cannot read"),
        "{e}"
    );
}
