//! Audio decoding: WAV bytes (via hound) to `f32` samples, channel mix-down, level statistics.
//!
//! Accepts 8/16/24/32-bit integer PCM and 32-bit float, any channel count, any sample rate.
//! Integer samples are scaled by `2^(bits-1)` (16-bit: `x / 32768`, as librosa and soundfile do),
//! so features computed on the result match librosa's. Every failure is an [`AudioError`] that
//! says what is wrong with the file; nothing here panics on bad input.

use std::io::Cursor;
use std::path::Path;

pub mod stream;
pub use stream::WavStream;

/// What can be wrong with an audio file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file ({0})")]
    NotWav(String),
    #[error("unsupported WAV encoding ({0})")]
    Unsupported(String),
    #[error("truncated: header declares {declared} samples, file holds {found}")]
    Truncated { declared: usize, found: usize },
    #[error("empty: no audio samples")]
    Empty,
    #[error("empty file (0 bytes)")]
    EmptyFile,
    #[error("non-finite sample (NaN or Inf) at sample {index}")]
    NonFinite { index: usize },
    #[error("bad WAV header: {0}")]
    BadHeader(String),
}

/// The WAV format tag of the `fmt ` chunk (the sub-format's for WAVE_FORMAT_EXTENSIBLE), and the
/// header's sample rate and channel count; `None` when the RIFF structure cannot be walked.
fn wav_format(bytes: &[u8]) -> Option<(u16, u32, u16)> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = bytes.get(pos + 8..(pos + 8 + size).min(bytes.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            let mut tag = u16::from_le_bytes([body[0], body[1]]);
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            if tag == 0xFFFE && body.len() >= 26 {
                tag = u16::from_le_bytes([body[24], body[25]]);
            }
            return Some((tag, rate, channels));
        }
        pos += 8 + size + (size & 1);
    }
    None
}

/// The codec a WAV format tag names (the common ones), for error messages.
fn codec_name(tag: u16) -> String {
    let name = match tag {
        0x0002 => "MS-ADPCM",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x00FF | 0x1610 => "AAC",
        0x566F => "Vorbis",
        0xF1AC => "FLAC",
        _ => "",
    };
    if name.is_empty() {
        format!("format tag 0x{tag:04X}")
    } else {
        format!("{name}, format tag 0x{tag:04X}")
    }
}

/// Decoded audio, samples interleaved by channel and scaled to [-1, 1].
#[derive(Debug, Clone)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub is_float: bool,
    pub samples: Vec<f32>,
}

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }

    /// Duration in seconds.
    pub fn duration(&self) -> f64 {
        self.frames() as f64 / self.sample_rate as f64
    }

    /// Mix down to mono by averaging channels (librosa's `to_mono`).
    pub fn to_mono(&self) -> Vec<f32> {
        let ch = self.channels.max(1) as usize;
        let mut out = Vec::with_capacity(self.samples.len() / ch);
        mix_to_mono(&self.samples, ch, &mut out);
        out
    }

    /// Largest absolute sample value.
    pub fn peak(&self) -> f32 {
        self.samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()))
    }
}

/// Read and decode a WAV file.
pub fn read_wav(path: &Path) -> Result<Audio, AudioError> {
    decode_wav(&std::fs::read(path)?)
}

/// Decode WAV bytes.
///
/// hound parses and validates the header and leaves its cursor at the start of the data chunk;
/// the common layouts (8/16/24/32-bit PCM, 32-bit float, sample width = container width) are
/// then converted straight from the bytes, the rest through hound's sample iterator.
pub fn decode_wav(bytes: &[u8]) -> Result<Audio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::EmptyFile);
    }
    check_format(bytes)?;
    decode_checked(bytes)
}

/// Refuse what the header shows cannot be read (a compressed codec, 0 Hz, 0 channels), naming
/// it; `bytes` is the file or its first kilobytes.
pub(crate) fn check_format(bytes: &[u8]) -> Result<(), AudioError> {
    if let Some((tag, rate, channels)) = wav_format(bytes) {
        if !matches!(tag, 1 | 3) {
            return Err(AudioError::Unsupported(format!(
                "{}: only PCM and IEEE float are read; convert it, e.g. `ffmpeg -i in.wav -c:a pcm_s16le out.wav`",
                codec_name(tag)
            )));
        }
        if rate == 0 {
            return Err(AudioError::BadHeader("sample rate 0".into()));
        }
        if channels == 0 {
            return Err(AudioError::BadHeader("0 channels".into()));
        }
    }
    Ok(())
}

/// Append the channel average of interleaved `samples` (`ch` channels) to `out`.
pub(crate) fn mix_to_mono(samples: &[f32], ch: usize, out: &mut Vec<f32>) {
    if ch <= 1 {
        out.extend_from_slice(samples);
    } else {
        out.extend(
            samples
                .chunks_exact(ch)
                .map(|f| f.iter().sum::<f32>() / ch as f32),
        );
    }
}

/// Whether the samples are floats; float samples other than 32-bit are refused.
pub(crate) fn float_samples(spec: &hound::WavSpec) -> Result<bool, AudioError> {
    let is_float = spec.sample_format == hound::SampleFormat::Float;
    if is_float && spec.bits_per_sample != 32 {
        return Err(AudioError::Unsupported(format!(
            "{}-bit float",
            spec.bits_per_sample
        )));
    }
    Ok(is_float)
}

/// The factor that maps `bits`-bit integer samples onto [-1, 1) (`x / 2^(bits-1)`).
pub(crate) fn int_scale(bits: u16) -> f32 {
    1.0 / (1u64 << (bits - 1)) as f32
}

fn decode_checked(bytes: &[u8]) -> Result<Audio, AudioError> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(header_error)?;
    let spec = reader.spec();
    let declared = reader.len() as usize;
    let is_float = float_samples(&spec)?;
    // The cursor sits right after the data chunk's header ("data", u32 length).
    let start = reader.into_inner().position() as usize;
    let width = spec.bits_per_sample as usize / 8;
    let plain = spec.bits_per_sample % 8 == 0
        && start >= 8
        && &bytes[start - 8..start - 4] == b"data"
        && u32::from_le_bytes(bytes[start - 4..start].try_into().expect("4 bytes")) as usize
            == declared * width;
    let samples = if plain {
        let data = &bytes[start.min(bytes.len())..];
        let found = data.len() / width;
        if found < declared {
            return Err(AudioError::Truncated { declared, found });
        }
        convert_pcm(&data[..declared * width], width, is_float)
    } else {
        // Unusual layouts: let hound read them sample by sample.
        let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(header_error)?;
        if is_float {
            collect(reader.into_samples::<f32>(), declared, |x| x)?
        } else {
            let scale = int_scale(spec.bits_per_sample);
            collect(reader.into_samples::<i32>(), declared, |x| x as f32 * scale)?
        }
    };
    if samples.is_empty() {
        return Err(AudioError::Empty);
    }
    if let Some(index) = samples.iter().position(|x| !x.is_finite()) {
        return Err(AudioError::NonFinite { index });
    }
    Ok(Audio {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits: spec.bits_per_sample,
        is_float,
        samples,
    })
}

/// Little-endian PCM (8-bit unsigned, 16/24/32-bit signed) or IEEE float → f32 in [-1, 1].
pub(crate) fn convert_pcm(data: &[u8], width: usize, is_float: bool) -> Vec<f32> {
    match (width, is_float) {
        (4, true) => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        (1, _) => data.iter().map(|&b| (b as f32 - 128.0) / 128.0).collect(),
        (2, _) => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
            .collect(),
        (3, _) => data
            .chunks_exact(3)
            .map(|b| (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0)
            .collect(),
        _ => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0)
            .collect(),
    }
}

fn collect<S, I, F>(iter: I, declared: usize, convert: F) -> Result<Vec<f32>, AudioError>
where
    I: Iterator<Item = hound::Result<S>>,
    F: Fn(S) -> f32,
{
    let mut out = Vec::with_capacity(declared);
    for s in iter {
        match s {
            Ok(v) => out.push(convert(v)),
            // After a valid header, any read failure (hound: "Failed to read enough bytes", or
            // EOF) means the data chunk is cut short.
            Err(_) => {
                return Err(AudioError::Truncated {
                    declared,
                    found: out.len(),
                })
            }
        }
    }
    if out.len() < declared {
        return Err(AudioError::Truncated {
            declared,
            found: out.len(),
        });
    }
    Ok(out)
}

pub(crate) fn header_error(e: hound::Error) -> AudioError {
    match e {
        hound::Error::FormatError(m) => AudioError::NotWav(m.to_string()),
        hound::Error::Unsupported => AudioError::Unsupported("not PCM or IEEE float".into()),
        hound::Error::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::NotWav("file ends inside the header".into())
        }
        hound::Error::IoError(e) => AudioError::Io(e),
        other => AudioError::Unsupported(other.to_string()),
    }
}

/// Write mono `f32` samples as 16-bit PCM WAV (clipped to [-1, 1]), atomically.
pub fn write_wav_i16(path: &Path, samples: &[f32], sample_rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut buf = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut buf, spec)?;
        for &x in samples {
            w.write_sample((x.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
        }
        w.finalize()?;
    }
    crate::util::atomic_write_bytes(path, buf.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(
        spec: hound::WavSpec,
        write: impl Fn(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        buf.into_inner()
    }

    fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 16000,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    #[test]
    fn scales_every_bit_depth_to_unit_range() {
        let b16 = wav_bytes(spec(1, 16, false), |w| {
            w.write_sample(-32768i16).unwrap();
            w.write_sample(16384i16).unwrap();
        });
        assert_eq!(decode_wav(&b16).unwrap().samples, vec![-1.0, 0.5]);
        let b24 = wav_bytes(spec(1, 24, false), |w| {
            w.write_sample(-8_388_608i32).unwrap();
            w.write_sample(4_194_304i32).unwrap();
        });
        assert_eq!(decode_wav(&b24).unwrap().samples, vec![-1.0, 0.5]);
        let b8 = wav_bytes(spec(1, 8, false), |w| {
            w.write_sample(-128i8).unwrap();
            w.write_sample(64i8).unwrap();
        });
        assert_eq!(decode_wav(&b8).unwrap().samples, vec![-1.0, 0.5]);
        let b32 = wav_bytes(spec(1, 32, false), |w| {
            w.write_sample(i32::MIN).unwrap();
            w.write_sample(1i32 << 30).unwrap();
        });
        assert_eq!(decode_wav(&b32).unwrap().samples, vec![-1.0, 0.5]);
        let f32b = wav_bytes(spec(1, 32, true), |w| {
            w.write_sample(0.25f32).unwrap();
        });
        let a = decode_wav(&f32b).unwrap();
        assert!(a.is_float);
        assert_eq!(a.samples, vec![0.25]);
    }

    #[test]
    fn stereo_mixes_down_by_mean() {
        let b = wav_bytes(spec(2, 16, false), |w| {
            for _ in 0..3 {
                w.write_sample(16384i16).unwrap();
                w.write_sample(0i16).unwrap();
            }
        });
        let a = decode_wav(&b).unwrap();
        assert_eq!(a.frames(), 3);
        assert_eq!(a.to_mono(), vec![0.25; 3]);
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        assert!(matches!(
            decode_wav(b"hello world, not audio"),
            Err(AudioError::NotWav(_))
        ));
        let b = wav_bytes(spec(1, 16, false), |w| {
            for i in 0..100 {
                w.write_sample(i as i16).unwrap();
            }
        });
        let err = decode_wav(&b[..b.len() - 50]).unwrap_err();
        assert!(
            matches!(
                err,
                AudioError::Truncated {
                    declared: 100,
                    found: 75
                }
            ),
            "{err}"
        );
        let empty = wav_bytes(spec(1, 16, false), |_| {});
        assert!(matches!(decode_wav(&empty), Err(AudioError::Empty)));
        let zero = decode_wav(&[]).unwrap_err();
        assert_eq!(zero.to_string(), "empty file (0 bytes)");
        let nan = wav_bytes(spec(1, 32, true), |w| {
            w.write_sample(0.1f32).unwrap();
            w.write_sample(f32::NAN).unwrap();
        });
        assert!(matches!(
            decode_wav(&nan),
            Err(AudioError::NonFinite { index: 1 })
        ));
    }

    /// A 16-bit mono WAV whose `fmt ` chunk is then patched: format tag and sample rate.
    fn patched(tag: u16, rate: u32) -> Vec<u8> {
        let mut b = wav_bytes(spec(1, 16, false), |w| {
            for i in 0..100 {
                w.write_sample((i * 100) as i16).unwrap();
            }
        });
        let fmt = b.windows(4).position(|w| w == b"fmt ").unwrap() + 8;
        b[fmt..fmt + 2].copy_from_slice(&tag.to_le_bytes());
        b[fmt + 4..fmt + 8].copy_from_slice(&rate.to_le_bytes());
        b
    }

    #[test]
    fn codecs_and_zero_rates_are_named() {
        assert!(decode_wav(&patched(1, 16000)).is_ok());
        let e = decode_wav(&patched(2, 16000)).unwrap_err().to_string();
        assert!(
            e.contains("MS-ADPCM") && e.contains("0x0002") && e.contains("ffmpeg"),
            "{e}"
        );
        let e = decode_wav(&patched(0x11, 16000)).unwrap_err().to_string();
        assert!(e.contains("IMA ADPCM"), "{e}");
        let e = decode_wav(&patched(1, 0)).unwrap_err().to_string();
        assert_eq!(e, "bad WAV header: sample rate 0");
    }
}
