//! Sinks: encoders that write files, and callbacks that receive arrays.

pub mod encode;
pub mod npy;
mod palette;
pub mod sequence;
