// The reduction for sepia-norm number STOP: the frame's largest sepia sum (over all pixels and
// R, G, B) of the values the chain has produced just before that sepia-norm. Mirror does not
// change a maximum, so the pass reads pixels in place. Each workgroup reduces its 256 pixels in
// workgroup memory, then one atomicMax per workgroup goes to `maxes[STOP]`.

// Which sepia-norm of the chain this pipeline serves (set per pipeline, 0-based).
override STOP: u32 = 0u;

var<workgroup> group_max: atomic<u32>;

@compute @workgroup_size(16, 16)
fn reduce_max_main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if (lid == 0u) {
        atomicStore(&group_max, 0u);
    }
    workgroupBarrier();
    let width = params.width;
    let rows = params.rows;
    if (gid.x < width && gid.y < rows) {
        let c = chain(load(gid.y * width + gid.x), STOP);
        atomicMax(&group_max, sepia_sum_max(c));
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&maxes[STOP], atomicLoad(&group_max));
    }
}
