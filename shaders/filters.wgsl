// The per-pixel filters of shutter, on one RGBA8 pixel held as vec4<u32> (each channel 0..=255).
// Every formula is integer arithmetic, identical to src/ops/mod.rs and src/ops/cpu.rs, so the GPU
// and the CPU reference agree bit for bit:
//
//   mirror      out(x, y) = in(W-1-x, y)                       (a gather, in the kernel entry)
//   sepia       n_c = S[c][0]·R + S[c][1]·G + S[c][2]·B   with S = 1000 × the classic matrix
//                   S = [[393, 769, 189], [349, 686, 168], [272, 534, 131]]
//               out_c = min(255, rint(n_c / 1000))                     (rint: half to even)
//   sepia-norm  n_c as for sepia; N = max of n_c over the frame's pixels and R, G, B
//               out_c = rint(255 · n_c / N),  and 0 when N = 0           (N: reduce_max.wgsl)
//   grayscale   L = (19595·R + 38470·G + 7471·B + 0x8000) >> 16;  R = G = B = L   (Pillow "L")
//   invert      out_c = 255 − v_c
//
// Alpha passes through every filter unchanged. The largest intermediate, 255 · 344505, fits u32.
//
// Pixels travel packed in one u32, little-endian: R is the low byte, A the high byte.

fn unpack_rgba(p: u32) -> vec4<u32> {
    return vec4<u32>(p & 0xffu, (p >> 8u) & 0xffu, (p >> 16u) & 0xffu, p >> 24u);
}

fn pack_rgba(c: vec4<u32>) -> u32 {
    return c.x | (c.y << 8u) | (c.z << 16u) | (c.w << 24u);
}

// Round-half-to-even of n / d for d > 0 (numpy's rint on the exact quotient).
fn div_rint(n: u32, d: u32) -> u32 {
    let q = n / d;
    let twice = 2u * (n % d);
    if (twice > d || (twice == d && (q & 1u) == 1u)) {
        return q + 1u;
    }
    return q;
}

// The three sepia sums n_c (×1000 of the float sepia value).
fn sepia_sums(c: vec4<u32>) -> vec3<u32> {
    return vec3<u32>(
        393u * c.x + 769u * c.y + 189u * c.z,
        349u * c.x + 686u * c.y + 168u * c.z,
        272u * c.x + 534u * c.y + 131u * c.z,
    );
}

// The largest of a pixel's three sepia sums: what sepia-norm's reduction takes the maximum of.
fn sepia_sum_max(c: vec4<u32>) -> u32 {
    let n = sepia_sums(c);
    return max(n.x, max(n.y, n.z));
}

fn sepia(c: vec4<u32>) -> vec4<u32> {
    let n = sepia_sums(c);
    return vec4<u32>(
        min(div_rint(n.x, 1000u), 255u),
        min(div_rint(n.y, 1000u), 255u),
        min(div_rint(n.z, 1000u), 255u),
        c.w,
    );
}

// `n_max` is the frame's largest sepia sum at this point of the chain.
fn sepia_norm(c: vec4<u32>, n_max: u32) -> vec4<u32> {
    if (n_max == 0u) {
        return vec4<u32>(0u, 0u, 0u, c.w);
    }
    let n = sepia_sums(c);
    return vec4<u32>(
        div_rint(255u * n.x, n_max),
        div_rint(255u * n.y, n_max),
        div_rint(255u * n.z, n_max),
        c.w,
    );
}

fn grayscale(c: vec4<u32>) -> vec4<u32> {
    let l = (19595u * c.x + 38470u * c.y + 7471u * c.z + 0x8000u) >> 16u;
    return vec4<u32>(l, l, l, c.w);
}

fn invert(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(255u - c.x, 255u - c.y, 255u - c.z, c.w);
}
