// Mode `1` with Floyd–Steinberg on the GPU, bit for bit Pillow's `tobilevel` (twin:
// mode::cpu::bilevel_fs), in anti-diagonal waves. One left-to-right pass per row:
//
//   v(x, y) = clamp(L(x, y) + (7·e(x−1, y) + E(x+1, y−1)) / 16, 0, 255)     (C division)
//   o = 255 if v > 128 else 0;   e(x, y) = v − o;   L = L1000 / 1000 (truncated)
//   E(k, y) = 3·e(k, y) + 5·e(k−1, y) + e(k−2, y)   for k < W;   E(W, y) = 5·e(W−1, y) + e(W−2, y)
//   (e(−1) = e(−2) = 0, E(·, −1) = 0; the missing 3·e(W) is Pillow's end of row)
//
// Pixel (x, y) needs (x−1, y) and (x−1 ..= x+1, y−1). One invocation converts a block of 4
// pixels of a row (serially, so it writes one whole word of output), and block (X, y) needs
// blocks X−1 of its row and X−1 ..= X+1 of the row above: all blocks with X + 2y = t are
// independent, and wave t needs only waves before it. A single workgroup walks the
// W/4 + 2(H − 1) waves with a storage barrier between them (a dispatch cannot wait for other
// workgroups). e is kept for the last DITHER_ROWS rows only, in `errors` (row y at y mod 4):
// wave t writes row y at block t − 2y while row y + 1 reads row y at blocks t − 2y − 3 ..= t − 2y − 1.
//
// Needs W a multiple of 4 and the frame in one band; the host sends other frames to the CPU.

// e(x, y) of the last DITHER_ROWS rows: DITHER_ROWS × W values.
@group(0) @binding(5) var<storage, read_write> errors: array<i32>;

const DITHER_ROWS: u32 = 4u;
// Invocations of the single workgroup.
const DITHER_LANES: u32 = 256u;

// e(x, y) as the rows above left it (0 outside the frame).
fn dither_e(x: i32, y: u32, width: u32) -> i32 {
    if (x < 0) {
        return 0;
    }
    return errors[(y % DITHER_ROWS) * width + u32(x)];
}

// E(k, y − 1): what pixel k − 1 of row y receives from the row above.
fn dither_below(k: u32, y: u32, width: u32) -> i32 {
    if (y == 0u) {
        return 0;
    }
    let up = y - 1u;
    let ki = i32(k);
    let tail = 5 * dither_e(ki - 1, up, width) + dither_e(ki - 2, up, width);
    if (k == width) {
        return tail;
    }
    return 3 * dither_e(ki, up, width) + tail;
}

// Block (bx, y): pixels 4·bx ..= 4·bx + 3 of row y, left to right; writes their output word.
fn dither_block(bx: u32, y: u32, width: u32) {
    let x0 = bx * 4u;
    var carry = 7 * dither_e(i32(x0) - 1, y, width);
    var word = 0u;
    for (var i = 0u; i < 4u; i++) {
        let x = x0 + i;
        var sx = x;
        if (MIRROR) {
            sx = width - 1u - x;
        }
        let c = chain(load(y * width + sx), CHAIN_ALL);
        let luma = i32(luma_1000(c) / 1000u);
        let v = clamp(luma + (carry + dither_below(x + 1u, y, width)) / 16, 0, 255);
        let o = select(0, 255, v > 128);
        let e = v - o;
        errors[(y % DITHER_ROWS) * width + x] = e;
        carry = 7 * e;
        word |= u32(o) << (8u * i);
    }
    dst[(y * width + x0) / 4u] = word;
}

@compute @workgroup_size(256)
fn dither1_main(@builtin(local_invocation_index) lane: u32) {
    let width = params.width;
    let rows = params.rows;
    let blocks = width / 4u;
    let waves = blocks + 2u * (rows - 1u);
    for (var t = 0u; t < waves; t++) {
        // Rows on wave t: y with 0 ≤ t − 2y < blocks.
        var first = 0u;
        if (t >= blocks) {
            first = (t - blocks) / 2u + 1u;
        }
        let last = min(rows - 1u, t / 2u);
        for (var y = first + lane; y <= last; y += DITHER_LANES) {
            dither_block(t - 2u * y, y, width);
        }
        storageBarrier();
    }
}
