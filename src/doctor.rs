//! `emolab doctor`: what this build and this machine give emolab to work with.

use serde::Serialize;

/// Versions, compute device and folders.
#[derive(Debug, Serialize)]
pub struct Report {
    pub emolab: String,
    pub tch: String,
    pub libtorch: String,
    pub libtorch_dir: String,
    pub device: String,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn: bool,
    pub gpu_names: Vec<String>,
    pub cpu_cores: usize,
    pub torch_threads: i32,
    pub rayon_threads: usize,
    pub mkl: bool,
    pub openmp: bool,
    pub cache_dir: String,
    pub results_dir: String,
    pub models_dir: String,
    /// Encoder folders found under the models folder: (folder, description or problem).
    pub encoders: Vec<(String, String)>,
}

/// Names of the GPUs, from `nvidia-smi` when it is installed (tch exposes no device names).
fn gpu_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Where pretrained encoder folders are looked for (`EMOLAB_MODELS`, default `models`).
pub fn models_dir() -> std::path::PathBuf {
    std::env::var_os("EMOLAB_MODELS")
        .map(Into::into)
        .unwrap_or_else(|| "models".into())
}

/// Every folder with a `config.json` directly under `dir` (or two levels down, as
/// `models/<org>/<name>`), described by architecture, size and parameter count.
pub fn encoder_folders(dir: &std::path::Path) -> Vec<(String, String)> {
    fn scan(d: &std::path::Path, depth: usize, found: &mut Vec<(String, String)>) {
        if d.join("config.json").is_file() {
            let what = match crate::encoders::Summary::of(d) {
                Ok(s) => format!(
                    "{} · {} layers × {} · {} parameters ({})",
                    s.arch.name(),
                    s.layers,
                    s.hidden_size,
                    if s.parameters >= 1_000_000 {
                        format!("{:.1} M", s.parameters as f64 / 1e6)
                    } else {
                        format!("{:.1} k", s.parameters as f64 / 1e3)
                    },
                    s.dtypes.join(", ")
                ),
                Err(e) => format!("unusable: {e}"),
            };
            found.push((d.display().to_string(), what));
            return;
        }
        if depth == 2 {
            return;
        }
        let mut subs: Vec<_> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        for sub in subs {
            scan(&sub, depth + 1, found);
        }
    }
    let mut found = Vec::new();
    if dir.is_dir() {
        scan(dir, 0, &mut found);
    }
    found
}

pub fn report() -> Report {
    let cuda = tch::Cuda::is_available();
    let n = if cuda { tch::Cuda::device_count() } else { 0 };
    let names = if cuda { gpu_names() } else { Vec::new() };
    let device = if cuda {
        format!(
            "cuda ({} device{}{})",
            n,
            if n == 1 { "" } else { "s" },
            names.first().map(|s| format!(": {s}")).unwrap_or_default()
        )
    } else {
        "cpu".into()
    };
    let abs = |p: std::path::PathBuf| std::path::absolute(&p).unwrap_or(p).display().to_string();
    Report {
        emolab: env!("CARGO_PKG_VERSION").into(),
        tch: env!("EMOLAB_TCH_VERSION").into(),
        libtorch: env!("EMOLAB_LIBTORCH_VERSION").into(),
        libtorch_dir: env!("EMOLAB_LIBTORCH_DIR").into(),
        device,
        cuda_available: cuda,
        cuda_devices: n,
        cudnn: tch::Cuda::cudnn_is_available(),
        gpu_names: names,
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        torch_threads: tch::get_num_threads(),
        rayon_threads: rayon::current_num_threads(),
        mkl: tch::utils::has_mkl(),
        openmp: tch::utils::has_openmp(),
        cache_dir: abs(crate::config::cache_dir()),
        results_dir: abs(crate::config::results_dir()),
        models_dir: abs(models_dir()),
        encoders: encoder_folders(&models_dir()),
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "emolab        {}", self.emolab)?;
        writeln!(f, "tch           {}", self.tch)?;
        writeln!(f, "libtorch      {} ({})", self.libtorch, self.libtorch_dir)?;
        writeln!(f, "device        {}", self.device)?;
        writeln!(
            f,
            "cuda          {} (cudnn: {})",
            if self.cuda_available {
                "available"
            } else {
                "not available"
            },
            if self.cudnn { "yes" } else { "no" }
        )?;
        writeln!(
            f,
            "threads       {} cores; torch {}, rayon {} (mkl: {}, openmp: {})",
            self.cpu_cores, self.torch_threads, self.rayon_threads, self.mkl, self.openmp
        )?;
        writeln!(f, "cache         {}", self.cache_dir)?;
        writeln!(f, "results       {}", self.results_dir)?;
        write!(f, "encoders      {}", self.models_dir)?;
        if self.encoders.is_empty() {
            write!(f, ": none (see docs/encoders.md)")?;
        }
        for (dir, what) in &self.encoders {
            write!(f, "\n  {dir}: {what}")?;
        }
        Ok(())
    }
}
