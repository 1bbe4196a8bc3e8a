//! A long run, and many runs on one GPU context, keep resident memory flat. Their own test
//! binary, and one test, so that nothing else allocates in the process while they measure.

mod common;

use std::sync::{Arc, Mutex};

use shutter::{DeviceChoice, Filter, Pipeline, Source};

/// Resident memory of this process, from /proc (Linux): `VmRSS`, in KiB whatever the page
/// size.
fn read_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib = line
        .trim_start_matches("VmRSS:")
        .trim()
        .strip_suffix("kB")?;
    kib.trim().parse().ok()
}

/// [`read_rss_kib`], once it has been seen to work.
fn rss_kib() -> u64 {
    read_rss_kib().expect("VmRSS in /proc/self/status")
}

#[test]
fn long_runs_and_many_runs_keep_resident_memory_flat() {
    let Some(_) = read_rss_kib() else {
        eprintln!("no VmRSS in /proc/self/status (not Linux): skipped");
        return;
    };
    a_100000_frame_run_of_64x64_keeps_resident_memory_flat();
    gpu_runs_whose_inputs_all_fail_leave_nothing_on_a_shared_context();
}

fn a_100000_frame_run_of_64x64_keeps_resident_memory_flat() {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let record = samples.clone();
    let stats = Pipeline::builder()
        .source(Source::Pattern {
            width: 64,
            height: 64,
            fps: None,
        })
        .device(DeviceChoice::Cpu)
        .max_frames(100_000)
        .on_frame(move |frame| {
            let k = frame.meta.seq;
            if k == 10_000 || k == 99_999 {
                record.lock().unwrap().push(rss_kib());
            }
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(stats.delivered, 100_000);
    let samples = samples.lock().unwrap().clone();
    assert_eq!(samples.len(), 2);
    let growth = samples[1].saturating_sub(samples[0]);
    eprintln!(
        "RSS after 10,000 frames {} KiB, after 100,000 frames {} KiB (growth {growth} KiB)",
        samples[0], samples[1]
    );
    assert!(
        growth < 4096,
        "resident memory grew by {growth} KiB over 90,000 frames"
    );
}

/// A server shares one GPU context between its runs. A run whose inputs all fail never
/// submits work to the GPU, and wgpu frees what a run dropped (its compiled kernels, about
/// 1 MB on lavapipe) only at the device's next submission: each such run left them behind.
fn gpu_runs_whose_inputs_all_fail_leave_nothing_on_a_shared_context() {
    let Some(ctx) = common::gpu_or_skip("gpu_runs_whose_inputs_all_fail") else {
        return;
    };
    let run = || {
        let stats = Pipeline::builder()
            .source(Source::Bytes {
                name: "upload".into(),
                data: b"GIF89a, then nothing".to_vec().into(),
            })
            .device(DeviceChoice::Gpu)
            .gpu_context(ctx.clone())
            .mirror(true)
            .filter(Filter::Sepia)
            .on_frame(|_| Ok(()))
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_eq!((stats.delivered, stats.failures.len()), (0, 1));
    };
    for _ in 0..20 {
        run();
    }
    let before = rss_kib();
    for _ in 0..200 {
        run();
    }
    let growth = rss_kib().saturating_sub(before);
    eprintln!("RSS grew {growth} KiB over 200 failed GPU runs on one context");
    assert!(
        growth < 32 << 10,
        "resident memory grew by {growth} KiB over 200 failed GPU runs on one context"
    );
}
