//! Link-time setup for LibTorch.
//!
//! `torch-sys` (built with `LIBTORCH_USE_PYTORCH=1`) finds libtorch inside the PyTorch install of
//! the active Python and passes its `lib/` folder to us as `DEP_TCH_LIBTORCH_LIB`. We:
//! - bake that folder into the binary's rpath, so `emolab` runs without `LD_LIBRARY_PATH`;
//! - link with `--no-as-needed` and name `torch_cuda` explicitly when the install has it, so the
//!   CUDA backend is loaded (and registers itself) even though no symbol of it is referenced;
//! - record the tch and libtorch versions for `emolab doctor`;
//! - compile `src/train/autocast.cpp` (bf16 autocast, which tch does not expose) against the
//!   same libtorch headers.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");

    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .expect("torch-sys did not report the libtorch lib folder (DEP_TCH_LIBTORCH_LIB); build with LIBTORCH_USE_PYTORCH=1 and a PyTorch 2.11 venv on PATH (`make setup`)");

    let has = |name: &str| lib_dir.join(format!("lib{name}.so")).exists();
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    if has("torch_cuda") {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());

    compile_autocast_shim(&lib_dir);

    println!("cargo:rustc-env=EMOLAB_LIBTORCH_DIR={}", lib_dir.display());
    println!(
        "cargo:rustc-env=EMOLAB_LIBTORCH_VERSION={}",
        libtorch_version(&lib_dir).unwrap_or_else(|| "unknown".into())
    );
    println!(
        "cargo:rustc-env=EMOLAB_TCH_VERSION={}",
        locked_version("tch").unwrap_or_else(|| "unknown".into())
    );
}

/// `src/train/autocast.cpp` against libtorch's headers (`<torch>/include`, next to `<torch>/lib`).
fn compile_autocast_shim(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=src/train/autocast.cpp");
    let include = lib_dir
        .parent()
        .expect("libtorch lib folder has a parent")
        .join("include");
    cc::Build::new()
        .cpp(true)
        .file("src/train/autocast.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag_if_supported("-Wno-unused-parameter")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .compile("emolab_autocast");
}

/// PyTorch's wheel carries `torch/version.py` (`__version__ = '2.11.0+cu128'`) next to `torch/lib`.
fn libtorch_version(lib_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib_dir.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_string())
}

/// The version of a dependency as resolved in `Cargo.lock`.
fn locked_version(krate: &str) -> Option<String> {
    let root = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let lock = std::fs::read_to_string(Path::new(&root).join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{krate}\"") {
            let v = lines.next()?;
            return Some(
                v.trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    None
}
