//! `webcam[:INDEX]`: cameras through nokhwa (V4L2 on Linux, AVFoundation on macOS, Media
//! Foundation on Windows), read with `Camera::frame()` one frame per request of the caller's
//! capture thread and handed on as raw YUYV / NV12 / MJPEG / RGB bytes — nokhwa decodes
//! nothing; [`super::live::to_rgba`] does.
//!
//! [`NokhwaGrabber::open`] picks the camera format closest to the requested width, height and
//! rate (see [`choose_format`]); [`list_cameras`] lists the cameras and what they offer.

use std::sync::mpsc;
use std::time::Duration;

use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};

use crate::error::{Error, Result};
use crate::source::live::{Clock, FrameGrabber, RawFormat, RawFrame, SystemClock};

pub use crate::source::pattern::parse_webcam;

/// The camera formats shutter reads, in order of preference when two are equally close:
/// uncompressed YUV first (no decoding loss, converted on the GPU), then MJPEG (CPU decode).
const READABLE: [FrameFormat; 6] = [
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::MJPEG,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];

/// Resolution aimed for when neither width nor height is asked for: 720p, which USB 2 cameras
/// deliver at 30 fps in MJPEG (and many in YUYV).
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);
/// Rate aimed for when none is asked for.
pub const DEFAULT_FPS: u32 = 30;

/// How long [`NokhwaGrabber::open`] waits for the user to grant camera access (macOS).
const PERMISSION_TIMEOUT: Duration = Duration::from_secs(60);

/// One mode a camera offers: size, rate and pixel format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraMode {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// The pixel format the camera sends its frames in.
    pub format: RawFormat,
}

impl std::fmt::Display for CameraMode {
    /// `1280x720 YUYV @ 30 fps`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{} {} @ {} fps",
            self.width, self.height, self.format, self.fps
        )
    }
}

/// A camera as [`list_cameras`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraInfo {
    /// What `webcam:INDEX` takes.
    pub index: usize,
    /// The camera's name, e.g. `HD Pro Webcam C920`.
    pub name: String,
    /// Backend details (e.g. `Video4Linux Device @ /dev/video0`).
    pub description: String,
    /// The modes shutter can read, sorted by format, then size, then rate; empty when the
    /// camera could not be opened to ask (see `error`).
    pub formats: Vec<CameraMode>,
    /// Why `formats` is empty, when the camera could not be opened (busy, no permission).
    pub error: Option<String>,
}

/// nokhwa's format as ours.
fn raw_format(format: FrameFormat) -> RawFormat {
    match format {
        FrameFormat::YUYV => RawFormat::Yuyv,
        FrameFormat::NV12 => RawFormat::Nv12,
        FrameFormat::MJPEG => RawFormat::Mjpeg,
        FrameFormat::RAWRGB => RawFormat::Rgb,
        FrameFormat::RAWBGR => RawFormat::Bgr,
        FrameFormat::GRAY => RawFormat::Gray,
    }
}

fn mode_of(format: &CameraFormat) -> CameraMode {
    CameraMode {
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate(),
        format: raw_format(format.format()),
    }
}

/// The name `webcam:INDEX` gives the camera in messages.
fn device_name(index: usize) -> String {
    format!("webcam:{index}")
}

/// An error message on one line (nokhwa's may span several).
fn one_line(message: impl std::fmt::Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks for camera access where the platform wants it (macOS), waiting for the answer.
fn ensure_permission(device: &str) -> Result<()> {
    if nokhwa::nokhwa_check() {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    nokhwa::nokhwa_initialize(move |granted| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(granted);
        }
    });
    match rx.recv_timeout(PERMISSION_TIMEOUT) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Camera {
            device: device.to_string(),
            reason: "camera access was denied (allow it in the system's privacy settings)"
                .to_string(),
        }),
        Err(_) => Err(Error::Camera {
            device: device.to_string(),
            reason: "no answer to the camera access request".to_string(),
        }),
    }
}

/// The cameras nokhwa's native backend sees, with the modes each offers.
///
/// With no camera this is `Ok` of an empty list. A camera that cannot be opened to list its
/// modes (busy, no permission) is still listed, with no modes and the reason in `error`.
///
/// # Errors
/// [`Error::Camera`] (device `webcams`) when the platform's camera API itself fails.
pub fn list_cameras() -> Result<Vec<CameraInfo>> {
    let found = nokhwa::query(ApiBackend::Auto).map_err(|err| Error::Camera {
        device: "webcams".to_string(),
        reason: one_line(err),
    })?;
    let mut cameras = Vec::new();
    for info in found {
        let Ok(index) = info.index().as_index() else {
            continue;
        };
        let index = index as usize;
        let (formats, error) = match open_camera(index) {
            Ok(mut camera) => match camera.compatible_camera_formats() {
                Ok(list) => {
                    let mut modes: Vec<CameraMode> = list.iter().map(mode_of).collect();
                    modes.sort_by_key(|m| (m.format.name(), m.width, m.height, m.fps));
                    modes.dedup();
                    (modes, None)
                }
                Err(err) => (Vec::new(), Some(one_line(err))),
            },
            Err(err) => (Vec::new(), Some(one_line(err))),
        };
        cameras.push(CameraInfo {
            index,
            name: info.human_name(),
            description: info.description().to_string(),
            formats,
            error,
        });
    }
    cameras.sort_by_key(|c| c.index);
    Ok(cameras)
}

/// Opens camera `index` with whichever readable format the driver lists first.
fn open_camera(index: usize) -> std::result::Result<nokhwa::Camera, nokhwa::NokhwaError> {
    let index = u32::try_from(index).map_err(|_| {
        nokhwa::NokhwaError::OpenDeviceError(index.to_string(), "index too large".to_string())
    })?;
    nokhwa::Camera::new(
        CameraIndex::Index(index),
        RequestedFormat::with_formats(RequestedFormatType::None, &READABLE),
    )
}

/// The mode of `offered` closest to the request, or `None` when nothing is offered.
///
/// Closest means, in this order: the smallest size difference (|ΔW| + |ΔH| over the sides
/// asked for; [`DEFAULT_SIZE`] when neither is), then the smallest rate difference (from
/// [`DEFAULT_FPS`] when none is asked for), then the preferred format (YUYV, NV12, RGB,
/// MJPEG, BGR, gray), then the larger size.
pub fn choose_format(
    offered: &[CameraMode],
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
) -> Option<CameraMode> {
    let (want_w, want_h) = match (width, height) {
        (None, None) => (Some(DEFAULT_SIZE.0), Some(DEFAULT_SIZE.1)),
        other => other,
    };
    let want_fps = fps.unwrap_or(DEFAULT_FPS);
    let rank = |format: RawFormat| {
        READABLE
            .iter()
            .position(|f| raw_format(*f) == format)
            .unwrap_or(READABLE.len())
    };
    offered.iter().copied().min_by_key(|m| {
        let size =
            want_w.map_or(0, |w| m.width.abs_diff(w)) + want_h.map_or(0, |h| m.height.abs_diff(h));
        (
            size,
            m.fps.abs_diff(want_fps),
            rank(m.format),
            std::cmp::Reverse(u64::from(m.width) * u64::from(m.height)),
        )
    })
}

/// A webcam as a [`FrameGrabber`]: frames as the camera sends them (YUYV, NV12, MJPEG, RGB,
/// BGR or gray), stamped on the grabber's [`SystemClock`] when the device hands them over.
///
/// nokhwa's `Camera` may not leave the thread that opened it (it is not `Send` on every
/// platform), so the grabber owns a small device thread of its own that opens the camera and
/// calls `Camera::frame()` once per [`next_frame`](FrameGrabber::next_frame) request: the
/// caller's capture thread still decides when a frame is read (no hidden queue, unlike
/// nokhwa's `CallbackCamera`, which also runs callbacks under a lock and drops errors).
/// Dropping the grabber stops the device thread and closes the camera.
pub struct NokhwaGrabber {
    index: usize,
    name: String,
    mode: CameraMode,
    asked: String,
    /// One message per frame wanted; dropping it ends the device thread.
    requests: Option<mpsc::Sender<()>>,
    frames: mpsc::Receiver<Result<RawFrame>>,
    /// Signalled by the device thread when it has closed the camera.
    closed: mpsc::Receiver<()>,
    failed: bool,
}

impl std::fmt::Debug for NokhwaGrabber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NokhwaGrabber")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// How long dropping a grabber waits for its device thread to close the camera (a camera that
/// stopped delivering would otherwise hang the drop).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the device thread reports once the camera is open: the mode and the camera's name.
type Opened = Result<(CameraMode, String)>;

impl NokhwaGrabber {
    /// Opens camera `index` in the mode closest to `width` × `height` at `fps`
    /// ([`choose_format`]) and starts its stream.
    ///
    /// # Errors
    /// [`Error::Camera`] with device `webcam:INDEX` and a one-line reason when there is no such
    /// camera, it cannot be opened (busy, no permission), offers no readable format, or
    /// refuses the chosen mode or the stream.
    pub fn open(
        index: usize,
        width: Option<u32>,
        height: Option<u32>,
        fps: Option<u32>,
    ) -> Result<Self> {
        let device = device_name(index);
        ensure_permission(&device)?;
        // Ask the platform first: with no camera there is nothing to open, and a clear message.
        if let Ok(found) = nokhwa::query(ApiBackend::Auto) {
            let indices: Vec<usize> = found
                .iter()
                .filter_map(|info| info.index().as_index().ok())
                .map(|i| i as usize)
                .collect();
            if !indices.contains(&index) {
                return Err(Error::Camera {
                    device,
                    reason: if indices.is_empty() {
                        "no camera found (the system lists no video capture devices)".to_string()
                    } else {
                        let list: Vec<String> = indices.iter().map(|i| device_name(*i)).collect();
                        format!("no camera with index {index} (found: {})", list.join(", "))
                    },
                });
            }
        }
        let (opened_tx, opened_rx) = mpsc::channel::<Opened>();
        let (requests, requests_rx) = mpsc::channel::<()>();
        let (frames_tx, frames) = mpsc::channel::<Result<RawFrame>>();
        let (closed_tx, closed) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("shutter {device}"))
            .spawn(move || {
                let clock = SystemClock::new();
                match open_stream(index, width, height, fps) {
                    Ok((camera, mode, name)) => {
                        if opened_tx.send(Ok((mode, name))).is_ok() {
                            serve(camera, index, &clock, &requests_rx, &frames_tx);
                        }
                    }
                    Err(err) => {
                        let _ = opened_tx.send(Err(err));
                    }
                }
                let _ = closed_tx.send(());
            })
            .map_err(|err| Error::Camera {
                device: device.clone(),
                reason: format!("cannot start its capture thread: {err}"),
            })?;
        let (mode, name) = opened_rx.recv().map_err(|_| Error::Camera {
            device: device.clone(),
            reason: "its capture thread stopped while opening the camera".to_string(),
        })??;
        let asked = match (width, height, fps) {
            (None, None, None) => String::new(),
            _ => format!(
                "{}x{} @ {} fps",
                width.map_or("?".to_string(), |w| w.to_string()),
                height.map_or("?".to_string(), |h| h.to_string()),
                fps.map_or("?".to_string(), |f| f.to_string())
            ),
        };
        Ok(NokhwaGrabber {
            index,
            name,
            mode,
            asked,
            requests: Some(requests),
            frames,
            closed,
            failed: false,
        })
    }

    /// The mode the camera streams in.
    pub fn mode(&self) -> CameraMode {
        self.mode
    }

    /// The camera's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Opens camera `index` on the calling thread in the mode closest to the request and starts
/// its stream.
fn open_stream(
    index: usize,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
) -> Result<(nokhwa::Camera, CameraMode, String)> {
    let camera_error = |reason: String| Error::Camera {
        device: device_name(index),
        reason,
    };
    let mut camera = open_camera(index).map_err(|err| camera_error(one_line(err)))?;
    let offered: Vec<CameraMode> = camera
        .compatible_camera_formats()
        .map_err(|err| camera_error(format!("cannot list its formats: {}", one_line(err))))?
        .iter()
        .filter(|f| READABLE.contains(&f.format()))
        .map(mode_of)
        .collect();
    let mode = choose_format(&offered, width, height, fps)
        .ok_or_else(|| camera_error("offers no format shutter reads".to_string()))?;
    let chosen = nokhwa_format(mode);
    if camera.camera_format() != chosen {
        camera
            .set_camera_requset(RequestedFormat::with_formats(
                RequestedFormatType::Exact(chosen),
                &READABLE,
            ))
            .map_err(|err| camera_error(format!("refused {mode}: {}", one_line(err))))?;
    }
    camera
        .open_stream()
        .map_err(|err| camera_error(format!("cannot start streaming: {}", one_line(err))))?;
    let mode = mode_of(&camera.camera_format());
    let name = camera.info().human_name();
    Ok((camera, mode, name))
}

/// The device thread's loop: one `Camera::frame()` per request, until the grabber is dropped.
fn serve(
    mut camera: nokhwa::Camera,
    index: usize,
    clock: &SystemClock,
    requests: &mpsc::Receiver<()>,
    frames: &mpsc::Sender<Result<RawFrame>>,
) {
    while requests.recv().is_ok() {
        let frame = camera
            .frame()
            .map(|buffer| {
                let resolution = buffer.resolution();
                RawFrame {
                    width: resolution.width(),
                    height: resolution.height(),
                    format: raw_format(buffer.source_frame_format()),
                    data: buffer.buffer().to_vec(),
                    timestamp: clock.now(),
                }
            })
            .map_err(|err| Error::Camera {
                device: device_name(index),
                reason: one_line(err),
            });
        if frames.send(frame).is_err() {
            break;
        }
    }
    let _ = camera.stop_stream();
}

/// `mode` as nokhwa's format.
fn nokhwa_format(mode: CameraMode) -> CameraFormat {
    let format = READABLE
        .into_iter()
        .find(|f| raw_format(*f) == mode.format)
        .unwrap_or(FrameFormat::MJPEG);
    CameraFormat::new_from(mode.width, mode.height, format, mode.fps)
}

impl FrameGrabber for NokhwaGrabber {
    fn next_frame(&mut self) -> Result<Option<RawFrame>> {
        let stopped = || Error::Camera {
            device: device_name(self.index),
            reason: "its capture thread stopped".to_string(),
        };
        if self.failed {
            return Err(stopped());
        }
        let asked = self.requests.as_ref().is_some_and(|r| r.send(()).is_ok());
        let frame = if asked {
            self.frames.recv().map_err(|_| stopped())
        } else {
            Err(stopped())
        };
        match frame {
            Ok(Ok(frame)) => Ok(Some(frame)),
            Ok(Err(err)) | Err(err) => {
                self.failed = true;
                Err(err)
            }
        }
    }

    fn describe(&self) -> String {
        let asked = if self.asked.is_empty() {
            String::new()
        } else {
            format!(", asked for {}", self.asked)
        };
        format!("webcam:{} ({}) {}{asked}", self.index, self.name, self.mode)
    }

    fn paced(&self) -> bool {
        true
    }
}

impl Drop for NokhwaGrabber {
    fn drop(&mut self) {
        // Ends the device thread's loop; it stops the stream and drops the camera.
        self.requests = None;
        let _ = self.closed.recv_timeout(CLOSE_TIMEOUT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(width: u32, height: u32, fps: u32, format: RawFormat) -> CameraMode {
        CameraMode {
            width,
            height,
            fps,
            format,
        }
    }

    #[test]
    fn closest_size_wins_then_rate_then_format() {
        let offered = [
            mode(640, 480, 30, RawFormat::Yuyv),
            mode(1280, 720, 10, RawFormat::Yuyv),
            mode(1280, 720, 30, RawFormat::Mjpeg),
            mode(1920, 1080, 30, RawFormat::Mjpeg),
        ];
        assert_eq!(
            choose_format(&offered, None, None, None),
            Some(mode(1280, 720, 30, RawFormat::Mjpeg))
        );
        assert_eq!(
            choose_format(&offered, Some(1280), Some(720), Some(10)),
            Some(mode(1280, 720, 10, RawFormat::Yuyv))
        );
        assert_eq!(
            choose_format(&offered, Some(600), None, None),
            Some(mode(640, 480, 30, RawFormat::Yuyv))
        );
        assert_eq!(
            choose_format(&offered, None, Some(1000), Some(30)),
            Some(mode(1920, 1080, 30, RawFormat::Mjpeg))
        );
        assert_eq!(choose_format(&[], None, None, None), None);
    }

    #[test]
    fn equally_close_modes_prefer_yuv_over_mjpeg() {
        let offered = [
            mode(640, 480, 30, RawFormat::Mjpeg),
            mode(640, 480, 30, RawFormat::Yuyv),
        ];
        assert_eq!(
            choose_format(&offered, Some(640), Some(480), Some(30)),
            Some(mode(640, 480, 30, RawFormat::Yuyv))
        );
    }

    #[test]
    fn multi_line_errors_become_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
    }
}
