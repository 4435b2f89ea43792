//! Parameters of the mel front end (`librosa.feature.melspectrogram` arguments) and their
//! validation.

use serde::{Deserialize, Serialize};

use super::error::DspError;
use super::mel::{MelFilterbankSpec, MelScale};
use super::stft::StftParams;

/// Mel-spectrogram configuration. [`Default`] reproduces librosa 0.11's defaults
/// (`sr=22050, n_fft=2048, hop_length=512, win_length=n_fft, center=True, n_mels=128,
/// fmin=0, fmax=sr/2, htk=False, norm="slaney", power=2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MelParams {
    /// Sample rate of the audio, in Hz.
    pub sample_rate: u32,
    /// FFT size.
    pub n_fft: usize,
    /// Hop length, in samples.
    pub hop: usize,
    /// Hann window length (`<= n_fft`).
    pub win_length: usize,
    /// Centre frames by zero-padding `n_fft / 2` on both sides.
    pub center: bool,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Lowest band edge, in Hz.
    pub fmin: f32,
    /// Highest band edge, in Hz; `None` means `sample_rate / 2`.
    pub fmax: Option<f32>,
    /// HTK mel formula instead of Slaney's.
    pub htk: bool,
    /// Slaney area normalisation of the bands (`norm="slaney"`); `false` = `norm=None`.
    pub slaney_norm: bool,
    /// Exponent applied to the STFT magnitude (2 = power, 1 = magnitude).
    pub power: f32,
}

impl Default for MelParams {
    fn default() -> Self {
        MelParams {
            sample_rate: 22050,
            n_fft: 2048,
            hop: 512,
            win_length: 2048,
            center: true,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            htk: false,
            slaney_norm: true,
            power: 2.0,
        }
    }
}

impl MelParams {
    /// The STFT framing part of the configuration.
    pub fn stft_params(&self) -> StftParams {
        StftParams {
            n_fft: self.n_fft,
            hop: self.hop,
            win_length: self.win_length,
            center: self.center,
        }
    }

    /// Upper band edge in Hz, resolving `None` to the Nyquist frequency.
    pub fn fmax_hz(&self) -> f64 {
        match self.fmax {
            Some(f) => f as f64,
            None => self.sample_rate as f64 / 2.0,
        }
    }

    /// The filterbank this configuration asks for.
    pub fn filterbank_spec(&self) -> MelFilterbankSpec {
        MelFilterbankSpec {
            sample_rate: self.sample_rate as f64,
            n_fft: self.n_fft,
            n_mels: self.n_mels,
            fmin: self.fmin as f64,
            fmax: self.fmax_hz(),
            scale: if self.htk {
                MelScale::Htk
            } else {
                MelScale::Slaney
            },
            slaney_norm: self.slaney_norm,
        }
    }

    /// Rejects impossible configurations: zero sizes, `win_length > n_fft`, a band range
    /// outside `[0, sample_rate / 2]` or empty, and non-positive `power`.
    pub fn validate(&self) -> Result<(), DspError> {
        if self.sample_rate == 0 {
            return Err(DspError::invalid("sample_rate", "must be > 0"));
        }
        self.stft_params().validate()?;
        if self.n_mels == 0 {
            return Err(DspError::invalid("n_mels", "must be > 0"));
        }
        if !(self.fmin.is_finite() && self.fmin >= 0.0) {
            return Err(DspError::invalid(
                "fmin",
                format!("must be finite and >= 0, got {}", self.fmin),
            ));
        }
        let nyquist = self.sample_rate as f64 / 2.0;
        let fmax = self.fmax_hz();
        if !fmax.is_finite() || fmax > nyquist {
            return Err(DspError::invalid(
                "fmax",
                format!("must be <= sample_rate / 2 = {nyquist}, got {fmax}"),
            ));
        }
        if self.fmin as f64 >= fmax {
            return Err(DspError::invalid(
                "fmin",
                format!("must be < fmax = {fmax}, got {}", self.fmin),
            ));
        }
        if !(self.power.is_finite() && self.power > 0.0) {
            return Err(DspError::invalid(
                "power",
                format!("must be finite and > 0, got {}", self.power),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_librosa_and_valid() {
        let p = MelParams::default();
        assert!(p.validate().is_ok());
        assert_eq!(p.fmax_hz(), 11025.0);
        assert_eq!(p.stft_params(), StftParams::default());
    }

    #[test]
    fn rejects_impossible_values() {
        let ok = MelParams::default();
        let bad: Vec<(&str, MelParams)> = vec![
            (
                "sample_rate",
                MelParams {
                    sample_rate: 0,
                    ..ok
                },
            ),
            ("n_fft", MelParams { n_fft: 0, ..ok }),
            ("hop", MelParams { hop: 0, ..ok }),
            (
                "win_length",
                MelParams {
                    win_length: 4096,
                    ..ok
                },
            ),
            (
                "win_length",
                MelParams {
                    win_length: 0,
                    ..ok
                },
            ),
            ("n_mels", MelParams { n_mels: 0, ..ok }),
            (
                "fmax",
                MelParams {
                    fmax: Some(12000.0),
                    ..ok
                },
            ),
            (
                "fmin",
                MelParams {
                    fmin: 11025.0,
                    ..ok
                },
            ),
            (
                "fmin",
                MelParams {
                    fmin: 500.0,
                    fmax: Some(400.0),
                    ..ok
                },
            ),
            ("fmin", MelParams { fmin: -1.0, ..ok }),
            ("power", MelParams { power: 0.0, ..ok }),
            ("power", MelParams { power: -2.0, ..ok }),
        ];
        for (field, p) in bad {
            match p.validate() {
                Err(DspError::InvalidParameter { name, .. }) => assert_eq!(name, field),
                other => panic!("{field}: expected InvalidParameter, got {other:?}"),
            }
        }
    }

    #[test]
    fn serde_fills_missing_fields_with_defaults() {
        let p: MelParams = serde_json_like("n_mels", 64);
        assert_eq!(p.n_mels, 64);
        assert_eq!(p.n_fft, 2048);
    }

    /// Tiny helper: deserialize `{key: value}` through serde's value-free path.
    fn serde_json_like(key: &str, value: usize) -> MelParams {
        use serde::de::value::{Error, MapDeserializer};
        let map = MapDeserializer::<_, Error>::new(std::iter::once((key, value)));
        MelParams::deserialize(map).unwrap()
    }
}
