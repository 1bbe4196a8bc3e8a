//! shutter: stream images through the GPU.
//!
//! Frames come from files, directories, stdin, bytes in memory, cameras, a synthetic pattern
//! and closures; one fused wgpu compute pass (or the CPU backend) mirrors, filters and
//! converts them to Pillow's `image_mode`; encoders write them to disk or a callback receives
//! them as `ndarray` arrays ([`Frame::array`]). See [`Pipeline`] for the library entry point.

#![warn(missing_docs)]

mod ahead;
pub mod backend;
pub mod bench;
mod budget;
pub mod error;
pub mod frame;
pub mod gpu;
mod icc;
pub mod mode;
pub mod ops;
pub mod pipeline;
pub mod sink;
pub mod source;
pub mod stream;

/// The `image` crate this one is built with, whose buffers [`Frame::to_image`] returns.
pub use image;
/// The `ndarray` crate this one is built with, whose arrays [`Frame::array`] returns.
pub use ndarray;

pub use backend::{DeviceChoice, Processor};
pub use error::{BoxError, Error, Result};
pub use frame::{FinishedFrame, Frame, FrameMeta, Plays};
pub use gpu::GpuContext;
pub use mode::{Dither, FrameArray, FrameArrayView, ImageMode, ModeImage};
pub use ops::{Filter, Ops};
pub use pipeline::{Event, Output, Pipeline, PipelineBuilder, Stats};
pub use sink::encode::Format;
pub use source::live::FuncGrabber;
pub use source::{DecodeLimits, Source};
pub use stream::{Drops, FramePolicy, Latency};

/// The README's Rust examples, compiled by `cargo test --doc` so that they keep up with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
