//! The `emolab` command line: wires the library stages together; no logic of its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use emolab::cache::Cache;
use emolab::cluster::{Kind, Plan, Work};
use emolab::corpus::{self, Format, ScanOptions};
use emolab::experiment::Experiment;
use emolab::features::{self, Pipeline};
use emolab::synth::{self, Layout, SynthOptions};
use emolab::{runner, sweep};

/// mimalloc keeps freed memory for reuse: the feature stage allocates and frees tens of MB per
/// part, which glibc maps and unmaps each time (a third of featurize's time in page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "emolab",
    version,
    about = "Speech emotion recognition: corpus → features → speaker-independent training → reports",
    after_help = "Examples:
  emolab doctor
  emolab synth --layout cremad --out data/synth-cremad --actors 24
  emolab corpus scan data/synth-cremad --out data/synth-cremad.manifest.parquet
  emolab corpus scan /data/emodb/wav --json
  emolab featurize --pipeline pipelines/logmel64.yaml data/synth-cremad
  emolab run experiments/demo.yaml
  emolab train --config experiments/cnn_v3.yaml --fold 0 --seed 0
  emolab evaluate results/demo/fold0-seed0
  emolab predict results/demo/fold0-seed0 clip.wav
  emolab sweep experiments/demo.yaml --grid model.dropout=0.3,0.5 --grid train.lr=1e-3,5e-4
  emolab sweep experiments/demo.yaml --grid train.lr=1e-3,5e-4 --slurm
  emolab status demo --wait
  emolab report
  emolab bench normalisation results/demo"
)]
struct Cli {
    /// Hide progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print versions, the compute device (CPU/CUDA), thread counts and folders.
    #[command(after_help = "Examples:
  emolab doctor
  emolab doctor --json")]
    Doctor {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Work with corpora.
    #[command(
        subcommand,
        after_help = "Examples:
  emolab corpus scan data/crema-d --out data/crema-d.manifest.parquet
  emolab corpus scan /data/emodb/wav --json"
    )]
    Corpus(CorpusCommand),
    /// Generate a synthetic emotional-speech corpus (a CREMA-D-shaped stand-in, or small
    /// RAVDESS/EmoDB-shaped ones to exercise their parsers).
    #[command(after_help = "Examples:
  emolab synth --layout cremad --out data/synth-cremad               # all 7,442 CREMA-D names
  emolab synth --layout cremad --out data/synth-small --actors 8 --seed 1
  emolab synth --layout ravdess --out data/synth-ravdess
  emolab synth --layout emodb --out data/synth-emodb

Re-running skips clips already written, so a killed run resumes.")]
    Synth(SynthArgs),
    /// Compute the features of every clip and augmented variant (rayon-parallel) into the
    /// Parquet cache. Only what is missing is computed: a second run computes nothing.
    #[command(after_help = "Examples:
  emolab featurize --pipeline pipelines/logmel128.yaml data/crema-d
  emolab featurize --pipeline pipelines/logmel64.yaml data/synth-cremad.manifest.parquet
  emolab featurize --pipeline pipelines/mfcc40.yaml --cache /scratch/cache /data/emodb/wav

The cache lives in <cache>/<pipeline feature key>/ (default cache: $EMOLAB_CACHE or data/cache);
pyarrow and polars read its part-*.parquet files directly.")]
    Featurize(FeaturizeArgs),
    /// Inspect the feature cache.
    #[command(
        subcommand,
        after_help = "Examples:
  emolab cache info --pipeline pipelines/logmel128.yaml
  emolab cache info --pipeline pipelines/logmel64.yaml --cache /scratch/cache --read-bench"
    )]
    Cache(CacheCommand),
    /// Train and evaluate every fold × seed of an experiment into results/<name>/, then print
    /// mean ± std of UA, WA and macro-F1. Complete runs are skipped, interrupted ones resume.
    #[command(after_help = "Examples:
  emolab run experiments/cnn_v3.yaml
  emolab run experiments/cnn_v3.yaml --set train.lr=5e-4 --set model.dropout=0.4
  emolab run experiments/emodb_cnn.yaml --force          # recompute complete runs
  EMODB=/data/emodb/wav emolab run experiments/emodb_cnn.yaml
  emolab run experiments/cnn_v3.yaml --slurm --slurm-opt partition=gpu --slurm-opt gres=gpu:1
  emolab run experiments/cnn_v3.yaml --slurm --dry-run   # write results/<name>/slurm/job.sbatch

Each run folder holds config.yaml, meta.json, split.parquet, history.parquet,
predictions.parquet, metrics.json and model.safetensors; results/<name>/summary.parquet
has one row per complete run.")]
    Run(RunArgs),
    /// Train one model on one split (one fold and seed of an experiment file).
    #[command(after_help = "Examples:
  emolab train --config experiments/demo.yaml
  emolab train --config experiments/cnn_v3.yaml --fold 2 --seed 1
  emolab train --config experiments/cnn_v3.yaml --set train.epochs=5 --set train.device=cpu")]
    Train(TrainArgs),
    /// Re-score a saved run on its own test clips, or on another corpus (cross-corpus).
    #[command(after_help = "Examples:
  emolab evaluate results/emodb_cnn/fold0-seed0
  emolab evaluate results/cnn_v3/fold0-seed0 --on data/ravdess
  emolab evaluate results/cnn_v3/fold0-seed0 --on data/other.manifest.parquet --json

Clips whose label the model does not know are left out and counted. Writes
<run>/eval/<corpus>/metrics.json and predictions.parquet.")]
    Evaluate {
        /// A complete run folder.
        run: PathBuf,
        /// Corpus folder or manifest (.parquet); default: the run's own test clips.
        #[arg(long)]
        on: Option<PathBuf>,
        /// Print the metrics as JSON.
        #[arg(long)]
        json: bool,
        /// For a `normalize: speaker` run: a speaker with fewer clips than this is
        /// standardised on the run's training speakers' statistics.
        #[arg(long, default_value_t = emolab::speakers::DEFAULT_MIN_CLIPS)]
        min_speaker_clips: usize,
    },
    /// Predict the emotion of audio files with a saved run (any sample rate, channels, bit
    /// depth). A file that cannot be read gets an error line; the others are still predicted.
    /// A model trained with `train.window` scores each whole file, window by window. For one
    /// trained with `normalize: speaker`, each file is standardised on its speaker's own
    /// statistics when that speaker has at least --min-speaker-clips clips in the call (or
    /// --enroll), else on the run's training speakers' statistics; each answer names which,
    /// and a file's answer never depends on other speakers' files.
    #[command(after_help = "Examples:
  emolab predict results/demo/fold0-seed0 clip.wav
  emolab predict results/emodb_functionals_svm/fold0-seed0 speaker_a/*.wav --speaker a
  emolab predict results/emodb_functionals_svm/fold0-seed0 new.wav --speaker a --enroll speaker_a/
  emolab predict results/emodb_functionals_svm/fold0-seed0 files.csv
  emolab predict results/cnn_v3/fold0-seed0 recordings/*.wav --json
  emolab predict results/emodb_rec_cnn/fold0-seed0 interview.wav --window 2.0 --hop 0.5 --skip-silence

Speakers: --speaker names the speaker of every file; a CSV list (path,speaker) names each
file's; otherwise the run's corpus naming convention does when a name follows it (EmoDB
03a01Wa.wav: speaker 03). A file without a speaker stands alone. Give a speaker varied speech:
statistics of clips that all carry one emotion subtract that emotion.

With --window, each file (of any length, streamed) gets an emotion timeline: one row per window
in <out>/timeline.csv and timeline.parquet, a chart in timeline.svg and summary.json (default
<out>: <file stem>-timeline, or --out). --skip-silence leaves out windows below --silence-db dBFS.")]
    Predict {
        /// A complete run folder.
        run: PathBuf,
        /// WAV files, or CSV lists of `path,speaker`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON array, one object per file.
        #[arg(long)]
        json: bool,
        /// The speaker of every file (for a `normalize: speaker` run).
        #[arg(long)]
        speaker: Option<String>,
        /// A folder (or WAV file) of the same speaker's other clips, used for statistics only;
        /// the files are then all that speaker's (--speaker, default `enrolled`).
        #[arg(long, conflicts_with = "window")]
        enroll: Vec<PathBuf>,
        /// Clips of one speaker (files + --enroll) needed for their own statistics; fewer:
        /// the run's training speakers' statistics.
        #[arg(long, default_value_t = emolab::speakers::DEFAULT_MIN_CLIPS)]
        min_speaker_clips: usize,
        /// Score windows of this many seconds (an emotion timeline of each file).
        #[arg(long)]
        window: Option<f64>,
        /// Seconds between window starts (with --window).
        #[arg(long, default_value_t = 0.5, requires = "window")]
        hop: f64,
        /// Leave out windows quieter than --silence-db (with --window).
        #[arg(long, requires = "window")]
        skip_silence: bool,
        /// RMS level in dBFS under which a window is silence.
        #[arg(long, default_value_t = -45.0, allow_hyphen_values = true, requires = "window")]
        silence_db: f64,
        /// Output folder of the timeline (with several files: one sub-folder per file).
        #[arg(long, requires = "window")]
        out: Option<PathBuf>,
    },
    /// Hyper-parameter sweep: grid (Cartesian product) or random search with a budget; one run
    /// folder per trial × fold × seed; selection on validation UA only.
    #[command(after_help = "Examples:
  emolab sweep experiments/cnn_v3_grid.yaml
  emolab sweep experiments/demo.yaml --grid model.dropout=0.3,0.5 --grid train.lr=1e-3,5e-4
  emolab sweep experiments/demo.yaml --grid train.lr=1e-3,5e-4,1e-4 --budget 2
  emolab sweep experiments/cnn_v3_grid.yaml --slurm      # one Slurm array task per run
  emolab sweep experiments/cnn_v3_grid.yaml --slurm --dry-run
  emolab sweep experiments/cnn_v3_grid.yaml --trial 3    # every run of one trial, here

Re-running skips complete runs. The selected trial has the best mean validation UA; its test
figures are reported, never used to choose.")]
    Sweep(SweepArgs),
    /// Compare every complete run in one report: leaderboard, leakage panel, paired comparisons,
    /// per-class F1, confusion matrices, learning curves, sweeps and UA by speaker sex, as
    /// report.md, a self-contained report.html and each table as CSV and Parquet.
    #[command(after_help = "Examples:
  emolab report --all
  emolab report demo demo_random
  emolab report --all --results /scratch/results --out /tmp/report
  EMOLAB_RESULTS=/scratch/results emolab report cnn_v3 seed_m3_emotion seed_m3_sentence

EXPERIMENT is a folder name under the results folder; with none (or --all), every one.
Runs that are running, failed or missing files are listed in the report, never fatal.
report.html opens in any browser with no network; tables/ has every table as CSV and Parquet.")]
    Report(ReportArgs),
    /// Cross-corpus matrix: each experiment on the labels all share, within-corpus by its own
    /// (speaker-independent) protocol, and its models tested on every other corpus.
    #[command(after_help = "Examples:
  emolab cross experiments/emodb_crnn.yaml experiments/ravdess_crnn.yaml experiments/cremad_crnn.yaml
  emolab cross a.yaml b.yaml --name cross_ab --set train.epochs=10
  emolab cross experiments/cross_crnn.yaml          # a cross file: cross: {name, experiments, set}

Clips whose label is not shared (EmoDB's boredom, RAVDESS' calm and surprise) are counted and
left out. Each experiment runs as <name>-<experiment> (complete runs are skipped); the matrix is
written to results/<name>/cross.json, .csv, .parquet and a heat map, cross.svg.")]
    Cross {
        /// Experiment files (YAML), at least two (one per corpus), or one cross file (a
        /// `cross:` block naming the experiments).
        #[arg(required = true, num_args = 1..)]
        experiments: Vec<PathBuf>,
        /// Name of the matrix (results/<name>/) and prefix of the experiments it runs
        /// (default: the cross file's `name`, or `cross`).
        #[arg(long)]
        name: Option<String>,
        /// Override a key of every experiment: key.path=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Train again the experiments' runs that are already complete.
        #[arg(long)]
        force: bool,
    },
    /// Where every run of an experiment is: complete, running (epoch and validation UA so
    /// far), interrupted, failed (with the error), pending in Slurm, or not started, with the
    /// Slurm job state where it was submitted.
    #[command(after_help = "Examples:
  emolab status
  emolab status experiments/cnn_v3.yaml
  emolab status cnn_v3 cnn_v3_grid --results /scratch/results
  emolab status experiments/cnn_v3_grid.yaml --wait --interval 60   # exit 1 if a run failed

Runs are the entries of results/<name>/plan.json (written by `run`, `sweep` and `--slurm`);
for an experiment file that never ran, every run is listed as not started.")]
    Status(StatusArgs),
    /// Benchmarks (not tests): training and encoder speed, inference normalisation.
    #[command(
        subcommand,
        after_help = "Examples:
  emolab bench train --cache-dir data/cache/<feature key> --preset cnn_v3 --epochs 3 --threads 2
  emolab bench encoder --model models/whisper-tiny.en --clips 16
  emolab bench normalisation results/emodb_functionals_svm"
    )]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time the training pass of a preset on every row of a pipeline's cache folder (labels:
    /// the emotions), per epoch (`make bench-train` sets it beside the same model in PyTorch).
    #[command(after_help = "Examples:
  emolab bench train --cache-dir data/cache/<feature key> --preset cnn_v3 --epochs 3 --threads 2
  emolab bench train --cache-dir data/cache/<feature key> --preset lstm --epochs 1 --json out.json")]
    Train {
        /// A pipeline's cache folder (`<cache>/<feature key>`, see `emolab cache info`).
        #[arg(long)]
        cache_dir: PathBuf,
        /// Model preset to time.
        #[arg(long, default_value = "cnn_v3")]
        preset: String,
        /// Epochs to time.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Clips per batch.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// CPU threads of LibTorch.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// auto, cpu or cuda.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// fp32 or bf16.
        #[arg(long, default_value = "fp32")]
        precision: String,
        /// Only the original variant of each clip (as `train_torch.py --variants original`).
        #[arg(long)]
        originals: bool,
        /// Write the result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Time a pretrained encoder's forward pass (all hidden states) on a synthetic tone;
    /// `make bench-encoders` sets it beside `transformers`.
    #[command(after_help = "Examples:
  emolab bench encoder --model models/wavlm-base-plus --clip-s 4 --clips 16
  emolab bench encoder --model models/whisper-small --batch 8 --device cuda --json out.json")]
    Encoder {
        /// A Hugging Face encoder folder (config.json + model.safetensors).
        #[arg(long)]
        model: PathBuf,
        /// Seconds per clip.
        #[arg(long, default_value_t = 4.0)]
        clip_s: f32,
        /// Clips to embed (timed after one warm-up clip).
        #[arg(long, default_value_t = 16)]
        clips: usize,
        /// Clips per forward pass.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// CPU threads of LibTorch.
        #[arg(long, default_value_t = 2)]
        threads: i32,
        /// cpu or cuda.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Whisper: padded (30 s, as trained), cropped (the clip's own frames) or a window in
        /// seconds (e.g. 5).
        #[arg(long, default_value = "cropped")]
        whisper_input: String,
        /// Write the result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// How a `normalize: speaker` run scores clips on its own validation and test speakers
    /// when each clip's statistics come from all its speaker's clips (the batch), from the
    /// training speakers (one clip at a time), or from k clips of its speaker.
    #[command(after_help = "Examples:
  emolab bench normalisation results/emodb_functionals_svm
  emolab bench normalisation results/emodb_whisper_probe/fold3-seed0 --k 2,5,10 --repeats 10")]
    Normalisation {
        /// Run folders, or experiment result folders (every fold* run in them).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Clips of a speaker to draw for their statistics.
        #[arg(long, value_delimiter = ',', default_value = "2,3,5,10,20")]
        k: Vec<usize>,
        /// Random draws per k.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write every score as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Experiment file (YAML).
    experiment: PathBuf,
    /// Override a key: key.path=value (value in YAML), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Recompute runs that are already complete.
    #[arg(long, conflicts_with = "slurm")]
    force: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Slurm submission, and the three things its jobs run.
#[derive(Args)]
struct ClusterArgs {
    /// Submit to Slurm: a prepare job (features), a job array with one task per run that is not
    /// complete and not already queued, and a collect job (summary).
    #[arg(long)]
    slurm: bool,
    /// With --slurm: write the job script and print the sbatch commands, submit nothing.
    #[arg(long, requires = "slurm")]
    dry_run: bool,
    /// With --slurm: a key of the `slurm:` block, e.g. partition=gpu, gres=gpu:1,
    /// time=04:00:00, cpus=8, throttle=10 (repeatable).
    #[arg(long = "slurm-opt", value_name = "KEY=VALUE", requires = "slurm")]
    slurm_opt: Vec<String>,
    /// Internal (what Slurm array task I runs): only entry I of results/<name>/plan.json.
    #[arg(long, value_name = "I", hide = true, conflicts_with_all = ["slurm", "collect", "prepare_only"])]
    task: Option<usize>,
    /// Write the summary (and seed ensembles or sweep table) from the complete runs (what the
    /// collect job runs).
    #[arg(long, hide = true, conflicts_with_all = ["slurm", "prepare_only"])]
    collect: bool,
    /// Only scan the corpus and compute missing features (what the prepare job runs).
    #[arg(long, hide = true, conflicts_with = "slurm")]
    prepare_only: bool,
}

#[derive(Args)]
struct StatusArgs {
    /// Experiment files (YAML) or experiment names under the results folder; none: every
    /// experiment there.
    #[arg(value_name = "EXPERIMENT")]
    experiments: Vec<String>,
    /// Results folder, for names and for experiment files (default: $EMOLAB_RESULTS, or
    /// results, or the file's `results:`).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Block until no run is pending or running; exit non-zero unless every run is complete.
    #[arg(long)]
    wait: bool,
    /// Seconds between checks with --wait.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Print one JSON array, one object per experiment.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Experiment file (YAML) describing the run.
    #[arg(long)]
    config: PathBuf,
    /// Which fold of the protocol.
    #[arg(long, default_value_t = 0)]
    fold: usize,
    /// Seed (default: the file's first seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Override a key of the experiment file (repeatable), e.g. `train.lr=5e-4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Train again even if the run folder holds a complete run.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// Experiments (folder names in the results folder); none: all of them.
    #[arg(value_name = "EXPERIMENT", conflicts_with = "all")]
    experiments: Vec<String>,
    /// Every experiment in the results folder (the default when none is named).
    #[arg(long)]
    all: bool,
    /// Results folder (default: $EMOLAB_RESULTS or results).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Output folder (default: <results>/report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Bootstrap resamples of the paired comparisons.
    #[arg(long, default_value_t = 2000)]
    bootstrap: usize,
    /// Seed of the bootstrap (the same runs and seed give the same report).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct SweepArgs {
    /// Experiment file (YAML) with a `sweep:` section, or one to sweep with --grid.
    experiment: PathBuf,
    /// key.path=v1,v2,... (repeatable; adds to or replaces the file's sweep params).
    #[arg(long, value_name = "KEY=V1,V2")]
    grid: Vec<String>,
    /// Random search: run this many trials drawn from the space.
    #[arg(long)]
    budget: Option<usize>,
    /// Override a key of the experiment file for every trial (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Run only trial I (0-based), every fold and seed of it.
    #[arg(long, conflicts_with = "slurm")]
    trial: Option<usize>,
    /// Train again the trials' runs that are already complete.
    #[arg(long, conflicts_with = "slurm")]
    force: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Args)]
struct FeaturizeArgs {
    /// Corpus folder (scanned first), or a manifest (.parquet) from `emolab corpus scan`.
    input: PathBuf,
    /// Feature pipeline (YAML).
    #[arg(long)]
    pipeline: PathBuf,
    /// Cache root folder.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Naming convention when INPUT is a folder.
    #[arg(long, default_value = "auto")]
    format: Format,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Show a pipeline's cache folder: parts, rows, size; optionally time a full read.
    #[command(after_help = "Examples:
  emolab cache info --pipeline pipelines/logmel128.yaml
  emolab cache info --experiment experiments/emodb_whisper_probe.yaml
  emolab cache info --pipeline pipelines/logmel128.yaml --read-bench")]
    Info {
        /// Feature pipeline (YAML) whose cache folder to show.
        #[arg(
            long,
            required_unless_present = "experiment",
            conflicts_with = "experiment"
        )]
        pipeline: Option<PathBuf>,
        /// An experiment file: its pipeline (with its encoder settings) and cache folder.
        #[arg(long)]
        experiment: Option<PathBuf>,
        /// Cache root folder (default: the experiment's, $EMOLAB_CACHE or data/cache).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Decode every row (all row groups in parallel) and report the throughput.
        #[arg(long)]
        read_bench: bool,
    },
}

#[derive(Subcommand)]
enum CorpusCommand {
    /// Scan a corpus folder into a manifest (one row per clip) and print a summary with every
    /// problem found. Bad files are listed with their reason and left out; they never abort.
    #[command(after_help = "Examples:
  emolab corpus scan data/crema-d --out data/crema-d.manifest.parquet
  emolab corpus scan /data/emodb/wav --format emodb --json
  emolab corpus scan data/my-corpus --format folder --speaker-pattern '^(\\w+?)_'
  emolab corpus scan data/labels.csv          # CSV manifest: path,label[,speaker][,sex]

Formats: cremad (1001_DFA_ANG_XX), ravdess (03-01-06-01-02-01-12), emodb (03a01Wa),
tess (OAF_back_angry), savee (DC_a01 or DC/a01), folder (one sub-folder per label), csv.")]
    Scan(ScanArgs),
}

#[derive(Args)]
struct ScanArgs {
    /// Corpus folder, or a CSV manifest.
    input: PathBuf,
    /// Naming convention.
    #[arg(long, default_value = "auto")]
    format: Format,
    /// Write the manifest here (Parquet).
    #[arg(long)]
    out: Option<PathBuf>,
    /// CREMA-D VideoDemographics.csv (default: next to the audio, when present).
    #[arg(long)]
    demographics: Option<PathBuf>,
    /// Folder format: regex whose first group, matched on the file name, is the speaker.
    #[arg(long)]
    speaker_pattern: Option<regex::Regex>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SynthArgs {
    /// cremad, ravdess or emodb.
    #[arg(long, default_value = "cremad")]
    layout: Layout,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Number of actors (cremad default 91 = the full corpus).
    #[arg(long)]
    actors: Option<usize>,
    /// Random seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// LibTorch allocates its large training buffers (a conv activation of a 64-clip batch is
/// 130 MB) with glibc malloc, which maps and unmaps each one: a CPU epoch of cnn_v3 spent as much
/// time in page faults (40 M of them) as in arithmetic. Served from the heap and kept there,
/// the same buffers are reused batch after batch. Rust's own allocations use mimalloc.
fn keep_large_buffers() {
    // SAFETY: mallopt only changes glibc's allocation policy; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// End the process once its work is done, without running the exit handlers: LibTorch's static
/// destructors deregister every operator it registered at load time, which took a third of
/// `emolab --version` (about 0.15 s) on every command. Everything emolab writes is complete by
/// then (files are renamed into place before a command returns); standard output and error are
/// flushed here.
fn quick_exit(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process; nothing runs after it, so no Rust invariant is observed
    // broken.
    unsafe { libc::_exit(code) }
}

fn main() {
    // A closed pipe (`emolab status --json | head`) ends the process quietly, as for any
    // Unix tool, instead of a panic in `println!`.
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if std::env::var_os("EMOLAB_MALLOC_DEFAULT").is_none() {
        keep_large_buffers();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to standard output with status 0; usage errors to standard
            // error with status 2, as `Cli::parse` would.
            let _ = e.print();
            quick_exit(e.exit_code())
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    quick_exit(if code == ExitCode::SUCCESS { 0 } else { 1 })
}

fn run(cli: Cli) -> Result<ExitCode> {
    let progress = !cli.quiet;
    match cli.command {
        Command::Doctor { json } => {
            let r = emolab::doctor::report();
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{r}");
            }
        }
        Command::Corpus(CorpusCommand::Scan(a)) => {
            let opts = ScanOptions {
                format: a.format,
                demographics: a.demographics,
                speaker_pattern: a.speaker_pattern,
                progress: progress && !a.json,
            };
            let scan = corpus::scan(&a.input, &opts)?;
            if let Some(out) = &a.out {
                corpus::write_manifest(out, &scan.clips)?;
            }
            let summary = scan.summary();
            if a.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{summary}");
                if let Some(out) = &a.out {
                    println!("manifest    {} ({} rows)", out.display(), scan.clips.len());
                }
            }
        }
        Command::Synth(a) => {
            let report = synth::generate(&SynthOptions {
                layout: a.layout,
                out: a.out,
                actors: a.actors,
                seed: a.seed,
                progress,
            })?;
            println!(
                "wrote {} clips ({} already present) for {} speakers to {}",
                report.clips_written,
                report.clips_skipped_existing,
                report.speakers,
                report.out.display()
            );
        }
        Command::Featurize(a) => {
            let pipeline = Pipeline::load(&a.pipeline)?;
            let clips = load_clips(&a.input, a.format, progress)?;
            let cache = a.cache.unwrap_or_else(emolab::doctor::cache_dir);
            let report = features::featurize(&clips, &pipeline, &cache, progress)?;
            println!("{report}");
        }
        Command::Cache(CacheCommand::Info {
            pipeline,
            experiment,
            cache,
            read_bench,
        }) => {
            let (p, exp_cache) = match (pipeline, experiment) {
                (Some(f), _) => (Pipeline::load(&f)?, None),
                (None, Some(e)) => {
                    let exp = Experiment::load(&e, &[])?;
                    (exp.pipeline, Some(exp.cache))
                }
                (None, None) => unreachable!("clap requires one"),
            };
            if let Some(enc) = &p.encoder {
                if !enc.path.join("config.json").exists() {
                    eprintln!(
                        "warning: encoder folder {} has no config.json: this pipeline cannot be \
                         computed here",
                        enc.path.display()
                    );
                }
            }
            let root = cache
                .or(exp_cache)
                .unwrap_or_else(emolab::doctor::cache_dir);
            let key = p.feature_key();
            // Looking creates nothing.
            if !root.join(&key).is_dir() {
                println!("pipeline    {} (feature key {key})", p.name);
                println!(
                    "folder      {} (absent: nothing cached for this pipeline yet)",
                    root.join(&key).display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let c = Cache::open(&root, &key)?;
            let parts = c.parts()?;
            let bytes: u64 = parts
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            println!("pipeline    {} (feature key {})", p.name, p.feature_key());
            println!("folder      {}", c.dir.display());
            println!(
                "parts       {} files, {:.1} MB on disk, {} row groups",
                parts.len(),
                bytes as f64 / 1e6,
                c.row_groups()?.len()
            );
            println!("keys        {}", c.keys()?.len());
            if read_bench {
                let t = std::time::Instant::now();
                let rows = c.read_all(None)?;
                let dt = t.elapsed().as_secs_f64();
                let floats: usize = rows.iter().map(|r| r.features.len()).sum();
                println!(
                    "read        {} rows, {:.3} GB of f32 in {:.3} s: {:.2} GB/s ({} threads)",
                    rows.len(),
                    floats as f64 * 4.0 / 1e9,
                    dt,
                    floats as f64 * 4.0 / 1e9 / dt,
                    rayon::current_num_threads()
                );
            }
        }
        Command::Run(a) => {
            if is_fusion_file(&a.experiment) {
                return run_fusion(&a.experiment, &a.sets);
            }
            let work = work_of(
                Some(Kind::Run),
                &a.experiment,
                &a.sets,
                &a.cluster.slurm_opt,
                &[],
                None,
            )?;
            if let Some(code) = cluster_mode(&work, &a.cluster, progress)? {
                return Ok(code);
            }
            return run_experiment(&work.exp, Some(&work), a.force, progress);
        }
        Command::Status(a) => return status(a),
        Command::Cross {
            experiments,
            name,
            sets,
            force,
        } => {
            let (exps, name) = if let [file] = experiments.as_slice() {
                let spec = emolab::cross::CrossSpec::load(file)?;
                let exps = spec.load_experiments(&sets)?;
                (exps, name.unwrap_or(spec.name))
            } else {
                let exps = experiments
                    .iter()
                    .map(|f| Experiment::load(f, &sets))
                    .collect::<Result<Vec<_>, _>>()?;
                (exps, name.unwrap_or_else(|| "cross".into()))
            };
            println!("{}", emolab::cross::cross(&exps, &name, force, progress)?);
        }
        Command::Train(a) => {
            let mut exp = Experiment::load(&a.config, &a.sets)?;
            let seed = a.seed.unwrap_or(exp.seeds[0]);
            exp.seeds = vec![seed];
            exp.folds = Some(vec![a.fold]);
            return run_experiment(&exp, None, a.force, progress);
        }
        Command::Evaluate {
            run,
            on,
            json,
            min_speaker_clips,
        } => {
            let (m, out, left_out) =
                runner::evaluate(&run, on.as_deref(), min_speaker_clips, progress)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                print_metrics(&m, left_out);
                println!("wrote {}", out.display());
            }
        }
        Command::Predict {
            run,
            files,
            json,
            window: Some(window),
            hop,
            skip_silence,
            silence_db,
            out,
            ..
        } => {
            let opts = emolab::timeline::TimelineOptions {
                window,
                hop,
                skip_silence,
                silence_db,
                ..Default::default()
            };
            let mut all = Vec::new();
            for f in &files {
                let stem = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "recording".into());
                let dir = match &out {
                    Some(o) if files.len() == 1 => o.clone(),
                    Some(o) => o.join(&stem),
                    None => PathBuf::from(format!("{stem}-timeline")),
                };
                let s = emolab::timeline::timeline(&run, f, &dir, &opts)?;
                if !json {
                    let mut share: Vec<_> = s.share.iter().collect();
                    share.sort_by(|a, b| b.1.total_cmp(a.1));
                    println!(
                        "{}: {:.1} s, {} windows ({} scored), {:.1} s of compute ({:.0}x realtime, peak memory {}) → {}",
                        s.file,
                        s.duration_s,
                        s.windows,
                        s.speech_windows,
                        s.seconds,
                        s.realtime,
                        s.peak_rss_mb.map_or("?".into(), |m| format!("{m:.0} MB")),
                        s.out.display()
                    );
                    println!(
                        "  top emotion of the scored windows: {}",
                        share
                            .iter()
                            .map(|(k, v)| format!("{k} {:.0}%", *v * 100.0))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                all.push(s);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
        }
        Command::Predict {
            run,
            files,
            json,
            speaker,
            enroll,
            min_speaker_clips,
            ..
        } => {
            let inputs = runner::PredictInputs {
                files,
                speaker,
                enroll,
                min_clips: min_speaker_clips,
            };
            let preds = runner::predict_files(&run, &inputs)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&preds)?);
            } else {
                for p in &preds {
                    match (&p.prediction, &p.error) {
                        (Some(top), _) => {
                            let mut probs: Vec<_> = p.probabilities.iter().collect();
                            probs.sort_by(|a, b| b.1.total_cmp(a.1));
                            let all: Vec<String> =
                                probs.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
                            println!(
                                "{}: {top} ({}) [normalised on {}]{}",
                                p.file,
                                all.join(", "),
                                p.normalisation.as_deref().unwrap_or("?"),
                                if p.abstain == Some(true) {
                                    " [unsure: entropy above the run's abstain threshold]"
                                } else {
                                    ""
                                }
                            );
                        }
                        (None, Some(e)) => eprintln!("error: {}: {e}", p.file),
                        _ => {}
                    }
                }
            }
            let fell_back: Vec<&str> = preds
                .iter()
                .filter(|p| p.normalisation.as_deref() == Some("training speakers"))
                .map(|p| p.file.as_str())
                .collect();
            if !fell_back.is_empty() {
                eprintln!(
                    "warning: the run standardises each speaker on their own clips; {} no named \
                     speaker with at least {min_speaker_clips} clips in this call (give --speaker \
                     with more files, --enroll, or a path,speaker list) and used the training \
                     speakers' statistics: {}",
                    if fell_back.len() == 1 {
                        "this file has"
                    } else {
                        "these files have"
                    },
                    fell_back.join(", ")
                );
            }
            if preds.iter().any(|p| p.error.is_some()) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Sweep(a) => return sweep(a, progress),
        Command::Report(a) => {
            let mut opts = emolab::report::ReportOptions::new(
                a.results.unwrap_or_else(emolab::doctor::results_dir),
            );
            opts.experiments = a.experiments;
            opts.out = a.out.unwrap_or(opts.out);
            opts.bootstrap = a.bootstrap;
            opts.seed = a.seed;
            println!("{}", emolab::report::generate(&opts)?);
        }
        Command::Bench(BenchCommand::Normalisation {
            runs,
            k,
            repeats,
            seed,
            json,
        }) => {
            let scores = emolab::speakers_bench::normalisation(&runs, &k, repeats, seed)?;
            print!("{}", emolab::speakers_bench::table(&scores));
            if let Some(j) = json {
                emolab::results::write_json(&j, &scores)?;
            }
        }
        Command::Bench(BenchCommand::Encoder {
            model,
            clip_s,
            clips,
            batch,
            threads,
            device,
            whisper_input,
            json,
        }) => {
            let device = match device.as_str() {
                "cpu" => tch::Device::Cpu,
                "cuda" => tch::Device::Cuda(0),
                d => anyhow::bail!("--device {d}: cpu or cuda"),
            };
            let input = emolab::encoders::WhisperInput::parse(&whisper_input).ok_or_else(|| {
                anyhow::anyhow!(
                    "--whisper-input {whisper_input}: padded, cropped or a window in seconds"
                )
            })?;
            let r =
                emolab::bench::encoder_speed(&model, clip_s, clips, batch, threads, device, input)?;
            println!(
                "emolab {} ({}) on {} ({} threads, batch {}): {} clips of {} s in {:.3} s = {:.2} clips/s ({:.1}x realtime)",
                r.model, r.arch, r.device, r.threads, r.batch, r.clips, r.clip_s, r.seconds, r.clips_per_s, r.realtime
            );
            if let Some(p) = json {
                emolab::util::atomic_write_bytes(&p, serde_json::to_string_pretty(&r)?.as_bytes())?;
            }
        }
        Command::Bench(BenchCommand::Train {
            cache_dir,
            preset,
            epochs,
            batch_size,
            threads,
            device,
            precision,
            originals,
            json,
        }) => {
            let device: emolab::train::DeviceChoice = serde_yaml::from_str(&device)
                .map_err(|_| anyhow::anyhow!("--device {device}: auto, cpu or cuda"))?;
            let precision: emolab::train::Precision = serde_yaml::from_str(&precision)
                .map_err(|_| anyhow::anyhow!("--precision {precision}: fp32 or bf16"))?;
            let r = emolab::bench::train_speed(
                &cache_dir, &preset, epochs, batch_size, threads, device, precision, originals,
            )?;
            println!(
                "emolab {} on {} ({} threads, {}): {} clips, {}x{}, {} parameters; epochs {}",
                r.model,
                r.device,
                r.threads,
                r.precision,
                r.n_train,
                r.n_mels,
                r.frames,
                r.parameters,
                r.epoch_s
                    .iter()
                    .map(|s| format!("{s:.3} s"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(p) = json {
                emolab::results::write_json(&p, &r)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_metrics(m: &emolab::results::RunMetrics, left_out: usize) {
    let t = &m.test;
    println!(
        "{} clips ({left_out} left out): UA {:.3}  WA {:.3}  macro-F1 {:.3}",
        t.n, t.ua, t.wa, t.macro_f1
    );
    for c in &t.per_class {
        println!(
            "  {:<12} precision {:.3} recall {:.3} F1 {:.3} support {}",
            c.label, c.precision, c.recall, c.f1, c.support
        );
    }
    for (sex, s) in &m.by_sex {
        println!("  {sex:<12} UA {:.3} WA {:.3} ({} clips)", s.ua, s.wa, s.n);
    }
}

/// Whether `file` is a late-fusion experiment (`ensemble: [exp_a, exp_b]`).
fn is_fusion_file(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .is_some_and(|v| emolab::ensemble::is_fusion(&v))
}

/// Average the test probabilities of complete experiments run by run, write and print the
/// summary.
fn run_fusion(file: &Path, sets: &[String]) -> Result<ExitCode> {
    let (name, root, written, left_out) = emolab::ensemble::run_fusion(file, sets)?;
    for why in &left_out {
        eprintln!("left out: {why}");
    }
    let dir = root.join(&name);
    let agg = runner::aggregate(&runner::summary(&dir)?)?;
    println!(
        "{name}: {} fused runs ({} left out) → {}",
        written.len(),
        left_out.len(),
        dir.display()
    );
    println!("{}", runner::plain_table(&runner::pretty(&agg)?));
    Ok(if written.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prepare the corpus, run every fold × seed, write and print the summary.
/// With `work` (a whole `run`, not one `train`), also number the runs in `plan.json` for
/// `emolab status`.
fn run_experiment(
    exp: &Experiment,
    work: Option<&Work>,
    force: bool,
    progress: bool,
) -> Result<ExitCode> {
    let prep = runner::prepare(exp, progress)?;
    if let Some(w) = work {
        w.plan(Some(&prep))?.write(&w.exp_dir())?;
    }
    eprintln!(
        "{}: {} clips, {} classes ({}), protocol {}{}",
        exp.name,
        prep.clips.len(),
        prep.classes.len(),
        prep.classes.join(", "),
        exp.protocol.name(),
        if exp.protocol.speaker_leaky() {
            " (SPEAKER-LEAKY: the same speakers are in train and test)"
        } else {
            ""
        }
    );
    for (why, n) in &prep.skipped {
        eprintln!("  left out {n} clips: {why}");
    }
    let opts = runner::RunOptions {
        force,
        progress,
        trial: None,
    };
    let outcomes = runner::run_experiment(exp, &prep, &opts)?;
    let skipped = outcomes.iter().filter(|o| o.skipped).count();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let busy = outcomes
        .iter()
        .filter(|o| o.status == emolab::results::RunStatus::Running)
        .count();
    let agg = runner::write_summary(exp)?;
    println!(
        "{}: {} runs ({} already complete, {} failed{}) → {}",
        exp.name,
        outcomes.len(),
        skipped,
        failed.len(),
        if busy > 0 {
            format!(", {busy} left to the process training them")
        } else {
            String::new()
        },
        exp.results.join(&exp.name).display()
    );
    println!("{}", runner::plain_table(&runner::pretty(&agg)?));
    for f in &failed {
        eprintln!(
            "failed: {}: {}",
            f.dir.display(),
            f.error.as_deref().unwrap_or("")
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn sweep(a: SweepArgs, progress: bool) -> Result<ExitCode> {
    let work = work_of(
        Some(Kind::Sweep),
        &a.experiment,
        &a.sets,
        &a.cluster.slurm_opt,
        &a.grid,
        a.budget,
    )?;
    if let Some(code) = cluster_mode(&work, &a.cluster, progress)? {
        return Ok(code);
    }
    let (table, failed) = sweep::run_here(&work, a.trial, a.force, progress)?;
    println!("{}", runner::plain_table(&table));
    if let Some(line) = sweep::selection_line(&table)? {
        println!("{line}");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The experiment (and, for a sweep, its trials) of a `run` or `sweep` command line; with no
/// kind, a sweep when the file has a `sweep:` block. `--slurm-opt k=v` is `--set slurm.k=v`,
/// kept out of what the jobs repeat.
fn work_of(
    kind: Option<Kind>,
    file: &Path,
    sets: &[String],
    slurm_opt: &[String],
    grid: &[String],
    budget: Option<usize>,
) -> Result<Work> {
    let mut all = sets.to_vec();
    for o in slurm_opt {
        if !o.contains('=') {
            anyhow::bail!("--slurm-opt `{o}`: expected key=value, e.g. partition=gpu");
        }
        all.push(format!("slurm.{o}"));
    }
    let exp = Experiment::load(file, &all)?;
    let kind = kind.unwrap_or(if exp.sweep.is_some() {
        Kind::Sweep
    } else {
        Kind::Run
    });
    let trials = match kind {
        Kind::Run => None,
        Kind::Sweep => {
            let mut spec = exp.sweep.clone().unwrap_or_default();
            let extra = sweep::grid_from_args(grid).map_err(anyhow::Error::msg)?;
            spec.params.extend(extra.params);
            if budget.is_some() {
                spec.budget = budget;
            }
            if spec.params.is_empty() {
                anyhow::bail!(
                    "{}: nothing to sweep: add a `sweep:` block or --grid key=v1,v2",
                    file.display()
                );
            }
            Some(sweep::trials(&spec))
        }
    };
    Ok(Work {
        exp,
        trials,
        invocation: emolab::cluster::Invocation {
            kind,
            file: std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()),
            sets: sets.to_vec(),
            grid: grid.to_vec(),
            budget,
        },
    })
}

/// `--slurm`, `--task`, `--collect` and `--prepare-only`; `None` when none was given.
fn cluster_mode(work: &Work, a: &ClusterArgs, progress: bool) -> Result<Option<ExitCode>> {
    let exp = &work.exp;
    let dir = work.exp_dir();
    if a.slurm {
        eprintln!("{}: numbering the runs (reading the corpus)", exp.name);
        let plan = work.plan(None)?;
        plan.write(&dir)?;
        let spec = exp.slurm.clone().unwrap_or_default();
        let sub = emolab::cluster::slurm::submit(
            &plan,
            &spec,
            &dir,
            exp.pipeline.encoder.is_some(),
            a.dry_run,
        )?;
        println!(
            "{}: {} runs: {} complete, {} pending or running in Slurm, {} to submit",
            exp.name,
            plan.tasks.len(),
            sub.complete,
            sub.active,
            sub.tasks.len()
        );
        println!("script      {}", sub.script.display());
        if a.dry_run {
            for c in &sub.commands {
                println!("would run   {c}");
            }
        } else if sub.tasks.is_empty() {
            println!("nothing submitted");
        } else {
            for (role, id) in &sub.jobs {
                println!("submitted   {role:?} job {id}");
            }
            println!(
                "logs        {}\nwatch with  emolab status {} --wait",
                emolab::cluster::slurm::slurm_dir(&dir).display(),
                exp.name
            );
        }
        return Ok(Some(ExitCode::SUCCESS));
    }
    if a.prepare_only {
        let n = emolab::cluster::prepare_only(work, progress)?;
        println!(
            "{}: features ready for {} clips",
            exp.name,
            n.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(Some(ExitCode::SUCCESS));
    }
    if let Some(i) = a.task {
        let out = emolab::cluster::run_task(work, i, progress)?;
        let failed: Vec<_> = out.iter().filter(|o| o.error.is_some()).collect();
        for o in &out {
            println!(
                "task {i}: {} {}",
                o.dir.display(),
                match (&o.error, o.skipped) {
                    (Some(e), _) => format!("failed: {e}"),
                    (None, true) => "already complete".into(),
                    (None, false) => "complete".into(),
                }
            );
        }
        return Ok(Some(if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }));
    }
    if a.collect {
        match &work.trials {
            Some(trials) => {
                let table = sweep::write_table(exp, trials)?;
                println!("{}", runner::plain_table(&table));
                if let Some(line) = sweep::selection_line(&table)? {
                    println!("{line}");
                }
            }
            None => {
                emolab::ensemble::write_seed_ensembles(&dir, &exp.seeds)?;
                let agg = runner::write_summary(exp)?;
                println!("{}", runner::plain_table(&runner::pretty(&agg)?));
            }
        }
        return Ok(Some(ExitCode::SUCCESS));
    }
    Ok(None)
}

/// `emolab status`.
fn status(a: StatusArgs) -> Result<ExitCode> {
    use emolab::cluster::status::{self, Status};
    // An experiment file's runs are looked for in --results when it is given.
    let file_sets: Vec<String> = a
        .results
        .iter()
        .map(|r| format!("results={}", r.display()))
        .collect();
    let results = a.results.unwrap_or_else(emolab::doctor::results_dir);
    // (experiment folder, plan).
    let mut targets: Vec<(PathBuf, Plan)> = Vec::new();
    let named = if a.experiments.is_empty() {
        let mut names: Vec<String> = std::fs::read_dir(&results)
            .map_err(|e| anyhow::anyhow!("cannot read results folder {}: {e}", results.display()))?
            .flatten()
            .filter(|e| e.path().is_dir() && e.file_name() != "report")
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    } else {
        a.experiments.clone()
    };
    for x in &named {
        let p = Path::new(x);
        let is_file =
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if is_file {
            let work = work_of(None, p, &file_sets, &[], &[], None)?;
            let dir = work.exp_dir();
            let plan = match Plan::read(&dir)? {
                Some(plan) => plan,
                None => work.plan(None)?,
            };
            targets.push((dir, plan));
        } else {
            let dir = results.join(x);
            if !dir.is_dir() {
                anyhow::bail!(
                    "{x}: neither an experiment file nor a folder in {}",
                    results.display()
                );
            }
            let plan = match Plan::read(&dir)? {
                Some(plan) => plan,
                None => emolab::cluster::plan::from_folders(&dir)?,
            };
            if plan.tasks.is_empty() {
                continue;
            }
            targets.push((dir, plan));
        }
    }
    let interval = std::time::Duration::from_secs_f64(a.interval.max(0.1));
    let mut last = String::new();
    let all: Vec<Status> = loop {
        let all = targets
            .iter()
            .map(|(dir, plan)| status::status(dir, plan))
            .collect::<Result<Vec<_>>>()?;
        if !a.wait || !all.iter().any(Status::active) {
            break all;
        }
        let line = all
            .iter()
            .map(|s| format!("{}: {}", s.experiment, s.counts()))
            .collect::<Vec<_>>()
            .join("; ");
        if line != last {
            eprintln!("{} {line}", chrono::Utc::now().format("%H:%M:%S"));
            last = line;
        }
        std::thread::sleep(interval);
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for s in &all {
            print!("{s}");
        }
    }
    Ok(if a.wait && !all.iter().all(Status::all_complete) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Clips from a manifest (.parquet) or by scanning a folder (problems are reported and skipped).
fn load_clips(
    input: &std::path::Path,
    format: Format,
    progress: bool,
) -> Result<Vec<corpus::ClipRecord>> {
    runner::clips_from(
        input,
        &ScanOptions {
            format,
            progress,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod help_tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every subcommand says what it is for (clap's own `--help` and
    /// `--version` aside); hidden plumbing is exempt.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                let empty = a
                    .get_help()
                    .map_or(true, |h| h.to_string().trim().is_empty());
                if empty {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_name() == "help" || s.is_hide_set() {
                    continue;
                }
                if s.get_about().is_none() {
                    missing.push(format!("{path} {} (no description)", s.get_name()));
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "emolab", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a description:\n{}",
            missing.join("\n")
        );
    }

    /// The README's command table and the CLI list the same top-level commands.
    #[test]
    fn readme_lists_every_command() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let cli: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(|s| s.get_name().to_string())
            .collect();
        let missing: Vec<&String> = cli
            .iter()
            .filter(|c| !readme.contains(&format!("| `emolab {c}")))
            .collect();
        assert!(
            missing.is_empty(),
            "commands missing from the README: {missing:?}"
        );
        let listed: std::collections::BTreeSet<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `emolab "))
            .filter_map(|l| l.split([' ', '`']).next())
            .collect();
        let unknown: Vec<&&str> = listed
            .iter()
            .filter(|c| !cli.iter().any(|k| k == **c))
            .collect();
        assert!(
            unknown.is_empty(),
            "README lists commands the CLI lacks: {unknown:?}"
        );
    }
}
