//! emolab: a batch pipeline and experiment runner for speech emotion recognition.
//!
//! Data flows one way: [`corpus`] (scan, labels, manifest) → [`audio`] (decode) → [`features`]
//! (log-mel, functionals, pretrained [`encoders`]) → [`cache`] → [`prepare`] (an
//! [`experiment`]'s clips, classes and features) → [`split`] (speaker-disjoint folds) →
//! [`runner`] ([`models`] fitted by [`train`], then [`importance`], [`calibration`] and
//! [`embedding`] maps) → [`results`] (run folders) → [`report`]. Saved runs are used again by
//! [`infer`] (evaluate, predict), [`ensemble`] (seed ensembles, late fusion), [`timeline`] and
//! [`cross`]. [`work`] says what to run, in order, here; [`cluster`] submits the same plan to
//! Slurm and [`status`] shows where every run is; [`sweep`] makes the trials. Leaf libraries
//! ([`util`], [`dsp`], [`charts`], [`metrics`], [`config`], [`runlock`]) import nothing above
//! them. [`synth`] generates stand-in corpora; [`bench`], [`speakers_bench`] and [`doctor`] are
//! tools. `docs/architecture.md` draws the layers; `scripts/import_graph.py` checks them.

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
pub mod split;
pub mod status;
pub mod sweep;
pub mod synth;
pub mod timeline;
pub mod train;
pub mod util;
pub mod work;
