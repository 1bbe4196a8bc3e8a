//! One error type for the whole crate, split by who is at fault: the input file, the caller's
//! arguments, the output side, the GPU or the environment.

use std::path::PathBuf;

/// Everything that can go wrong in shutter. Each message names the file, flag or device at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a valid image of the format it claims (truncated, random bytes, empty).
    #[error("{input}: cannot decode {format}: {reason}")]
    Decode {
        input: String,
        format: String,
        reason: String,
    },
    /// The input is larger than the decoding limits allow (a decompression bomb, or just huge).
    #[error("{input}: image exceeds the decoding limits: {reason}")]
    Limits { input: String, reason: String },
    /// The input has a format (or extension) shutter does not read.
    #[error("{input}: unsupported input: {reason}")]
    Unsupported { input: String, reason: String },
    /// An output could not be encoded in the requested format.
    #[error("{output}: cannot encode {format}: {reason}")]
    Encode {
        output: String,
        format: String,
        reason: String,
    },
    /// The caller asked for something impossible (a bad flag value, an unknown filter name).
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a path failed (missing file, unwritable directory).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No GPU adapter could be found where one was required.
    #[error(
        "no GPU adapter found ({0}); use --device cpu, or install a Vulkan driver such as mesa-vulkan-drivers"
    )]
    NoAdapter(String),
    /// `--device auto` found only a software adapter (such as lavapipe) and ran on the CPU,
    /// whose fast path is many times faster than a rasteriser emulating a GPU on the same cores.
    /// Never a failure: the reason given with [`crate::pipeline::Event::CpuFallback`].
    #[error(
        "the GPU adapter found, {0}, is a software renderer, slower than the CPU path (--device gpu uses it anyway)"
    )]
    SoftwareAdapter(String),
    /// The GPU reported an error (device creation, shader validation, buffer mapping, device lost).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A camera could not be opened or read.
    #[error("camera {device}: {reason}")]
    Camera { device: String, reason: String },
    /// A user callback or source closure returned an error.
    #[error("{0}")]
    User(String),
}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error with `input` as the input it names, for a decoding error about a raw live
    /// frame (which knows no source name); any other error as it is.
    pub fn naming(self, input: &str) -> Self {
        match self {
            Error::Decode { format, reason, .. } => Error::Decode {
                input: input.to_string(),
                format,
                reason,
            },
            Error::Limits { reason, .. } => Error::Limits {
                input: input.to_string(),
                reason,
            },
            other => other,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the error comes from the caller's arguments (the CLI exits with 2 for these).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}
