//! Host-side copies of whole frames, split across threads: the copies into the mapped upload
//! buffer and out of the mapped readback. One thread moves about 10 GB/s; a 4K RGBA frame is
//! 33 MB, so on a many-core host these copies, not the PCIe transfer, may bound a round trip
//! unless they run in parallel. On few cores they stay on one thread ([`copy_threads`]);
//! `shutter bench` measures both (rows `gpu.upload.staging.threads_N`,
//! `gpu.readback.threads_N`).

use crate::ops::fast::available_threads;

/// Bytes below which a copy stays on the calling thread, and the least each helper thread
/// copies: starting a scoped thread costs tens of microseconds, about what 1 MiB takes to copy.
pub(crate) const MIN_BYTES_PER_THREAD: usize = 1 << 20;

/// Copies `src` into `dst` (equal lengths) on up to `threads` threads, the calling one
/// included, each taking one contiguous chunk of at least [`MIN_BYTES_PER_THREAD`]. `dst` is
/// write-only: a mapped upload buffer (`BufferViewMut::slice`) or `(&mut v[..]).into()`.
///
/// # Panics
/// When the lengths differ (a caller's bug, like `copy_from_slice`).
pub(crate) fn par_copy_with(dst: wgpu::WriteOnly<'_, [u8]>, src: &[u8], threads: usize) {
    assert_eq!(dst.len(), src.len(), "par_copy: lengths differ");
    let threads = threads.min(src.len() / MIN_BYTES_PER_THREAD).max(1);
    let mut dst = dst;
    if threads == 1 {
        dst.copy_from_slice(src);
        return;
    }
    // Chunks of whole 64-byte cache lines, so that no line is written by two threads.
    let chunk = src.len().div_ceil(threads).div_ceil(64) * 64;
    std::thread::scope(|scope| {
        let (mut first, mut rest) = (None, src);
        while !rest.is_empty() {
            let n = chunk.min(rest.len());
            let (d, tail) = dst.split_at(n);
            let s;
            (s, rest) = rest.split_at(n);
            dst = tail;
            if first.is_none() {
                first = Some((d, s));
            } else {
                let chunk = Chunk(d);
                scope.spawn(move || chunk.fill(s));
            }
        }
        if let Some((mut d, s)) = first {
            d.copy_from_slice(s);
        }
    });
}

/// A write-only chunk moved to a helper thread.
struct Chunk<'a>(wgpu::WriteOnly<'a, [u8]>);

impl Chunk<'_> {
    fn fill(mut self, src: &[u8]) {
        self.0.copy_from_slice(src);
    }
}

// SAFETY: `WriteOnly<'a, [u8]>` is an exclusive, write-only borrow of bytes, like
// `&'a mut [u8]`, which is `Send`; wgpu's own `Send` impl only misses it because its blanket
// impl requires `T: Sized`. The chunks are disjoint (`split_at`) and the scope joins every
// thread before the borrow ends.
unsafe impl Send for Chunk<'_> {}

/// Fewest hardware threads with which frame copies are split at all. On the 2-core machine
/// splitting was slower (`shutter bench`, 1080p readback: 3.08 ms on one thread, 3.82 on two;
/// 720p while other work ran: 0.53 vs 3.99 ms): the GPU thread's helper waits for a core that
/// the capture, the sink or the driver hold.
pub(crate) const MIN_THREADS_TO_SPLIT: usize = 4;
/// Most threads a copy is split into: past a few, memory bandwidth, not threads, bounds it.
pub(crate) const MAX_COPY_THREADS: usize = 8;

/// Threads the ring's frame copies use on this machine: 1 below [`MIN_THREADS_TO_SPLIT`]
/// hardware threads, else up to [`MAX_COPY_THREADS`]. `SHUTTER_COPY_THREADS=N` overrides it
/// (for measuring on a machine where the release binary cannot be rebuilt, such as a lent GPU
/// machine: `benches/device/h100.sh` scans it).
pub(crate) fn copy_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        let set = std::env::var("SHUTTER_COPY_THREADS").ok();
        match set.and_then(|v| v.trim().parse::<usize>().ok()) {
            Some(n) => n.clamp(1, 64),
            None => match available_threads() {
                n if n < MIN_THREADS_TO_SPLIT => 1,
                n => n.min(MAX_COPY_THREADS),
            },
        }
    })
}

/// [`par_copy_with`] on [`copy_threads`] threads.
pub(crate) fn par_copy(dst: wgpu::WriteOnly<'_, [u8]>, src: &[u8]) {
    par_copy_with(dst, src, copy_threads());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_copies_every_byte_once() {
        let len = 3 * MIN_BYTES_PER_THREAD + 4097; // not a multiple of the chunk or a line
        let src: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        for threads in [1, 2, 3, 4, 7, 64] {
            let mut dst = vec![0u8; len];
            par_copy_with((&mut dst[..]).into(), &src, threads);
            assert!(dst == src, "{threads} threads");
        }
        let mut small = [0u8; 5];
        par_copy_with((&mut small[..]).into(), &[1, 2, 3, 4, 5], 8);
        assert_eq!(small, [1, 2, 3, 4, 5]);
        par_copy_with((&mut [][..]).into(), &[], 4);
    }
}
