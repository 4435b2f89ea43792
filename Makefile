# emolab: one-command setup, demo and tests.
#
#   make demo    set everything up, generate the synthetic CREMA-D stand-in, run the demo
#                experiments on it and write their report
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

.PHONY: help setup venv build demo test slurm-local fmt lint clean bench-features bench-venv bench-train bench-timeline \
	bench-baseline bench-accuracy bench-classical bench-pitch bench-encoders experiment sweep report test-setup

help:
	@echo "make setup   venv with torch==$(TORCH_VERSION) + release build (idempotent)"
	@echo "make demo    setup, synthesise a CREMA-D-shaped corpus ($(DEMO_ACTORS) actors), run the demo experiments, report"
	@echo "make test    setup, then cargo test --release"
	@echo "make experiment NAME=cnn_v3 [SET=\"train.lr=5e-4 model.dropout=0.4\"]  run experiments/NAME.yaml"
	@echo "make sweep NAME=demo_grid [GRID=\"train.lr=1e-3,5e-4\"]  hyper-parameter sweep"
	@echo "make report  comparison report of every complete run (results/report)"
	@echo "make bench-features  librosa (seed path) vs emolab featurize on 7,442 synthetic CREMA-D clips"
	@echo "make bench-train  cnn_v3 in PyTorch vs emolab per epoch, then every family"
	@echo "make bench-baseline [BASELINE_EXP=emodb_crnn]  openSMILE eGeMAPS + SVM on that experiment's folds, beside it"
	@echo "make bench-accuracy [ACCURACY_EXPS=\"emodb_cnn emodb_crnn\"] [ENCODER_DIR=models/whisper-tiny.en]  run them (and the encoder recipes) on EmoDB (\$$EMODB), then the baseline beside them"
	@echo "make bench-classical [CLASSICAL_EXPS=...]  emolab's SVM / forest / logistic vs scikit-learn: UA and time on the same vectors and folds (EmoDB, CREMA-D-sized synthetic)"
	@echo "make bench-pitch  plain YIN's voicing decisions vs librosa.pyin on every EmoDB clip (\$$EMODB)"
	@echo "make bench-encoders [BENCH_DEVICE=cuda] [ENCODER_DIR=models/whisper-tiny.en]  emolab's encoders vs transformers (random tiny and base-sized configs, and the real Whisper folder)"
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
	SYNTH_DIR=$(SYNTH_DIR) $(BIN) run experiments/demo.yaml
	SYNTH_DIR=$(SYNTH_DIR) $(BIN) run experiments/demo_random.yaml
	$(BIN) report demo demo_random --out results/report

NAME ?= demo
SET ?=
GRID ?=
# Each word of SET / GRID becomes one --set / --grid.
experiment: setup
	@test -f experiments/$(NAME).yaml || { echo "no experiments/$(NAME).yaml; have: $$(ls experiments | sed 's/.yaml//' | tr '\n' ' ')"; exit 1; }
	$(BIN) run experiments/$(NAME).yaml $(foreach s,$(SET),--set $(s))

sweep: setup
	$(BIN) sweep experiments/$(NAME).yaml $(foreach s,$(SET),--set $(s)) $(foreach g,$(GRID),--grid $(g))

report: setup
	$(BIN) report --all --out results/report

test: setup test-setup
	python3 scripts/import_graph.py
	cargo test --release

BENCH_CORPUS ?= data/bench-cremad
LIBROSA_VERSION := 0.11.0

bench-venv: venv
	@$(VENV)/bin/python -c "import librosa, joblib, opensmile, sklearn, pyarrow, transformers, safetensors; assert librosa.__version__ == '$(LIBROSA_VERSION)'" 2>/dev/null \
		|| $(VENV)/bin/python -m pip install --quiet librosa==$(LIBROSA_VERSION) joblib opensmile scikit-learn pyarrow transformers safetensors

# Benchmarks are not tests: the seed's librosa path vs emolab featurize, side by side.
bench-features: setup bench-venv
	$(BIN) --quiet synth --layout cremad --out $(BENCH_CORPUS) --actors 91
	benches/features.sh $(BIN) $(VENV)/bin/python $(BENCH_CORPUS)

BENCH_EPOCHS ?= 3
BENCH_THREADS ?= $(shell nproc)
BENCH_DEVICE ?= cpu
# Benchmark, not a test: cnn_v3 in PyTorch and in emolab on the CREMA-D-sized synthetic corpus.
bench-train: setup bench-venv
	$(BIN) --quiet synth --layout cremad --out $(BENCH_CORPUS) --actors 91
	benches/train.sh $(BIN) $(VENV)/bin/python $(BENCH_CORPUS) $(BENCH_EPOCHS) $(BENCH_THREADS) $(BENCH_DEVICE)

# Benchmark, not a test: the classic openSMILE eGeMAPSv02 + SVM on exactly the folds of an
# emolab experiment (run first, complete runs are skipped), printed beside it.
BASELINE_EXP ?= emodb_crnn
bench-baseline: setup bench-venv
	$(BIN) run experiments/$(BASELINE_EXP).yaml
	$(VENV)/bin/python benches/baseline_egemaps.py results/$(BASELINE_EXP)

# Benchmark, not a test: EmoDB leave-one-speaker-out with the earlier and the recommended
# recipes, and the eGeMAPS + SVM baseline on the same folds, side by side.
# With a Whisper folder at ENCODER_DIR (config.json + model.safetensors), the encoder recipes
# (probe, Whisper SVM, their inductive twins and fusions) run too, on the same folds.
EMODB ?= data/emodb
ENCODER_DIR ?= models/whisper-tiny.en
ACCURACY_EXPS ?= emodb_cnn emodb_crnn emodb_functionals_svm emodb_functionals_svm_train emodb_fusion_svm_crnn
ENCODER_EXPS ?= emodb_whisper_probe emodb_whisper_probe_inductive emodb_whisper_svm \
	emodb_whisper_svm_inductive emodb_fusion_whisper emodb_fusion_whisper_inductive \
	emodb_fusion_whisper_svm emodb_fusion_whisper_svm_inductive emodb_fusion_whisper_svm_crnn
bench-accuracy: setup bench-venv
	@for e in $(ACCURACY_EXPS); do EMODB=$(EMODB) $(BIN) run experiments/$$e.yaml || exit 1; done
	@if [ -f "$(ENCODER_DIR)/config.json" ]; then \
		for e in $(ENCODER_EXPS); do ENCODER_DIR=$(ENCODER_DIR) EMODB=$(EMODB) $(BIN) run experiments/$$e.yaml || exit 1; done; \
		$(VENV)/bin/python benches/baseline_egemaps.py $(foreach e,$(ACCURACY_EXPS) $(ENCODER_EXPS),results/$(e)); \
	else \
		echo "note: no encoder at ENCODER_DIR=$(ENCODER_DIR) (config.json): the encoder recipes are left out"; \
		$(VENV)/bin/python benches/baseline_egemaps.py $(foreach e,$(ACCURACY_EXPS),results/$(e)); \
	fi

# Benchmark, not a test: emolab's classical models against scikit-learn on exactly the same clip
# vectors (read from the feature cache) and folds: test UA and the seconds of a fold's whole work
# (fit, importance, refit, test scoring), side by side, on EmoDB and on the CREMA-D-sized
# synthetic corpus (functionals, 5 speaker folds; scikit-learn on its first CLASSICAL_CREMAD_FOLDS
# folds: its forest and SVM importance take minutes a fold).
CLASSICAL_EXPS ?= emodb_functionals_svm emodb_functionals_svm_train emodb_functionals_logistic emodb_functionals_rf emodb_seed_rf
CLASSICAL_CREMAD ?= svm logistic random_forest
CLASSICAL_CREMAD_FOLDS ?= 2
CACHE_ROOT ?= $(or $(EMOLAB_CACHE),data/cache)
bench-classical: setup bench-venv
	@for e in $(CLASSICAL_EXPS); do EMODB=$(EMODB) $(BIN) run experiments/$$e.yaml || exit 1; done
	$(VENV)/bin/python benches/classical_parity.py $(CACHE_ROOT) $(foreach e,$(CLASSICAL_EXPS),results/$(e))
	$(BIN) --quiet synth --layout cremad --out $(BENCH_CORPUS) --actors 91
	@for m in $(CLASSICAL_CREMAD); do \
		start=$$(date +%s); \
		CREMAD=$(BENCH_CORPUS) $(BIN) run experiments/cremad_functionals_svm.yaml --force \
			--set model.preset=$$m --set name=bench_cremad_functionals_$$m || exit 1; \
		echo "bench_cremad_functionals_$$m: $$(( $$(date +%s) - start )) s for 5 folds (the first model featurizes, the others read the cache)"; \
	done
	$(VENV)/bin/python benches/classical_parity.py --folds $(CLASSICAL_CREMAD_FOLDS) $(CACHE_ROOT) \
		$(foreach m,$(CLASSICAL_CREMAD),results/bench_cremad_functionals_$(m))
	$(VENV)/bin/python benches/functionals_speed.py $(BIN) $(EMODB)

# Benchmark, not a test: why the functionals' F0 tracker is pYIN: plain YIN's absolute-threshold
# voicing against librosa.pyin's on every clip, at the thresholds in use.
bench-pitch: bench-venv
	$(VENV)/bin/python benches/yin_voicing.py $(EMODB)

# Benchmark, not a test: the emotion timeline of a long recording (real EmoDB speech repeated to
# TIMELINE_MINUTES) with the recommended CNN, streamed, beside `predict` of the same clips.
TIMELINE_MINUTES ?= 60
bench-timeline: setup bench-venv
	benches/timeline.sh $(BIN) $(VENV)/bin/python $(EMODB) $(TIMELINE_MINUTES) $(BENCH_THREADS)

# Headless Chromium for the report test (skipped with a message when absent).
test-setup:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || sudo -n apt-get install -y -qq chromium >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } || \
		echo "warning: could not install chromium; the report's browser test will be skipped"; }

# A single-node Slurm on this machine (root; Debian packages), for `--slurm` and the live test.
slurm-local:
	scripts/slurm-local.sh install
	scripts/slurm-local.sh start

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --release --all-targets

clean:
	cargo clean

# Benchmark, not a test: encoder forward passes in emolab and in transformers, side by side
# (randomly initialised configs built under data/bench-encoders; nothing is downloaded).
ENCODER_CLIPS ?= 16
bench-encoders: setup bench-venv
	$(VENV)/bin/python benches/encoders.py --bin $(BIN) --threads $(BENCH_THREADS) --device $(BENCH_DEVICE) --clips $(ENCODER_CLIPS) --real $(ENCODER_DIR)
