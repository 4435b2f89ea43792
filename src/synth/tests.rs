use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A fresh, unique scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "emolab-synth-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn opts(layout: Layout, out: &Path, actors: Option<usize>, seed: u64) -> SynthOptions {
    SynthOptions {
        layout,
        out: out.to_path_buf(),
        actors,
        seed,
        progress: false,
    }
}

/// `.wav` files in a directory: stem -> path.
fn wavs(dir: &Path) -> BTreeMap<String, PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect()
}

/// Samples of channel 0 as f32 in [-1, 1], and the spec.
fn read(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let scale = 1.0 / (1u32 << (spec.bits_per_sample - 1)) as f32;
    let ch = spec.channels as usize;
    let x: Vec<f32> = r
        .samples::<i32>()
        .step_by(ch)
        .map(|s| s.unwrap() as f32 * scale)
        .collect();
    (spec, x)
}

fn rms_db(x: &[f32]) -> f32 {
    let e = x.iter().map(|v| (v * v) as f64).sum::<f64>() / x.len() as f64;
    10.0 * (e.max(1e-20)).log10() as f32
}

/// Median F0 (Hz) over voiced frames by normalised autocorrelation, if any frame is voiced.
fn median_f0(x: &[f32], sr: u32) -> Option<f32> {
    let frame = (sr as usize) * 40 / 1000;
    let hop = (sr as usize) / 100;
    let (min_lag, max_lag) = (sr as usize / 420, sr as usize / 60);
    let energies: Vec<f32> = (0..x.len().saturating_sub(frame + max_lag))
        .step_by(hop)
        .map(|s| x[s..s + frame].iter().map(|v| v * v).sum())
        .collect();
    let mut sorted = energies.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let emax = sorted.get(sorted.len() * 9 / 10).copied().unwrap_or(0.0);
    let mut f0s = Vec::new();
    for (i, &e) in energies.iter().enumerate() {
        if e < 0.25 * emax {
            continue;
        }
        let s = i * hop;
        let a = &x[s..s + frame];
        let (mut best, mut best_lag) = (0.0f32, 0);
        for lag in min_lag..=max_lag {
            let b = &x[s + lag..s + lag + frame];
            let (mut ab, mut bb) = (0.0f32, 0.0f32);
            for (u, v) in a.iter().zip(b) {
                ab += u * v;
                bb += v * v;
            }
            let r = ab / (e * bb).sqrt().max(1e-12);
            if r > best {
                best = r;
                best_lag = lag;
            }
        }
        if best > 0.6 {
            f0s.push(sr as f32 / best_lag as f32);
        }
    }
    if f0s.is_empty() {
        return None;
    }
    f0s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Some(f0s[f0s.len() / 2])
}

fn shared_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora/crema-d-meta/SentenceFilenames.csv")
}

#[test]
fn layout_from_str() {
    assert_eq!("cremad".parse::<Layout>().unwrap(), Layout::Cremad);
    assert_eq!("RAVDESS".parse::<Layout>().unwrap(), Layout::Ravdess);
    assert_eq!("emodb".parse::<Layout>().unwrap(), Layout::Emodb);
    let err = "tess".parse::<Layout>().unwrap_err().to_string();
    for valid in ["cremad", "ravdess", "emodb"] {
        assert!(err.contains(valid), "{err}");
    }
}

#[test]
fn sentences_have_the_specified_syllable_counts() {
    let want = [
        ("IEO", 5),
        ("TIE", 8),
        ("IOM", 8),
        ("IWW", 8),
        ("TAI", 8),
        ("MTI", 8),
        ("IWL", 9),
        ("ITH", 10),
        ("DFA", 5),
        ("ITS", 6),
        ("TSI", 5),
        ("WSI", 8),
    ];
    for ((code, _, text), (wcode, n)) in cremad::SENTENCES.iter().zip(want) {
        assert_eq!(*code, wcode);
        assert_eq!(voice::Sentence::parse(text).syllables.len(), n, "{code}");
    }
    for text in layouts::all_phonetic_texts() {
        assert!(!voice::Sentence::parse(text).syllables.is_empty());
    }
}

#[test]
fn cremad_names_match_the_real_corpus() {
    let names = cremad_clip_names(91);
    assert_eq!(names.len(), 7442);
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        7442,
        "duplicates"
    );
    // The odd name of the real audio release, and the clip without audio, are there.
    assert!(names.iter().any(|n| n == "1040_ITH_SAD_X"));
    assert!(!names.iter().any(|n| n == "1040_ITH_SAD_XX"));
    assert!(names.iter().any(|n| n == "1076_MTI_SAD_XX"));
    // Level rule: levels only on IEO, never on NEU.
    for n in &names {
        let p: Vec<&str> = n.split('_').collect();
        assert_eq!(p.len(), 4, "{n}");
        let leveled = matches!(p[3], "LO" | "MD" | "HI");
        assert_eq!(leveled, p[1] == "IEO" && p[2] != "NEU", "{n}");
        if !leveled {
            assert!(p[3] == "XX" || n == "1040_ITH_SAD_X", "{n}");
        }
    }
    // Smaller and larger casts.
    assert_eq!(cremad_clip_names(1).len(), 82);
    assert_eq!(cremad_clip_names(2).len(), 163); // 1002_TIE_NEU_XX is missing
    let big = cremad_clip_names(93);
    assert_eq!(big.len(), 7442 + 2 * 82);
    assert_eq!(&big[..7442], &names[..]);
    assert!(big.iter().any(|n| n == "1093_WSI_DIS_XX"));

    let csv = shared_csv();
    let Ok(text) = fs::read_to_string(&csv) else {
        eprintln!(
            "SKIP comparison with the real clip list: {} not found",
            csv.display()
        );
        return;
    };
    let real: Vec<String> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .nth(1)
                .unwrap()
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .collect();
    assert_eq!(real.len(), 7442);
    // The CSV spells 1040_ITH_SAD_X with XX; otherwise identical, in the same order.
    let ours: Vec<String> = names
        .iter()
        .map(|n| {
            if n == "1040_ITH_SAD_X" {
                "1040_ITH_SAD_XX".to_string()
            } else {
                n.clone()
            }
        })
        .collect();
    let a: BTreeSet<_> = ours.iter().collect();
    let b: BTreeSet<_> = real.iter().collect();
    assert_eq!(a.difference(&b).count(), 0, "{:?}", a.difference(&b));
    assert_eq!(b.difference(&a).count(), 0, "{:?}", b.difference(&a));
    assert_eq!(ours, real, "order differs from SentenceFilenames.csv");
}

#[test]
fn cremad_demographics_rows() {
    let real = cremad::real_demographics().unwrap();
    assert_eq!(real.len(), 91);
    assert_eq!(real[0].actor, 1001);
    assert_eq!(real[90].actor, 1091);
    let d = cremad::demographics(93, 5).unwrap();
    assert_eq!(d.len(), 93);
    assert!(d[91].line.starts_with("1092,"), "{}", d[91].line);
    assert!(d[91].line.ends_with(",\"Male\",\"Unknown\",\"Unknown\""));
    assert!(d[92].line.ends_with(",\"Female\",\"Unknown\",\"Unknown\""));
    assert!((20..=74).contains(&d[92].age));
    // With the real cast the file is the real one.
    let plan = cremad::plan(None, 1).unwrap();
    let (name, csv) = &plan.extra_files[0];
    assert_eq!(name, "VideoDemographics.csv");
    let embedded = include_str!("cremad_demographics.csv");
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        embedded.lines().collect::<Vec<_>>()
    );
}

#[test]
fn determinism_same_seed_same_bytes() {
    let (a, b, c) = (
        TempDir::new("det-a"),
        TempDir::new("det-b"),
        TempDir::new("det-c"),
    );
    generate(&opts(Layout::Cremad, &a.0, Some(1), 7)).unwrap();
    // Different thread count, same seed.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| generate(&opts(Layout::Cremad, &b.0, Some(1), 7)).unwrap());
    generate(&opts(Layout::Cremad, &c.0, Some(1), 8)).unwrap();
    let (wa, wb, wc) = (wavs(&a.0), wavs(&b.0), wavs(&c.0));
    assert_eq!(wa.len(), 82);
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    let mut differing = 0;
    for (name, pa) in &wa {
        let ba = fs::read(pa).unwrap();
        assert_eq!(
            ba,
            fs::read(&wb[name]).unwrap(),
            "{name} differs with the same seed"
        );
        if ba != fs::read(&wc[name]).unwrap() {
            differing += 1;
        }
    }
    assert_eq!(
        differing,
        wa.len(),
        "a different seed must change every clip"
    );
    // A clip does not depend on the corpus size.
    let d = TempDir::new("det-d");
    generate(&opts(Layout::Cremad, &d.0, Some(2), 7)).unwrap();
    let name = "1001_DFA_ANG_XX";
    assert_eq!(
        fs::read(&wa[name]).unwrap(),
        fs::read(d.0.join(format!("{name}.wav"))).unwrap()
    );
}

#[test]
fn small_cremad_corpus_is_well_formed_and_emotions_are_real() {
    let dir = TempDir::new("cremad2");
    let report = generate(&opts(Layout::Cremad, &dir.0, Some(2), 42)).unwrap();
    let names = cremad_clip_names(2);
    assert_eq!(report.clips_written, names.len());
    assert_eq!(report.clips_skipped_existing, 0);
    assert_eq!(report.speakers, 2);
    let files = wavs(&dir.0);
    assert_eq!(
        files.keys().cloned().collect::<BTreeSet<_>>(),
        names.iter().cloned().collect::<BTreeSet<_>>()
    );
    let entries: Vec<_> = fs::read_dir(&dir.0).unwrap().collect();
    assert_eq!(entries.len(), names.len() + 1, "stray files (tmp?)");

    let demo = fs::read_to_string(dir.0.join("VideoDemographics.csv")).unwrap();
    let lines: Vec<&str> = demo.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        "\"ActorID\",\"Age\",\"Sex\",\"Race\",\"Ethnicity\""
    );
    assert!(lines[1].starts_with("1001,") && lines[2].starts_with("1002,"));

    let mut f0: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    let mut level: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    let mut peaks: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for (name, path) in &files {
        let (spec, x) = read(path);
        assert_eq!(spec.sample_rate, 16_000, "{name}");
        assert_eq!(spec.channels, 1, "{name}");
        assert_eq!(spec.bits_per_sample, 16, "{name}");
        assert_eq!(spec.sample_format, hound::SampleFormat::Int, "{name}");
        let secs = x.len() as f32 / 16_000.0;
        assert!((1.2..=4.5).contains(&secs), "{name}: {secs} s");
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak > 0.05 && peak < 1.0, "{name}: peak {peak}");
        assert!(x.iter().all(|v| v.is_finite()));
        // Leading near-silence.
        let lead = &x[..1600];
        assert!(rms_db(lead) < -40.0, "{name}: lead {}", rms_db(lead));
        let emo = name.split('_').nth(2).unwrap();
        let hz = median_f0(&x, 16_000).unwrap_or_else(|| panic!("{name}: no voiced frame"));
        f0.entry(emo).or_default().push(hz.ln());
        level.entry(emo).or_default().push(rms_db(&x));
        peaks.entry(emo).or_default().push(20.0 * peak.log10());
    }
    let mean = |m: &BTreeMap<&str, Vec<f32>>, k: &str| {
        let v = &m[k];
        v.iter().sum::<f32>() / v.len() as f32
    };
    let hz = |k: &str| mean(&f0, k).exp();
    for emo in ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"] {
        eprintln!(
            "{emo}: F0 {:6.1} Hz  RMS {:6.1} dB  peak {:5.1} dBFS  (n={})",
            hz(emo),
            mean(&level, emo),
            mean(&peaks, emo),
            f0[emo].len()
        );
    }
    for hi in ["ANG", "HAP", "FEA"] {
        assert!(
            hz(hi) > hz("NEU"),
            "F0 {hi} {} <= NEU {}",
            hz(hi),
            hz("NEU")
        );
    }
    assert!(
        hz("NEU") > hz("SAD"),
        "F0 NEU {} <= SAD {}",
        hz("NEU"),
        hz("SAD")
    );
    assert!(mean(&level, "ANG") > mean(&level, "SAD") + 3.0);
    assert!(mean(&level, "ANG") > mean(&level, "NEU"));
    assert!(mean(&level, "NEU") > mean(&level, "SAD"));
}

#[test]
fn speakers_differ_by_sex() {
    // 1001 is male, 1002 female in the real demographics.
    let dir = TempDir::new("sex");
    generate(&opts(Layout::Cremad, &dir.0, Some(2), 3)).unwrap();
    let f = |n: &str| {
        let (_, x) = read(&dir.0.join(format!("{n}.wav")));
        median_f0(&x, 16_000).unwrap()
    };
    let male = f("1001_DFA_NEU_XX");
    let female = f("1002_DFA_NEU_XX");
    assert!(
        male < 170.0 && female > 140.0 && female > male * 1.3,
        "{male} {female}"
    );
}

#[test]
fn ravdess_layout() {
    let dir = TempDir::new("ravdess");
    let report = generate(&opts(Layout::Ravdess, &dir.0, None, 1)).unwrap();
    assert_eq!(report.clips_written, 122);
    assert_eq!(report.speakers, 4);
    let files = wavs(&dir.0);
    assert_eq!(files.len(), 122);
    let (mut stereo, mut b24, mut songs) = (Vec::new(), Vec::new(), 0);
    for (name, path) in &files {
        let f: Vec<u32> = name.split('-').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f.len(), 7, "{name}");
        assert_eq!(f[0], 3);
        assert!((1..=8).contains(&f[2]) && (1..=2).contains(&f[3]) && (1..=4).contains(&f[6]));
        assert!(!(f[2] == 1 && f[3] == 2), "{name}: strong neutral");
        if f[1] == 2 {
            songs += 1;
        }
        let spec = hound::WavReader::open(path).unwrap().spec();
        assert_eq!(spec.sample_rate, 48_000);
        if spec.channels == 2 {
            stereo.push(name.clone());
        }
        if spec.bits_per_sample == 24 {
            b24.push(name.clone());
        }
        let (_, x) = read(path);
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak > 0.05 && peak < 1.0, "{name}: {peak}");
    }
    assert_eq!(songs, 2);
    assert_eq!(stereo, vec![layouts::RAVDESS_STEREO.to_string()]);
    assert_eq!(b24, vec![layouts::RAVDESS_24BIT.to_string()]);
    assert!(!dir.0.join("VideoDemographics.csv").exists());
}

#[test]
fn emodb_layout() {
    let dir = TempDir::new("emodb");
    let report = generate(&opts(Layout::Emodb, &dir.0, None, 1)).unwrap();
    assert_eq!(report.clips_written, 4 * 5 * 7);
    let files = wavs(&dir.0);
    assert_eq!(files.len(), 140);
    let speakers: BTreeSet<&str> = files.keys().map(|n| &n[..2]).collect();
    assert_eq!(speakers, ["03", "08", "10", "16"].into_iter().collect());
    for (name, path) in &files {
        assert_eq!(name.len(), 7, "{name}");
        assert!(
            "WLEAFTN".contains(&name[5..6]) && name.ends_with('a'),
            "{name}"
        );
        let spec = hound::WavReader::open(path).unwrap().spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
    }
    let dir2 = TempDir::new("emodb2");
    let r2 = generate(&opts(Layout::Emodb, &dir2.0, Some(2), 1)).unwrap();
    assert_eq!(r2.clips_written, 2 * 5 * 7);
    let speakers: BTreeSet<String> = wavs(&dir2.0).keys().map(|n| n[..2].to_string()).collect();
    assert_eq!(
        speakers,
        ["03", "08"].into_iter().map(String::from).collect()
    );
    assert!(generate(&opts(Layout::Emodb, &dir2.0, Some(11), 1)).is_err());
}

#[test]
fn resume_writes_only_missing_clips() {
    let dir = TempDir::new("resume");
    let o = opts(Layout::Cremad, &dir.0, Some(1), 11);
    let first = generate(&o).unwrap();
    assert_eq!(first.clips_written, 82);
    let victim = dir.0.join("1001_ITS_FEA_XX.wav");
    let before = fs::read(&victim).unwrap();
    fs::remove_file(&victim).unwrap();
    // A stale temporary file from a killed run does not count as done.
    fs::write(dir.0.join("1001_ITS_FEA_XX.wav.tmp"), b"partial").unwrap();
    let second = generate(&o).unwrap();
    assert_eq!(second.clips_written, 1);
    assert_eq!(second.clips_skipped_existing, 81);
    assert_eq!(fs::read(&victim).unwrap(), before);
    assert!(!dir.0.join("1001_ITS_FEA_XX.wav.tmp").exists());
}
