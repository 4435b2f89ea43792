//! The command line: its definitions (clap: every command, its arguments, help and examples),
//! the dispatch of a parsed command to the library ([`dispatch`]) and what each command prints
//! ([`commands`]). No logic of its own: every stage lives in the library.

pub mod commands;
pub mod dispatch;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use emolab::corpus::Format;
use emolab::synth::Layout;

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
pub struct Cli {
    /// Hide progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum BenchCommand {
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
pub struct RunArgs {
    /// Experiment file (YAML).
    pub experiment: PathBuf,
    /// Override a key: key.path=value (value in YAML), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Recompute runs that are already complete.
    #[arg(long, conflicts_with = "slurm")]
    pub force: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Slurm submission, and the three things its jobs run.
#[derive(Args)]
pub struct ClusterArgs {
    /// Submit to Slurm: a prepare job (features), a job array with one task per run that is not
    /// complete and not already queued, and a collect job (summary).
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: write the job script and print the sbatch commands, submit nothing.
    #[arg(long, requires = "slurm")]
    pub dry_run: bool,
    /// With --slurm: a key of the `slurm:` block, e.g. partition=gpu, gres=gpu:1,
    /// time=04:00:00, cpus=8, throttle=10 (repeatable).
    #[arg(long = "slurm-opt", value_name = "KEY=VALUE", requires = "slurm")]
    pub slurm_opt: Vec<String>,
    /// Internal (what Slurm array task I runs): only entry I of results/<name>/plan.json.
    #[arg(long, value_name = "I", hide = true, conflicts_with_all = ["slurm", "collect", "prepare_only"])]
    pub task: Option<usize>,
    /// Write the summary (and seed ensembles or sweep table) from the complete runs (what the
    /// collect job runs).
    #[arg(long, hide = true, conflicts_with_all = ["slurm", "prepare_only"])]
    pub collect: bool,
    /// Only scan the corpus and compute missing features (what the prepare job runs).
    #[arg(long, hide = true, conflicts_with = "slurm")]
    pub prepare_only: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Experiment files (YAML) or experiment names under the results folder; none: every
    /// experiment there.
    #[arg(value_name = "EXPERIMENT")]
    pub experiments: Vec<String>,
    /// Results folder, for names and for experiment files (default: $EMOLAB_RESULTS, or
    /// results, or the file's `results:`).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Block until no run is pending or running; exit non-zero unless every run is complete.
    #[arg(long)]
    pub wait: bool,
    /// Seconds between checks with --wait.
    #[arg(long, default_value_t = 10.0)]
    pub interval: f64,
    /// Print one JSON array, one object per experiment.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Experiment file (YAML) describing the run.
    #[arg(long)]
    pub config: PathBuf,
    /// Which fold of the protocol.
    #[arg(long, default_value_t = 0)]
    pub fold: usize,
    /// Seed (default: the file's first seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a key of the experiment file (repeatable), e.g. `train.lr=5e-4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Train again even if the run folder holds a complete run.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Experiments (folder names in the results folder); none: all of them.
    #[arg(value_name = "EXPERIMENT", conflicts_with = "all")]
    pub experiments: Vec<String>,
    /// Every experiment in the results folder (the default when none is named).
    #[arg(long)]
    pub all: bool,
    /// Results folder (default: $EMOLAB_RESULTS or results).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Output folder (default: <results>/report).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Bootstrap resamples of the paired comparisons.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap (the same runs and seed give the same report).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args)]
pub struct SweepArgs {
    /// Experiment file (YAML) with a `sweep:` section, or one to sweep with --grid.
    pub experiment: PathBuf,
    /// key.path=v1,v2,... (repeatable; adds to or replaces the file's sweep params).
    #[arg(long, value_name = "KEY=V1,V2")]
    pub grid: Vec<String>,
    /// Random search: run this many trials drawn from the space.
    #[arg(long)]
    pub budget: Option<usize>,
    /// Override a key of the experiment file for every trial (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Run only trial I (0-based), every fold and seed of it.
    #[arg(long, conflicts_with = "slurm")]
    pub trial: Option<usize>,
    /// Train again the trials' runs that are already complete.
    #[arg(long, conflicts_with = "slurm")]
    pub force: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Args)]
pub struct FeaturizeArgs {
    /// Corpus folder (scanned first), or a manifest (.parquet) from `emolab corpus scan`.
    pub input: PathBuf,
    /// Feature pipeline (YAML).
    #[arg(long)]
    pub pipeline: PathBuf,
    /// Cache root folder.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Naming convention when INPUT is a folder.
    #[arg(long, default_value = "auto")]
    pub format: Format,
}

#[derive(Subcommand)]
pub enum CacheCommand {
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
pub enum CorpusCommand {
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
pub struct ScanArgs {
    /// Corpus folder, or a CSV manifest.
    pub input: PathBuf,
    /// Naming convention.
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// Write the manifest here (Parquet).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CREMA-D VideoDemographics.csv (default: next to the audio, when present).
    #[arg(long)]
    pub demographics: Option<PathBuf>,
    /// Folder format: regex whose first group, matched on the file name, is the speaker.
    #[arg(long)]
    pub speaker_pattern: Option<regex::Regex>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SynthArgs {
    /// cremad, ravdess or emodb.
    #[arg(long, default_value = "cremad")]
    pub layout: Layout,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of actors (cremad default 91 = the full corpus).
    #[arg(long)]
    pub actors: Option<usize>,
    /// Random seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
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
