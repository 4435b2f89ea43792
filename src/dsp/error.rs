//! Error type shared by every DSP routine in this module.

use thiserror::Error;

/// Errors raised by parameter validation and by the DSP routines.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DspError {
    /// A parameter is out of its valid range or inconsistent with another one.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the offending parameter (field name in the params struct).
        name: &'static str,
        /// Human readable explanation, including the offending value.
        reason: String,
    },
    /// The sinc resampler could not be constructed for the requested rates.
    #[error("resampler error: {0}")]
    Resampler(String),
}

impl DspError {
    /// Shorthand constructor for [`DspError::InvalidParameter`].
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        DspError::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}
