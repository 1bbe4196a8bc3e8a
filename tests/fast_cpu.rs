//! The CPU fast path (`ops::fast`) gives byte for byte what the reference (`ops::cpu`) gives:
//! every op alone and every pair, with and without the mirror, on odd sizes, split across
//! threads, with and without AVX2, on every RGB colour, and on a 4K frame; and with a mode's
//! map in the same pass, what the reference's pixels give through that map.

mod common;

use shutter::backend::Processor;
use shutter::frame::{Frame, FrameMeta};
use shutter::mode::cpu::convert;
use shutter::ops::fast::{self, Tuning};
use shutter::ops::{Filter, Ops, cpu};
use shutter::{Dither, ImageMode};

/// Sizes that hit a one-pixel row, rows shorter than a block, a tail after whole blocks and
/// more rows than threads.
const ODD_SIZES: [(u32, u32); 4] = [(1, 1), (3, 7), (37, 5), (1366, 768)];

/// Every op list of at most two filters, each with and without the mirror.
fn single_ops_and_pairs() -> Vec<Ops> {
    let mut lists: Vec<Vec<Filter>> = vec![vec![]];
    lists.extend(Filter::ALL.iter().map(|f| vec![*f]));
    for a in Filter::ALL {
        for b in Filter::ALL {
            lists.push(vec![a, b]);
        }
    }
    lists
        .into_iter()
        .flat_map(|filters| [Ops::new(false, filters.clone()), Ops::new(true, filters)])
        .collect()
}

fn describe(ops: &Ops) -> String {
    let names: Vec<&str> = ops.filters.iter().map(|f| f.name()).collect();
    format!("mirror={} filters=[{}]", ops.mirror, names.join(","))
}

fn reference(ops: &Ops, w: u32, h: u32, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    cpu::apply(ops, w, h, &mut out);
    out
}

fn fast_with(ops: &Ops, w: u32, h: u32, input: &[u8], tuning: Tuning) -> Vec<u8> {
    let mut out = input.to_vec();
    fast::apply_with(ops, w, h, &mut out, tuning);
    out
}

/// Asserts equality and, on failure, names the first differing pixel instead of dumping MBs.
fn assert_same(fast: &[u8], want: &[u8], w: u32, what: &str) {
    assert_eq!(fast.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = fast.iter().zip(want).position(|(a, b)| a != b) {
        let px = i / 4;
        let (x, y) = (px % w as usize, px / w as usize);
        let at = px * 4..px * 4 + 4;
        panic!(
            "{what}: pixel ({x}, {y}) is {:?}, the reference gives {:?}",
            &fast[at.clone()],
            &want[at]
        );
    }
}

fn tunings() -> Vec<Tuning> {
    let mut out = Vec::new();
    for threads in [1, 2, 3, 8] {
        for avx2 in [true, false] {
            out.push(Tuning {
                threads,
                split_small_frames: true,
                avx2,
            });
        }
    }
    out
}

#[test]
fn every_op_and_pair_matches_the_reference_on_odd_sizes() {
    for (w, h) in ODD_SIZES {
        let input = common::random_rgba(w, h, u64::from(w * 31 + h));
        assert!(input.iter().any(|&b| b != 0));
        for ops in single_ops_and_pairs() {
            let want = reference(&ops, w, h, &input);
            for tuning in tunings() {
                let got = fast_with(&ops, w, h, &input, tuning);
                let what = format!("{w}x{h} {} {tuning:?}", describe(&ops));
                assert_same(&got, &want, w, &what);
            }
        }
    }
}

#[test]
fn default_tuning_matches_the_reference_on_odd_sizes() {
    for (w, h) in ODD_SIZES {
        let input = common::random_rgba(w, h, 7);
        for ops in single_ops_and_pairs() {
            let want = reference(&ops, w, h, &input);
            let mut got = input.clone();
            fast::apply(&ops, w, h, &mut got);
            assert_same(&got, &want, w, &format!("{w}x{h} {}", describe(&ops)));
        }
    }
}

#[test]
fn longer_chains_with_several_sepia_norms_match_the_reference() {
    use Filter::*;
    let chains = [
        vec![SepiaNorm, SepiaNorm, SepiaNorm],
        vec![Invert, SepiaNorm, Grayscale, SepiaNorm, Sepia],
        vec![Sepia, Invert, Grayscale, Invert, Sepia],
        vec![Grayscale, SepiaNorm, Invert],
    ];
    let (w, h) = (253, 41);
    let input = common::random_rgba(w, h, 99);
    for filters in chains {
        for mirror in [false, true] {
            let ops = Ops::new(mirror, filters.clone());
            let want = reference(&ops, w, h, &input);
            for tuning in tunings() {
                let got = fast_with(&ops, w, h, &input, tuning);
                let what = format!("{} {tuning:?}", describe(&ops));
                assert_same(&got, &want, w, &what);
            }
        }
    }
}

/// A 4096 × 4096 frame holds every RGB colour exactly once: every sum the point filters can
/// see, including white's clamped sepia and every tie of the rounding.
#[test]
fn every_rgb_colour_matches_the_reference() {
    let (w, h) = (4096u32, 4096u32);
    let input: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let [r, g, b, _] = i.to_le_bytes();
            [r, g, b, (i % 251) as u8]
        })
        .collect();
    for filter in Filter::ALL {
        let ops = Ops::new(false, vec![filter]);
        let want = reference(&ops, w, h, &input);
        let got = fast_with(&ops, w, h, &input, Tuning::default());
        assert_same(&got, &want, w, &format!("all colours, {filter}"));
    }
}

#[test]
fn black_pixels_with_alpha_give_black_from_sepia_norm() {
    // R = G = B = 0 everywhere: the frame's maximum is 0 (numpy would divide by zero); both
    // paths give black, which the invert after it makes white, and keep alpha (mirrored).
    let (w, h) = (37, 5);
    let input: Vec<u8> = (0..w * h).flat_map(|i| [0, 0, 0, i as u8 | 1]).collect();
    for mirror in [false, true] {
        let ops = Ops::new(mirror, vec![Filter::SepiaNorm, Filter::Invert]);
        let want = reference(&ops, w, h, &input);
        for (i, px) in want.chunks_exact(4).enumerate() {
            let (x, y) = (i % w as usize, i / w as usize);
            let from = if mirror { w as usize - 1 - x } else { x };
            let alpha = input[(y * w as usize + from) * 4 + 3];
            assert_eq!(px, [255, 255, 255, alpha], "({x}, {y}) mirror {mirror}");
        }
        for tuning in tunings() {
            assert_same(
                &fast_with(&ops, w, h, &input, tuning),
                &want,
                w,
                &format!("black {} {tuning:?}", describe(&ops)),
            );
        }
    }
}

#[test]
fn mirror_then_sepia_matches_the_reference_on_a_4k_frame() {
    use Filter::*;
    let (w, h) = (3840, 2160);
    let input = common::random_rgba(w, h, 4096);
    for filters in [vec![Sepia], vec![SepiaNorm], vec![Grayscale, Invert]] {
        let ops = Ops::new(true, filters);
        let want = reference(&ops, w, h, &input);
        for avx2 in [true, false] {
            let tuning = Tuning {
                avx2,
                ..Tuning::default()
            };
            let got = fast_with(&ops, w, h, &input, tuning);
            assert_same(&got, &want, w, &format!("4K {} {tuning:?}", describe(&ops)));
        }
    }
}

#[test]
fn the_cpu_processor_gives_the_reference_pixels() {
    let (w, h) = (1366, 768);
    let input = common::random_rgba(w, h, 11);
    let ops = Ops::new(true, vec![Filter::Sepia]);
    let mut processor = Processor::new(None, &ops, 1).expect("a CPU processor");
    let frame = Frame::new(w, h, input.clone(), true, FrameMeta::still(0, 0));
    let done = processor.process(frame).expect("processed");
    assert_same(&done.rgba, &reference(&ops, w, h, &input), w, "processor");
}

/// `apply_map_with` against the reference followed by the map, pixel by pixel: a map that
/// keeps the pixel (4 values), one that folds it into one value, and one of three bytes a
/// pixel (packed four pixels at a time, as RGB is), so a value out of place or a block
/// written twice or not at all shows.
#[test]
fn mapping_in_the_same_pass_matches_the_reference_then_the_map() {
    use Filter::*;
    let fold = |[r, g, b, a]: [u8; 4]| [r ^ g.rotate_left(3) ^ b.rotate_left(5) ^ a.rotate_left(7)];
    let three = |[r, g, b, a]: [u8; 4]| [r ^ a, g ^ r.rotate_left(1), b ^ a.rotate_left(2)];
    let mut lists = single_ops_and_pairs();
    for filters in [
        vec![Invert, SepiaNorm, Grayscale, SepiaNorm, Sepia],
        vec![SepiaNorm],
    ] {
        lists.push(Ops::new(false, filters.clone()));
        lists.push(Ops::new(true, filters));
    }
    for (w, h) in ODD_SIZES {
        let input = common::random_rgba(w, h, u64::from(w * 17 + h));
        for ops in &lists {
            let want = reference(ops, w, h, &input);
            let want_folded: Vec<u8> = want
                .chunks_exact(4)
                .flat_map(|p| fold([p[0], p[1], p[2], p[3]]))
                .collect();
            let want_three: Vec<u8> = want
                .chunks_exact(4)
                .flat_map(|p| three([p[0], p[1], p[2], p[3]]))
                .collect();
            for tuning in tunings() {
                let what = format!("{w}x{h} {} {tuning:?}", describe(ops));
                let kept = fast::apply_map_with(ops, w, h, &mut input.clone(), |p| p, tuning);
                assert_same(&kept, &want, w, &format!("kept, {what}"));
                let folded = fast::apply_map_with(ops, w, h, &mut input.clone(), fold, tuning);
                assert!(folded == want_folded, "folded, {what}");
                let packed = fast::apply_map_with(ops, w, h, &mut input.clone(), three, tuning);
                assert!(packed == want_three, "three bytes a pixel, {what}");
            }
        }
    }
}

/// The CPU processor converts in the same pass where the mode is point-wise, and filters then
/// converts where it is not: either way, the reference's pixels converted by the reference.
#[test]
fn the_cpu_processor_converts_every_mode_like_the_reference() {
    for (w, h) in [(1, 1), (3, 7), (1366, 768)] {
        let input = common::random_rgba(w, h, u64::from(w + h));
        for ops in [
            Ops::new(true, vec![Filter::Sepia]),
            Ops::new(false, vec![]),
            Ops::new(true, vec![Filter::SepiaNorm, Filter::Invert]),
        ] {
            let filtered = reference(&ops, w, h, &input);
            for mode in ImageMode::ALL {
                for dither in [Dither::None, Dither::FloydSteinberg] {
                    for has_alpha in [true, false] {
                        let mut with_mode = ops.clone();
                        with_mode.mode = Some(mode);
                        with_mode.dither = dither;
                        let mut processor =
                            Processor::new(None, &with_mode, 1).expect("a CPU processor");
                        let frame =
                            Frame::new(w, h, input.clone(), has_alpha, FrameMeta::still(0, 0));
                        let done = processor.process(frame).expect("processed");
                        let want = convert(mode, dither, w, h, &filtered, has_alpha);
                        assert!(
                            done.image.as_ref() == Some(&want),
                            "{w}x{h} {} to {mode} ({dither:?}, alpha {has_alpha})",
                            describe(&ops)
                        );
                    }
                }
            }
        }
    }
}

/// A frame too large for any buffer is a usage error naming it, where allocating it aborted
/// the process (`schedule_with`) or overflowed its size (`schedule_rgb_with`).
#[test]
fn a_frame_written_in_place_too_large_to_hold_is_a_usage_error() {
    let ops = Ops::new(true, vec![Filter::Sepia]);
    let mut processor = Processor::new(None, &ops, 1).expect("a CPU processor");
    let err = processor
        // 2^62 bytes: more than any address space holds.
        .schedule_with(1 << 30, 1 << 30, false, FrameMeta::still(4, 0), |_| {
            unreachable!("no buffer to fill")
        })
        .unwrap_err();
    assert!(matches!(err, shutter::Error::Usage(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("frame 4: a 1073741824×1073741824 frame"),
        "{err}"
    );
    let err = processor
        .schedule_rgb_with(u32::MAX, u32::MAX, FrameMeta::still(5, 0), |_| {
            unreachable!("no buffer to fill")
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("frame 5: a 4294967295×4294967295 frame"),
        "{err}"
    );
    // The processor still takes frames.
    processor
        .schedule_with(1, 1, false, FrameMeta::still(6, 0), |mut px| {
            px.copy_from_slice(&[10, 20, 30, 255]);
        })
        .unwrap();
    assert_eq!(processor.pending(), 1);
}
