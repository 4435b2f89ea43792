//! `emolab predict RUN long.wav --window … --hop …`: the emotion timeline of a recording made by
//! concatenating clips of known emotions, with a silent gap between them.

mod common;

use std::path::{Path, PathBuf};

use common::emolab;
use polars::prelude::*;

const RATE: u32 = 16000;
/// Window seconds.
const WIN: f64 = 2.56;

/// 16-bit samples of a corpus clip.
fn samples(p: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(p).unwrap();
    assert_eq!(r.spec().sample_rate, RATE);
    r.samples::<i16>().map(|x| x.unwrap()).collect()
}

fn write(p: &Path, s: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(p, spec).unwrap();
    for &x in s {
        w.write_sample(x).unwrap();
    }
    w.finalize().unwrap();
}

fn exp(dir: &Path, corpus: &Path, name: &str) -> PathBuf {
    common::write_exp(
        dir,
        name,
        corpus,
        "protocol: {kind: speaker_kfold, k: 2, val_fraction: 0.25}",
        "folds: [0]",
    )
}

#[test]
fn a_timeline_of_concatenated_clips_follows_their_emotions() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("synth");
    emolab::synth::generate(&emolab::synth::SynthOptions {
        layout: emolab::synth::Layout::Cremad,
        out: corpus.clone(),
        actors: Some(6),
        seed: 5,
        progress: false,
    })
    .unwrap();
    let file = exp(tmp.path(), &corpus, "tl");
    let (ok, out, err) = emolab(&[
        "run",
        file.to_str().unwrap(),
        "--set",
        "corpus.labels=[anger, sadness]",
        "--set",
        "train.epochs=12",
        "--set",
        "train.batch_size=16",
    ]);
    assert!(ok, "{out}\n{err}");
    let run = tmp.path().join("results/tl/fold0-seed0");
    // The recording: anger clips the model learnt from, 4 s of silence, then sadness clips (the
    // timeline is under test here, not how well a tiny model generalises).
    let split = common::read_parquet(&run.join("split.parquet"));
    let test: Vec<String> = split
        .clone()
        .lazy()
        .filter(col("role").eq(lit("train")))
        .collect()
        .unwrap()
        .column("clip_id")
        .unwrap()
        .str()
        .unwrap()
        .into_no_null_iter()
        .map(str::to_string)
        .collect();
    let pick = |code: &str| -> Vec<i16> {
        test.iter()
            .filter(|id| id.contains(&format!("_{code}_")))
            .take(5)
            .flat_map(|id| samples(&corpus.join(format!("{id}.wav"))))
            .collect()
    };
    let (anger, sadness) = (pick("ANG"), pick("SAD"));
    assert!(anger.len() > 6 * RATE as usize && sadness.len() > 6 * RATE as usize);
    let gap = vec![0i16; 4 * RATE as usize];
    let rec: Vec<i16> = [&anger[..], &gap[..], &sadness[..]].concat();
    let long = tmp.path().join("recording.wav");
    write(&long, &rec);
    let outdir = tmp.path().join("tl-out");
    let (ok, out, err) = emolab(&[
        "predict",
        run.to_str().unwrap(),
        long.to_str().unwrap(),
        "--window",
        &WIN.to_string(),
        "--hop",
        "0.5",
        "--skip-silence",
        "--out",
        outdir.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("x realtime"), "{out}");
    let df = common::read_parquet(&outdir.join("timeline.parquet"));
    let (win, hop) = ((WIN * RATE as f64).round() as usize, RATE as usize / 2);
    assert_eq!(
        df.height(),
        (rec.len() - win) / hop + 1,
        "one row per window"
    );
    let starts: Vec<f64> = df
        .column("start_s")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let speech: Vec<bool> = df
        .column("speech")
        .unwrap()
        .bool()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let p_anger: Vec<Option<f32>> = df
        .column("prob_anger")
        .unwrap()
        .f32()
        .unwrap()
        .into_iter()
        .collect();
    let a_end = anger.len() as f64 / RATE as f64;
    let s_start = a_end + 4.0;
    // Windows wholly inside the gap are silence, those wholly inside speech are not (the ones
    // across an edge depend on how quiet the clip ends); silence is not scored.
    let mut gap_windows = 0;
    for (i, &t) in starts.iter().enumerate() {
        if t >= a_end && t + WIN <= s_start {
            assert!(!speech[i], "window at {t} s is in the gap");
            gap_windows += 1;
        }
        if t + WIN <= a_end || t >= s_start {
            assert!(speech[i], "window at {t} s is speech");
        }
        assert_eq!(p_anger[i].is_some(), speech[i]);
    }
    assert!(gap_windows >= 2, "{gap_windows}");
    // Windows inside the anger part say anger more than those inside the sadness part, and most
    // windows of each part name their own emotion.
    let mean = |sel: &dyn Fn(f64) -> bool| {
        let v: Vec<f32> = starts
            .iter()
            .zip(&p_anger)
            .filter(|(t, p)| sel(**t) && p.is_some())
            .map(|(_, p)| p.unwrap())
            .collect();
        (v.iter().sum::<f32>() / v.len() as f32, v)
    };
    let (in_anger, a) = mean(&|t| t + WIN <= a_end);
    let (in_sad, s) = mean(&|t| t >= s_start);
    assert!(
        in_anger > in_sad + 0.3,
        "P(anger): {in_anger} in anger, {in_sad} in sadness"
    );
    let right = a.iter().filter(|p| **p > 0.5).count() + s.iter().filter(|p| **p < 0.5).count();
    assert!(
        right as f64 >= 0.75 * (a.len() + s.len()) as f64,
        "{right} of {} windows right",
        a.len() + s.len()
    );
    // A window is scored exactly as `predict` scores that stretch of audio on its own.
    let k = 5;
    let seg = tmp.path().join("seg.wav");
    let st = (starts[k] * RATE as f64).round() as usize;
    write(&seg, &rec[st..st + win]);
    let (ok, out, err) = emolab(&[
        "predict",
        run.to_str().unwrap(),
        seg.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let alone = v[0]["probabilities"]["anger"].as_f64().unwrap();
    // With its entropy, and whether it is above the run's validation-chosen abstain threshold.
    assert!(v[0]["entropy"].as_f64().unwrap() >= 0.0, "{v}");
    assert!(v[0]["abstain"].is_boolean(), "{v}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert!(m["abstain_entropy"].as_f64().is_some(), "{m}");
    assert!(
        (alone - p_anger[k].unwrap() as f64).abs() < 1e-4,
        "{alone} vs {:?}",
        p_anger[k]
    );
    // The other outputs.
    let csv = std::fs::read_to_string(outdir.join("timeline.csv")).unwrap();
    assert!(csv
        .starts_with("window,start_s,end_s,speech,level_db,prediction,prob_anger,prob_sadness\n"));
    assert_eq!(csv.lines().count(), df.height() + 1);
    let svg = std::fs::read_to_string(outdir.join("timeline.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("anger"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(outdir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["windows"].as_u64().unwrap() as usize, df.height());

    // A speaker-normalised model standardises on the whole recording (a first pass) and
    // scores it the same way; a 22.05 kHz copy of the recording is resampled as it streams.
    let file2 = exp(tmp.path(), &corpus, "tl_spk");
    let (ok, out, err) = emolab(&[
        "run",
        file2.to_str().unwrap(),
        "--set",
        "corpus.labels=[anger, sadness]",
        "--set",
        "train.normalize=speaker",
    ]);
    assert!(ok, "{out}\n{err}");
    let y: Vec<f32> = rec.iter().map(|&x| x as f32 / 32768.0).collect();
    let hi = emolab::dsp::resample::resample(&y, RATE, 22050).unwrap();
    let long22 = tmp.path().join("recording22.wav");
    emolab::audio::write_wav_i16(&long22, &hi, 22050).unwrap();
    let out2 = tmp.path().join("tl2");
    let (ok, out, err) = emolab(&[
        "predict",
        tmp.path()
            .join("results/tl_spk/fold0-seed0")
            .to_str()
            .unwrap(),
        long22.to_str().unwrap(),
        "--window",
        "2.0",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    let df2 = common::read_parquet(&out2.join("timeline.parquet"));
    assert!(
        (df2.height() as i64 - df.height() as i64).abs() <= 1,
        "{} vs {}",
        df2.height(),
        df.height()
    );
    assert_eq!(
        df2.column("prob_anger").unwrap().null_count(),
        0,
        "no silence skipping asked"
    );
}
