//! Training on held-out speakers: synthetic corpus → features → speaker split → cnn_v1.

use std::path::Path;

use emolab::cache::{Cache, CacheRow};
use emolab::corpus::{self, ScanOptions};
use emolab::features::{featurize, Pipeline};
use emolab::models::ModelSpec;
use emolab::split::{make_folds, speakers_of, Protocol};
use emolab::synth::{self, Layout, SynthOptions};
use emolab::train::optim::Schedule;
use emolab::train::{
    fit, fit_with, Dataset, DeviceChoice, EpochStats, FitConfig, FitControl, NormMode, Precision,
    SpecAugment, Trained, WindowAverage, WindowSpec,
};

/// Histories agree exactly, except validation loss to 1e-9 relative: LibTorch's CPU forward
/// pass varies in the last bit of a loss between runs even when every prediction, every
/// training loss and every weight update is identical.
fn assert_same_history(a: &[EpochStats], b: &[EpochStats]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.epoch, x.train_loss, x.val_ua, x.val_wa, x.lr),
            (y.epoch, y.train_loss, y.val_ua, y.val_wa, y.lr)
        );
        assert!(
            (x.val_loss - y.val_loss).abs() <= 1e-9 * x.val_loss.abs(),
            "{x:?} vs {y:?}"
        );
    }
}

const PIPE: &str = "
sample_rate: 16000
n_fft: 512
hop: 400
win_length: 400
n_mels: 40
fmax: 8000
frames: {mode: pad_crop, size: 96, pad_value: -80}
";

/// A 10-actor synthetic CREMA-D, featurized, split by speaker: (classes, train, val, test).
fn data(tmp: &Path) -> (Vec<String>, Dataset, Dataset, Dataset) {
    tch::set_num_threads(2);
    let dir = tmp.join("synth");
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
    featurize(&clips, &p, &tmp.join("cache"), false).unwrap();
    let rows = Cache::open(&tmp.join("cache"), &p.feature_key())
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
    (names, train, val, test)
}

#[test]
fn cnn_v1_beats_chance_on_held_out_speakers_and_is_reproducible() {
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let (names, train, val, test) = data(tmp.path());
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
    assert_same_history(&a.history, &b.history);
    assert!(a
        .history
        .iter()
        .all(|h| h.train_seconds > 0.0 && h.epoch_seconds >= h.train_seconds));

    // Save → load → predict: the same probabilities as at the end of the fit.
    let path = tmp.path().join("model.safetensors");
    a.model.save(&path).unwrap();
    let loaded = Trained::load(
        &path,
        &spec,
        &names,
        test.n_features,
        1,
        test.frames,
        &cfg,
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(loaded.norm, a.model.norm);
    assert_eq!(loaded.parameters(), a.model.parameters());
    let probs = loaded.predict_proba(&test).unwrap();
    assert_eq!(probs, a.test_probs);
    let argmax: Vec<usize> = probs
        .iter()
        .map(|p| (0..p.len()).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap())
        .collect();
    assert_eq!(argmax, a.test_pred);
    // A model file of another architecture is refused with its name in the error.
    let other = ModelSpec::preset("cnn_v3").unwrap();
    let e = Trained::load(
        &path,
        &other,
        &names,
        test.n_features,
        1,
        test.frames,
        &cfg,
        tch::Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn bf16_autocast_trains_on_cpu_and_stays_close_to_fp32() {
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let (names, train, val, test) = data(tmp.path());
    let cfg = FitConfig {
        epochs: 2,
        seed: 4,
        precision: Precision::Bf16,
        device: DeviceChoice::Cpu,
        ..Default::default()
    };
    let spec = ModelSpec::preset("cnn_v1").unwrap();
    let r = fit(&spec, &names, &train, &val, &test, &cfg).unwrap();
    assert!(r.history.iter().all(|h| h.train_loss.is_finite()));
    assert!(
        r.history[1].train_loss < r.history[0].train_loss * 1.05,
        "{:?}",
        r.history
    );
    // The same weights in fp32 and under bf16 autocast give nearly the same probabilities
    // (bf16 keeps 8 bits of mantissa) and, for nearly every clip, the same class.
    let mut model = r.model;
    assert_eq!(
        model.precision,
        Precision::Bf16,
        "predicts as it was trained"
    );
    let b16 = model.predict_proba(&test).unwrap();
    model.precision = Precision::Fp32;
    let fp32 = model.predict_proba(&test).unwrap();
    let max_diff = fp32
        .iter()
        .flatten()
        .zip(b16.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff > 0.0, "autocast changed nothing: was it enabled?");
    assert!(max_diff < 0.1, "bf16 differs from fp32 by {max_diff}");
}

#[test]
fn a_resumed_run_ends_exactly_like_a_straight_one() {
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let (names, train, val, test) = data(tmp.path());
    let cfg = FitConfig {
        epochs: 5,
        patience: 5,
        seed: 2,
        schedule: Schedule::Plateau {
            factor: 0.5,
            patience: 1,
            min_lr: 1e-6,
        },
        clip_grad: Some(5.0),
        spec_augment: Some(SpecAugment::default()),
        ..Default::default()
    };
    // A CNN with batch-norm: running statistics, optimizer moments, the plateau schedule and
    // the best snapshot all have to survive the interruption. (LibTorch's CPU LSTM kernels are
    // not bit-reproducible across runs on 2 threads, so they cannot be compared bit for bit.)
    let spec = match ModelSpec::preset("cnn_v1").unwrap() {
        ModelSpec::Cnn(mut c) => {
            c.batch_norm = true;
            ModelSpec::Cnn(c)
        }
        _ => unreachable!(),
    };
    let straight = fit(&spec, &names, &train, &val, &test, &cfg).unwrap();
    let ckpt = tmp.path().join("run");
    let stop = FitControl {
        checkpoint_dir: Some(&ckpt),
        stop_after: Some(3),
        progress: false,
    };
    assert!(fit_with(&spec, &names, &train, &val, &test, &cfg, &stop)
        .unwrap()
        .is_none());
    assert!(ckpt.join("checkpoint.ot").exists());
    let resume = FitControl {
        checkpoint_dir: Some(&ckpt),
        stop_after: None,
        progress: false,
    };
    let resumed = fit_with(&spec, &names, &train, &val, &test, &cfg, &resume)
        .unwrap()
        .unwrap();
    assert_same_history(&resumed.history, &straight.history);
    assert_eq!(resumed.test, straight.test);
    assert_eq!(resumed.best_epoch, straight.best_epoch);
    // A checkpoint is not resumed under another configuration.
    let other = FitConfig {
        lr: 5e-4,
        ..cfg.clone()
    };
    let e = fit_with(&spec, &names, &train, &val, &test, &other, &resume).unwrap_err();
    assert!(e.to_string().contains("written by another model"), "{e}");
    assert!(straight.history.iter().any(|h| h.lr < 1e-3) || straight.history.len() == 5);
}

/// `normalize: speaker` standardises each speaker on their own clips, test speakers included:
/// it may read their audio but never their labels. Shuffling the test labels leaves every
/// prediction and probability unchanged.
#[test]
fn speaker_normalisation_reads_no_test_labels() {
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let (names, train, val, test) = data(tmp.path());
    let cfg = FitConfig {
        epochs: 3,
        seed: 3,
        normalize: NormMode::Speaker,
        ..Default::default()
    };
    let spec = ModelSpec::preset("cnn_v1").unwrap();
    let a = fit(&spec, &names, &train, &val, &test, &cfg).unwrap();
    let mut shuffled = test.clone();
    shuffled.labels.reverse();
    shuffled.labels.rotate_left(7);
    assert_ne!(shuffled.labels, test.labels);
    let b = fit(&spec, &names, &train, &val, &shuffled, &cfg).unwrap();
    assert_eq!(
        a.test_probs, b.test_probs,
        "test labels changed the predictions"
    );
    assert_eq!(a.test_pred, b.test_pred);
    // Speaker statistics were used (the test can fail): train-set statistics give other
    // probabilities, and the model's own normaliser is the identity.
    let per_mel = fit(
        &spec,
        &names,
        &train,
        &val,
        &test,
        &FitConfig {
            normalize: NormMode::PerMel,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(a.test_probs, per_mel.test_probs);
    assert!(a.model.norm.mean.iter().all(|&m| m == 0.0));
    // predict_proba re-derives the same per-speaker statistics from the clips it is given.
    assert_eq!(a.model.predict_proba(&test).unwrap(), a.test_probs);
}

/// With `train.window`, a clip is scored by every window of it, and its probabilities are the
/// average of the windows' (here `average: probs`); a clip as long as a window is one window.
#[test]
fn sliding_window_evaluation_equals_the_average_of_its_windows() {
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let (names, train, val, test) = data(tmp.path());
    let window = WindowSpec {
        frames: 40,
        hop: Some(20),
        average: WindowAverage::Probs,
    };
    let cfg = FitConfig {
        epochs: 2,
        seed: 5,
        window: Some(window.clone()),
        ..Default::default()
    };
    let spec = ModelSpec::preset("crnn").unwrap();
    let r = fit(&spec, &names, &train, &val, &test, &cfg).unwrap();
    assert_eq!(r.model.frames, 40);
    // 96 frames → windows at 0, 20, 40 and 56 (the last one ends at the clip's end).
    assert_eq!(window.starts(96), vec![0, 20, 40, 56]);
    let f = test.n_features;
    for clip in 0..3 {
        let whole = &r.test_probs[clip];
        let mut mean = vec![0f32; names.len()];
        for &s in &window.starts(test.lengths[clip]) {
            let part = test.features[clip][s * f..(s + 40) * f].to_vec();
            let p = r
                .model
                .predict_proba(&Dataset::single(part, f, 1))
                .unwrap()
                .remove(0);
            for (m, v) in mean.iter_mut().zip(p) {
                *m += v / 4.0;
            }
        }
        for (a, b) in whole.iter().zip(&mean) {
            assert!((a - b).abs() < 1e-5, "clip {clip}: {whole:?} vs {mean:?}");
        }
        // And not simply the first window's.
        let first = test.features[clip][..40 * f].to_vec();
        let p0 = r
            .model
            .predict_proba(&Dataset::single(first, f, 1))
            .unwrap();
        assert!(p0[0].iter().zip(whole).any(|(a, b)| (a - b).abs() > 1e-6));
    }
    // Embeddings: what the classifier sees. A window's probabilities are the softmax of the
    // classifier applied to its embedding, and a clip's embedding is the mean of its windows'.
    let width = r.model.embed(&test).unwrap()[0].len();
    assert!(width > 0);
    for clip in 0..3 {
        let whole = r
            .model
            .embed(&Dataset::single(test.features[clip].to_vec(), f, 1))
            .unwrap()
            .remove(0);
        assert_eq!(whole.len(), width);
        let starts = window.starts(test.lengths[clip]);
        let mut mean = vec![0f32; width];
        for &s in &starts {
            let part = Dataset::single(test.features[clip][s * f..(s + 40) * f].to_vec(), f, 1);
            let e = r.model.embed(&part).unwrap().remove(0);
            for (m, v) in mean.iter_mut().zip(&e) {
                *m += v / starts.len() as f32;
            }
            let logits = tch::nn::Module::forward(
                r.model.model.classifier(),
                &tch::Tensor::from_slice(&e).view([1, -1]),
            );
            let p: Vec<f32> =
                Vec::try_from(logits.softmax(-1, tch::Kind::Float).view([-1])).unwrap();
            let want = r.model.predict_proba(&part).unwrap().remove(0);
            for (a, b) in p.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "clip {clip} window {s}: {p:?} vs {want:?}"
                );
            }
        }
        for (a, b) in whole.iter().zip(&mean) {
            assert!(
                (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                "clip {clip}: embedding {a} vs {b}"
            );
        }
    }
    // A 30-frame clip (shorter than a window) is scored whole, padded and masked.
    let short = test.features[0][..30 * f].to_vec();
    let p = r
        .model
        .predict_proba(&Dataset::single(short, f, 1))
        .unwrap();
    assert!((p[0].iter().sum::<f32>() - 1.0).abs() < 1e-4);
}
