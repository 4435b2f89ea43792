//! Model families: on LibTorch (tch), CNN ([`cnn`]), LSTM and Bi-LSTM ([`rnn`]), CNN+LSTM
//! ([`cnn_lstm`]), CRNN with attention ([`crnn`]), Transformer ([`transformer`]), an MLP on
//! clip vectors ([`vector`]), a probe on a frozen encoder's layers ([`probe`]) and a fine-tuned
//! encoder ([`finetune`]); without LibTorch, the SVM, random forest and logistic regression of
//! [`classical`].
//!
//! Every model takes a batch of feature maps `[batch, channels, bins, frames]` (channels: the
//! static features and, when the pipeline adds them, their Δ and ΔΔ) with optional per-clip
//! valid lengths (see [`pool`]) and returns logits `[batch, n_classes]`. A [`ModelSpec`] (from
//! YAML: `family` plus hyper-parameters, or a named preset such as `cnn_v3`) builds a [`Model`] inside a `VarStore`. Variables of layers
//! that carry L2 regularisation (the seed's Keras `kernel_regularizer=l2(…)`) are created in
//! optimizer group [`L2_GROUP`], so the trainer can give that group weight decay alone.

pub mod classical;
pub mod cnn;
pub mod cnn_lstm;
pub mod crnn;
pub mod finetune;
pub mod pool;
pub mod probe;
pub mod rnn;
pub mod transformer;
pub mod vector;

pub use pool::SeqPool;

use serde::{Deserialize, Serialize};
use tch::nn;

/// Optimizer group of variables that get the spec's L2 weight decay.
pub const L2_GROUP: usize = 1;

/// A model's hyper-parameters, tagged by family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    Cnn(cnn::CnnSpec),
    Lstm(rnn::RnnSpec),
    Bilstm(rnn::RnnSpec),
    CnnLstm(cnn_lstm::CnnLstmSpec),
    Crnn(crnn::CrnnSpec),
    Transformer(transformer::TransformerSpec),
    /// Networks over one vector per clip (MLP, the seed's Conv1D / LSTM models).
    Vector(vector::VectorSpec),
    /// A weighted sum of encoder layers and a head ([`probe`]).
    Probe(probe::ProbeSpec),
    /// The top layers of a pretrained encoder, fine-tuned, with a probe head ([`finetune`]).
    Finetune(finetune::FinetuneSpec),
    /// Classical models over clip vectors ([`classical`]).
    Svm(classical::svm::SvmSpec),
    RandomForest(classical::forest::ForestSpec),
    Logistic(classical::logistic::LogisticSpec),
}

/// The shape of one input: `channels × bins × frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    pub channels: i64,
    pub bins: i64,
    pub frames: i64,
}

impl Input {
    /// One channel of `bins × frames`.
    pub fn mono(bins: i64, frames: i64) -> Input {
        Input {
            channels: 1,
            bins,
            frames,
        }
    }
}

/// A model body, split at its classifier: the penultimate representation of a batch (for padded
/// batches, given each clip's valid frames) and the linear layer that turns it into logits.
pub trait Net: Send + std::fmt::Debug {
    /// `[batch, width]`: what the classifier layer sees (after the dropout in front of it, which
    /// is the identity in eval mode). Embedding maps project this.
    fn embed(&self, xs: &tch::Tensor, lengths: Option<&[i64]>, train: bool) -> tch::Tensor;

    /// The classifier layer (`width → n_classes`).
    fn classifier(&self) -> &nn::Linear;

    /// Logits `[batch, n_classes]`.
    fn forward(&self, xs: &tch::Tensor, lengths: Option<&[i64]>, train: bool) -> tch::Tensor {
        use tch::nn::Module;
        self.classifier().forward(&self.embed(xs, lengths, train))
    }
}

impl ModelSpec {
    /// The named presets (the seed's configurations and emolab's defaults).
    pub fn preset(name: &str) -> Option<ModelSpec> {
        Some(match name {
            "cnn_v1" => ModelSpec::Cnn(cnn::CnnSpec::v1()),
            "cnn_v3" => ModelSpec::Cnn(cnn::CnnSpec::v3()),
            "cnn" => ModelSpec::Cnn(cnn::CnnSpec::recommended()),
            "lstm" => ModelSpec::Lstm(rnn::RnnSpec::default()),
            "bilstm" => ModelSpec::Bilstm(rnn::RnnSpec::default()),
            "cnn_lstm" => ModelSpec::CnnLstm(cnn_lstm::CnnLstmSpec::default()),
            "transformer" => ModelSpec::Transformer(transformer::TransformerSpec::default()),
            "crnn" => ModelSpec::Crnn(crnn::CrnnSpec::default()),
            "acrnn" => ModelSpec::Crnn(crnn::CrnnSpec::acrnn()),
            "mlp" => ModelSpec::Vector(vector::VectorSpec::mlp()),
            "seed_conv1d" => ModelSpec::Vector(vector::VectorSpec::seed_conv1d()),
            "seed_lstm" => ModelSpec::Vector(vector::VectorSpec::seed_lstm()),
            "seed_cnn_lstm" => ModelSpec::Vector(vector::VectorSpec::seed_cnn_lstm()),
            "seed_cnn_bilstm" => ModelSpec::Vector(vector::VectorSpec::seed_cnn_bilstm()),
            "probe" => ModelSpec::Probe(probe::ProbeSpec::default()),
            "probe_linear" => ModelSpec::Probe(probe::ProbeSpec::linear()),
            // Needs an encoder folder to build, so it is in none of the lists below.
            "finetune" => ModelSpec::Finetune(finetune::FinetuneSpec::default()),
            "seed_rf" => ModelSpec::RandomForest(classical::forest::ForestSpec::seed()),
            "svm" => ModelSpec::Svm(Default::default()),
            "svm_linear" => ModelSpec::Svm(classical::svm::SvmSpec {
                kernel: classical::svm::Kernel::Linear,
                ..Default::default()
            }),
            "random_forest" => ModelSpec::RandomForest(Default::default()),
            "logistic" => ModelSpec::Logistic(Default::default()),
            _ => return None,
        })
    }

    /// The network presets.
    pub const PRESETS: [&'static str; 9] = [
        "cnn_v1",
        "cnn_v3",
        "cnn",
        "lstm",
        "bilstm",
        "cnn_lstm",
        "transformer",
        "crnn",
        "acrnn",
    ];

    /// The presets over one vector per clip (networks and classical models).
    pub const VECTOR_PRESETS: [&'static str; 7] = [
        "mlp",
        "probe",
        "probe_linear",
        "seed_conv1d",
        "seed_lstm",
        "seed_cnn_lstm",
        "seed_cnn_bilstm",
    ];

    /// The classical presets (each family's defaults, and the seed's forest).
    pub const CLASSICAL_PRESETS: [&'static str; 5] =
        ["svm", "svm_linear", "random_forest", "logistic", "seed_rf"];

    /// Every preset name.
    pub fn all_presets() -> Vec<&'static str> {
        Self::PRESETS
            .iter()
            .chain(&Self::VECTOR_PRESETS)
            .chain(&Self::CLASSICAL_PRESETS)
            .chain(&["finetune"])
            .copied()
            .collect()
    }

    pub fn family(&self) -> &'static str {
        match self {
            ModelSpec::Cnn(_) => "cnn",
            ModelSpec::Lstm(_) => "lstm",
            ModelSpec::Bilstm(_) => "bilstm",
            ModelSpec::CnnLstm(_) => "cnn_lstm",
            ModelSpec::Crnn(_) => "crnn",
            ModelSpec::Transformer(_) => "transformer",
            ModelSpec::Vector(_) => "vector",
            ModelSpec::Probe(_) => "probe",
            ModelSpec::Finetune(_) => "finetune",
            ModelSpec::Svm(_) => "svm",
            ModelSpec::RandomForest(_) => "random_forest",
            ModelSpec::Logistic(_) => "logistic",
        }
    }

    /// The classical model this spec names, if it is one.
    pub fn classical(&self) -> Option<classical::ClassicalSpec> {
        use classical::ClassicalSpec as C;
        Some(match self {
            ModelSpec::Svm(s) => C::Svm(s.clone()),
            ModelSpec::RandomForest(s) => C::RandomForest(s.clone()),
            ModelSpec::Logistic(s) => C::Logistic(s.clone()),
            _ => return None,
        })
    }

    /// Learning-rate factors of optimizer groups (the fine-tuned encoder layers).
    pub fn group_lr(&self) -> Vec<(usize, f64)> {
        match self {
            ModelSpec::Finetune(s) => vec![(finetune::ENCODER_GROUP, s.lr_scale)],
            _ => Vec::new(),
        }
    }

    /// L2 coefficient (Keras convention: loss += l2 · Σw²) of the [`L2_GROUP`] variables.
    pub fn l2(&self) -> f64 {
        match self {
            ModelSpec::Cnn(s) => s.l2,
            _ => 0.0,
        }
    }

    /// Build the model's layers under `path` for inputs of shape `input`.
    pub fn build(
        &self,
        path: &nn::Path,
        input: Input,
        n_classes: i64,
    ) -> Result<Model, ModelError> {
        let inner: Box<dyn Net> = match self {
            ModelSpec::Cnn(s) => Box::new(cnn::Cnn::new(path, s, input, n_classes)?),
            ModelSpec::Lstm(s) => Box::new(rnn::Rnn::new(path, s, false, input, n_classes)?),
            ModelSpec::Bilstm(s) => Box::new(rnn::Rnn::new(path, s, true, input, n_classes)?),
            ModelSpec::CnnLstm(s) => Box::new(cnn_lstm::CnnLstm::new(path, s, input, n_classes)?),
            ModelSpec::Crnn(s) => Box::new(crnn::Crnn::new(path, s, input, n_classes)?),
            ModelSpec::Transformer(s) => {
                Box::new(transformer::Transformer::new(path, s, input, n_classes)?)
            }
            ModelSpec::Vector(s) => Box::new(vector::VectorNet::new(path, s, input, n_classes)?),
            ModelSpec::Probe(s) => Box::new(probe::Probe::new(path, s, input, n_classes)?),
            ModelSpec::Finetune(s) => Box::new(finetune::Finetune::new(path, s, input, n_classes)?),
            ModelSpec::Svm(_) | ModelSpec::RandomForest(_) | ModelSpec::Logistic(_) => {
                return Err(invalid(
                    self.family(),
                    "a classical model, not a network (see models::classical)",
                ))
            }
        };
        Ok(Model {
            inner,
            family: self.family(),
        })
    }
}

/// A built model.
pub struct Model {
    inner: Box<dyn Net>,
    pub family: &'static str,
}

impl Model {
    /// Logits of `xs` where clip `i` has `lengths[i]` valid frames (padding after them).
    pub fn forward(&self, xs: &tch::Tensor, lengths: Option<&[i64]>, train: bool) -> tch::Tensor {
        self.inner.forward(xs, lengths, train)
    }

    /// The penultimate representation `[batch, width]` (see [`Net::embed`]).
    pub fn embed(&self, xs: &tch::Tensor, lengths: Option<&[i64]>, train: bool) -> tch::Tensor {
        self.inner.embed(xs, lengths, train)
    }

    /// The classifier layer: logits are `classifier(embed(x))`.
    pub fn classifier(&self) -> &nn::Linear {
        self.inner.classifier()
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({})", self.family)
    }
}

impl nn::ModuleT for Model {
    fn forward_t(&self, xs: &tch::Tensor, train: bool) -> tch::Tensor {
        self.inner.forward(xs, None, train)
    }
}

/// Hyper-parameters that cannot build a model for the given input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{family}: {message}")]
    Invalid {
        family: &'static str,
        message: String,
    },
}

pub(crate) fn invalid(family: &'static str, message: impl Into<String>) -> ModelError {
    ModelError::Invalid {
        family,
        message: message.into(),
    }
}

/// Number of trainable parameters in a var store.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[cfg(test)]
mod tests;
