//! Harnesses shared by the libFuzzer targets (`fuzz/`) and the regression tests that replay what
//! they found (`tests/fuzz_regressions/`). Compiled only for those (`cfg(fuzzing)` is set by
//! cargo fuzz). Each harness panics when an invariant breaks, which is what a fuzzer reports.
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arrow_array::cast::AsArray;

use crate::pipeline::{FileDecoder, FileTables, Options};
use crate::reassembly::{Config, Key, Layer, Piece, Reassembler};
use crate::source::{CaptureReader, Input, Packet};

/// Small reassembly and flow-table bounds so that fuzzing reaches the eviction and limit paths.
fn options() -> Options {
    let mut o = Options::default();
    o.reassembly.max_bytes = 1 << 16;
    o.reassembly.max_datagrams = 8;
    o.max_flows = 16;
    o
}

/// What must hold for any input: nothing lost, every error counted.
pub fn check_tables(t: &FileTables) {
    let s = &t.stats_values;
    assert_eq!(s.icmp + s.fragment + s.other + s.undecodable, s.packets, "stats add up");
    let rows = |batches: &[arrow_array::RecordBatch]| batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
    assert_eq!(rows(&t.errors), s.errors, "one errors row per counted error");
    // One icmp row per ICMP record, but an sFlow datagram gives a row per sampled message.
    let frames: std::collections::HashSet<u64> = t.icmp.iter()
        .filter_map(|b| b.column_by_name("frame"))
        .flat_map(|c| c.as_primitive::<arrow_array::types::UInt64Type>().iter().flatten().collect::<Vec<_>>())
        .collect();
    assert_eq!(frames.len() as u64, s.icmp, "the icmp rows come from the ICMP records");
    let samples: u64 = t.icmp.iter().filter_map(|b| b.column_by_name("sample_rate")).map(|c| (c.len() - c.null_count()) as u64).sum();
    assert!(rows(&t.icmp) - s.icmp <= samples, "a record's further rows are samples");
    assert_eq!(t.stats.num_rows(), 1);
    assert!(t.flows.num_rows() <= 16, "the flow table keeps its limit");
    let packets: u64 = t.flows.column_by_name("packets").map_or(0, |c| c.as_primitive::<arrow_array::types::UInt64Type>().iter().flatten().sum());
    // A record is counted once per tunnel carrier it travels in, and once for what it carries
    // when that is not ICMP (a VXLAN frame carrying ICMP counts as icmp in stats, its UDP in flows).
    let per_record = u64::try_from(options().max_tunnel_depth).unwrap_or(u64::MAX).saturating_add(1);
    assert!(packets + s.max_flows_hits <= s.packets.saturating_mul(per_record), "flows count each record at most once a layer");
}

/// A whole capture file (pcap or pcapng, detected by magic) through the reader and the pipeline.
pub fn capture(data: &[u8]) {
    let Some(mut reader) = reader(data.to_vec()) else { return };
    let mut decoder = FileDecoder::new("fuzz", options(), &reader);
    decoder.run(&mut reader);
    check_tables(&decoder.into_tables());
}

fn reader(data: Vec<u8>) -> Option<CaptureReader> {
    CaptureReader::new(Input::from_reader(Box::new(Cursor::new(data))), "fuzz").ok()
}

/// The link types the decoder knows, selected by the first byte of a `packet` input.
pub const LINKTYPES: &[u32] = &[1, 0, 9, 12, 14, 50, 101, 104, 108, 113, 129, 226, 228, 229, 242, 276, 105, 127, 192, 119, 163, 239, 117, 109, 107, 100, 11, 195, 230, 215, 283];

/// One frame through link → IP → ICMP. Input: a link-type byte (an index into [`LINKTYPES`], or
/// the link type itself past the end), an orig_len byte (up to 127 bytes more than captured, or
/// with the high bit set that many fewer), then the frame.
pub fn packet(data: &[u8]) {
    let [selector, slack, frame @ ..] = data else { return };
    let linktype = LINKTYPES.get(usize::from(*selector)).copied().unwrap_or(u32::from(*selector));
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let slack = u32::from(slack & 0x7f);
    let orig_len = if data[1] & 0x80 == 0 { len.saturating_add(slack) } else { len.saturating_sub(slack) };
    // An empty pcap of that link type, for the decoder's format and compression facts.
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0];
    header.extend_from_slice(&linktype.to_le_bytes());
    let Some(reader) = reader(header) else { return };
    let mut decoder = FileDecoder::new("fuzz", options(), &reader);
    decoder.packet(&Packet { ts_ns: 0, orig_len, linktype, data: frame, offset: 24 });
    decoder.finish();
    check_tables(&decoder.into_tables());
}

/// A sequence of fragments into the reassembler. Input: a config byte (datagrams in flight
/// 1..=8, byte budget 512 << 0..=7), then pieces of a 7-byte header — flags (bit 0 more
/// fragments, bit 1 IPv6, bits 2-4 which source, bit 5 not captured whole, bit 6 a 6LoWPAN
/// piece, bit 7 a CAPWAP one: the same addresses and ids, other datagrams), id, offset in 8-byte
/// units (u16 LE), timestamp step in µs, length (u16 LE) — and that many bytes (fewer at the end
/// of the input).
pub fn reassembly(data: &[u8]) {
    let Some((&config, mut rest)) = data.split_first() else { return };
    let config = Config {
        timeout_v4_ns: 30_000_000,
        timeout_v6_ns: 60_000_000,
        max_bytes: 512 << ((config >> 3) & 7),
        max_datagrams: 1 + usize::from(config & 7),
    };
    let mut r = Reassembler::new(config);
    let (mut frame, mut ts_ns, mut pieces, mut rows) = (0u64, 0i64, 0u64, Vec::new());
    while let Some((head, tail)) = rest.split_first_chunk::<7>() {
        let [flags, id, off_lo, off_hi, step, len_lo, len_hi] = *head;
        let len = usize::from(u16::from_le_bytes([len_lo, len_hi])).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        frame += 1;
        ts_ns += i64::from(step) * 1_000;
        let v6 = flags & 2 != 0;
        let source = (flags >> 2) & 7;
        let (src, dst) = if v6 {
            (IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, source.into())), IpAddr::V6(Ipv6Addr::LOCALHOST))
        } else {
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, source)), IpAddr::V4(Ipv4Addr::LOCALHOST))
        };
        // 13 bits of 8-byte units, in IPv4 and IPv6 alike.
        let units = u16::from_le_bytes([off_lo, off_hi]) & 0x1fff;
        let layer = match flags >> 6 {
            0 => Layer::Ip,
            1 => Layer::Lowpan,
            _ => Layer::Capwap,
        };
        let key = Key { layer, version: if v6 { 6 } else { 4 }, src, dst, proto: if v6 { 0 } else { 1 }, id: id.into(), vlan_key: 0, tunnel: Default::default() };
        let piece = Piece {
            frame,
            ts_ns,
            offset: u32::from(units) * 8,
            len: bytes.len() as u32,
            more: flags & 1 != 0,
            data: (flags & 0x20 == 0).then_some(bytes),
            proto: 1,
            header_len: if v6 { 40 } else { 20 },
        };
        pieces += 1;
        if let Some(done) = r.add(key, piece) {
            assert!(done.row.complete);
            assert_eq!(u64::from(done.row.total_len), u64::from(done.row.header_len) + done.payload.len() as u64);
            rows.push(done.row);
        }
        assert!(r.in_flight() <= config.max_datagrams, "datagrams in flight stay bounded");
        assert!(r.bytes_held() <= config.max_bytes, "bytes held stay within the budget");
    }
    r.finish(Some(ts_ns));
    assert_eq!((r.in_flight(), r.bytes_held()), (0, 0));
    assert_eq!(r.limit_hits.len() as u64, r.evictions);
    rows.append(&mut r.finished);
    for row in &rows {
        assert!(row.fragments >= 1 && row.first_frame <= row.last_frame);
    }
    let counted: u64 = rows.iter().map(|row| u64::from(row.fragments)).sum();
    assert_eq!(counted, pieces, "every fragment is in exactly one datagram");
}

/// The window kernels (`crate::windows`) over rows decoded from the input: the window (i64 LE;
/// not positive is an error), the first time (i64 LE), then rows of 5 bytes — group, item
/// (255: null), a time step (u16 LE) and its shift (bits, mod 48; times saturate, so the extremes
/// of i64 are reached). What must hold: no panic, one value per row, distinct items no more than
/// rows, and every row of a group that reaches `at_least`'s count kept.
pub fn windows(data: &[u8]) {
    use arrow_array::{Array, UInt64Array};

    use crate::windows::{at_least, episodes, trailing_counts, Counted};

    let Some((window, rest)) = data.split_first_chunk::<8>() else { return };
    let Some((start, mut rest)) = rest.split_first_chunk::<8>() else { return };
    let window = i64::from_le_bytes(*window);
    let mut t = i64::from_le_bytes(*start);
    let (mut groups, mut items, mut ts) = (Vec::new(), Vec::new(), Vec::new());
    while let Some((row, next)) = rest.split_first_chunk::<5>() {
        let [group, item, step_lo, step_hi, shift] = *row;
        groups.push((group != 255).then_some(u64::from(group)));
        items.push((item != 255).then_some(u64::from(item)));
        t = t.saturating_add(i64::from(u16::from_le_bytes([step_lo, step_hi])) << (shift % 48));
        ts.push(t);
        rest = next;
    }
    let (groups, items) = (UInt64Array::from(groups), UInt64Array::from(items));
    let n = ts.len();
    let rows = trailing_counts(&groups, Counted::Rows, &ts, window);
    let distinct = trailing_counts(&groups, Counted::Distinct(&items), &ts, window);
    let sums = trailing_counts(&groups, Counted::Sum(&items), &ts, window);
    if let (Ok(rows), Ok(distinct), Ok(sums)) = (&rows, &distinct, &sums) {
        assert!(rows.len() == n && distinct.len() == n && sums.len() == n);
        for r in 0..n {
            assert_eq!(rows.is_valid(r), groups.is_valid(r));
            if rows.is_valid(r) {
                assert!(distinct.value(r) <= rows.value(r) && rows.value(r) >= 1);
            }
        }
    } else {
        assert!(window <= 0 || ts.windows(2).any(|w| w[1] < w[0]), "an error for good input");
    }
    let hot: Vec<usize> = (0..n).filter(|&r| items.is_valid(r) && items.value(r) % 2 == 0).collect();
    let hot_groups = UInt64Array::from(hot.iter().map(|&r| groups.is_valid(r).then(|| groups.value(r))).collect::<Vec<_>>());
    let hot_ts: Vec<i64> = hot.iter().map(|&r| ts[r]).collect();
    if let Ok(found) = episodes(&hot_groups, &hot_ts, &groups, &ts, window) {
        assert_eq!(found.len(), n);
    }
    let least = window.unsigned_abs() % 8;
    for weights in [None, Some(&items)] {
        let kept = at_least(&groups, weights, least).expect("lengths agree");
        assert!(kept.len() == n && kept.null_count() == 0);
        let mut totals = std::collections::HashMap::new();
        for r in 0..n {
            let weight = weights.map_or(1, |w| if w.is_valid(r) { w.value(r) } else { 0 });
            *totals.entry(groups.is_valid(r).then(|| groups.value(r))).or_insert(0u64) += weight;
        }
        for r in 0..n {
            if totals[&groups.is_valid(r).then(|| groups.value(r))] >= least {
                assert!(kept.value(r), "row {r} of a group that reaches {least}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Replays every input the fuzzers found (and the seeds kept as fixtures) through its harness.
    #[test]
    fn fuzz_regressions() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz_regressions");
        type Harness = fn(&[u8]);
        let harnesses: [(&str, Harness); 5] = [
            ("pcap", super::capture),
            ("pcapng", super::capture),
            ("decode", super::packet),
            ("reassembly", super::reassembly),
            ("windows", super::windows),
        ];
        let mut replayed = 0;
        for (target, harness) in harnesses {
            let Ok(dir) = std::fs::read_dir(root.join(target)) else { continue };
            for entry in dir {
                let path = entry.expect("listing the fixtures").path();
                let data = std::fs::read(&path).expect("reading a fixture");
                eprintln!("{}", path.display());
                harness(&data);
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no fixture under {}", root.display());
    }
}
