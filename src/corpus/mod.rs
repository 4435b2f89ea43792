//! Corpus stage: find the clips of a corpus, read their labels from its naming convention, check
//! the audio, and write the manifest every later stage starts from.

pub mod duplicates;
pub mod labels;
pub mod manifest;
pub mod parse;
pub mod scan;

pub use duplicates::{dedupe, Duplicates};
pub use labels::{Emotion, Sex};
pub use manifest::{read_manifest, write_manifest, ClipRecord};
pub use parse::Format;
pub use scan::{scan, Problem, Scan, ScanOptions, Summary};
