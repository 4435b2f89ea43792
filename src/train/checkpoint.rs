//! Per-epoch checkpoints: one atomic file (`checkpoint.ot`) holding the weights (and batch-norm
//! statistics), the optimizer's moments, the schedule, the best snapshot and the history, plus
//! a fingerprint of what wrote it, so a killed run resumes to the same result and a checkpoint
//! of another configuration is refused.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::optim;
use super::{EpochStats, TrainError};

/// What a checkpoint holds besides tensors.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    /// Hash of the model spec, fit config and data shapes that wrote it.
    pub fingerprint: String,
    pub epoch: usize,
    pub finished: bool,
    pub history: Vec<EpochStats>,
    pub scheduler: optim::Scheduler,
    pub best_ua: f64,
    pub best_epoch: usize,
}

pub const CHECKPOINT: &str = "checkpoint.ot";

/// `progress.json`: the last finished epoch of a run in progress, written beside each
/// checkpoint, for `emolab status` (small and plain, unlike the checkpoint).
pub const PROGRESS: &str = "progress.json";

/// What `progress.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub val_ua: f64,
    pub best_val_ua: f64,
    pub lr: f64,
    pub epoch_seconds: f64,
    /// The epoch a resumed fit started from (1 for a fresh one).
    pub resumed_from: usize,
    pub updated_at: String,
}

/// The progress of the run in `dir`, if it wrote one.
pub fn read_progress(dir: &Path) -> Option<Progress> {
    crate::results::read_json(&dir.join(PROGRESS)).ok()
}

pub(crate) fn write_progress(dir: &Path, p: &Progress) -> Result<(), TrainError> {
    crate::results::write_json(&dir.join(PROGRESS), p).map_err(|e| TrainError::Checkpoint {
        path: dir.join(PROGRESS).display().to_string(),
        message: format!("{e:#}"),
    })
}

pub(crate) fn save_checkpoint(
    dir: &Path,
    state: &CheckpointState,
    vs: &nn::VarStore,
    best: &[(String, Tensor)],
    opt: &optim::Optimizer,
) -> Result<(), TrainError> {
    let path = dir.join(CHECKPOINT);
    let err = |message: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut tree = serde_json::to_value(state).map_err(|e| err(e.to_string()))?;
    floats_to_bits(&mut tree);
    let json = serde_json::to_vec(&tree).map_err(|e| err(e.to_string()))?;
    let mut named: Vec<(String, Tensor)> = vec![("state.json".into(), Tensor::from_slice(&json))];
    named.extend(
        vs.variables()
            .into_iter()
            .map(|(n, t)| (format!("var.{n}"), t)),
    );
    named.extend(
        best.iter()
            .map(|(n, t)| (format!("best.{n}"), t.shallow_clone())),
    );
    named.extend(opt.state());
    let tmp = crate::util::temp_path(&path);
    Tensor::save_multi(&named, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))
}

pub(crate) type Loaded = (CheckpointState, Vec<(String, Tensor)>);

pub(crate) fn load_checkpoint(
    dir: &Path,
    fingerprint: &str,
    vs: &nn::VarStore,
    opt: &mut optim::Optimizer,
) -> Result<Option<Loaded>, TrainError> {
    let path = dir.join(CHECKPOINT);
    if !path.exists() {
        return Ok(None);
    }
    let err = |message: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    let named = Tensor::load_multi(&path)?;
    let json = named
        .iter()
        .find(|(n, _)| n == "state.json")
        .ok_or_else(|| err("no state".into()))?;
    let bytes = Vec::<u8>::try_from(&json.1)?;
    let mut tree: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    bits_to_floats(&mut tree);
    let state: CheckpointState = serde_json::from_value(tree).map_err(|e| err(e.to_string()))?;
    if state.fingerprint != fingerprint {
        return Err(err(
            "written by another model, fit config or data; remove it to start over".into(),
        ));
    }
    let vars = vs.variables();
    let mut best = Vec::new();
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, t) in &named {
            if let Some(v) = name.strip_prefix("var.") {
                let mut target = vars
                    .get(v)
                    .ok_or_else(|| err(format!("variable {v} is not in this model")))?
                    .shallow_clone();
                target.copy_(t);
            } else if let Some(v) = name.strip_prefix("best.") {
                best.push((v.to_string(), t.shallow_clone()));
            }
        }
        Ok(())
    })?;
    opt.load_state(&named).map_err(err)?;
    Ok(Some((state, best)))
}

/// serde_json's decimal floats do not always parse back to the same bits, and an exact resume
/// needs the same losses and the same plateau comparisons: store every float as its bit pattern.
fn floats_to_bits(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let bits = n.as_f64().expect("f64").to_bits();
            *v = Value::String(format!("f64:{bits:016x}"));
        }
        Value::Array(xs) => xs.iter_mut().for_each(floats_to_bits),
        Value::Object(m) => m.values_mut().for_each(floats_to_bits),
        _ => {}
    }
}

fn bits_to_floats(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.starts_with("f64:") => {
            if let Some(n) = u64::from_str_radix(&s[4..], 16)
                .ok()
                .and_then(|b| serde_json::Number::from_f64(f64::from_bits(b)))
            {
                *v = Value::Number(n);
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(bits_to_floats),
        Value::Object(m) => m.values_mut().for_each(bits_to_floats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn floats_survive_exactly() {
        // 1.6408169107287343 is one of the values serde_json's fast parser rounds to a neighbour.
        let xs = vec![1.6408169107287343f64, 0.1 + 0.2, 1e-300, -3.25];
        let mut v = serde_json::to_value(&xs).unwrap();
        super::floats_to_bits(&mut v);
        let text = serde_json::to_vec(&v).unwrap();
        let mut back: serde_json::Value = serde_json::from_slice(&text).unwrap();
        super::bits_to_floats(&mut back);
        let ys: Vec<f64> = serde_json::from_value(back).unwrap();
        assert_eq!(
            xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            ys.iter().map(|y| y.to_bits()).collect::<Vec<_>>()
        );
    }
}
