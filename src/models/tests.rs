use tch::nn::{ModuleT, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

use super::*;

/// Adam (3e-3) on the whole batch for at most `steps` steps; the training accuracy reached
/// (evaluation mode), stopping at 100 %.
fn fit_accuracy(
    vs: &nn::VarStore,
    model: &Model,
    x: &Tensor,
    labels: &Tensor,
    steps: usize,
) -> f64 {
    let mut opt = nn::Adam::default().build(vs, 3e-3).unwrap();
    let mut acc = 0.0;
    for _ in 0..steps {
        let loss = model.forward_t(x, true).cross_entropy_for_logits(labels);
        opt.backward_step(&loss);
        acc = model
            .forward_t(x, false)
            .argmax(-1, false)
            .eq_tensor(labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        if acc >= 1.0 {
            break;
        }
    }
    acc
}

fn build(name: &str, m: i64, t: i64, classes: i64) -> (nn::VarStore, Model) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let spec = ModelSpec::preset(name).unwrap();
    let model = spec.build(&vs.root(), Input::mono(m, t), classes).unwrap();
    (vs, model)
}

#[test]
fn every_family_gives_logits_and_gradients() {
    for name in ModelSpec::PRESETS {
        let (vs, model) = build(name, 64, 64, 6);
        let x = Tensor::randn([4, 1, 64, 64], (Kind::Float, Device::Cpu));
        let y = model.forward_t(&x, true);
        assert_eq!(y.size(), vec![4, 6], "{name}");
        let loss = y.cross_entropy_for_logits(&Tensor::from_slice(&[0i64, 1, 2, 3]));
        loss.backward();
        for (n, v) in vs.variables() {
            if v.requires_grad() {
                assert!(v.grad().defined(), "{name}: {n} has no gradient");
            }
        }
        let with_grad = vs
            .trainable_variables()
            .iter()
            .filter(|v| v.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0)
            .count();
        assert!(
            with_grad * 10 >= vs.trainable_variables().len() * 9,
            "{name}: {with_grad}"
        );
        assert!(parameter_count(&vs) > 1000);
    }
}

#[test]
fn seed_cnn_presets_have_the_seed_sizes() {
    // cnn_v3 on 128×128: 3 valid conv+pool blocks leave 128×14×14 = 25,088 features.
    let (vs, _) = build("cnn_v3", 128, 128, 12);
    let conv = 1 * 32 * 9 + 32 + 32 * 64 * 9 + 64 + 64 * 128 * 9 + 128;
    let dense = 25_088 * 128 + 128 + 128 * 12 + 12;
    assert_eq!(parameter_count(&vs), conv + dense);
    assert_eq!(ModelSpec::preset("cnn_v3").unwrap().l2(), 1e-3);
    // cnn_v1 on 128×128: 64×30×30 after two blocks.
    let (vs, _) = build("cnn_v1", 128, 128, 6);
    let expect = 32 * 9 + 32 + 32 * 64 * 9 + 64 + 57_600 * 128 + 128 + 128 * 6 + 6;
    assert_eq!(parameter_count(&vs), expect);
}

#[test]
fn eval_is_deterministic_and_train_uses_dropout() {
    for name in ModelSpec::PRESETS {
        let (_vs, model) = build(name, 32, 32, 4);
        let x = Tensor::randn([3, 1, 32, 32], (Kind::Float, Device::Cpu));
        let a = model.forward_t(&x, false);
        let b = model.forward_t(&x, false);
        assert!(a.equal(&b), "{name}: eval must not drop out");
        let c = model.forward_t(&x, true);
        assert!(
            !a.allclose(&c, 1e-6, 1e-6, false),
            "{name}: train applies dropout"
        );
    }
}

#[test]
fn too_small_inputs_are_errors_not_panics() {
    let vs = nn::VarStore::new(Device::Cpu);
    let e = ModelSpec::preset("cnn_v3")
        .unwrap()
        .build(&vs.root(), Input::mono(16, 16), 4)
        .unwrap_err();
    assert!(e.to_string().contains("too small"), "{e}");
}

/// Every family can fit 32 clips (a model that cannot is broken).
#[test]
fn every_family_overfits_32_clips() {
    tch::set_num_threads(2);
    let (m, t, classes) = (32, 32, 4);
    tch::manual_seed(1);
    // Class c: a band of energy at mel rows 6c..6c+6 with a class-specific time pattern, plus noise.
    let labels = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(classes);
    let x = Tensor::randn([32, 1, m, t], (Kind::Float, Device::Cpu)) * 0.5;
    for i in 0..32 {
        let c = i % classes;
        let _ = x
            .get(i)
            .narrow(1, 6 * c + 2, 6)
            .narrow(2, (c * 5) % (t - 8), 8)
            .g_add_scalar_(2.0);
    }
    for name in ModelSpec::PRESETS {
        let (vs, model) = build(name, m, t, classes);
        let acc = fit_accuracy(&vs, &model, &x, &labels, 150);
        assert!(acc >= 0.95, "{name}: training accuracy {acc}");
    }
}

/// A clip shorter than the batch, padded with garbage and given its length, gets the same
/// logits (evaluation mode) as the clip alone, for every family that pools over time.
#[test]
fn a_masked_short_clip_equals_the_clip_unpadded() {
    let specs: Vec<(&str, ModelSpec)> = vec![
        ("crnn", ModelSpec::preset("crnn").unwrap()),
        ("acrnn", ModelSpec::preset("acrnn").unwrap()),
        ("lstm", ModelSpec::preset("lstm").unwrap()),
        ("bilstm", ModelSpec::preset("bilstm").unwrap()),
        ("cnn_lstm", ModelSpec::preset("cnn_lstm").unwrap()),
        ("transformer", ModelSpec::preset("transformer").unwrap()),
        (
            "cnn gap",
            ModelSpec::Cnn(cnn::CnnSpec {
                batch_norm: true,
                head: cnn::CnnHead::Gap,
                padding: cnn::Padding::Same,
                ..cnn::CnnSpec::v1()
            }),
        ),
        (
            "cnn attention",
            ModelSpec::Cnn(cnn::CnnSpec {
                batch_norm: true,
                head: cnn::CnnHead::Attention,
                ..cnn::CnnSpec::v3()
            }),
        ),
    ];
    let (c, m, t, short) = (3, 32, 64, 40);
    for (name, spec) in specs {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = spec
            .build(
                &vs.root(),
                Input {
                    channels: c,
                    bins: m,
                    frames: t,
                },
                5,
            )
            .unwrap();
        // Train briefly so batch-norm statistics are not the identity.
        let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
        for _ in 0..3 {
            let x = Tensor::randn([4, c, m, t], (Kind::Float, Device::Cpu));
            let loss = model
                .forward(&x, None, true)
                .cross_entropy_for_logits(&Tensor::from_slice(&[0i64, 1, 2, 3]));
            opt.backward_step(&loss);
        }
        let clip = Tensor::randn([1, c, m, short], (Kind::Float, Device::Cpu));
        let other = Tensor::randn([1, c, m, t], (Kind::Float, Device::Cpu));
        let garbage = Tensor::full([1, c, m, t - short], 5.0, (Kind::Float, Device::Cpu));
        let padded = Tensor::cat(&[Tensor::cat(&[&clip, &garbage], 3), other], 0);
        let alone = model.forward(&clip, None, false);
        let masked = model.forward(&padded, Some(&[short, t]), false);
        let diff = (masked.get(0) - alone.get(0)).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{name}: padded clip differs by {diff}");
        // Without lengths the padding does change the output (the test can fail).
        let unmasked = model.forward(&padded, None, false);
        let moved = (unmasked.get(0) - alone.get(0))
            .abs()
            .max()
            .double_value(&[]);
        assert!(moved > 1e-4, "{name}: padding should matter without a mask");
    }
}

/// Every clip-vector network preset (the MLP and the seed's Conv1D / LSTM models) builds on a
/// 40-value vector and learns a small separable set.
#[test]
fn vector_presets_build_and_fit_clip_vectors() {
    let (d, classes, n) = (40i64, 4i64, 32i64);
    tch::manual_seed(2);
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(classes);
    // Class c raises the values 10c..10c+10 of the vector.
    let x = Tensor::randn([n, 1, d, 1], (Kind::Float, Device::Cpu)) * 0.5;
    for i in 0..n {
        let c = i % classes;
        let _ = x.get(i).narrow(1, 10 * c, 10).g_add_scalar_(2.0);
    }
    for name in ModelSpec::VECTOR_PRESETS {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = ModelSpec::preset(name)
            .unwrap()
            .build(&vs.root(), Input::mono(d, 1), classes)
            .unwrap();
        let acc = fit_accuracy(&vs, &model, &x, &labels, 300);
        assert!(acc >= 0.95, "{name}: training accuracy {acc}");
        assert_eq!(model.forward_t(&x, false).size(), vec![n, classes]);
    }
    // A vector too short for the conv blocks is refused with the reason.
    let vs = nn::VarStore::new(Device::Cpu);
    let e = ModelSpec::preset("seed_conv1d")
        .unwrap()
        .build(&vs.root(), Input::mono(4, 1), 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vector"), "{e}");
}

/// The probe learns to weight the one layer (channel) that carries the classes.
#[test]
fn probe_weights_the_informative_layer() {
    let (layers, d, classes, n) = (4i64, 16i64, 3i64, 48i64);
    tch::manual_seed(4);
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(classes);
    let x = Tensor::randn([n, layers, d, 1], (Kind::Float, Device::Cpu));
    for i in 0..n {
        let c = i % classes;
        // Only layer 2 says which class: values 5c..5c+5 raised.
        let _ = x.get(i).get(2).narrow(0, 5 * c, 5).g_add_scalar_(3.0);
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let spec = crate::models::probe::ProbeSpec::linear();
    let probe = crate::models::probe::Probe::new(
        &vs.root(),
        &spec,
        Input {
            channels: layers,
            bins: d,
            frames: 1,
        },
        classes,
    )
    .unwrap();
    let w0 = Vec::<f32>::try_from(probe.layer_weights()).unwrap();
    assert!(w0.iter().all(|w| (w - 0.25).abs() < 1e-6), "{w0:?}");
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    for _ in 0..300 {
        let loss = probe
            .forward(&x, None, true)
            .cross_entropy_for_logits(&labels);
        opt.backward_step(&loss);
    }
    let w = Vec::<f32>::try_from(probe.layer_weights()).unwrap();
    let best = (0..4)
        .max_by(|&a, &b| w[a].partial_cmp(&w[b]).unwrap())
        .unwrap();
    assert_eq!(best, 2, "layer weights {w:?}");
    let acc = probe
        .forward(&x, None, false)
        .argmax(-1, false)
        .eq_tensor(&labels)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(acc >= 0.95, "training accuracy {acc}");
}
