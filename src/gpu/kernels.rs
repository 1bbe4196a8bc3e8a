//! The compute kernels for one op list: WGSL assembled from `shaders/*.wgsl` plus a small
//! generated chain function, compiled once into a point pipeline, one reduction pipeline per
//! sepia-norm, the packed mode pipeline (when the op list ends in a point-wise mode) or the
//! wavefront dithering pipeline (mode `1` with Floyd–Steinberg), and the band plan that splits
//! frames too large for one storage binding.

use std::fmt::Write as _;

use wgpu::util::DeviceExt as _;

use crate::error::Result;
use crate::mode::{Dither, ImageMode};
use crate::ops::{Filter, Ops};

use super::context::GpuContext;
use super::modes::PackedMode;

/// Bindings, filters and the two entry points, in the order they are concatenated.
const BINDINGS_WGSL: &str = include_str!("../../shaders/bindings.wgsl");
const FILTERS_WGSL: &str = include_str!("../../shaders/filters.wgsl");
const POINT_WGSL: &str = include_str!("../../shaders/point.wgsl");
const REDUCE_MAX_WGSL: &str = include_str!("../../shaders/reduce_max.wgsl");
const MODES_WGSL: &str = include_str!("../../shaders/modes.wgsl");
const DITHER_WGSL: &str = include_str!("../../shaders/dither.wgsl");

/// Side of the square workgroups of both entry points (`@workgroup_size(16, 16)`).
pub(crate) const WORKGROUP: u32 = 16;

/// Invocations per workgroup of the mode pass (`@workgroup_size(64)` in `shaders/modes.wgsl`).
pub(crate) const MODE_GROUP: u32 = 64;

/// Pixels one invocation of the mode pass converts: a whole number of words for every mode.
pub(crate) const QUAD: u64 = 4;

/// Binding numbers of `shaders/bindings.wgsl`.
const SRC: u32 = 0;
const DST: u32 = 1;
const PARAMS: u32 = 2;
const MAXES: u32 = 3;
const TABLES: u32 = 4;
const ERRORS: u32 = 5;

/// Rows of Floyd–Steinberg errors the dithering kernel keeps (`DITHER_ROWS` in dither.wgsl).
pub(crate) const DITHER_ROWS: u64 = 4;

/// Size of the `Params` uniform (`width`, `has_alpha`, `zero`, `rows`); each band binds its
/// own, at a multiple of the uniform offset alignment.
pub(crate) const PARAMS_SIZE: u64 = 16;

/// How the pixels the kernels read are laid out in the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum InputLayout {
    /// RGBA8, a word a pixel.
    #[default]
    Rgba,
    /// RGB8, 3 bytes a pixel (alpha is 255): a quarter fewer bytes to upload.
    Rgb,
}

impl InputLayout {
    /// Bytes one pixel takes in the input buffer.
    pub(crate) fn bytes_per_pixel(self) -> u32 {
        match self {
            InputLayout::Rgba => 4,
            InputLayout::Rgb => 3,
        }
    }

    /// The WGSL `load(i)`: pixel `i` of the band as RGBA.
    fn load_wgsl(self) -> &'static str {
        match self {
            InputLayout::Rgba => {
                "fn load(i: u32) -> vec4<u32> {\n    return unpack_rgba(src[i]);\n}\n"
            }
            // Bytes 3i .. 3i + 2: within one word, or across two when they start in its last
            // two bytes.
            InputLayout::Rgb => concat!(
                "fn load(i: u32) -> vec4<u32> {\n",
                "    let at = i * 3u;\n",
                "    let shift = (at & 3u) * 8u;\n",
                "    var bits = src[at >> 2u] >> shift;\n",
                "    if (shift > 8u) {\n",
                "        bits |= src[(at >> 2u) + 1u] << (32u - shift);\n",
                "    }\n",
                "    return vec4<u32>(bits & 0xffu, (bits >> 8u) & 0xffu, (bits >> 16u) & 0xffu, 255u);\n",
                "}\n",
            ),
        }
    }
}

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

/// True when `ops` converts to `1` with Floyd–Steinberg: the wavefront kernel is built too.
pub(crate) fn dithers_bilevel(ops: &Ops) -> bool {
    ops.mode == Some(ImageMode::One) && ops.dither == Dither::FloydSteinberg
}

/// The whole shader module for `ops` reading `input`, with the mode pass when `packed` is set
/// and the wavefront dithering pass when `ops` dithers to `1`.
pub(crate) fn module_wgsl(ops: &Ops, packed: Option<&PackedMode>, input: InputLayout) -> String {
    let mut parts = vec![
        BINDINGS_WGSL.to_string(),
        FILTERS_WGSL.to_string(),
        format!("// ---- generated: {input:?} input ----"),
        input.load_wgsl().to_string(),
        "// ---- generated from the op list ----".to_string(),
        chain_wgsl(ops),
        POINT_WGSL.to_string(),
        REDUCE_MAX_WGSL.to_string(),
    ];
    if let Some(packed) = packed {
        parts.push(format!("// ---- generated: mode {} ----", packed.mode));
        parts.push(packed.wgsl());
        parts.push(MODES_WGSL.to_string());
    }
    if dithers_bilevel(ops) {
        // dither.wgsl uses modes.wgsl's luma; its mode pass (`1` without dither) goes unused.
        let bilevel = PackedMode::layout(ImageMode::One);
        parts.push("// ---- generated: wavefront dithering to 1 ----".to_string());
        parts.push(bilevel.wgsl());
        parts.push(MODES_WGSL.to_string());
        parts.push(DITHER_WGSL.to_string());
    }
    parts.join("\n")
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
    /// The fused mirror + filter + mode pass with packed output, when `ops.mode` is point-wise
    /// (boxed: it keeps `GpuBackend` small, and most op lists have none).
    pub packed: Option<Box<PackedKernel>>,
    /// The wavefront Floyd–Steinberg pass to `1` (`shaders/dither.wgsl`), when `ops` asks for
    /// that mode; it binds a small error buffer at binding 5.
    pub dither: Option<wgpu::ComputePipeline>,
}

/// The mode pass of `shaders/modes.wgsl` for one point-wise mode.
pub(crate) struct PackedKernel {
    pub mode: PackedMode,
    pub pipeline: wgpu::ComputePipeline,
    /// The mode's lookup table (HSV, LAB), uploaded once; bound at binding 4.
    pub tables: Option<wgpu::Buffer>,
}

/// A compute-stage storage buffer binding of any size.
pub(crate) fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
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

/// A compute-stage uniform buffer binding of `size` bytes.
pub(crate) fn uniform_entry(binding: u32, size: u64) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: wgpu::BufferSize::new(size),
        },
        count: None,
    }
}

impl Kernels {
    /// Compiles the kernels for `ops` reading `input`; `Ok(None)` when `ops` is the identity on
    /// RGBA input (a copy). RGB input always has kernels: the point pass widens it.
    ///
    /// # Errors
    /// [`Error::Gpu`](crate::error::Error::Gpu) when the shader or a pipeline fails validation.
    pub fn new(ctx: &GpuContext, ops: &Ops, input: InputLayout) -> Result<Option<Self>> {
        if ops.is_identity() && input == InputLayout::Rgba {
            return Ok(None);
        }
        let device = &ctx.device;
        let packed_mode = ops.mode.and_then(|mode| PackedMode::of(mode, ops.dither));
        ctx.scoped("compiling the kernels", || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("shutter ops"),
                source: wgpu::ShaderSource::Wgsl(
                    module_wgsl(ops, packed_mode.as_ref(), input).into(),
                ),
            });
            let tables = packed_mode
                .as_ref()
                .and_then(PackedMode::table_words)
                .map(|words| {
                    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("shutter mode tables"),
                        contents: bytemuck::cast_slice(&words),
                        usage: wgpu::BufferUsages::STORAGE,
                    })
                });
            let mut entries = vec![
                storage_entry(SRC, true),
                storage_entry(DST, false),
                uniform_entry(PARAMS, PARAMS_SIZE),
                storage_entry(MAXES, false),
            ];
            if tables.is_some() {
                entries.push(storage_entry(TABLES, true));
            }
            if dithers_bilevel(ops) {
                entries.push(storage_entry(ERRORS, false));
            }
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("shutter frame band"),
                entries: &entries,
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
            let packed = packed_mode.map(|mode| {
                Box::new(PackedKernel {
                    mode,
                    pipeline: pipeline("shutter mode", "mode_main", &[]),
                    tables,
                })
            });
            let dither =
                dithers_bilevel(ops).then(|| pipeline("shutter dither 1", "dither1_main", &[]));
            Ok(Some(Kernels {
                layout,
                point,
                reductions,
                packed,
                dither,
            }))
        })
    }

    /// The bind group of one band: `src` and `dst` ranges, the band's params (at
    /// `params_offset` in the slot's params buffer) and the slot's maxes, the mode's tables
    /// when it has some, and the dithering errors with the dithering kernel.
    pub fn bind_group(
        &self,
        device: &wgpu::Device,
        buffers: &BandBuffers<'_>,
        band: &Band,
        params_offset: u64,
    ) -> wgpu::BindGroup {
        let range = |buffer, offset, bytes| {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset,
                size: wgpu::BufferSize::new(bytes),
            })
        };
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: SRC,
                resource: range(buffers.src, band.offset, band.bytes),
            },
            wgpu::BindGroupEntry {
                binding: DST,
                resource: range(buffers.dst, band.out_offset, band.out_bytes),
            },
            wgpu::BindGroupEntry {
                binding: PARAMS,
                resource: range(buffers.params, params_offset, PARAMS_SIZE),
            },
            wgpu::BindGroupEntry {
                binding: MAXES,
                resource: buffers.maxes.as_entire_binding(),
            },
        ];
        if let Some(tables) = self.packed.as_ref().and_then(|p| p.tables.as_ref()) {
            entries.push(wgpu::BindGroupEntry {
                binding: TABLES,
                resource: tables.as_entire_binding(),
            });
        }
        if let (Some(_), Some(errors)) = (&self.dither, buffers.errors) {
            entries.push(wgpu::BindGroupEntry {
                binding: ERRORS,
                resource: errors.as_entire_binding(),
            });
        }
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("shutter frame band"),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

/// The buffers a band's bind group refers to.
pub(crate) struct BandBuffers<'a> {
    pub src: &'a wgpu::Buffer,
    pub dst: &'a wgpu::Buffer,
    pub params: &'a wgpu::Buffer,
    pub maxes: &'a wgpu::Buffer,
    /// The dithering kernel's error rows (only with that kernel).
    pub errors: Option<&'a wgpu::Buffer>,
}

/// A run of whole rows of a frame that one storage binding covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Band {
    /// Byte offset of the band's first row in the input (a multiple of the storage offset
    /// alignment).
    pub offset: u64,
    /// Bytes of the band's input binding: rows × width × the input's bytes per pixel, rounded
    /// up to a whole word.
    pub bytes: u64,
    /// Rows in the band.
    pub rows: u32,
    /// Byte offset of the band's output: the band's first pixel × 4 for RGBA output, × bytes
    /// per pixel for a packed mode (aligned too).
    pub out_offset: u64,
    /// Bytes of the band's output binding: its pixels × 4 for RGBA output; for a packed mode,
    /// the band's pixels rounded up to whole 4-pixel quads × bytes per pixel.
    pub out_bytes: u64,
    /// Workgroups to dispatch along x and y for the 16×16 passes (reductions, RGBA point pass).
    pub groups: (u32, u32),
    /// Workgroups for the mode pass (64 quads each; y > 1 only past 65,535 groups); `(0, 0)`
    /// for RGBA output.
    pub mode_groups: (u32, u32),
}

/// What bounds the band plan: the device's limits that matter to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BandLimits {
    /// Largest storage binding, in bytes.
    pub max_binding: u64,
    /// Required alignment of a storage binding's offset, in bytes.
    pub offset_alignment: u64,
    /// Required alignment of a uniform binding's offset (each band's params), in bytes.
    pub uniform_alignment: u64,
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
            uniform_alignment: u64::from(limits.min_uniform_buffer_offset_alignment.max(16)),
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

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// Splits a `width × height` frame whose input takes `in_bpp` bytes a pixel (4: RGBA, 3: RGB)
/// into bands of whole rows, each within `limits`: one band when the frame fits one binding,
/// else bands of equal row counts (the last one shorter) whose input and output offsets are
/// aligned. The output is RGBA, or with `packed_bpp` (a mode's bytes per pixel) that mode's
/// packed bytes, where every band but the last holds a multiple of 4 pixels so that no 4-pixel
/// quad straddles two bands. Empty for a frame without pixels.
///
/// # Errors
/// Why, when not even one aligned group of rows fits or the frame is wider than a dispatch
/// can cover.
pub(crate) fn plan_bands(
    width: u32,
    height: u32,
    limits: BandLimits,
    in_bpp: u32,
    packed_bpp: Option<u32>,
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
    let in_row = u64::from(width) * u64::from(in_bpp);
    let out_bpp = u64::from(packed_bpp.unwrap_or(4));
    let out_row = u64::from(width) * out_bpp;
    let align = limits.offset_alignment;
    // Rows per band: bounded by the binding size and the dispatch's y extent, and (when the frame
    // needs several bands) a multiple of the rows it takes to reach aligned offsets in both the
    // input and the output. A packed output's last quad may reach 12 bytes past the band's
    // pixels, and a 3-byte input is bound rounded up to a whole word: keep room for both.
    let slack = if packed_bpp.is_some() { 16 } else { 0 } + if in_row % 4 != 0 { 4 } else { 0 };
    let max_rows_by_groups = u64::from(limits.max_groups) * u64::from(WORKGROUP);
    let mut rows =
        (limits.max_binding.saturating_sub(slack) / in_row.max(out_row)).min(max_rows_by_groups);
    if rows < u64::from(height) {
        let mut step = lcm(align / gcd(in_row, align), align / gcd(out_row, align));
        if packed_bpp.is_some() {
            step = lcm(step, QUAD / gcd(u64::from(width), QUAD));
        }
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
        // Both fit u32: rows are capped by max_groups × WORKGROUP, and y extents by that too.
        let groups_y = u32::try_from(band_rows.div_ceil(u64::from(WORKGROUP)))
            .expect("band rows are capped by max_groups × WORKGROUP");
        let (offset, bytes) = (y * in_row, (band_rows * in_row).div_ceil(4) * 4);
        let (out_offset, out_bytes, mode_groups) = match packed_bpp {
            None => (y * out_row, band_rows * out_row, (0, 0)),
            Some(_) => {
                let quads = (band_rows * u64::from(width)).div_ceil(QUAD);
                let groups = quads.div_ceil(u64::from(MODE_GROUP));
                let across = groups.min(u64::from(limits.max_groups));
                let down = groups.div_ceil(across);
                if down > u64::from(limits.max_groups) {
                    return Err(format!(
                        "a {width}×{height} frame needs {groups} workgroups for its mode pass; \
                         the adapter allows {} × {}",
                        limits.max_groups, limits.max_groups
                    ));
                }
                // Both fit u32: across ≤ max_groups, down checked above.
                let mode_groups = (across as u32, down as u32);
                (y * out_row, quads * QUAD * out_bpp, mode_groups)
            }
        };
        bands.push(Band {
            offset,
            bytes,
            rows: u32::try_from(band_rows).expect("band rows fit the frame's u32 height"),
            out_offset,
            out_bytes,
            groups: (groups_x, groups_y),
            mode_groups,
        });
        y += band_rows;
    }
    Ok(bands)
}

/// The params of every band of a frame, each at its multiple of `uniform_alignment`, as one
/// buffer write (see `Params` in `shaders/bindings.wgsl`).
pub(crate) fn band_params(
    bands: &[Band],
    width: u32,
    has_alpha: bool,
    uniform_alignment: u64,
) -> Vec<u8> {
    let stride = uniform_alignment.max(PARAMS_SIZE) as usize;
    let mut bytes = vec![0u8; stride * bands.len().max(1)];
    for (band, at) in bands.iter().zip(bytes.chunks_mut(stride)) {
        let words = [width, u32::from(has_alpha), 0, band.rows];
        at[..PARAMS_SIZE as usize].copy_from_slice(bytemuck::bytes_of(&words));
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVAPIPE: BandLimits = BandLimits {
        max_binding: 128 << 20,
        offset_alignment: 256,
        uniform_alignment: 256,
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
        let bands = plan_bands(3840, 2160, LAVAPIPE, 4, None).unwrap();
        assert_eq!(
            bands,
            vec![Band {
                offset: 0,
                bytes: 3840 * 2160 * 4,
                rows: 2160,
                out_offset: 0,
                out_bytes: 3840 * 2160 * 4,
                groups: (240, 135),
                mode_groups: (0, 0),
            }]
        );
    }

    #[test]
    fn a_packed_4k_frame_is_one_band_of_quads_in_a_1d_dispatch() {
        let bands = plan_bands(3840, 2160, LAVAPIPE, 4, Some(3)).unwrap();
        assert_eq!(bands.len(), 1);
        let band = bands[0];
        assert_eq!((band.out_offset, band.out_bytes), (0, 3840 * 2160 * 3));
        // 2,073,600 quads in groups of 64.
        assert_eq!(band.mode_groups, (32_400, 1));
        assert_eq!(band.groups, (240, 135));
    }

    #[test]
    fn packed_output_of_an_odd_frame_rounds_up_to_whole_quads() {
        let bands = plan_bands(3, 7, LAVAPIPE, 4, Some(1)).unwrap();
        // 21 pixels: 6 quads, 24 bytes (the host reads back 21).
        assert_eq!((bands[0].out_bytes, bands[0].mode_groups), (24, (1, 1)));
        let bands = plan_bands(1, 1, LAVAPIPE, 4, Some(3)).unwrap();
        assert_eq!(bands[0].out_bytes, 12);
    }

    #[test]
    fn packed_bands_keep_both_offsets_aligned_and_whole_quads() {
        // 1366 × 1 byte a row: gcd(1366, 256) = 2, so bands are multiples of 128 rows.
        let limits = BandLimits {
            max_binding: 300 * 5464,
            ..LAVAPIPE
        };
        for bpp in [1, 3, 4] {
            let bands = plan_bands(1366, 700, limits, 4, Some(bpp)).unwrap();
            assert!(bands.len() > 1);
            let mut next_in = 0;
            let mut next_out = 0;
            for band in &bands {
                assert_eq!((band.offset, band.out_offset), (next_in, next_out));
                assert_eq!(band.offset % 256, 0);
                assert_eq!(band.out_offset % 256, 0, "bpp {bpp}");
                assert!(band.bytes <= limits.max_binding);
                assert!(band.out_bytes <= limits.max_binding);
                next_in += band.bytes;
                next_out += band.out_bytes;
            }
            assert_eq!(next_in, 1366 * 700 * 4);
            // 1366 × 700 pixels is a multiple of 4: no rounding at the end.
            assert_eq!(next_out, 1366 * 700 * u64::from(bpp));
        }
    }

    #[test]
    fn a_mode_pass_over_65535_groups_dispatches_in_2d() {
        let limits = BandLimits {
            max_binding: 1 << 40,
            ..LAVAPIPE
        };
        // 16384 × 16384 pixels: 67,108,864 quads, 1,048,576 groups of 64.
        let bands = plan_bands(16_384, 16_384, limits, 4, Some(1)).unwrap();
        let (x, y) = bands[0].mode_groups;
        assert!(x <= 65_535 && y > 1);
        assert!(u64::from(x) * u64::from(y) * 64 * 4 >= 16_384 * 16_384);
    }

    #[test]
    fn a_frame_over_128_mib_splits_into_aligned_bands_that_cover_every_row() {
        // 8K RGBA (7680 × 4320 × 4 = 132.7 MB) still fits 128 MiB; 8192 × 4352 does not.
        assert_eq!(plan_bands(7680, 4320, LAVAPIPE, 4, None).unwrap().len(), 1);
        let bands = plan_bands(8192, 4352, LAVAPIPE, 4, None).unwrap();
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
        let bands = plan_bands(1366, 250, limits, 4, None).unwrap();
        assert!(bands.iter().all(|b| b.offset % 256 == 0));
        assert_eq!(bands[0].bytes, 96 * 5464);
        assert_eq!(bands.iter().map(|b| b.bytes).sum::<u64>(), 250 * 5464);
    }

    #[test]
    fn frames_too_wide_for_a_dispatch_or_a_binding_are_errors() {
        assert!(plan_bands(65_535 * 16 + 1, 1, LAVAPIPE, 4, None).is_err());
        let tiny = BandLimits {
            max_binding: 1024,
            ..LAVAPIPE
        };
        assert!(plan_bands(1000, 2, tiny, 4, None).is_err());
        assert!(plan_bands(0, 5, LAVAPIPE, 4, None).unwrap().is_empty());
    }

    #[test]
    fn rgb_input_bands_keep_input_and_output_aligned_and_cover_every_row() {
        // 1366 × 3 = 4098 bytes a row in, 5464 out (RGBA) or 1366 × bpp (packed).
        let limits = BandLimits {
            max_binding: 300 * 5464,
            ..LAVAPIPE
        };
        for packed in [None, Some(1), Some(3), Some(4)] {
            let bands = plan_bands(1366, 701, limits, 3, packed).unwrap();
            assert!(bands.len() > 1, "{packed:?}");
            let out_bpp = u64::from(packed.unwrap_or(4));
            let (mut rows, mut next_out) = (0u64, 0u64);
            for band in &bands {
                assert_eq!(band.offset, rows * 1366 * 3, "{packed:?}");
                assert_eq!(band.out_offset, next_out, "{packed:?}");
                assert_eq!(band.offset % 256, 0, "{packed:?}");
                assert_eq!(band.out_offset % 256, 0, "{packed:?}");
                let in_bytes = u64::from(band.rows) * 1366 * 3;
                assert_eq!(band.bytes, in_bytes.div_ceil(4) * 4);
                assert!(band.bytes <= limits.max_binding && band.out_bytes <= limits.max_binding);
                rows += u64::from(band.rows);
                next_out += band.out_bytes;
            }
            assert_eq!(rows, 701);
            // RGBA output is exact; a packed one is whole quads in every band but the last,
            // which rounds 1366 × 701 up to one.
            let pixels = match packed {
                None => 1366 * 701u64,
                Some(_) => (1366 * 701u64).div_ceil(4) * 4,
            };
            assert_eq!(next_out, pixels * out_bpp, "{packed:?}");
        }
    }

    #[test]
    fn an_rgb_band_is_bound_rounded_up_to_whole_words() {
        let band = plan_bands(3, 7, LAVAPIPE, 3, None).unwrap()[0];
        // 63 bytes of pixels, bound as 64; the output is 21 RGBA pixels.
        assert_eq!((band.bytes, band.rows, band.out_bytes), (64, 7, 84));
        let band = plan_bands(1, 1, LAVAPIPE, 3, Some(1)).unwrap()[0];
        assert_eq!((band.bytes, band.rows, band.out_bytes), (4, 1, 4));
    }

    #[test]
    fn each_band_gets_its_own_params_at_an_aligned_offset() {
        let limits = BandLimits {
            max_binding: 100 * 5464,
            ..LAVAPIPE
        };
        let bands = plan_bands(1366, 250, limits, 4, None).unwrap();
        let bytes = band_params(&bands, 1366, true, 256);
        assert_eq!(bytes.len(), 256 * bands.len());
        for (band, at) in bands.iter().zip(bytes.chunks(256)) {
            let words: [u32; 4] = bytemuck::pod_read_unaligned(&at[..16]);
            assert_eq!(words, [1366, 1, 0, band.rows]);
        }
        assert_eq!(
            bands.iter().map(|b| b.rows).collect::<Vec<_>>(),
            vec![96, 96, 58]
        );
    }
}
