//! Training on held-out speakers: synthetic corpus → features → speaker split → cnn_v1.

use std::path::Path;

use emolab::cache::{Cache, CacheRow};
use emolab::corpus::{self, ScanOptions};
use emolab::features::{featurize, Pipeline};
use emolab::models::ModelSpec;
use emolab::split::{make_folds, speakers_of, Protocol};
use emolab::synth::{self, Layout, SynthOptions};
use emolab::train::{fit, Dataset, FitConfig};

const PIPE: &str = "
sample_rate: 16000
n_fft: 512
hop: 400
win_length: 400
n_mels: 40
fmax: 8000
frames: {mode: pad_crop, size: 96, pad_value: -80}
";

#[test]
fn cnn_v1_beats_chance_on_held_out_speakers_and_is_reproducible() {
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synth");
    synth::generate(&SynthOptions {
        layout: Layout::Cremad,
        out: dir.clone(),
        actors: Some(10),
        seed: 5,
        progress: false,
    })
    .unwrap();
    let clips = corpus::scan(&dir, &ScanOptions::default()).unwrap().clips;
    let p: Pipeline = emolab::config::parse_yaml(Path::new("t.yaml"), PIPE).unwrap();
    featurize(&clips, &p, &tmp.path().join("cache"), false).unwrap();
    let rows = Cache::open(&tmp.path().join("cache"), &p.feature_key())
        .unwrap()
        .read_all(None)
        .unwrap();
    let by_hash: std::collections::HashMap<&str, &CacheRow> =
        rows.iter().map(|r| (r.content_hash.as_str(), r)).collect();
    let names: Vec<String> = [
        "anger",
        "disgust",
        "fear",
        "happiness",
        "neutral",
        "sadness",
    ]
    .map(String::from)
    .to_vec();
    let labels: Vec<usize> = clips
        .iter()
        .map(|c| names.iter().position(|n| *n == c.emotion).unwrap())
        .collect();
    let folds = make_folds(
        &clips,
        &labels,
        &names,
        &Protocol::SpeakerHoldout {
            test_fraction: 0.2,
            val_fraction: 0.15,
        },
        3,
    )
    .unwrap();
    let f = &folds[0];
    assert!(speakers_of(&clips, &f.train).is_disjoint(&speakers_of(&clips, &f.test)));
    let ds = |idx: &[usize]| {
        let r: Vec<&CacheRow> = idx
            .iter()
            .map(|&i| by_hash[clips[i].content_hash.as_str()])
            .collect();
        let l: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        Dataset::from_rows(&r, &l).unwrap()
    };
    let (train, val, test) = (ds(&f.train), ds(&f.val), ds(&f.test));
    let cfg = FitConfig {
        epochs: 8,
        patience: 4,
        seed: 1,
        ..Default::default()
    };
    let spec = ModelSpec::preset("cnn_v1").unwrap();
    let t = std::time::Instant::now();
    let a = fit(&spec, &names, &train, &val, &test, &cfg).unwrap();
    eprintln!(
        "cnn_v1: {} train / {} val / {} test clips, best epoch {}, test UA {:.3} WA {:.3} macro-F1 {:.3} in {:.1} s",
        train.len(),
        val.len(),
        test.len(),
        a.best_epoch,
        a.test.ua,
        a.test.wa,
        a.test.macro_f1,
        t.elapsed().as_secs_f64()
    );
    assert!(
        a.test.ua > 0.30,
        "test UA {:.3} is not clearly above chance (0.167)",
        a.test.ua
    );
    let best = &a.history[a.best_epoch - 1];
    assert!(a.history.iter().all(|h| h.val_ua <= best.val_ua));
    // Same config and seed on CPU: the same metrics.
    let b = fit(&spec, &names, &train, &val, &test, &cfg).unwrap();
    assert_eq!(a.test, b.test);
    assert_eq!(a.history, b.history);
}
