# emolab: one-command setup, demo and tests.
#
#   make demo    set everything up, then generate the synthetic CREMA-D stand-in and scan it
#   make test    set everything up, then run the test suite
#
# Setup needs only Rust, Python 3 and make: PyTorch 2.11.0 (what tch 0.24 links against) is
# installed from PyPI into $(VENV), and the binary is built against it with an rpath, so it
# runs without LD_LIBRARY_PATH.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION := 2.11.0
CARGO_TARGET_DIR ?= $(CURDIR)/target
DEMO_ACTORS ?= 24
SYNTH_DIR ?= data/synth-cremad

export CARGO_TARGET_DIR
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)

BIN := $(CARGO_TARGET_DIR)/release/emolab
VENV_STAMP := $(VENV)/.emolab-torch-$(TORCH_VERSION)

.PHONY: help setup venv build demo test fmt lint clean bench-features bench-venv

help:
	@echo "make setup   venv with torch==$(TORCH_VERSION) + release build (idempotent)"
	@echo "make demo    setup, synthesise a CREMA-D-shaped corpus ($(DEMO_ACTORS) actors), scan it, featurize it"
	@echo "make test    setup, then cargo test --release"
	@echo "make bench-features  librosa (seed path) vs emolab featurize on 7,442 synthetic CREMA-D clips"
	@echo "make fmt     cargo fmt"

setup: build

venv: $(VENV_STAMP)

$(VENV_STAMP):
	@command -v cargo >/dev/null || { echo "error: Rust (cargo) is required: https://rustup.rs"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet torch==$(TORCH_VERSION) numpy
	$(VENV)/bin/python -c "import torch; assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__"
	touch $@

build: venv
	cargo build --release

demo: setup
	$(BIN) synth --layout cremad --out $(SYNTH_DIR) --actors $(DEMO_ACTORS)
	$(BIN) corpus scan $(SYNTH_DIR) --out $(SYNTH_DIR).manifest.parquet
	$(BIN) featurize --pipeline pipelines/logmel64.yaml $(SYNTH_DIR).manifest.parquet

test: setup
	cargo test --release

BENCH_CORPUS ?= data/bench-cremad
LIBROSA_VERSION := 0.11.0

bench-venv: venv
	@$(VENV)/bin/python -c "import librosa, joblib; assert librosa.__version__ == '$(LIBROSA_VERSION)'" 2>/dev/null \
		|| $(VENV)/bin/python -m pip install --quiet librosa==$(LIBROSA_VERSION) joblib

# Benchmarks are not tests: the seed's librosa path vs emolab featurize, side by side.
bench-features: setup bench-venv
	$(BIN) --quiet synth --layout cremad --out $(BENCH_CORPUS) --actors 91
	benches/features.sh $(BIN) $(VENV)/bin/python $(BENCH_CORPUS)

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --release --all-targets

clean:
	cargo clean
