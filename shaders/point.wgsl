// The fused point pass: one invocation per pixel of a band; mirror is a gather from the same
// row, then the whole filter chain (`chain`, generated from the op list), one read, one write.

@compute @workgroup_size(16, 16)
fn point_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let width = params.width;
    let rows = params.rows;
    if (gid.x >= width || gid.y >= rows) {
        return;
    }
    let row = gid.y * width;
    var x = gid.x;
    if (MIRROR) {
        x = width - 1u - gid.x;
    }
    dst[row + gid.x] = pack_rgba(chain(load(row + x), CHAIN_ALL));
}
