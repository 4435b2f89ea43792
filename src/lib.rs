//! emolab: a batch pipeline and experiment runner for speech emotion recognition.
//!
//! Data flows one way: [`corpus`] (scan, labels, manifest) → [`audio`] (decode) → features →
//! cache → split → models → train → evaluate → results → report. [`dsp`] is the leaf library of
//! signal processing (librosa-exact mel, MFCC, resampling) that features, encoders and the
//! timeline read; it imports nothing else of the crate. [`synth`] generates the
//! CREMA-D-shaped stand-in corpus used by the demo and the tests; [`doctor`] reports the build
//! and the machine.

pub mod audio;
pub mod bench;
pub mod cache;
pub mod calibration;
pub mod charts;
pub mod cluster;
pub mod config;
pub mod corpus;
pub mod cross;
pub mod doctor;
pub mod dsp;
pub mod embedding;
pub mod encoders;
pub mod ensemble;
pub mod experiment;
pub mod features;
pub mod importance;
pub mod infer;
pub mod metrics;
pub mod models;
pub mod prepare;
pub mod report;
pub mod results;
pub mod runlock;
pub mod runner;
pub mod speakers;
pub mod speakers_bench;
pub mod status;
pub mod split;
pub mod sweep;
pub mod synth;
pub mod timeline;
pub mod train;
pub mod util;
pub mod work;
