// The resources of every kernel pass (bind group 0): one band of whole rows of one frame.
// A band is the whole frame unless the frame exceeds the adapter's storage-binding limit.

struct Params {
    // Frame width in pixels.
    width: u32,
    // 1 when the frame's source had alpha (Pillow mode RGBA), 0 for RGB sources (modes.wgsl).
    has_alpha: u32,
    // Always 0. Mixed into values the driver's optimiser must not rewrite (modes.wgsl `opaque`):
    // it cannot prove `x | zero == x`, so it keeps the exact IEEE operations written.
    zero: u32,
    // Rows in this band (each band binds its own params).
    rows: u32,
}

// Input pixels, read through the generated `load(i)` (pixel i of the band as RGBA): packed RGBA8
// (see filters.wgsl), or RGB8 at 3 bytes a pixel, four bytes to a word, first byte in the low
// bits, the binding rounded up to whole words.
@group(0) @binding(0) var<storage, read> src: array<u32>;
// Output: pixels packed like `src` (the RGBA pass), or a Pillow mode's bytes packed in words
// (the mode pass of modes.wgsl: 1, 3 or 4 bytes per pixel, 4 pixels per invocation).
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
// One slot per sepia-norm of the chain, in chain order: the frame's largest sepia sum there.
// Cleared to 0 before the reductions; written by reduce_max.wgsl, read by the point pass.
@group(0) @binding(3) var<storage, read_write> maxes: array<atomic<u32>>;

// The maximum found by the reduction for the chain's k-th sepia-norm.
fn max_at(k: u32) -> u32 {
    return atomicLoad(&maxes[k]);
}

// `chain(c, CHAIN_ALL)` applies every filter; `chain(c, k)` stops before sepia-norm number k.
const CHAIN_ALL: u32 = 0xffffffffu;
