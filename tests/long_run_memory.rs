//! A long run keeps resident memory flat. Its own test binary, so that no other test
//! allocates in the same process while it measures.

use std::sync::{Arc, Mutex};

use shutter::{DeviceChoice, Pipeline, Source};

/// Resident memory of this process, from /proc (Linux), in KiB.
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

#[test]
fn a_100000_frame_run_of_64x64_keeps_resident_memory_flat() {
    let Some(_) = rss_kib() else {
        eprintln!("no /proc/self/statm: skipped");
        return;
    };
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
                record.lock().unwrap().push(rss_kib().unwrap_or(0));
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
