//! [`Trained`]: a fitted network with its normaliser, window and class names, what prediction
//! and embedding need; it saves to and loads from `model.safetensors`.

use std::path::Path;

use tch::nn;
use tch::{Device, Tensor};

use super::scorer::Scorer;
use super::*;

/// A fitted model with everything needed to predict: spec, classes, input shape, normaliser,
/// the normalisation mode and the evaluation windows.
pub struct Trained {
    pub spec: ModelSpec,
    pub class_names: Vec<String>,
    pub n_features: usize,
    pub channels: usize,
    /// Frames of the model's time axis (the window, or the fixed clip length).
    pub frames: usize,
    pub norm: Normalizer,
    /// `speaker` / `utterance`: clips are standardised on their own statistics before `norm`.
    pub normalize: NormMode,
    pub window: Option<WindowSpec>,
    pub vs: nn::VarStore,
    pub model: Model,
    pub precision: Precision,
}

impl std::fmt::Debug for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Trained({}, {} classes, {}×{})",
            self.spec.family(),
            self.class_names.len(),
            self.n_features,
            self.frames
        )
    }
}

impl Trained {
    /// Number of trainable parameters.
    pub fn parameters(&self) -> i64 {
        crate::models::parameter_count(&self.vs)
    }

    /// Write weights and normaliser as safetensors (`normalizer.mean`, `normalizer.std`, and
    /// every variable under its var-store name), atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.to_device(Device::Cpu)))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.push((
            "normalizer.mean".into(),
            Tensor::from_slice(&self.norm.mean),
        ));
        named.push(("normalizer.std".into(), Tensor::from_slice(&self.norm.std)));
        let tmp = crate::util::temp_path(path);
        Tensor::write_safetensors(&named, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| TrainError::ModelFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Rebuild `spec` for the inputs `fit` saw (`n_features` per frame in `channels`, on a time
    /// axis of `frames`), trained under `cfg`, and load its weights from `path`.
    pub fn load(
        path: &Path,
        spec: &ModelSpec,
        class_names: &[String],
        n_features: usize,
        channels: usize,
        frames: usize,
        cfg: &FitConfig,
        device: Device,
    ) -> Result<Trained, TrainError> {
        let err = |message: String| TrainError::ModelFile {
            path: path.display().to_string(),
            message,
        };
        let named = Tensor::read_safetensors(path).map_err(|e| err(e.to_string()))?;
        let get = |n: &str| -> Result<Vec<f32>, TrainError> {
            let t = named
                .iter()
                .find(|(k, _)| k == n)
                .ok_or_else(|| err(format!("no tensor {n}")))?;
            Ok(Vec::<f32>::try_from(&t.1)?)
        };
        let norm = Normalizer {
            mean: get("normalizer.mean")?,
            std: get("normalizer.std")?,
        };
        if norm.mean.len() != n_features {
            return Err(err(format!(
                "normaliser has {} bins, the pipeline {n_features}",
                norm.mean.len()
            )));
        }
        if channels == 0 || n_features % channels != 0 {
            return Err(err(format!(
                "{n_features} features do not split into {channels} channels"
            )));
        }
        let vs = nn::VarStore::new(device);
        let input = Input {
            channels: channels as i64,
            bins: (n_features / channels) as i64,
            frames: frames as i64,
        };
        let model = {
            let _rng = torch_rng_guard();
            spec.build(&vs.root(), input, class_names.len() as i64)?
        };
        let vars = vs.variables();
        if vars.len() + 2 != named.len() {
            return Err(err(format!(
                "{} tensors, the model has {} variables",
                named.len() - 2,
                vars.len()
            )));
        }
        tch::no_grad(|| -> Result<(), TrainError> {
            for (name, v) in &vars {
                let t = named
                    .iter()
                    .find(|(k, _)| k == name)
                    .ok_or_else(|| err(format!("no weights for {name}")))?;
                if t.1.size() != v.size() {
                    return Err(err(format!(
                        "{name} is {:?}, the model wants {:?}",
                        t.1.size(),
                        v.size()
                    )));
                }
                let mut v = v.shallow_clone();
                v.copy_(&t.1);
            }
            Ok(())
        })?;
        Ok(Trained {
            spec: spec.clone(),
            class_names: class_names.to_vec(),
            n_features,
            channels,
            frames,
            norm,
            normalize: cfg.normalize,
            window: cfg.window.clone(),
            vs,
            model,
            precision: Precision::Fp32,
        })
    }

    /// The penultimate representation of every clip of `ds` ([`Model::embed`]; a windowed model
    /// gives the mean over the clip's windows), prepared as [`Trained::predict_proba`] prepares
    /// its input.
    pub fn embed(&self, ds: &Dataset) -> Result<Vec<Vec<f32>>, TrainError> {
        self.on_input(ds, |ds| {
            let means = self
                .scorer()
                .clip_means(ds, |m, x, l| m.embed(x, l, false))?;
            Ok(means
                .into_iter()
                .map(|v| v.into_iter().map(|x| x as f32).collect())
                .collect())
        })
    }

    /// `run` on `ds` once it is checked against the model's input and normalised as the model
    /// was trained (nothing for no clips), holding the fit lock.
    fn on_input<T>(
        &self,
        ds: &Dataset,
        run: impl FnOnce(&Dataset) -> Result<Vec<T>, TrainError>,
    ) -> Result<Vec<T>, TrainError> {
        self.check_input(ds)?;
        if ds.is_empty() {
            return Ok(Vec::new());
        }
        let ds = with_norm(ds, self.normalize)?;
        let _lock = FIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        run(&ds)
    }

    fn scorer(&self) -> Scorer<'_> {
        Scorer {
            model: &self.model,
            norm: &self.norm,
            window: self.window.as_ref(),
            device: self.vs.device(),
            precision: self.precision,
        }
    }

    /// `ds` has the features, channels and (without windows) the frames the model takes.
    fn check_input(&self, ds: &Dataset) -> Result<(), TrainError> {
        if (ds.n_features, ds.channels) != (self.n_features, self.channels) {
            return Err(TrainError::Shape(format!(
                "the model takes {} features per frame in {} channels, these clips have {} in {}",
                self.n_features, self.channels, ds.n_features, ds.channels
            )));
        }
        if self.window.is_none() && !(ds.fixed_length() && ds.frames == self.frames) {
            return Err(TrainError::Shape(format!(
                "the model takes {} frames, these clips have {} to {}",
                self.frames,
                ds.lengths.iter().min().unwrap_or(&0),
                ds.frames
            )));
        }
        Ok(())
    }

    /// Class probabilities of every clip of `ds` (labels are ignored). With `normalize:
    /// speaker`, clips without per-clip statistics are standardised per speaker of `ds` (clips
    /// without a speaker id form one group).
    pub fn predict_proba(&self, ds: &Dataset) -> Result<Vec<Vec<f32>>, TrainError> {
        self.on_input(ds, |ds| {
            let s = self.scorer().score(ds, self.class_names.len())?;
            Ok(s.probs)
        })
    }
}
