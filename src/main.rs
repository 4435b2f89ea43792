//! The `emolab` command line: wires the library stages together; no logic of its own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use emolab::cache::Cache;
use emolab::corpus::{self, Format, ScanOptions};
use emolab::features::{self, Pipeline};
use emolab::synth::{self, Layout, SynthOptions};

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
  emolab corpus scan ../shared/corpora/emodb/wav --json
  emolab featurize --pipeline pipelines/logmel64.yaml data/synth-cremad"
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
  emolab corpus scan ../shared/corpora/emodb/wav --json"
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
  emolab featurize --pipeline pipelines/mfcc40.yaml --cache /scratch/cache ../shared/corpora/emodb/wav

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
  emolab cache info --pipeline pipelines/logmel128.yaml --read-bench")]
    Info {
        #[arg(long)]
        pipeline: PathBuf,
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
  emolab corpus scan ../shared/corpora/emodb/wav --format emodb --json
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
            cache,
            read_bench,
        }) => {
            let p = Pipeline::load(&pipeline)?;
            let root = cache.unwrap_or_else(emolab::doctor::cache_dir);
            let c = Cache::open(&root, &p.feature_key())?;
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
    }
    Ok(ExitCode::SUCCESS)
}

/// Clips from a manifest (.parquet) or by scanning a folder (problems are reported and skipped).
fn load_clips(
    input: &std::path::Path,
    format: Format,
    progress: bool,
) -> Result<Vec<corpus::ClipRecord>> {
    if input.extension().is_some_and(|e| e == "parquet") {
        return corpus::read_manifest(input);
    }
    let scan = corpus::scan(
        input,
        &ScanOptions {
            format,
            progress,
            ..Default::default()
        },
    )?;
    if !scan.problems.is_empty() {
        eprintln!(
            "scan: {} files skipped (run `emolab corpus scan {}` for the list)",
            scan.problems.len(),
            input.display()
        );
    }
    Ok(scan.clips)
}
