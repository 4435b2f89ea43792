//! Corpus scanning end to end: generated corpora, broken files, CSV/folder formats, the real
//! EmoDB copy, and the `emolab corpus scan` command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use emolab::corpus::{self, Format, ScanOptions};
use emolab::synth::{self, Layout, SynthOptions};

fn synth_corpus(layout: Layout, dir: &Path, actors: Option<usize>) -> synth::SynthReport {
    synth::generate(&SynthOptions {
        layout,
        out: dir.to_path_buf(),
        actors,
        seed: 3,
        progress: false,
    })
    .unwrap()
}

fn scan(dir: &Path, format: Format) -> corpus::Scan {
    corpus::scan(
        dir,
        &ScanOptions {
            format,
            ..Default::default()
        },
    )
    .unwrap()
}

fn shared_corpus(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora")
        .join(rel);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} not found (the shared corpora are absent)",
            p.display()
        );
        None
    }
}

fn write_wav(path: &Path, samples: &[f32], sr: u32) {
    emolab::audio::write_wav_i16(path, samples, sr).unwrap();
}

fn tone(n: usize) -> Vec<f32> {
    (0..n).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect()
}

#[test]
fn generated_cremad_scans_to_what_was_generated() {
    let dir = tempfile::tempdir().unwrap();
    let rep = synth_corpus(Layout::Cremad, dir.path(), Some(3));
    let names = synth::cremad_clip_names(3);
    assert_eq!(rep.clips_written, names.len());
    let s = scan(dir.path(), Format::Auto);
    assert_eq!(s.format, Format::Cremad, "auto-detects CREMA-D");
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.clips.len(), names.len());
    let ids: BTreeSet<_> = s.clips.iter().map(|c| c.clip_id.clone()).collect();
    assert_eq!(ids, names.into_iter().collect());
    let sum = s.summary();
    assert_eq!(sum.speakers, 3);
    assert_eq!(sum.emotions.len(), 6);
    assert_eq!(sum.sentences, 12);
    assert_eq!(sum.sample_rates.keys().collect::<Vec<_>>(), vec![&16000]);
    // Demographics joined from the generated VideoDemographics.csv (real rows for 1001-1003).
    let c = s
        .clips
        .iter()
        .find(|c| c.speaker.as_deref() == Some("1001"))
        .unwrap();
    assert_eq!((c.sex.as_deref(), c.age), (Some("male"), Some(51)));
    let c = s
        .clips
        .iter()
        .find(|c| c.speaker.as_deref() == Some("1002"))
        .unwrap();
    assert_eq!(c.sex.as_deref(), Some("female"));
    // Levels only on IEO.
    for c in &s.clips {
        assert_eq!(
            c.intensity.is_some(),
            c.sentence.as_deref() == Some("IEO") && c.emotion != "neutral",
            "{}",
            c.clip_id
        );
    }
    assert!(s.clips.iter().all(|c| (1.0..5.0).contains(&c.duration_s)));
    // The manifest round-trips through Parquet.
    let m = dir.path().join("m.parquet");
    corpus::write_manifest(&m, &s.clips).unwrap();
    assert_eq!(corpus::read_manifest(&m).unwrap(), s.clips);
}

#[test]
fn ravdess_and_emodb_layouts_exercise_their_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let rav = dir.path().join("rav");
    let rep = synth_corpus(Layout::Ravdess, &rav, None);
    let s = scan(&rav, Format::Auto);
    assert_eq!(s.format, Format::Ravdess);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.clips.len(), rep.clips_written);
    let sum = s.summary();
    assert_eq!(sum.channels.get(&2), Some(&1), "one stereo file");
    assert_eq!(sum.bits.get(&24), Some(&1), "one 24-bit file");
    assert_eq!(sum.sample_rates.keys().collect::<Vec<_>>(), vec![&48000]);
    assert_eq!(sum.emotions.len(), 8);
    assert!(s
        .clips
        .iter()
        .any(|c| c.vocal_channel.as_deref() == Some("song")));
    assert!(s.clips.iter().all(|c| c.sex.as_deref()
        == Some(
            if c.speaker.as_ref().unwrap().parse::<u32>().unwrap() % 2 == 1 {
                "male"
            } else {
                "female"
            }
        )));

    let emo = dir.path().join("emo");
    let rep = synth_corpus(Layout::Emodb, &emo, None);
    let s = scan(&emo, Format::Auto);
    assert_eq!(s.format, Format::Emodb);
    assert_eq!(s.clips.len(), rep.clips_written);
    assert_eq!(s.summary().emotions.len(), 7);
    assert!(s.clips.iter().all(|c| c.sex.is_some()));
}

#[test]
fn broken_files_are_reported_with_reasons_and_the_rest_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = [
        "1001_DFA_ANG_XX",
        "1001_IEO_HAP_HI",
        "1002_TSI_SAD_XX",
        "1040_ITH_SAD_X",
    ];
    for g in good {
        write_wav(&d.join(format!("{g}.wav")), &tone(16000), 16000);
    }
    std::fs::write(d.join("1003_DFA_ANG_XX.wav"), b"this is not audio at all").unwrap();
    write_wav(&d.join("1003_DFA_DIS_XX.wav"), &tone(8000), 16000);
    let bytes = std::fs::read(d.join("1003_DFA_DIS_XX.wav")).unwrap();
    std::fs::write(d.join("1003_DFA_DIS_XX.wav"), &bytes[..bytes.len() / 2]).unwrap();
    write_wav(&d.join("1003_DFA_FEA_XX.wav"), &[], 16000);
    write_wav(&d.join("1003_DFA_HAP_XX.wav"), &vec![0.0; 16000], 16000);
    write_wav(&d.join("1003_DFA_XYZ_XX.wav"), &tone(16000), 16000);
    write_wav(&d.join("recording_final.wav"), &tone(16000), 16000);
    std::fs::write(d.join("1003_DFA_NEU_XX.mp3"), b"ID3").unwrap();
    std::fs::write(d.join("notes.txt"), b"ignored").unwrap();

    let s = scan(d, Format::Auto);
    assert_eq!(s.format, Format::Cremad);
    let ids: Vec<_> = s.clips.iter().map(|c| c.clip_id.as_str()).collect();
    assert_eq!(ids.len(), good.len(), "{ids:?}");
    let reason = |name: &str| {
        s.problems
            .iter()
            .find(|p| p.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {:?}", s.problems))
            .reason
            .clone()
    };
    assert!(reason("1003_DFA_ANG_XX.wav").contains("not a WAV"));
    assert!(reason("1003_DFA_DIS_XX.wav").contains("truncated"));
    assert!(reason("1003_DFA_FEA_XX.wav").contains("empty"));
    assert!(reason("1003_DFA_HAP_XX.wav").contains("silent"));
    assert!(reason("1003_DFA_XYZ_XX.wav").contains("emotion code"));
    assert!(reason("recording_final.wav").contains("not CREMA-D"));
    assert!(reason("1003_DFA_NEU_XX.mp3").contains("unsupported audio format"));
    assert_eq!(s.problems.len(), 7);
    assert_eq!(s.ignored, 1);
}

#[test]
fn fatal_only_for_unreadable_or_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let err = corpus::scan(&dir.path().join("nope"), &ScanOptions::default()).unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot read corpus folder"),
        "{err:#}"
    );
    std::fs::write(dir.path().join("readme.txt"), b"x").unwrap();
    let err = corpus::scan(dir.path(), &ScanOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("no audio files"), "{err:#}");
}

#[test]
fn folder_per_label_and_csv_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (label, spk) in [
        ("angry", "s1"),
        ("Happy", "s2"),
        ("neutral", "s1"),
        ("contempt", "s3"),
    ] {
        std::fs::create_dir_all(d.join(label)).unwrap();
        write_wav(
            &d.join(label).join(format!("{spk}_take1.wav")),
            &tone(4000),
            8000,
        );
    }
    let s = corpus::scan(
        d,
        &ScanOptions {
            format: Format::Folder,
            speaker_pattern: Some(regex::Regex::new(r"^(\w+?)_").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.clips.len(), 3);
    assert_eq!(s.problems.len(), 1);
    assert!(s.problems[0]
        .reason
        .contains("unknown label folder 'contempt'"));
    let happy = s.clips.iter().find(|c| c.emotion == "happiness").unwrap();
    assert_eq!(happy.speaker.as_deref(), Some("s2"));
    // Auto-detection falls back to label folders.
    assert_eq!(scan(d, Format::Auto).format, Format::Folder);

    let csv = d.join("labels.csv");
    std::fs::write(
        &csv,
        "path,label,speaker\nangry/s1_take1.wav,anger,s1\nHappy/s2_take1.wav,joy,s2\nmissing.wav,sad,s9\nneutral/s1_take1.wav,meh,s1\n",
    )
    .unwrap();
    let s = scan(&csv, Format::Auto);
    assert_eq!(s.format, Format::Csv);
    assert_eq!(s.clips.len(), 2);
    assert_eq!(s.problems.len(), 2);
    assert!(s
        .problems
        .iter()
        .any(|p| p.reason.contains("cannot read file")));
    assert!(s
        .problems
        .iter()
        .any(|p| p.reason.contains("unknown label 'meh'")));
}

#[test]
fn real_emodb_copy_scans_completely() {
    let Some(dir) = shared_corpus("emodb/wav") else {
        return;
    };
    let s = scan(&dir, Format::Auto);
    assert_eq!(s.format, Format::Emodb);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let sum = s.summary();
    assert_eq!(sum.clips, 535);
    assert_eq!(sum.speakers, 10);
    assert_eq!(sum.emotions.len(), 7);
    assert_eq!(sum.speakers_by_sex.get("female"), Some(&5));
    assert_eq!(sum.emotions.get("anger"), Some(&127));
    assert_eq!(sum.sample_rates.keys().collect::<Vec<_>>(), vec![&22050]);
    assert!((sum.duration_s.min - 2.0).abs() < 1e-9 && (sum.duration_s.max - 2.0).abs() < 1e-9);
}

#[test]
fn cli_scan_prints_json_summary_and_writes_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("corpus");
    synth_corpus(Layout::Emodb, &d, Some(2));
    std::fs::write(d.join("99x99Qz.wav"), b"garbage").unwrap();
    let out = dir.path().join("m.parquet");
    let o = Command::new(env!("CARGO_BIN_EXE_emolab"))
        .args(["corpus", "scan", "--json", "--out"])
        .arg(&out)
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let clips = j["clips"].as_u64().unwrap();
    assert!(clips > 0);
    assert_eq!(j["speakers"], 2);
    assert_eq!(j["emotions"].as_object().unwrap().len(), 7);
    assert_eq!(
        j["problems"][0]["path"].as_str().unwrap(),
        d.join("99x99Qz.wav").display().to_string()
    );
    assert!(!j["problems"][0]["reason"].as_str().unwrap().is_empty());
    // Polars reads the manifest back.
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height() as u64, clips);

    let o = Command::new(env!("CARGO_BIN_EXE_emolab"))
        .args(["corpus", "scan"])
        .arg(dir.path().join("absent"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read corpus folder"));
}

#[test]
fn doctor_reports_versions_and_device() {
    let o = Command::new(env!("CARGO_BIN_EXE_emolab"))
        .args(["doctor", "--json"])
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tch"], "0.24.0");
    assert!(j["libtorch"].as_str().unwrap().starts_with("2.11.0"), "{j}");
    let dev = j["device"].as_str().unwrap();
    assert!(dev == "cpu" || dev.starts_with("cuda"), "{dev}");
    assert!(j["torch_threads"].as_i64().unwrap() >= 1);
}

/// Byte-identical clips: `corpus scan` lists them and flags copies filed under another speaker
/// or label; an experiment keeps one copy of each content, so no audio is on both sides of a
/// speaker-independent split, and every run's meta.json says how many copies were left out.
#[test]
fn duplicate_content_is_reported_and_kept_on_one_side_of_every_split() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c");
    synth_corpus(Layout::Cremad, &c, Some(4));
    // One clip copied into another actor's name, one onto another label of its own actor.
    std::fs::copy(c.join("1001_DFA_ANG_XX.wav"), c.join("1002_DFA_ANG_XX.wav")).unwrap();
    std::fs::copy(c.join("1003_DFA_HAP_XX.wav"), c.join("1003_DFA_SAD_XX.wav")).unwrap();
    let s = scan(&c, Format::Cremad).summary();
    assert_eq!(s.duplicates.groups.len(), 2);
    assert_eq!(
        (s.duplicates.cross_speaker(), s.duplicates.cross_label()),
        (1, 1)
    );
    let text = s.to_string();
    assert!(
        text.contains("DIFFERENT SPEAKERS:") && text.contains("1002_DFA_ANG_XX.wav"),
        "{text}"
    );
    assert!(
        text.contains("DIFFERENT LABELS:") && text.contains("1003_DFA_SAD_XX.wav"),
        "{text}"
    );
    assert!(text.contains("WARNING"), "{text}");

    let exp = dir.path().join("e.yaml");
    std::fs::write(
        &exp,
        format!(
            "corpus: {{path: {}, format: cremad}}\npipeline: {{file: {}/pipelines/logmel64.yaml, augment: []}}\nprotocol: {{kind: speaker_kfold, k: 2, val_fraction: 0.25}}\nmodel: {{preset: cnn_v1}}\nseeds: [0]\ncache: {}\n",
            c.display(),
            env!("CARGO_MANIFEST_DIR"),
            dir.path().join("cache").display()
        ),
    )
    .unwrap();
    let exp = emolab::experiment::Experiment::load(&exp, &[]).unwrap();
    let prep = emolab::runner::prepare(&exp, false).unwrap();
    assert_eq!(prep.duplicates.extra_copies(), 2);
    assert_eq!(prep.skipped.get("duplicate content"), Some(&2));
    let hashes: BTreeSet<&str> = prep.clips.iter().map(|c| c.content_hash.as_str()).collect();
    assert_eq!(hashes.len(), prep.clips.len(), "one clip per content");
    for fold in emolab::runner::folds_for(&exp, &prep, 0).unwrap() {
        let side = |idx: &[usize]| -> BTreeSet<&str> {
            idx.iter()
                .map(|&i| prep.clips[i].content_hash.as_str())
                .collect()
        };
        assert!(side(&fold.train).is_disjoint(&side(&fold.test)));
        assert!(side(&fold.val).is_disjoint(&side(&fold.test)));
    }
}

/// A RAVDESS file in another actor's folder is kept (the file name decides) and reported; a WAV
/// whose header says 0 Hz, and one in a codec emolab does not read, are reported with the reason.
#[test]
fn folder_mismatches_zero_rates_and_codecs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("r");
    synth_corpus(Layout::Ravdess, &c, Some(2));
    std::fs::create_dir_all(c.join("Actor_01")).unwrap();
    let moved = "03-01-05-01-02-01-02.wav";
    std::fs::rename(c.join(moved), c.join("Actor_01").join(moved)).unwrap();
    // Patch two copies' fmt chunks: sample rate 0, and the MS-ADPCM format tag.
    let good = std::fs::read(c.join("03-01-06-02-02-01-01.wav")).unwrap();
    let fmt = good.windows(4).position(|w| w == b"fmt ").unwrap() + 8;
    let mut zero = good.clone();
    zero[fmt + 4..fmt + 8].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(c.join("03-01-06-02-02-02-01.wav"), zero).unwrap();
    let mut adpcm = good;
    adpcm[fmt..fmt + 2].copy_from_slice(&2u16.to_le_bytes());
    std::fs::write(c.join("03-01-07-02-02-02-01.wav"), adpcm).unwrap();
    let s = scan(&c, Format::Ravdess);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].reason.contains("Actor_01") && s.warnings[0].reason.contains("actor 02"));
    assert!(
        s.clips.iter().any(|k| k.path.ends_with(moved)),
        "the moved clip is kept"
    );
    let reason = |name: &str| {
        s.problems
            .iter()
            .find(|p| p.path.ends_with(name))
            .map(|p| p.reason.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("03-01-06-02-02-02-01.wav").contains("sample rate 0"),
        "{:?}",
        s.problems
    );
    assert!(
        reason("03-01-07-02-02-02-01.wav").contains("MS-ADPCM"),
        "{:?}",
        s.problems
    );
}
