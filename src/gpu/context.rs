//! Opening the GPU: adapter choice, device creation with the limits large frames need, and
//! turning wgpu's asynchronous error reports into [`Error::Gpu`] values instead of panics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;

use crate::error::{Error, Result};

/// One line per adapter for `shutter devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. `NVIDIA H100` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// The graphics API wgpu drives it through: `vulkan`, `metal`, `dx12`.
    pub backend: String,
    /// Discrete, integrated, virtual or CPU (software renderers such as lavapipe).
    pub device_type: String,
    /// Driver name and version, as far as the backend reports them.
    pub driver: String,
}

impl AdapterSummary {
    /// Whether this is a software renderer (see [`GpuContext::is_software`]).
    pub fn is_software(&self) -> bool {
        self.device_type == format!("{:?}", wgpu::DeviceType::Cpu)
    }

    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
            (false, false) => format!("{} {}", info.driver, info.driver_info),
            (false, true) => info.driver.clone(),
            (true, false) => info.driver_info.clone(),
            (true, true) => String::new(),
        };
        AdapterSummary {
            name: info.name.clone(),
            backend: info.backend.to_str().to_string(),
            device_type: format!("{:?}", info.device_type),
            driver,
        }
    }
}

/// An opened adapter, device and queue, shared by every [`super::GpuBackend`] built on it.
pub struct GpuContext {
    /// The logical device: creates buffers and pipelines.
    pub device: wgpu::Device,
    /// The device's queue: uploads and submissions.
    pub queue: wgpu::Queue,
    /// Which adapter this is (name, backend, device type, driver).
    pub info: wgpu::AdapterInfo,
    /// Errors wgpu reported outside an error scope and the reason the device was lost, handed
    /// out by [`GpuContext::take_error`].
    reported: Arc<Mutex<Reported>>,
}

/// What [`GpuContext::take_error`] hands out.
#[derive(Default)]
struct Reported {
    /// The first uncaptured error of each thread that has not taken it yet. wgpu calls the
    /// uncaptured-error handler on the thread whose call failed, so with several threads on
    /// one device (pipelines, the YUV converter) each is told of its own errors only.
    by_thread: HashMap<ThreadId, String>,
    /// Why the device was lost: every thread's next use fails with it, for good.
    lost: Option<String>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .finish_non_exhaustive()
    }
}

/// The instance every lookup starts from: backends from `WGPU_BACKEND` when set.
fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// The adapter `auto` picks: wgpu's high-performance choice (lavapipe when there is no GPU).
fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|err| {
        let backends = match std::env::var("WGPU_BACKEND") {
            Ok(list) => format!("backends limited by WGPU_BACKEND={list:?}"),
            Err(_) => "every compiled-in backend tried".to_string(),
        };
        Error::NoAdapter(format!("{err}; {backends}"))
    })
}

/// Stores `message` for the calling thread unless an earlier one is waiting to be reported.
fn record(reported: &Mutex<Reported>, message: String) {
    let mut reported = reported.lock().unwrap_or_else(PoisonError::into_inner);
    reported
        .by_thread
        .entry(std::thread::current().id())
        .or_insert(message);
}

/// Stores why the device was lost (the first reason only).
fn record_lost(reported: &Mutex<Reported>, message: String) {
    let mut reported = reported.lock().unwrap_or_else(PoisonError::into_inner);
    reported.lost.get_or_insert(message);
}

impl GpuContext {
    /// Opens the adapter `auto` would pick, with the adapter's own `max_buffer_size` and
    /// `max_storage_buffer_binding_size` (so frames over 128 MiB fit) and default other limits.
    ///
    /// # Errors
    /// [`Error::NoAdapter`] when there is none, [`Error::Gpu`] when the device cannot be created.
    pub fn new() -> Result<Arc<Self>> {
        let instance = instance();
        let adapter = pick_adapter(&instance)?;
        let info = adapter.get_info();
        let supported = adapter.limits();
        // WebGPU's defaults where the adapter reaches them, the downlevel set otherwise; the two
        // buffer limits as large as the adapter allows.
        let base = if wgpu::Limits::default().check_limits(&supported) {
            wgpu::Limits::default()
        } else {
            wgpu::Limits::downlevel_defaults()
        };
        let required_limits = wgpu::Limits {
            max_buffer_size: supported.max_buffer_size,
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            ..base
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("shutter"),
            required_limits,
            ..Default::default()
        }))
        .map_err(|err| Error::Gpu(format!("{}: cannot create a device: {err}", info.name)))?;

        let reported = Arc::new(Mutex::new(Reported::default()));
        let sink = Arc::clone(&reported);
        device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
            record(&sink, err.to_string());
        }));
        let sink = Arc::clone(&reported);
        let name = info.name.clone();
        device.set_device_lost_callback(move |reason, message| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                record_lost(&sink, format!("{name}: device lost: {message}"));
            }
        });
        Ok(Arc::new(GpuContext {
            device,
            queue,
            info,
            reported,
        }))
    }

    /// Every adapter wgpu can see (honouring `WGPU_BACKEND`), first the one `auto` would pick.
    pub fn adapters() -> Vec<AdapterSummary> {
        let instance = instance();
        let backends = wgpu::InstanceDescriptor::new_without_display_handle_from_env().backends;
        let mut all: Vec<AdapterSummary> =
            pollster::block_on(instance.enumerate_adapters(backends))
                .iter()
                .map(|adapter| AdapterSummary::from_info(&adapter.get_info()))
                .collect();
        if let Ok(auto) = pick_adapter(&instance) {
            let auto = AdapterSummary::from_info(&auto.get_info());
            match all.iter().position(|a| *a == auto) {
                Some(at) => all[..=at].rotate_right(1),
                None => all.insert(0, auto),
            }
        }
        all
    }

    /// Whether the adapter is a software renderer (lavapipe, llvmpipe, SwiftShader, WARP):
    /// `--device auto` prefers the CPU backend to those.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// A short name for messages: `llvmpipe (LLVM 15.0.6, 256 bits) (vulkan)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.info.name, self.info.backend)
    }

    /// The loss of the device, or else the first error wgpu reported outside an error scope
    /// for a call made on this thread since its last `take_error`, as [`Error::Gpu`].
    ///
    /// # Errors
    /// The device's loss (on every call from then on), or this thread's error (once).
    pub fn take_error(&self) -> Result<()> {
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lost) = &reported.lost {
            return Err(Error::Gpu(lost.clone()));
        }
        match reported.by_thread.remove(&std::thread::current().id()) {
            Some(message) => Err(Error::Gpu(message)),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes, so that any wgpu
    /// error it causes comes back as [`Error::Gpu`] (prefixed by `what`) rather than a panic.
    ///
    /// # Errors
    /// The first error `f` caused, or the one `f` itself returned.
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        // Pop in reverse order of pushing; on wgpu-core the futures are ready at once.
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(memory.pop()),
            pollster::block_on(internal.pop()),
        ];
        if let Some(err) = errors.into_iter().flatten().next() {
            return Err(Error::Gpu(format!("{what}: {err}")));
        }
        out
    }
}
