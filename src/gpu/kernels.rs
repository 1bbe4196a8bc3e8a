//! The compute kernels for one op list: WGSL assembled from `shaders/*.wgsl` plus a small
//! generated chain function, compiled once into a point pipeline and one reduction pipeline per
//! sepia-norm, and the band plan that splits frames too large for one storage binding.

use std::fmt::Write as _;

use crate::error::Result;
use crate::ops::{Filter, Ops};

use super::context::GpuContext;

/// Bindings, filters and the two entry points, in the order they are concatenated.
const BINDINGS_WGSL: &str = include_str!("../../shaders/bindings.wgsl");
const FILTERS_WGSL: &str = include_str!("../../shaders/filters.wgsl");
const POINT_WGSL: &str = include_str!("../../shaders/point.wgsl");
const REDUCE_MAX_WGSL: &str = include_str!("../../shaders/reduce_max.wgsl");

/// Side of the square workgroups of both entry points (`@workgroup_size(16, 16)`).
pub(crate) const WORKGROUP: u32 = 16;

/// Binding numbers of `shaders/bindings.wgsl`.
const SRC: u32 = 0;
const DST: u32 = 1;
const PARAMS: u32 = 2;
const MAXES: u32 = 3;

/// Size of the `Params` uniform (`width` and padding to 16 bytes).
pub(crate) const PARAMS_SIZE: u64 = 16;

/// The WGSL function that applies `ops.filters` in order, plus the `MIRROR` constant.
///
/// `chain(c, CHAIN_ALL)` runs every filter; `chain(c, k)` returns the value just before the
/// k-th sepia-norm, which is what that sepia-norm's reduction needs.
pub(crate) fn chain_wgsl(ops: &Ops) -> String {
    let mut src = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(src, "const MIRROR: bool = {};", ops.mirror);
    src.push_str("\nfn chain(c_in: vec4<u32>, stop: u32) -> vec4<u32> {\n    var c = c_in;\n");
    let mut norms = 0u32;
    for filter in &ops.filters {
        match filter {
            Filter::Sepia => src.push_str("    c = sepia(c);\n"),
            Filter::SepiaNorm => {
                let _ = writeln!(
                    src,
                    "    if (stop == {norms}u) {{\n        return c;\n    }}"
                );
                let _ = writeln!(src, "    c = sepia_norm(c, max_at({norms}u));");
                norms += 1;
            }
            Filter::Grayscale => src.push_str("    c = grayscale(c);\n"),
            Filter::Invert => src.push_str("    c = invert(c);\n"),
        }
    }
    src.push_str("    return c;\n}\n");
    src
}

/// The whole shader module for `ops`.
pub(crate) fn module_wgsl(ops: &Ops) -> String {
    [
        BINDINGS_WGSL,
        FILTERS_WGSL,
        "// ---- generated from the op list ----",
        &chain_wgsl(ops),
        POINT_WGSL,
        REDUCE_MAX_WGSL,
    ]
    .join("\n")
}

/// Number of sepia-norms in the chain: each needs its own reduction and slot in `maxes`.
pub(crate) fn sepia_norms(ops: &Ops) -> usize {
    ops.filters
        .iter()
        .filter(|f| **f == Filter::SepiaNorm)
        .count()
}

/// The compiled pipelines for one op list. `None` for the identity op list, which is a copy.
pub(crate) struct Kernels {
    /// Layout of bind group 0 (`shaders/bindings.wgsl`), shared by every pipeline.
    pub layout: wgpu::BindGroupLayout,
    /// The fused mirror + filter pass.
    pub point: wgpu::ComputePipeline,
    /// One reduction per sepia-norm, in chain order.
    pub reductions: Vec<wgpu::ComputePipeline>,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Kernels {
    /// Compiles the kernels for `ops`; `Ok(None)` when `ops` is the identity.
    ///
    /// # Errors
    /// [`Error::Gpu`](crate::error::Error::Gpu) when the shader or a pipeline fails validation.
    pub fn new(ctx: &GpuContext, ops: &Ops) -> Result<Option<Self>> {
        if ops.is_identity() {
            return Ok(None);
        }
        let device = &ctx.device;
        ctx.scoped("compiling the kernels", || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("shutter ops"),
                source: wgpu::ShaderSource::Wgsl(module_wgsl(ops).into()),
            });
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("shutter frame band"),
                entries: &[
                    storage_entry(SRC, true),
                    storage_entry(DST, false),
                    wgpu::BindGroupLayoutEntry {
                        binding: PARAMS,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: wgpu::BufferSize::new(PARAMS_SIZE),
                        },
                        count: None,
                    },
                    storage_entry(MAXES, false),
                ],
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("shutter ops"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = |label: &str, entry: &str, constants: &[(&str, f64)]| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(label),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        // reduce_max.wgsl initialises its one workgroup variable itself.
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            };
            let point = pipeline("shutter point", "point_main", &[]);
            let reductions = (0..sepia_norms(ops))
                .map(|k| {
                    pipeline(
                        "shutter reduce_max",
                        "reduce_max_main",
                        &[("STOP", k as f64)],
                    )
                })
                .collect();
            Ok(Some(Kernels {
                layout,
                point,
                reductions,
            }))
        })
    }

    /// The bind group of one band: `src` and `dst` ranges, the slot's params and maxes.
    pub fn bind_group(
        &self,
        device: &wgpu::Device,
        buffers: &BandBuffers<'_>,
        band: &Band,
    ) -> wgpu::BindGroup {
        let range = |buffer| {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset: band.offset,
                size: wgpu::BufferSize::new(band.bytes),
            })
        };
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("shutter frame band"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: SRC,
                    resource: range(buffers.src),
                },
                wgpu::BindGroupEntry {
                    binding: DST,
                    resource: range(buffers.dst),
                },
                wgpu::BindGroupEntry {
                    binding: PARAMS,
                    resource: buffers.params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: MAXES,
                    resource: buffers.maxes.as_entire_binding(),
                },
            ],
        })
    }
}

/// The buffers a band's bind group refers to.
pub(crate) struct BandBuffers<'a> {
    pub src: &'a wgpu::Buffer,
    pub dst: &'a wgpu::Buffer,
    pub params: &'a wgpu::Buffer,
    pub maxes: &'a wgpu::Buffer,
}

/// A run of whole rows of a frame that one storage binding covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Band {
    /// Byte offset of the band's first row (a multiple of the storage offset alignment).
    pub offset: u64,
    /// Bytes in the band (rows × width × 4).
    pub bytes: u64,
    /// Workgroups to dispatch along x and y.
    pub groups: (u32, u32),
}

/// What bounds the band plan: the device's limits that matter to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BandLimits {
    /// Largest storage binding, in bytes.
    pub max_binding: u64,
    /// Required alignment of a binding's offset, in bytes.
    pub offset_alignment: u64,
    /// Largest workgroup count per dispatch dimension.
    pub max_groups: u32,
}

impl BandLimits {
    /// The limits of `device`.
    pub fn of(device: &wgpu::Device) -> Self {
        let limits = device.limits();
        BandLimits {
            max_binding: limits.max_storage_buffer_binding_size,
            offset_alignment: u64::from(limits.min_storage_buffer_offset_alignment.max(4)),
            max_groups: limits.max_compute_workgroups_per_dimension,
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Splits a `width × height` frame into bands of whole rows, each within `limits`: one band
/// when the frame fits one binding, else bands of equal row counts (the last one shorter) whose
/// offsets are aligned. Empty for a frame without pixels.
///
/// # Errors
/// Why, when not even one aligned group of rows fits or the frame is wider than a dispatch
/// can cover.
pub(crate) fn plan_bands(
    width: u32,
    height: u32,
    limits: BandLimits,
) -> std::result::Result<Vec<Band>, String> {
    if width == 0 || height == 0 {
        return Ok(Vec::new());
    }
    let groups_x = width.div_ceil(WORKGROUP);
    if groups_x > limits.max_groups {
        return Err(format!(
            "a frame {width} pixels wide needs {groups_x} workgroups across; the adapter allows {}",
            limits.max_groups
        ));
    }
    let row_bytes = u64::from(width) * 4;
    // Rows per band: bounded by the binding size and the dispatch's y extent, and (when the frame
    // needs several bands) a multiple of the rows it takes to reach an aligned offset.
    let max_rows_by_groups = u64::from(limits.max_groups) * u64::from(WORKGROUP);
    let mut rows = (limits.max_binding / row_bytes).min(max_rows_by_groups);
    if rows < u64::from(height) {
        let step = limits.offset_alignment / gcd(row_bytes, limits.offset_alignment);
        rows -= rows % step;
    }
    if rows == 0 {
        return Err(format!(
            "a {width}×{height} frame cannot be split into bands of whole rows within the \
             adapter's {} byte storage binding limit",
            limits.max_binding
        ));
    }
    let mut bands = Vec::new();
    let mut y = 0u64;
    while y < u64::from(height) {
        let band_rows = rows.min(u64::from(height) - y);
        let groups_y = u32::try_from(band_rows.div_ceil(u64::from(WORKGROUP)))
            .expect("band rows are capped by max_groups × WORKGROUP");
        bands.push(Band {
            offset: y * row_bytes,
            bytes: band_rows * row_bytes,
            groups: (groups_x, groups_y),
        });
        y += band_rows;
    }
    Ok(bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVAPIPE: BandLimits = BandLimits {
        max_binding: 128 << 20,
        offset_alignment: 256,
        max_groups: 65_535,
    };

    #[test]
    fn chain_stops_before_each_sepia_norm_in_order() {
        let ops = Ops {
            mirror: true,
            filters: vec![
                Filter::Sepia,
                Filter::SepiaNorm,
                Filter::Invert,
                Filter::SepiaNorm,
            ],
            ..Default::default()
        };
        let src = chain_wgsl(&ops);
        assert!(src.starts_with("const MIRROR: bool = true;"), "{src}");
        let order = [
            "c = sepia(c);",
            "if (stop == 0u)",
            "c = sepia_norm(c, max_at(0u));",
            "c = invert(c);",
            "if (stop == 1u)",
            "c = sepia_norm(c, max_at(1u));",
            "return c;\n}",
        ];
        let mut at = 0;
        for piece in order {
            let found = src[at..]
                .find(piece)
                .unwrap_or_else(|| panic!("{piece} in {src}"));
            at += found + piece.len();
        }
        assert_eq!(sepia_norms(&ops), 2);
    }

    #[test]
    fn identity_chain_returns_its_input() {
        let src = chain_wgsl(&Ops::default());
        assert!(src.contains("const MIRROR: bool = false;"));
        assert!(src.contains("var c = c_in;\n    return c;"), "{src}");
    }

    #[test]
    fn a_4k_frame_is_one_band_with_2d_dispatch() {
        let bands = plan_bands(3840, 2160, LAVAPIPE).unwrap();
        assert_eq!(
            bands,
            vec![Band {
                offset: 0,
                bytes: 3840 * 2160 * 4,
                groups: (240, 135)
            }]
        );
    }

    #[test]
    fn a_frame_over_128_mib_splits_into_aligned_bands_that_cover_every_row() {
        // 8K RGBA (7680 × 4320 × 4 = 132.7 MB) still fits 128 MiB; 8192 × 4352 does not.
        assert_eq!(plan_bands(7680, 4320, LAVAPIPE).unwrap().len(), 1);
        let bands = plan_bands(8192, 4352, LAVAPIPE).unwrap();
        assert_eq!(bands.len(), 2);
        let mut next = 0;
        for band in &bands {
            assert_eq!(band.offset, next);
            assert_eq!(band.offset % 256, 0);
            assert!(band.bytes <= LAVAPIPE.max_binding);
            assert_eq!(band.bytes % (8192 * 4), 0);
            next += band.bytes;
        }
        assert_eq!(next, 8192 * 4352 * 4);
    }

    #[test]
    fn odd_widths_band_on_rows_that_keep_offsets_aligned() {
        // 1366 × 4 = 5464 bytes a row; gcd(5464, 256) = 8, so bands hold multiples of 32 rows.
        let limits = BandLimits {
            max_binding: 100 * 5464,
            ..LAVAPIPE
        };
        let bands = plan_bands(1366, 250, limits).unwrap();
        assert!(bands.iter().all(|b| b.offset % 256 == 0));
        assert_eq!(bands[0].bytes, 96 * 5464);
        assert_eq!(bands.iter().map(|b| b.bytes).sum::<u64>(), 250 * 5464);
    }

    #[test]
    fn frames_too_wide_for_a_dispatch_or_a_binding_are_errors() {
        assert!(plan_bands(65_535 * 16 + 1, 1, LAVAPIPE).is_err());
        let tiny = BandLimits {
            max_binding: 1024,
            ..LAVAPIPE
        };
        assert!(plan_bands(1000, 2, tiny).is_err());
        assert!(plan_bands(0, 5, LAVAPIPE).unwrap().is_empty());
    }
}
