// Camera frames to RGBA8: YUYV and NV12, BT.601 limited range, integer arithmetic identical to
// the CPU twin in src/source/yuv.rs, so both give the same bytes:
//
//   C = Y - 16,  D = U - 128,  E = V - 128
//   R = clamp((298 C + 409 E + 128) >> 8, 0, 255)
//   G = clamp((298 C - 100 D - 208 E + 128) >> 8, 0, 255)
//   B = clamp((298 C + 516 D + 128) >> 8, 0, 255)
//   A = 255
//
// (`>>` on i32 is an arithmetic shift: floor division by 256, as in Rust.)
//
// One invocation converts one horizontal pair of pixels (they share U and V in both layouts);
// the dispatch is 2-D: x over pairs, y over rows.

struct Params {
    // Frame width in pixels (even).
    width: u32,
    // Frame height in pixels (even for NV12).
    height: u32,
    // 0: YUYV (Y0 U Y1 V per pixel pair); 1: NV12 (Y plane, then interleaved U V at half size).
    format: u32,
    // NV12: byte offset of the UV plane (width * height).
    uv_offset: u32,
}

// The camera's bytes, four to a word, first byte in the low bits (padded to whole words).
@group(0) @binding(0) var<storage, read> src: array<u32>;
// Packed RGBA8 pixels, R in the low byte: byte-identical to an (H, W, 4) u8 array.
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

// The byte at `offset` of `src`.
fn byte_at(offset: u32) -> i32 {
    return i32((src[offset >> 2u] >> ((offset & 3u) * 8u)) & 0xffu);
}

// One pixel, packed RGBA8 with A = 255 (the formula at the top of this file).
fn rgba(y: i32, u: i32, v: i32) -> u32 {
    let c = 298 * (y - 16);
    let d = u - 128;
    let e = v - 128;
    let r = clamp((c + 409 * e + 128) >> 8u, 0, 255);
    let g = clamp((c - 100 * d - 208 * e + 128) >> 8u, 0, 255);
    let b = clamp((c + 516 * d + 128) >> 8u, 0, 255);
    return u32(r) | (u32(g) << 8u) | (u32(b) << 16u) | 0xff000000u;
}

@compute @workgroup_size(16, 16)
fn yuv_main(@builtin(global_invocation_id) id: vec3<u32>) {
    let pairs = params.width / 2u;
    if id.x >= pairs || id.y >= params.height {
        return;
    }
    var y0: i32;
    var y1: i32;
    var u: i32;
    var v: i32;
    if params.format == 0u {
        // Four bytes per pair, so each pair is exactly one word.
        let word = src[id.y * pairs + id.x];
        y0 = i32(word & 0xffu);
        u = i32((word >> 8u) & 0xffu);
        y1 = i32((word >> 16u) & 0xffu);
        v = i32(word >> 24u);
    } else {
        let luma = id.y * params.width + 2u * id.x;
        y0 = byte_at(luma);
        y1 = byte_at(luma + 1u);
        let chroma = params.uv_offset + (id.y / 2u) * params.width + 2u * id.x;
        u = byte_at(chroma);
        v = byte_at(chroma + 1u);
    }
    let out = id.y * params.width + 2u * id.x;
    dst[out] = rgba(y0, u, v);
    dst[out + 1u] = rgba(y1, u, v);
}
