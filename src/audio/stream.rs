//! A WAV file read a block at a time, mixed down to mono, for recordings too long to hold in
//! memory (an hour at 48 kHz stereo is 1.4 GB of `f32`). Samples are scaled exactly as
//! [`super::decode_wav`] scales them, so a stream and a whole-file read give the same values.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{check_format, float_samples, header_error, int_scale, mix_to_mono, AudioError};

/// Where the samples come from: the raw data chunk (whole-byte PCM and float, converted a
/// block at a time as [`super::decode_wav`] converts them), or hound's sample iterator.
enum Samples {
    Raw {
        reader: BufReader<File>,
        width: usize,
        is_float: bool,
        bytes: Vec<u8>,
    },
    Iter(Box<dyn Iterator<Item = hound::Result<f32>>>),
}

/// An open WAV file, read in blocks of mono samples.
pub struct WavStream {
    samples: Samples,
    pub sample_rate: u32,
    pub channels: u16,
    /// Frames (samples per channel) the header declares.
    pub frames: usize,
    read: usize,
}

impl WavStream {
    pub fn open(path: &Path) -> Result<WavStream, AudioError> {
        let mut head = Vec::with_capacity(64 * 1024);
        File::open(path)?.take(64 * 1024).read_to_end(&mut head)?;
        if head.is_empty() {
            return Err(AudioError::EmptyFile);
        }
        check_format(&head)?;
        let reader = hound::WavReader::new(BufReader::with_capacity(1 << 20, File::open(path)?))
            .map_err(header_error)?;
        let spec = reader.spec();
        let frames = reader.duration() as usize;
        let is_float = float_samples(&spec)?;
        let samples = if spec.bits_per_sample % 8 == 0 && spec.bits_per_sample <= 32 {
            Samples::Raw {
                // hound leaves the reader at the first byte of the data chunk.
                reader: reader.into_inner(),
                width: spec.bits_per_sample as usize / 8,
                is_float,
                bytes: Vec::new(),
            }
        } else if is_float {
            Samples::Iter(Box::new(reader.into_samples::<f32>()))
        } else {
            let scale = int_scale(spec.bits_per_sample);
            Samples::Iter(Box::new(
                reader
                    .into_samples::<i32>()
                    .map(move |x| x.map(|v| v as f32 * scale)),
            ))
        };
        if frames == 0 {
            return Err(AudioError::Empty);
        }
        Ok(WavStream {
            samples,
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            frames,
            read: 0,
        })
    }

    /// Duration in seconds (from the header).
    pub fn duration(&self) -> f64 {
        self.frames as f64 / self.sample_rate as f64
    }

    /// Append up to `max` mono samples (channels averaged) to `out`; the number appended, 0 at
    /// the end.
    pub fn read_mono(&mut self, max: usize, out: &mut Vec<f32>) -> Result<usize, AudioError> {
        let ch = self.channels.max(1) as usize;
        let want = max.min(self.frames - self.read);
        let (declared, done) = (self.frames * ch, self.read * ch);
        let truncated = |found: usize| AudioError::Truncated { declared, found };
        let values: Vec<f32> = match &mut self.samples {
            Samples::Raw {
                reader,
                width,
                is_float,
                bytes,
            } => {
                bytes.resize(want * ch * *width, 0);
                let mut got = 0;
                while got < bytes.len() {
                    match reader.read(&mut bytes[got..])? {
                        0 => return Err(truncated(done + got / *width)),
                        n => got += n,
                    }
                }
                super::convert_pcm(bytes, *width, *is_float)
            }
            Samples::Iter(it) => {
                let mut interleaved = Vec::with_capacity(want * ch);
                for n in 0..want * ch {
                    match it.next() {
                        Some(Ok(x)) => interleaved.push(x),
                        _ => return Err(truncated(done + n)),
                    }
                }
                interleaved
            }
        };
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(AudioError::NonFinite { index: done + i });
        }
        out.reserve(want);
        mix_to_mono(&values, ch, out);
        self.read += want;
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_reads_what_a_whole_file_read_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..10_001i32 {
            w.write_sample(((i * 37) % 20000 - 10000) as i16).unwrap();
            w.write_sample(((i * 91) % 30000 - 15000) as i16).unwrap();
        }
        w.finalize().unwrap();
        let whole = crate::audio::read_wav(&p).unwrap().to_mono();
        let mut s = WavStream::open(&p).unwrap();
        assert_eq!(s.frames, 10_001);
        let mut got = Vec::new();
        while s.read_mono(999, &mut got).unwrap() > 0 {}
        assert_eq!(got, whole);
        // 24-bit mono, read raw, and a file cut short.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..5000i32 {
            w.write_sample((i * 1777) % 8_000_000 - 4_000_000).unwrap();
        }
        w.finalize().unwrap();
        let whole = crate::audio::read_wav(&p).unwrap().to_mono();
        let mut s = WavStream::open(&p).unwrap();
        let mut got = Vec::new();
        while s.read_mono(1234, &mut got).unwrap() > 0 {}
        assert_eq!(got, whole);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 300]).unwrap();
        let mut s = WavStream::open(&p).unwrap();
        let mut got = Vec::new();
        let err = loop {
            match s.read_mono(1000, &mut got) {
                Ok(0) => panic!("a cut file ends early"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(matches!(err, AudioError::Truncated { .. }), "{err}");
    }
}
