//! A checkpoint's tensors, mapped by name onto the encoder being built.
//!
//! Reads `model.safetensors`, or the shards listed in `model.safetensors.index.json`. Names are
//! taken relative to the encoder (a task model's prefix such as `wav2vec2.` or `model.encoder.`
//! is stripped; heads, quantisers and the Whisper decoder are set aside). Every tensor the
//! encoder asks for is checked for presence and shape, and every tensor it did not ask for is
//! reported, so a mismatch becomes one error listing all of them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::{Arch, EncoderError};

/// The weight files of a model folder.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, EncoderError> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index)
            .map_err(|e| EncoderError::folder(dir, format!("{}: {e}", index.display())))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EncoderError::folder(dir, format!("{}: {e}", index.display())))?;
        let mut files: Vec<String> = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.values()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.dedup();
        if files.is_empty() {
            return Err(EncoderError::folder(
                dir,
                "model.safetensors.index.json lists no weight files",
            ));
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let hint = if dir.join("pytorch_model.bin").exists() {
        "; it has pytorch_model.bin only: convert it once with `python -c \"from transformers import \
         AutoModel; AutoModel.from_pretrained('DIR').save_pretrained('DIR', safe_serialization=True)\"` \
         or download the safetensors revision"
    } else {
        ""
    };
    Err(EncoderError::folder(
        dir,
        format!("no model.safetensors (or model.safetensors.index.json){hint}"),
    ))
}

/// Parts of wav2vec 2.0-family checkpoints outside the encoder: pre-training and task heads.
const SET_ASIDE: [&str; 12] = [
    "masked_spec_embed",
    "lm_head.",
    "quantizer.",
    "project_q.",
    "project_hid.",
    "classifier.",
    "projector.",
    "final_proj.",
    "label_embeddings_concat",
    "tdnn.",
    "feature_extractor_",
    "objective.",
];

/// The encoder-relative name of a checkpoint tensor; `None` when it is outside the encoder.
fn relative(arch: Arch, name: &str) -> Option<String> {
    match arch {
        Arch::Whisper => {
            let n = name.strip_prefix("model.").unwrap_or(name);
            n.strip_prefix("encoder.").map(String::from)
        }
        a => {
            let n = name.strip_prefix(&format!("{}.", a.name())).unwrap_or(name);
            (!SET_ASIDE.iter().any(|p| n.starts_with(p))).then(|| n.to_string())
        }
    }
}

/// Tensors of one checkpoint, handed out by name (as trainable variables of a var store while
/// [`Weights::train_into`] is set).
pub struct Weights<'p> {
    dir: PathBuf,
    tensors: HashMap<String, Tensor>,
    taken: Vec<String>,
    missing: Vec<String>,
    wrong_shape: Vec<String>,
    device: Device,
    vars: Option<tch::nn::Path<'p>>,
}

impl<'p> Weights<'p> {
    pub fn load(dir: &Path, arch: Arch, device: Device) -> Result<Weights<'p>, EncoderError> {
        let mut tensors = HashMap::new();
        for file in weight_files(dir)? {
            let list = Tensor::read_safetensors(&file).map_err(|e| {
                EncoderError::folder(dir, format!("cannot read {}: {e}", file.display()))
            })?;
            for (name, t) in list {
                if let Some(rel) = relative(arch, &name) {
                    tensors.insert(rel, t);
                }
            }
        }
        Ok(Weights {
            dir: dir.to_path_buf(),
            tensors,
            taken: Vec::new(),
            missing: Vec::new(),
            wrong_shape: Vec::new(),
            device,
            vars: None,
        })
    }

    /// From now on, hand tensors out as trainable copies under `path` (names with `_` for
    /// `.`), or as plain tensors again with `None`.
    pub fn train_into(&mut self, path: Option<tch::nn::Path<'p>>) {
        self.vars = path;
    }

    fn out(&self, name: &str, t: Tensor) -> Tensor {
        match &self.vars {
            Some(p) => p.var_copy(&name.replace('.', "_"), &t),
            None => t,
        }
    }

    /// Whether the checkpoint holds `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor `name` of shape `shape` (as f32 on the device). A missing or misshapen one is
    /// recorded, with `field` (the config field its shape comes from), for [`Weights::finish`];
    /// a zero tensor stands in meanwhile.
    pub fn get(&mut self, name: &str, shape: &[i64], field: &str) -> Tensor {
        match self.tensors.remove(name) {
            Some(t) => {
                self.taken.push(name.to_string());
                if t.size() != shape {
                    self.wrong_shape.push(format!(
                        "{name}: checkpoint {:?}, config.json ({field}) implies {shape:?}",
                        t.size()
                    ));
                    return self.out(name, Tensor::zeros(shape, (Kind::Float, self.device)));
                }
                self.out(name, t.to_kind(Kind::Float).to_device(self.device))
            }
            None => {
                self.missing.push(name.to_string());
                self.out(name, Tensor::zeros(shape, (Kind::Float, self.device)))
            }
        }
    }

    /// Every missing or misshapen tensor, as one error; tensors not asked for are fine (a part
    /// of the model was loaded on purpose).
    pub fn finish_partial(mut self) -> Result<(), EncoderError> {
        self.tensors.clear();
        self.finish()
    }

    /// Every problem, as one error; `Ok` when every tensor matched and none was left over.
    pub fn finish(self) -> Result<(), EncoderError> {
        let mut unexpected: Vec<String> = self.tensors.keys().cloned().collect();
        unexpected.sort();
        if self.missing.is_empty() && self.wrong_shape.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(EncoderError::Weights {
            dir: self.dir,
            missing: self.missing,
            unexpected,
            wrong_shape: self.wrong_shape,
        })
    }
}

/// Parameter count and dtypes of a folder's encoder (heads and decoders left out), from the safetensors headers alone (no
/// tensor is read): what `emolab doctor` shows.
pub fn header_summary(
    dir: &Path,
    arch: Arch,
) -> Result<(u64, BTreeMap<String, u64>), EncoderError> {
    use std::io::Read;
    let mut total = 0u64;
    let mut dtypes = BTreeMap::new();
    for file in weight_files(dir)? {
        let err = |m: String| EncoderError::folder(dir, format!("{}: {m}", file.display()));
        let mut f = std::fs::File::open(&file).map_err(|e| err(e.to_string()))?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|e| err(e.to_string()))?;
        let n = u64::from_le_bytes(len);
        if n > 100_000_000 {
            return Err(err("not a safetensors file".into()));
        }
        let mut header = vec![0u8; n as usize];
        f.read_exact(&mut header).map_err(|e| err(e.to_string()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&header).map_err(|e| err(e.to_string()))?;
        for (name, t) in v.as_object().into_iter().flatten() {
            if name == "__metadata__" || relative(arch, name).is_none() {
                continue;
            }
            let count: u64 = t
                .get("shape")
                .and_then(|s| s.as_array())
                .map(|s| s.iter().filter_map(|x| x.as_u64()).product())
                .unwrap_or(0);
            total += count;
            if let Some(d) = t.get("dtype").and_then(|d| d.as_str()) {
                *dtypes.entry(d.to_string()).or_insert(0) += count;
            }
        }
    }
    Ok((total, dtypes))
}

/// Content hash of a model folder (config and weights): what the embedding cache is keyed by.
pub fn content_hash(dir: &Path) -> Result<String, EncoderError> {
    let mut h = blake3::Hasher::new();
    let mut files = vec![dir.join("config.json")];
    let pre = dir.join("preprocessor_config.json");
    if pre.exists() {
        files.push(pre);
    }
    files.extend(weight_files(dir)?);
    for f in files {
        let mut file = std::fs::File::open(&f)
            .map_err(|e| EncoderError::folder(dir, format!("{}: {e}", f.display())))?;
        h.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        std::io::copy(&mut file, &mut h)
            .map_err(|e| EncoderError::folder(dir, format!("{}: {e}", f.display())))?;
    }
    Ok(h.finalize().to_hex()[..16].to_string())
}
