//! The `shutter bench` command-line contract: `--json` prints one valid JSON object with a row
//! per stage (no timing is asserted), and bad flags are one-line usage errors (exit 2).

mod common;

use common::{shutter, stderr};

fn keys(report: &serde_json::Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("`{list}` is an array: {report}"))
        .iter()
        .map(|row| row["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn json_report_has_a_row_per_stage() {
    let out = shutter(&["bench", "--size", "64x48", "--frames", "5", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {stdout}"));
    assert_eq!(report["width"], 64);
    assert_eq!(report["height"], 48);
    assert_eq!(report["ops"], "mirror,sepia");
    assert_eq!(report["mode"], "RGB");

    let rows = keys(&report, "rows");
    let skipped = keys(&report, "skipped");
    for key in [
        "memcpy",
        "cpu.ops.reference",
        "cpu.ops.fast",
        "mode.RGB",
        "encode.webp",
        "encode.png",
        "encode.jpeg",
        "encode.gif",
        "encode.npy",
        "decode.png",
        "decode.jpeg",
        "e2e.cpu",
    ] {
        assert!(
            rows.contains(&key.to_string()),
            "row {key} missing: {rows:?}"
        );
    }
    // GPU rows when an adapter exists (lavapipe counts); otherwise the reason is listed.
    if report["gpu"].is_string() {
        for key in [
            "gpu.upload.write_buffer",
            "gpu.upload.staging.threads_1",
            "gpu.readback.threads_1",
            "gpu.copy_bound",
            "gpu.pass",
            "gpu.round_trip.in_flight_1",
            "gpu.round_trip.in_flight_3",
            "gpu.round_trip.write_buffer.in_flight_1",
            "gpu.round_trip.write_buffer.in_flight_3",
            "gpu.round_trip.in_place.in_flight_3",
            "e2e.gpu",
        ] {
            assert!(
                rows.contains(&key.to_string()),
                "row {key} missing: {rows:?}"
            );
        }
    } else {
        assert!(
            !common::gpu_required(),
            "SHUTTER_REQUIRE_GPU=1 but the bench found no GPU: {skipped:?}"
        );
        assert!(skipped.contains(&"gpu".to_string()), "{skipped:?}");
    }

    for row in report["rows"].as_array().into_iter().flatten() {
        let key = &row["key"];
        assert!(row["samples"].as_u64().is_some_and(|n| n >= 1), "{key}");
        assert!(row["samples"].as_u64().is_some_and(|n| n <= 5), "{key}");
        for field in ["median_ms", "p10_ms", "p90_ms", "min_ms", "max_ms"] {
            assert!(
                row[field].as_f64().is_some_and(|v| v >= 0.0),
                "{key} {field}"
            );
        }
        let (p10, median, p90) = (&row["p10_ms"], &row["median_ms"], &row["p90_ms"]);
        assert!(p10.as_f64() <= median.as_f64() && median.as_f64() <= p90.as_f64());
    }
}

#[test]
fn cpu_only_with_a_mode_skips_formats_that_cannot_hold_it() {
    let out = shutter(&[
        "bench",
        "--size",
        "31x17",
        "--frames",
        "3",
        "--json",
        "--device",
        "cpu",
        "--ops",
        "sepia-norm,mirror",
        "--mode",
        "I",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let rows = keys(&report, "rows");
    assert!(rows.contains(&"mode.I".to_string()), "{rows:?}");
    assert!(rows.contains(&"encode.npy".to_string()), "{rows:?}");
    assert!(!rows.iter().any(|k| k.starts_with("gpu.")), "{rows:?}");
    for key in ["encode.webp", "encode.gif"] {
        assert!(keys(&report, "skipped").contains(&key.to_string()), "{key}");
    }
    assert_eq!(report["round_trip_mode"], "I");
}

#[test]
fn the_table_names_every_stage() {
    let out = shutter(&[
        "bench", "--size", "40x30", "--frames", "2", "--device", "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for words in [
        "CPU fast path",
        "encode webp lossy q80",
        "decode png",
        "end to end",
    ] {
        assert!(table.contains(words), "{words} missing:\n{table}");
    }
}

#[test]
fn bad_flags_are_one_line_usage_errors() {
    for args in [
        &["bench", "--size", "12x"][..],
        &["bench", "--size", "huge"],
        &["bench", "--ops", "mirror,blur"],
        &["bench", "--device", "tpu"],
        &["bench", "--frames", "0"],
        &["bench", "--in-flight", "0"],
        &["bench", "--mode", "XYZ"],
    ] {
        let out = shutter(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        // The flags are checked before any GPU is opened: nothing else writes to stderr.
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        // It names the flag, as the library's message names the setting: `size (--size): …`.
        let named = format!("shutter: error: {} ({}", &args[1][2..], args[1]);
        assert!(
            lines[0].replace('_', "-").starts_with(&named),
            "{args:?}: {lines:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn copy_threads_are_reported_and_can_be_set_for_measuring() {
    let run = |threads: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shutter"));
        cmd.args([
            "bench", "--size", "64x48", "--frames", "1", "--device", "cpu",
        ])
        .arg("--json");
        if let Some(n) = threads {
            cmd.env("SHUTTER_COPY_THREADS", n);
        } else {
            cmd.env_remove("SHUTTER_COPY_THREADS");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let report: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        report["copy_threads"].as_u64().unwrap_or(0)
    };
    let default = run(None);
    assert!((1..=8).contains(&default), "{default}");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 4 {
        assert_eq!(default, 1, "few cores: copies stay on one thread");
    }
    assert_eq!(run(Some("3")), 3);
    assert_eq!(run(Some("0")), 1);
}

#[test]
fn ops_none_and_one_in_flight_report_every_row_once() {
    let out = shutter(&[
        "bench",
        "--size",
        "17x5",
        "--frames",
        "2",
        "--ops",
        "none",
        "--in-flight",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {stdout}"));
    let mut rows = keys(&report, "rows");
    let count = rows.len();
    rows.sort();
    rows.dedup();
    assert_eq!(rows.len(), count, "a key appears twice: {stdout}");
    assert!(
        report["gpu"].is_string() || !common::gpu_required(),
        "SHUTTER_REQUIRE_GPU=1 but the bench found no GPU: {stdout}"
    );
    if report["gpu"].is_string() {
        // With no ops there is no pass to time alone: the row is skipped with its reason.
        assert!(rows.contains(&"gpu.round_trip.in_flight_1".to_string()));
        assert!(!rows.contains(&"gpu.pass".to_string()));
        assert!(keys(&report, "skipped").contains(&"gpu.pass".to_string()));
    }
}
