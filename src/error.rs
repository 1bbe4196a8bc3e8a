//! One error type for the whole crate, split by who is at fault: the input file, the caller's
//! arguments, the output side, the GPU or the environment.

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in shutter. Each message names the file, flag or device at fault.
///
/// `Clone`, as [`Stats`](crate::Stats) holding a run's failures is: the operating system's
/// error and the caller's own are shared ([`Arc`]), not copied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The input is not a valid image of the format it claims (truncated, random bytes, empty).
    #[error("{input}: cannot decode {format}: {reason}")]
    Decode {
        /// The input, as messages name it (the path as given, `<stdin>`, a source's name;
        /// `live frame` for a raw frame decoded outside a pipeline).
        input: String,
        /// The format it was decoded as (`png`, `jpeg`, `gif`, ...; `image` when there was no
        /// data to tell).
        format: String,
        /// What the decoder found wrong.
        reason: String,
    },
    /// The input is larger than the decoding limits allow (a decompression bomb, or just huge).
    #[error("{input}: image exceeds the decoding limits: {reason}")]
    Limits {
        /// The input, as messages name it.
        input: String,
        /// Which limit it exceeds.
        reason: String,
    },
    /// The input's pixels need more memory than this process can get (a huge image under a
    /// `ulimit -v`, or on a small machine). Nothing was written for it; the other inputs of a
    /// run go on.
    #[error("{input}: not enough memory: {reason}")]
    Memory {
        /// The input, as messages name it.
        input: String,
        /// How much memory the image needs.
        reason: String,
    },
    /// The input has a format (or extension) shutter does not read.
    #[error("{input}: unsupported input: {reason}")]
    Unsupported {
        /// The input, as messages name it.
        input: String,
        /// Why it is not read (its extension or content, a feature shutter lacks, a directory
        /// without image files, a size its header gives that the output format cannot hold).
        reason: String,
    },
    /// An output could not be encoded in the requested format.
    #[error("{output}: cannot encode {format}: {reason}")]
    Encode {
        /// The output file's path.
        output: String,
        /// The output format, by its extension (`webp`, `png`, `npy`, ...).
        format: String,
        /// What the encoder reported, or why the file was not written.
        reason: String,
    },
    /// The caller asked for something impossible (a bad flag value, an unknown filter name).
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a path failed (missing file, unwritable directory).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path read or written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// No GPU adapter could be found where one was required.
    #[error(
        "no GPU adapter found ({0}); use the CPU (--device cpu), or install a Vulkan driver such as mesa-vulkan-drivers"
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
    Camera {
        /// The camera, `webcam:INDEX` (`webcams` when listing them failed).
        device: String,
        /// What failed (no such camera, access denied, a read error).
        reason: String,
    },
    /// A user callback or source closure returned an error, or a closure's frame did not hold
    /// the pixels its size needs.
    #[error("{message}")]
    User {
        /// What failed, where, and the error's own message.
        message: String,
        /// The error the callback or closure returned, as it returned it; see
        /// [`Error::user_error`]. Its message is already in `message`, so it is not also
        /// given as [`std::error::Error::source`] (a report would print it twice).
        error: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

/// An error from the caller's own code, boxed as `?` and `anyhow` box them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
            Error::Memory { reason, .. } => Error::Memory {
                input: input.to_string(),
                reason,
            },
            other => other,
        }
    }

    /// The reason of an encoder's error, without the output it names (for the caller that
    /// names it); any other error's message.
    pub(crate) fn into_reason(self) -> String {
        match self {
            Error::Encode { reason, .. } => reason,
            other => other.to_string(),
        }
    }

    /// The input this error names: the file, stream or camera of a decode, limits, memory,
    /// format, I/O or camera error; `None` for errors of the run as a whole (usage, GPU, a
    /// callback's), and for an encoder's, which name the output.
    pub fn input(&self) -> Option<String> {
        match self {
            Error::Decode { input, .. }
            | Error::Limits { input, .. }
            | Error::Memory { input, .. }
            | Error::Unsupported { input, .. } => Some(input.clone()),
            Error::Io { path, .. } => Some(path.display().to_string()),
            Error::Camera { device, .. } => Some(device.clone()),
            _ => None,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// An [`Error::User`] with `message` and no error of the caller's behind it.
    pub fn user(message: impl Into<String>) -> Self {
        Error::User {
            message: message.into(),
            error: None,
        }
    }

    /// The error an `on_frame` callback or a [`FuncGrabber`](crate::source::live::FuncGrabber)'s
    /// closure returned, to downcast to the caller's own type; `None` for any other error.
    ///
    /// ```
    /// # use shutter::Error;
    /// #[derive(Debug)]
    /// struct ClientGone;
    /// impl std::fmt::Display for ClientGone {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("the client went away")
    ///     }
    /// }
    /// impl std::error::Error for ClientGone {}
    ///
    /// let err = Error::from_user("on_frame", ClientGone);
    /// assert_eq!(err.to_string(), "on_frame: the client went away");
    /// assert!(err.user_error().is_some_and(|e| e.is::<ClientGone>()));
    /// // A copy shares the caller's error.
    /// assert!(err.clone().user_error().is_some_and(|e| e.is::<ClientGone>()));
    /// ```
    pub fn user_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Error::User { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// An [`Error::User`] for `error`, which the caller's code returned in `context`; the
    /// message is `"{context}: {error}"`, or the error's own when `context` is empty.
    pub fn from_user(context: &str, error: impl Into<BoxError>) -> Self {
        let error = error.into();
        let message = if context.is_empty() {
            error.to_string()
        } else {
            format!("{context}: {error}")
        };
        Error::User {
            message,
            error: Some(Arc::from(error)),
        }
    }

    /// True when the error comes from the caller's arguments (the CLI exits with 2 for these).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}
