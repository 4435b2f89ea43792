//! Pretrained encoders against `transformers`: every hidden state of tiny random checkpoints of
//! each architecture (fixtures from `tests/fixtures/encoders/make_fixtures.py`) must match to
//! 1e-4, on a synthetic clip, on real speech and in a padded batch; broken checkpoints must
//! fail with errors that name the tensor or config field.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use emolab::encoders::{Encoder, EncoderError, WhisperInput};
use tch::{Device, Kind, Tensor};

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/encoders")
        .join(name)
}

fn refs(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture(name).join("reference.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap()
}

/// The first 16,000 samples of the EmoDB clip the fixtures used (16-bit PCM / 32768).
fn real_clip() -> Option<Vec<f32>> {
    let dir = common::emodb()?;
    let audio = emolab::audio::read_wav(&dir.join("03a01Wa.wav")).ok()?;
    Some(audio.to_mono()[..16000].to_vec())
}

fn max_diff(a: &Tensor, b: &Tensor, what: &str) -> f64 {
    assert_eq!(a.size(), b.size(), "{what}: shapes differ");
    (a - b).abs().max().double_value(&[])
}

fn check(a: &Tensor, b: &Tensor, what: &str) {
    let d = max_diff(a, b, what);
    assert!(
        d <= TOL,
        "{what}: max |emolab - transformers| = {d:e} > {TOL:e}"
    );
}

/// Frames [0, 150) and [1450, 1500) of `[.., 1500, D]` (what the Whisper fixtures keep).
fn kept(h: &Tensor) -> Tensor {
    let t = h.size().len() as i64 - 2;
    Tensor::cat(&[h.narrow(t, 0, 150), h.narrow(t, 1450, 50)], t)
}

fn parity(name: &str) {
    let enc = Encoder::load(&fixture(name), Device::Cpu).unwrap();
    let r = refs(name);
    let synth = to_vec(&r["wave_synth"]);
    let whisper = name.starts_with("whisper");
    let view = |h: &Tensor| if whisper { kept(h) } else { h.shallow_clone() };
    let mut clips: Vec<(&str, Vec<f32>)> = vec![("synth", synth.clone())];
    match real_clip() {
        Some(real) => clips.push(("real", real)),
        None => eprintln!("{name}: EmoDB not found (set EMODB): real-speech parity skipped"),
    }
    for (key, y) in &clips {
        let out = enc.forward(&[y], WhisperInput::Padded).unwrap();
        let want = &r[&format!("{key}.hidden")];
        assert_eq!(
            out.states.len() as i64,
            want.size()[0],
            "{name}: hidden state count"
        );
        for (i, s) in out.states.iter().enumerate() {
            check(
                &view(&s.get(0)),
                &want.get(i as i64),
                &format!("{name} {key} hidden[{i}]"),
            );
        }
        check(
            &view(&out.last.get(0)),
            &r[&format!("{key}.last")],
            &format!("{name} {key} last"),
        );
    }
    if clips.len() == 2 {
        let out = enc
            .forward(&[&clips[0].1, &clips[1].1], WhisperInput::Padded)
            .unwrap();
        let want = &r["batch.hidden"];
        for (i, s) in out.states.iter().enumerate() {
            // Padded frames are compared too: emolab masks exactly as transformers does.
            check(
                &view(s),
                &want.get(i as i64),
                &format!("{name} padded batch hidden[{i}]"),
            );
        }
        if !whisper {
            check(
                &out.last,
                &r["batch.last"],
                &format!("{name} padded batch last"),
            );
            assert!(
                out.lengths[0] < out.lengths[1],
                "{name}: the shorter clip has fewer frames"
            );
        }
    }
}

#[test]
fn wav2vec2_base_matches_transformers() {
    parity("wav2vec2_base");
}

#[test]
fn wav2vec2_large_matches_transformers() {
    parity("wav2vec2_large");
}

#[test]
fn hubert_base_matches_transformers() {
    parity("hubert_base");
}

#[test]
fn hubert_large_matches_transformers() {
    parity("hubert_large");
}

#[test]
fn wavlm_base_matches_transformers() {
    parity("wavlm_base");
}

#[test]
fn wavlm_large_matches_transformers() {
    parity("wavlm_large");
}

#[test]
fn whisper_80_matches_transformers() {
    parity("whisper_80");
}

#[test]
fn whisper_128_matches_transformers() {
    parity("whisper_128");
}

#[test]
fn whisper_front_end_and_cropped_mode_match() {
    for name in ["whisper_80", "whisper_128"] {
        let enc = Encoder::load(&fixture(name), Device::Cpu).unwrap();
        let r = refs(name);
        let synth = to_vec(&r["wave_synth"]);
        let emolab::encoders::ModelConfig::Whisper(_) = &enc.config else {
            panic!("{name} is not whisper")
        };
        let mel = enc.whisper_log_mel(&[&synth]).unwrap();
        check(
            &mel.get(0).narrow(1, 0, 200),
            &r["synth.input_features"],
            &format!("{name} log-mel"),
        );
        let out = enc.forward(&[&synth], WhisperInput::Cropped).unwrap();
        let want = &r["synth.cropped_hidden"];
        assert_eq!(
            out.states[0].size()[1],
            want.size()[1],
            "{name}: cropped frames"
        );
        for (i, s) in out.states.iter().enumerate() {
            check(
                &s.get(0),
                &want.get(i as i64),
                &format!("{name} cropped hidden[{i}]"),
            );
        }
    }
}

/// A copy of a fixture folder to break.
fn copy_fixture(name: &str, to: &Path) -> PathBuf {
    let dst = to.join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ] {
        std::fs::copy(fixture(name).join(f), dst.join(f)).unwrap();
    }
    dst
}

#[test]
fn broken_checkpoints_name_the_tensor_and_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    // A tensor left out of the checkpoint.
    let dir = copy_fixture("wavlm_base", tmp.path());
    let gone = "encoder.layers.1.attention.gru_rel_pos_const";
    let kept: Vec<(String, Tensor)> = Tensor::read_safetensors(dir.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != gone)
        .collect();
    Tensor::write_safetensors(&kept, dir.join("model.safetensors")).unwrap();
    let e = Encoder::load(&dir, Device::Cpu).unwrap_err();
    assert!(matches!(e, EncoderError::Weights { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("missing tensor: {gone}")),
        "{e}"
    );

    // A config that disagrees with the weights.
    let dir = copy_fixture("hubert_base", tmp.path());
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"intermediate_size\": 64", "\"intermediate_size\": 96"),
    )
    .unwrap();
    let e = Encoder::load(&dir, Device::Cpu).unwrap_err().to_string();
    assert!(
        e.contains("encoder.layers.0.feed_forward.intermediate_dense.weight")
            && e.contains("intermediate_size"),
        "{e}"
    );

    // Fewer layers in the config than in the checkpoint: the extra layer is unexpected.
    let dir = copy_fixture("wav2vec2_base", tmp.path());
    std::fs::write(
        dir.join("config.json"),
        cfg_with(&dir, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"),
    )
    .unwrap();
    let e = Encoder::load(&dir, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("unexpected tensor: encoder.layers.1."), "{e}");

    // No weights, and an unknown architecture.
    let dir = copy_fixture("wav2vec2_base", &tmp.path().join("x"));
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = Encoder::load(&dir, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("no model.safetensors"), "{e}");
    std::fs::write(dir.join("config.json"), r#"{"model_type": "bert"}"#).unwrap();
    let e = Encoder::load(&dir, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("model_type `bert` is not supported"), "{e}");
    let e = Encoder::load(&tmp.path().join("absent"), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("huggingface-cli download"), "{e}");
}

fn cfg_with(dir: &Path, from: &str, to: &str) -> String {
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(cfg.contains(from), "fixture config has no `{from}`");
    cfg.replace(from, to)
}

/// An `encoder` pipeline on a synthetic corpus: pooled embeddings of every layer are cached once
/// (a second run computes nothing), the probe trains on them and beats chance on held-out
/// speakers, and `predict` scores a file through the same encoder.
#[test]
fn an_encoder_probe_experiment_caches_trains_and_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = synth_corpus(tmp.path(), 6, 5);
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let exp = tmp.path().join("probe.yaml");
    std::fs::write(
        &exp,
        format!(
            "corpus: {{path: {corpus}, format: cremad, labels: [anger, disgust, fear, happiness, neutral, sadness]}}
protocol: {{kind: speaker_kfold, k: 3, val_fraction: 0.2}}
pipeline: {{file: {pipelines}/encoder_mean.yaml, encoder: {{path: {model}, kind: wavlm, pooling: mean_std}}}}
model: {{preset: probe, hidden: 64}}
train: {{epochs: 40, batch_size: 32, lr: 3.0e-3, threads: 2, device: cpu, normalize: speaker, patience: 40}}
seeds: [0]
folds: [0]
cache: {cache}
results: {results}
",
            corpus = corpus.display(),
            pipelines = pipelines.display(),
            model = fixture("wavlm_base").display(),
            cache = tmp.path().join("cache").display(),
            results = tmp.path().join("results").display(),
        ),
    )
    .unwrap();
    let (ok, out, err) = common::emolab(&["run", exp.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    // The result table is plain text (no data-frame borders or dtype rows).
    assert!(
        out.contains("model")
            && out.contains("UA")
            && !out.contains("shape:")
            && !out.contains('┆'),
        "{out}"
    );
    let cache = tmp.path().join("cache");
    let parts = |dir: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut v: Vec<_> = walkdir(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .map(|p| {
                let m = std::fs::metadata(&p).unwrap().modified().unwrap();
                (p, m)
            })
            .collect();
        v.sort();
        v
    };
    let before = parts(&cache);
    assert!(!before.is_empty(), "no cache parts written");
    // Rows: one frame of 3 hidden states × (mean, std) × 32 values.
    let rows = common::read_parquet(&before[0].0);
    let nf = rows
        .column("n_features")
        .unwrap()
        .u32()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(nf, 3 * 2 * 32);
    let names: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(before[0].0.parent().unwrap().join("feature_names.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(names.len(), 192);
    assert_eq!(names[0], "l0_mean0");
    assert_eq!(names[32], "l0_std0");

    let run = tmp.path().join("results/probe/fold0-seed0");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let ua = metrics["test"]["ua"].as_f64().unwrap();
    // Chance is 1/6; with ~25 test clips per class its spread is about 0.03.
    assert!(
        ua > 0.25,
        "probe test UA {ua:.3} is not clearly above chance (1/6)"
    );

    // The run names its encoder, learns a softmax mix of its layers and keeps the validation
    // predictions the fusion weighs its members on.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let enc = &meta["encoder"];
    assert_eq!(enc["arch"], "wavlm", "{meta}");
    assert_eq!(enc["states"], serde_json::json!([0, 1, 2]), "{meta}");
    assert_eq!(enc["pooling"], "mean_std", "{meta}");
    assert!(
        enc["hash"].as_str().is_some_and(|h| h.len() >= 12),
        "{meta}"
    );
    assert!(enc.get("whisper_input").is_none(), "{meta}");
    let lw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("layer_weights.json")).unwrap())
            .unwrap();
    assert_eq!(lw["states"], serde_json::json!([0, 1, 2]), "{lw}");
    let w: Vec<f64> = lw["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(w.len(), 3, "{lw}");
    assert!(w.iter().all(|&x| x > 0.0), "{lw}");
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{lw}");
    // Trained for 40 epochs at 3e-3, the mix has moved off its uniform start.
    assert!(w.iter().any(|&x| (x - 1.0 / 3.0).abs() > 1e-4), "{lw}");
    let val = common::read_parquet(&run.join("val_predictions.parquet"));
    assert!(val.height() > 0);
    // Permutation importance per layer and statistic, not per anonymous dimension.
    let imp = common::read_parquet(&run.join("importance.parquet"));
    let feats: Vec<String> = imp
        .column("feature")
        .unwrap()
        .str()
        .unwrap()
        .into_no_null_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        feats,
        [
            "state0_mean",
            "state0_std",
            "state1_mean",
            "state1_std",
            "state2_mean",
            "state2_std"
        ]
    );

    // A second run (forced retraining) finds every embedding cached.
    let (ok, out, err) = common::emolab(&["run", exp.to_str().unwrap(), "--force"]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        parts(&cache),
        before,
        "the second run recomputed embeddings"
    );

    // predict goes through the same encoder.
    let wav = walkdir(&corpus)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .unwrap();
    let (ok, out, err) = common::emolab(&["predict", run.to_str().unwrap(), wav.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(
        [
            "anger",
            "disgust",
            "fear",
            "happiness",
            "neutral",
            "sadness"
        ]
        .iter()
        .any(|l| out.contains(l)),
        "{out}"
    );

    // A missing model folder is a clear error that says what to download.
    let bad = std::fs::read_to_string(&exp).unwrap().replace(
        &fixture("wavlm_base").display().to_string(),
        "/nonexistent/wavlm",
    );
    let bad_exp = tmp.path().join("bad.yaml");
    std::fs::write(&bad_exp, bad).unwrap();
    let (ok, out, err) = common::emolab(&["run", bad_exp.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("/nonexistent/wavlm") && err.contains("huggingface-cli download"),
        "{err}"
    );
}

/// A synthetic CREMA-D-layout corpus of `actors` speakers under `dir/synth`.
fn synth_corpus(dir: &Path, actors: usize, seed: u64) -> PathBuf {
    use emolab::synth::{self, Layout, SynthOptions};
    let out = dir.join("synth");
    synth::generate(&SynthOptions {
        layout: Layout::Cremad,
        out: out.clone(),
        actors: Some(actors),
        seed,
        progress: false,
    })
    .unwrap();
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Fine-tuning: only the top N layers become variables (initialised from the checkpoint), they
/// learn at the scaled rate while the head learns at the full one, and the layers below are not
/// part of the model at all (their output is cached).
#[test]
fn finetuning_trains_only_the_top_layers() {
    use emolab::models::finetune::{FinetuneSpec, ENCODER_GROUP};
    use emolab::models::{Input, ModelSpec};
    let dir = fixture("wavlm_base");
    let ckpt: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let spec = ModelSpec::Finetune(FinetuneSpec {
        encoder: dir.clone(),
        top_layers: 1,
        ..Default::default()
    });
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let (d, t, n) = (32i64, 20i64, 12i64);
    let model = spec
        .build(
            &vs.root(),
            Input {
                channels: 1,
                bins: d,
                frames: t,
            },
            3,
        )
        .unwrap();
    let names: Vec<String> = vs.variables().into_keys().collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("encoder.encoder_layers_1_")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("layers_0_attention_q_proj")),
        "layer 0 must stay frozen (cached): {names:?}"
    );
    let key = "encoder.encoder_layers_1_attention_q_proj_weight";
    let before = vs.variables()[key].copy();
    assert_eq!(
        max_diff(
            &before,
            &ckpt["encoder.layers.1.attention.q_proj.weight"],
            key
        ),
        0.0,
        "initialised from the checkpoint"
    );
    // A few steps with the trainer's optimizer and the spec's group rates.
    tch::manual_seed(0);
    let x = Tensor::randn([n, 1, d, t], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(3);
    let head_key = "out.weight";
    let head_before = vs.variables()[head_key].copy();
    let mut opt = emolab::train::optim::Optimizer::new(&vs, &Default::default(), 1e-3);
    for (g, f) in spec.group_lr() {
        assert_eq!(g, ENCODER_GROUP);
        opt.set_group_lr_scale(g, f);
    }
    for _ in 0..5 {
        opt.zero_grad();
        let loss = model
            .forward(&x, Some(&vec![t; n as usize]), true)
            .cross_entropy_for_logits(&y);
        loss.backward();
        opt.step();
    }
    let moved = max_diff(&vs.variables()[key], &before, key);
    let head_moved = max_diff(&vs.variables()[head_key], &head_before, head_key);
    assert!(moved > 0.0, "the top layer did not change");
    // Adam's first steps move each weight by about lr: the encoder's by a tenth of the head's.
    assert!(
        moved < 0.5 * head_moved,
        "encoder moved {moved:e}, head {head_moved:e}"
    );
}

/// A `finetune` experiment on cached frames runs end to end, and a pipeline that caches the
/// wrong hidden state is refused with the one to set.
#[test]
fn a_finetune_experiment_runs_and_checks_its_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = synth_corpus(tmp.path(), 4, 6);
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let write = |name: &str, layer: usize, normalize: &str| {
        let exp = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &exp,
            format!(
                "corpus: {{path: {corpus}, format: cremad, labels: [anger, disgust, fear, happiness, neutral, sadness]}}
protocol: {{kind: speaker_kfold, k: 2, val_fraction: 0.25}}
pipeline: {{file: {pipelines}/encoder_frames.yaml, encoder: {{path: {model}, layers: [{layer}]}}}}
model: {{family: finetune, top_layers: 1, hidden: 32}}
train: {{epochs: 3, batch_size: 16, lr: 1.0e-3, threads: 2, device: cpu, normalize: {normalize}, window: {{frames: 40, hop: 20}}}}
seeds: [0]
folds: [0]
cache: {cache}
results: {results}
",
                corpus = corpus.display(),
                pipelines = pipelines.display(),
                model = fixture("hubert_large").display(),
                cache = tmp.path().join("cache").display(),
                results = tmp.path().join("results").display(),
            ),
        )
        .unwrap();
        exp
    };
    let (ok, _, err) = common::emolab(&["run", write("wrong", 0, "none").to_str().unwrap()]);
    assert!(!ok && err.contains("layers: [1], pooling: none"), "{err}");
    let (ok, _, err) = common::emolab(&["run", write("norm", 1, "per_mel").to_str().unwrap()]);
    assert!(!ok && err.contains("normalize: none"), "{err}");
    let exp = write("ft", 1, "none");
    let (ok, out, err) = common::emolab(&["run", exp.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let run = tmp.path().join("results/ft/fold0-seed0");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["test"]["ua"].as_f64().unwrap().is_finite());
    let (ok, out, err) = common::emolab(&["evaluate", run.to_str().unwrap(), "--json"]);
    assert!(ok, "{out}\n{err}");
}

/// Batching several clips into one forward pass gives each clip the embedding it gets alone
/// (layer-norm front ends: padding is masked); a group-norm model is never batched; a long clip
/// is cut into equal pieces whose frames all reach the cache.
#[test]
fn batched_and_chunked_embeddings_match_one_clip_at_a_time() {
    use emolab::features::embeddings::{Embedder, EncoderSpec, Layers, Pooling};
    let r = refs("wav2vec2_large");
    let y = to_vec(&r["wave_synth"]);
    let clips: Vec<&[f32]> = vec![&y[..12800], &y[..7000], &y[2000..11000]];
    let spec = |name: &str, pooling: Pooling, chunk_s: f32, batch: usize| EncoderSpec {
        path: fixture(name),
        kind: None,
        layers: Layers::All,
        pooling,
        chunk_s,
        whisper_input: WhisperInput::Padded,
        batch: Some(batch),
    };
    for name in ["wav2vec2_large", "wavlm_base"] {
        let one = Embedder::new(&spec(name, Pooling::MeanStd, 20.0, 1), Device::Cpu).unwrap();
        let many = Embedder::new(&spec(name, Pooling::MeanStd, 20.0, 3), Device::Cpu).unwrap();
        let batched = many.embed_many(&clips);
        for (c, b) in clips.iter().zip(batched) {
            let (n1, a) = one.embed(c).unwrap();
            let (n2, b) = b.unwrap();
            assert_eq!((n1, a.len()), (n2, b.len()));
            let d = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-4, "{name}: batched embedding differs by {d}");
        }
    }
    // Chunking: a 2.4 s clip (the tone three times) at chunk_s 1 is three pieces of 0.8 s.
    let long: Vec<f32> = y.iter().chain(&y).chain(&y).copied().collect();
    let e = Embedder::new(&spec("wavlm_base", Pooling::None, 1.0, 1), Device::Cpu).unwrap();
    let (frames, data) = e.embed(&long).unwrap();
    let enc = Encoder::load(&fixture("wavlm_base"), Device::Cpu).unwrap();
    assert_eq!(frames, 3 * enc.frames_for(12800), "three pieces of 0.8 s");
    assert_eq!(data.len(), frames * 3 * 32);
    // Pieces of unequal length (the last is shorter, so it is encoded first) still reach the
    // cache in time order: the frames equal the pieces embedded one by one, in order.
    let uneven = &long[..38000];
    let (frames, data) = e.embed(uneven).unwrap();
    let step = 38000usize.div_ceil(3);
    let mut want = Vec::new();
    for k in 0..3 {
        let piece = &uneven[k * step..((k + 1) * step).min(38000)];
        want.extend(e.embed(piece).unwrap().1);
    }
    assert_eq!(frames * 3 * 32, want.len());
    let d = data
        .iter()
        .zip(&want)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        d < 1e-5,
        "frames of a chunked clip out of order (max difference {d})"
    );
}

/// The real Whisper tiny.en folder (`$ENCODER_DIR`, or the shared models folder next to the
/// project), when present.
fn real_whisper() -> Option<PathBuf> {
    let p = std::env::var_os("ENCODER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models/whisper-tiny.en")
        });
    p.join("model.safetensors").exists().then_some(p)
}

/// The fixture script's clips: 16-bit samples / 32768, taken as 16 kHz, first `n`.
fn raw_clip(dir: &Path, name: &str, n: usize) -> Vec<f32> {
    let mut r = hound::WavReader::open(dir.join(name)).unwrap();
    r.samples::<i16>()
        .take(n)
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

/// Every hidden state of emolab's Whisper encoder on the real tiny.en weights against
/// `transformers` (`tests/fixtures/encoders/make_real_whisper.py`): two real EmoDB clips in the
/// padded (30 s), cropped and 5-s window modes, alone and batched together (a batch mixes
/// lengths: cropped and window clips are masked to what they see alone). Kept frames and each
/// state's mean over the clip's own frames, max abs difference <= 1e-4 on every layer.
#[test]
fn real_whisper_tiny_en_matches_transformers() {
    let (Some(model), Some(emodb)) = (real_whisper(), common::emodb()) else {
        eprintln!(
            "skipped: the real Whisper tiny.en folder (../shared/models/whisper-tiny.en or \
             $ENCODER_DIR) or EmoDB (../shared/corpora/emodb/wav or $EMODB) is absent"
        );
        return;
    };
    let r: HashMap<String, Tensor> =
        Tensor::read_safetensors(fixture("whisper_tiny_en_real.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let enc = Encoder::load(&model, Device::Cpu).unwrap();
    let clips = [
        ("a", raw_clip(&emodb, "03a01Wa.wav", 44100)),
        ("b", raw_clip(&emodb, "16b10Tb.wav", 20000)),
    ];
    let modes = [
        ("padded", WhisperInput::Padded),
        ("cropped", WhisperInput::Cropped),
        ("window5", WhisperInput::Window(5.0)),
    ];
    let compare = |out: &emolab::encoders::Hidden, b: i64, prefix: &str| {
        let frames = &r[&format!("{prefix}.frames")];
        let want_kept = &r[&format!("{prefix}.kept")];
        let want_mean = &r[&format!("{prefix}.mean")];
        let own = out.lengths[b as usize];
        assert_eq!(
            out.states.len() as i64,
            want_kept.size()[0],
            "{prefix}: states"
        );
        for (l, s) in out.states.iter().enumerate() {
            let s = s.get(b);
            let got = s.index_select(0, frames);
            check(
                &got,
                &want_kept.get(l as i64),
                &format!("{prefix} state {l} frames"),
            );
            let mean = s.narrow(0, 0, own).mean_dim(0, false, Kind::Float);
            check(
                &mean,
                &want_mean.get(l as i64),
                &format!("{prefix} state {l} mean"),
            );
        }
    };
    for (mode, input) in modes {
        for (key, y) in &clips {
            let out = enc.forward(&[y], input).unwrap();
            compare(&out, 0, &format!("{mode}.{key}"));
        }
        // Both clips in one batch: each gets what it gets alone.
        let out = enc.forward(&[&clips[0].1, &clips[1].1], input).unwrap();
        for (b, (key, _)) in clips.iter().enumerate() {
            let prefix = if mode == "padded" {
                format!("padded_batch.{key}")
            } else {
                format!("{mode}.{key}")
            };
            compare(&out, b as i64, &prefix);
        }
    }
}

/// `--set` reaches into the blocks of a pipeline given as a file, and a Whisper run says which
/// encoder it loaded (log line, `meta.json`) and how Whisper saw the clips.
#[test]
fn set_reaches_into_a_pipeline_file_and_the_run_names_its_whisper_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = synth_corpus(tmp.path(), 6, 7);
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let exp = tmp.path().join("probe.yaml");
    std::fs::write(
        &exp,
        format!(
            "corpus: {{path: {corpus}, format: cremad, labels: [anger, disgust, fear, happiness, neutral, sadness]}}
protocol: {{kind: speaker_kfold, k: 3, val_fraction: 0.2}}
pipeline: {pipelines}/encoder_mean.yaml
model: {{preset: probe, hidden: 32}}
train: {{epochs: 3, batch_size: 32, threads: 2, device: cpu, normalize: per_mel}}
folds: [0]
cache: {cache}
results: {results}
",
            corpus = corpus.display(),
            pipelines = pipelines.display(),
            cache = tmp.path().join("cache").display(),
            results = tmp.path().join("results").display(),
        ),
    )
    .unwrap();
    let path = format!("pipeline.encoder.path={}", fixture("whisper_80").display());
    let (ok, out, err) = common::emolab(&[
        "run",
        exp.to_str().unwrap(),
        "--set",
        &path,
        "--set",
        "pipeline.encoder.kind=whisper",
        "--set",
        "pipeline.encoder.whisper_input=5",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(
        err.contains("encoder: whisper 2 × 32") && err.contains("5 s window"),
        "{err}"
    );
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("results/probe/fold0-seed0/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["encoder"]["arch"], "whisper", "{meta}");
    assert_eq!(
        meta["encoder"]["states"],
        serde_json::json!([0, 1, 2]),
        "{meta}"
    );
    assert_eq!(meta["encoder"]["whisper_input"], "5 s window", "{meta}");
}
