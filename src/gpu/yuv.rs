//! Camera frames (YUYV, NV12) to RGBA8 on the GPU: one small compute pass (`shaders/yuv.wgsl`)
//! with its own pipeline and buffers reused from frame to frame.
//!
//! The conversion is BT.601 limited range in integer arithmetic, the same as the CPU twin
//! [`crate::source::yuv`], so the two give identical bytes:
//!
//! ```text
//! C = Y − 16,  D = U − 128,  E = V − 128
//! R = clamp((298·C + 409·E + 128) >> 8, 0, 255)
//! G = clamp((298·C − 100·D − 208·E + 128) >> 8, 0, 255)
//! B = clamp((298·C + 516·D + 128) >> 8, 0, 255)
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::kernels::{storage_entry, uniform_entry};
use crate::gpu::map::{MapSignal, MapState, SETTLE_LIMIT};
use crate::source::live::RawFormat;
use crate::source::yuv;

const YUV_WGSL: &str = include_str!("../../shaders/yuv.wgsl");

/// Side of the square workgroups (`@workgroup_size(16, 16)` in `shaders/yuv.wgsl`).
const WORKGROUP: u32 = 16;

/// Bytes of the `Params` uniform: width, height, format, uv_offset.
const PARAMS_SIZE: u64 = 16;

/// The buffers of one frame size class, grown when a larger frame comes and then reused.
struct Buffers {
    /// Raw camera bytes (storage, read-only in the shader).
    input: wgpu::Buffer,
    /// RGBA8 result (storage).
    output: wgpu::Buffer,
    /// Where the result is copied to be mapped for reading.
    readback: wgpu::Buffer,
    /// The bind group over the three buffers and the params.
    group: wgpu::BindGroup,
    input_bytes: u64,
    output_bytes: u64,
}

/// Converts YUYV and NV12 frames to RGBA8 on the GPU.
///
/// Build one per capture thread and call [`YuvConverter::convert`] for each frame; buffers are
/// allocated for the largest frame seen and reused. Frames larger than the adapter can bind in
/// one storage buffer are converted by the CPU twin instead (same bytes).
pub struct YuvConverter {
    ctx: Arc<GpuContext>,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    buffers: Option<Buffers>,
}

impl std::fmt::Debug for YuvConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YuvConverter")
            .field("gpu", &self.ctx.info.name)
            .finish_non_exhaustive()
    }
}

impl YuvConverter {
    /// Compiles the pass on `ctx`'s device.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the shader or pipeline fails validation.
    pub fn new(ctx: Arc<GpuContext>) -> Result<Self> {
        let device = &ctx.device;
        let (layout, pipeline, params) = ctx.scoped("compiling the YUV pass", || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("shutter yuv"),
                source: wgpu::ShaderSource::Wgsl(YUV_WGSL.into()),
            });
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("shutter yuv"),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, false),
                    uniform_entry(2, PARAMS_SIZE),
                ],
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("shutter yuv"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("shutter yuv"),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("yuv_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
            let params = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("shutter yuv params"),
                size: PARAMS_SIZE,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            Ok((layout, pipeline, params))
        })?;
        Ok(YuvConverter {
            ctx,
            layout,
            pipeline,
            params,
            buffers: None,
        })
    }

    /// The adapter this converter runs on, for messages.
    pub fn describe(&self) -> String {
        self.ctx.describe()
    }

    /// Converts one `width` × `height` frame of `format` ([`RawFormat::Yuyv`] or
    /// [`RawFormat::Nv12`]) to RGBA8, `width * height * 4` bytes, A = 255. Bytes past the
    /// frame's size in `data` (driver padding) are ignored.
    ///
    /// # Errors
    /// - [`Error::Decode`] for an odd width (YUYV, NV12), an odd height (NV12), an empty frame,
    ///   or too few bytes — the same checks as the CPU twin.
    /// - [`Error::Unsupported`] for any other format.
    /// - [`Error::Gpu`] when the submission or the readback fails.
    pub fn convert(
        &mut self,
        format: RawFormat,
        width: u32,
        height: u32,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let (code, needed) = match format {
            RawFormat::Yuyv => (0u32, yuv::yuyv_len(width, height)?),
            RawFormat::Nv12 => (1u32, yuv::nv12_len(width, height)?),
            other => {
                return Err(Error::Unsupported {
                    input: "live frame".to_string(),
                    reason: format!("the GPU YUV pass converts YUYV and NV12, not {other}"),
                });
            }
        };
        let data = data.get(..needed).ok_or_else(|| Error::Decode {
            input: "live frame".to_string(),
            format: format.name().to_string(),
            reason: format!(
                "{} bytes for a {width}×{height} frame, which needs {needed}",
                data.len()
            ),
        })?;
        let out_bytes = width as u64 * height as u64 * 4;
        let in_bytes = (needed as u64).next_multiple_of(4);
        let limits = self.ctx.device.limits();
        let max = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if out_bytes > max || u32::try_from(needed).is_err() {
            // Too large to bind in one piece: the CPU twin gives the same bytes.
            return match format {
                RawFormat::Yuyv => yuv::yuyv_to_rgba(width, height, data),
                _ => yuv::nv12_to_rgba(width, height, data),
            };
        }
        let what = format!("converting a {width}×{height} {format} frame");
        let ctx = Arc::clone(&self.ctx);
        ctx.scoped(&what, || {
            self.ensure_buffers(in_bytes, out_bytes);
            let buffers = self.buffers.as_ref().expect("ensure_buffers made them");
            let queue = &self.ctx.queue;
            // write_buffer needs whole words: the aligned prefix, then the tail padded.
            let aligned = needed & !3;
            if aligned > 0 {
                queue.write_buffer(&buffers.input, 0, &data[..aligned]);
            }
            if aligned < needed {
                let mut tail = [0u8; 4];
                tail[..needed - aligned].copy_from_slice(&data[aligned..]);
                queue.write_buffer(&buffers.input, aligned as u64, &tail);
            }
            // Params: width, height, format, uv_offset (see shaders/yuv.wgsl).
            let params = [width, height, code, width * height];
            queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&params));

            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("shutter yuv"),
                    });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("shutter yuv"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &buffers.group, &[]);
                pass.dispatch_workgroups(
                    (width / 2).div_ceil(WORKGROUP),
                    height.div_ceil(WORKGROUP),
                    1,
                );
            }
            encoder.copy_buffer_to_buffer(&buffers.output, 0, &buffers.readback, 0, out_bytes);
            let submission = queue.submit([encoder.finish()]);

            let mapped = MapSignal::new(MapState::Pending);
            let slice = buffers.readback.slice(..out_bytes);
            mapped.map(slice, wgpu::MapMode::Read);
            self.ctx
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(submission),
                    timeout: None,
                })
                .map_err(|err| Error::Gpu(format!("{what}: waiting for the GPU: {err}")))?;
            if mapped.settle(SETTLE_LIMIT) != MapState::Mapped {
                self.ctx.take_error()?;
                return Err(Error::Gpu(format!(
                    "{what}: the readback could not be mapped"
                )));
            }
            let rgba = {
                let view = slice
                    .get_mapped_range()
                    .map_err(|err| Error::Gpu(format!("{what}: {err}")))?;
                view.to_vec()
            };
            buffers.readback.unmap();
            Ok(rgba)
        })
    }

    /// Makes sure the buffers hold `in_bytes` of input and `out_bytes` of output, replacing them
    /// (and the bind group) only when they are too small.
    fn ensure_buffers(&mut self, in_bytes: u64, out_bytes: u64) {
        if self
            .buffers
            .as_ref()
            .is_some_and(|b| b.input_bytes >= in_bytes && b.output_bytes >= out_bytes)
        {
            return;
        }
        // Grow both to at least what they were, so alternating sizes do not reallocate.
        let (in_bytes, out_bytes) = match &self.buffers {
            Some(b) => (in_bytes.max(b.input_bytes), out_bytes.max(b.output_bytes)),
            None => (in_bytes, out_bytes),
        };
        let device = &self.ctx.device;
        let buffer = |label, size, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let input = buffer("shutter yuv input", in_bytes, U::STORAGE | U::COPY_DST);
        let output = buffer("shutter yuv output", out_bytes, U::STORAGE | U::COPY_SRC);
        let readback = buffer("shutter yuv readback", out_bytes, U::MAP_READ | U::COPY_DST);
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("shutter yuv"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: input.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: output.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: self.params.as_entire_binding(),
                },
            ],
        });
        self.buffers = Some(Buffers {
            input,
            output,
            readback,
            group,
            input_bytes: in_bytes,
            output_bytes: out_bytes,
        });
    }
}
