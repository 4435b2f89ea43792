//! The `slurm:` block of an experiment: where and how its runs are submitted as Slurm jobs
//! (the backend that submits them is [`crate::cluster`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `slurm:` block of an experiment (every key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSpec {
    /// `--partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--cpus-per-task` (also the threads emolab uses in the task).
    #[serde(default = "d_cpus")]
    pub cpus: usize,
    /// `--mem`, e.g. `16G`.
    #[serde(default)]
    pub mem: Option<String>,
    /// `--time`, e.g. `04:00:00` or `1-00:00:00`.
    #[serde(default)]
    pub time: Option<String>,
    /// `--gres` of training tasks, e.g. `gpu:1` (the prepare job gets it only for encoder
    /// pipelines; collect never).
    #[serde(default)]
    pub gres: Option<String>,
    /// At most this many array tasks at once (`--array=…%N`).
    #[serde(default)]
    pub throttle: Option<usize>,
    /// More sbatch options, one per item, e.g. `--account=proj123` or `--qos=short`.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Shell lines run before emolab in every job, e.g. `module load cuda/12.4`.
    #[serde(default)]
    pub setup: Vec<String>,
    /// Environment of every job, e.g. `{EMOLAB_CACHE: /scratch/cache}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn d_cpus() -> usize {
    4
}

impl Default for SlurmSpec {
    fn default() -> Self {
        SlurmSpec {
            partition: None,
            cpus: d_cpus(),
            mem: None,
            time: None,
            gres: None,
            throttle: None,
            extra: Vec::new(),
            setup: Vec::new(),
            env: BTreeMap::new(),
        }
    }
}

impl SlurmSpec {
    /// Values that parse but cannot work: (key under `slurm.`, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.cpus == 0 {
            return Err(("cpus".into(), "must be at least 1".into()));
        }
        if self.throttle == Some(0) {
            return Err(("throttle".into(), "must be at least 1".into()));
        }
        for (i, x) in self.extra.iter().enumerate() {
            if !x.starts_with('-') || x.contains('\n') {
                return Err((
                    format!("extra[{i}]"),
                    format!("`{x}`: one sbatch option per item, e.g. `--account=proj123`"),
                ));
            }
        }
        for k in self.env.keys() {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((format!("env.{k}"), "not a variable name".into()));
            }
        }
        for (key, v) in [
            ("partition", &self.partition),
            ("mem", &self.mem),
            ("time", &self.time),
            ("gres", &self.gres),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(char::is_whitespace) {
                    return Err((key.into(), format!("`{v}`: no spaces, not empty")));
                }
            }
        }
        Ok(())
    }
}
