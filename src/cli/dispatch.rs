//! A parsed command handed to the library, and what it prints.

use std::process::ExitCode;

use anyhow::Result;

use emolab::cache::Cache;
use emolab::corpus::{self, ScanOptions};
use emolab::experiment::Experiment;
use emolab::features::{self, Pipeline};
use emolab::synth::{self, SynthOptions};
use emolab::work::{self, Kind, Work};

use super::commands::*;
use super::*;

pub fn run(cli: Cli) -> Result<ExitCode> {
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
            let cache = a.cache.unwrap_or_else(emolab::config::cache_dir);
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
                .unwrap_or_else(emolab::config::cache_dir);
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
            if work::is_fusion_file(&a.experiment) {
                return Ok(exit(work::run_fusion(&a.experiment, &a.sets)?));
            }
            let work = Work::of(
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
            return Ok(exit(work::run_here(
                &work.exp,
                Some(&work),
                a.force,
                progress,
            )?));
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
            return Ok(exit(work::run_here(&exp, None, a.force, progress)?));
        }
        Command::Evaluate {
            run,
            on,
            json,
            min_speaker_clips,
        } => {
            let (m, out, left_out) =
                emolab::infer::evaluate(&run, on.as_deref(), min_speaker_clips, progress)?;
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
            let inputs = emolab::infer::PredictInputs {
                files,
                speaker,
                enroll,
                min_clips: min_speaker_clips,
            };
            let preds = emolab::infer::predict_files(&run, &inputs)?;
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
                a.results.unwrap_or_else(emolab::config::results_dir),
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
