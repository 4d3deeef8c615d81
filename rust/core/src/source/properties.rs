//! Properties of the record readers on generated pcap and pcapng captures: they round-trip what
//! was written, a capture cut at any byte keeps every whole record before the cut, and no
//! corruption makes them panic or lose count.
use std::io::Cursor;

use proptest::prelude::*;

use super::{CaptureReader, Input, Next};
use crate::fuzzing::check_tables;
use crate::pipeline::{FileDecoder, Options};

#[derive(Debug, Clone, Copy)]
enum Container {
    Pcap { big_endian: bool, nanosecond: bool, modified: bool },
    /// `block`: 0 EPB, 1 PB, 2 SPB (no timestamp).
    Pcapng { big_endian: bool, nanosecond: bool, block: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    ts_ns: i64,
    data: Vec<u8>,
}

/// A capture as bytes and the offsets that matter when it is cut.
struct Built {
    bytes: Vec<u8>,
    /// The end of each record.
    ends: Vec<usize>,
    /// The end of each other block (pcapng SHB, IDB) or of the file header.
    headers: Vec<usize>,
    /// The fewest bytes the format is recognised by.
    magic_len: usize,
}

fn put32(out: &mut Vec<u8>, be: bool, v: u32) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put16(out: &mut Vec<u8>, be: bool, v: u16) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn block(out: &mut Vec<u8>, be: bool, kind: u32, body: &[u8]) {
    let len = 12 + body.len().div_ceil(4) * 4;
    put32(out, be, kind);
    put32(out, be, len as u32);
    out.extend_from_slice(body);
    out.resize(out.len() + (len - 12 - body.len()), 0);
    put32(out, be, len as u32);
}

fn build(container: Container, linktype: u16, records: &[Record]) -> Built {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    let mut headers = Vec::new();
    let magic_len;
    match container {
        Container::Pcap { big_endian: be, nanosecond, modified } => {
            let magic = match (nanosecond, modified) {
                (_, true) => 0xa1b2_cd34,
                (true, false) => 0xa1b2_3c4d,
                (false, false) => 0xa1b2_c3d4,
            };
            put32(&mut out, be, magic);
            put16(&mut out, be, 2);
            put16(&mut out, be, 4);
            out.extend_from_slice(&[0; 8]);
            put32(&mut out, be, 262_144);
            put32(&mut out, be, linktype.into());
            headers.push(out.len());
            magic_len = 24;
            let per_s = if nanosecond && !modified { 1 } else { 1_000 };
            for r in records {
                put32(&mut out, be, (r.ts_ns / 1_000_000_000) as u32);
                put32(&mut out, be, (r.ts_ns % 1_000_000_000 / per_s) as u32);
                put32(&mut out, be, r.data.len() as u32);
                put32(&mut out, be, r.data.len() as u32);
                if modified {
                    out.extend_from_slice(&[0; 8]);
                }
                out.extend_from_slice(&r.data);
                ends.push(out.len());
            }
        }
        Container::Pcapng { big_endian: be, nanosecond, block: kind } => {
            let mut shb = Vec::new();
            put32(&mut shb, be, 0x1a2b_3c4d);
            put16(&mut shb, be, 1);
            put16(&mut shb, be, 0);
            shb.extend_from_slice(&[0xff; 8]);
            block(&mut out, be, 0x0a0d_0d0a, &shb);
            headers.push(out.len());
            magic_len = 12;
            let mut idb = Vec::new();
            put16(&mut idb, be, linktype);
            put16(&mut idb, be, 0);
            put32(&mut idb, be, 0);
            if nanosecond {
                put16(&mut idb, be, 9);
                put16(&mut idb, be, 1);
                idb.extend_from_slice(&[9, 0, 0, 0]);
                idb.extend_from_slice(&[0; 4]);
            }
            block(&mut out, be, 1, &idb);
            headers.push(out.len());
            let unit = if nanosecond { 1 } else { 1_000 };
            for r in records {
                let mut body = Vec::new();
                let len = r.data.len() as u32;
                match kind {
                    2 => put32(&mut body, be, len),
                    _ => {
                        if kind == 0 {
                            put32(&mut body, be, 0);
                        } else {
                            put16(&mut body, be, 0);
                            put16(&mut body, be, 0);
                        }
                        let ticks = (r.ts_ns / unit) as u64;
                        put32(&mut body, be, (ticks >> 32) as u32);
                        put32(&mut body, be, ticks as u32);
                        put32(&mut body, be, len);
                        put32(&mut body, be, len);
                    }
                }
                body.extend_from_slice(&r.data);
                block(&mut out, be, [6, 2, 3][usize::from(kind)], &body);
                ends.push(out.len());
            }
        }
    }
    Built { bytes: out, ends, headers, magic_len }
}

/// What the reader returns for a record written with `container`'s timestamp precision.
fn as_read(container: Container, r: &Record) -> Record {
    let ts_ns = match container {
        Container::Pcap { nanosecond: true, modified: false, .. } => r.ts_ns,
        Container::Pcapng { block: 2, .. } => 0,
        Container::Pcapng { nanosecond: true, .. } => r.ts_ns,
        _ => r.ts_ns / 1_000 * 1_000,
    };
    Record { ts_ns, data: r.data.clone() }
}

fn container() -> impl Strategy<Value = Container> {
    prop_oneof![
        (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(big_endian, nanosecond, modified)| Container::Pcap { big_endian, nanosecond, modified }),
        (any::<bool>(), any::<bool>(), 0u8..3)
            .prop_map(|(big_endian, nanosecond, block)| Container::Pcapng { big_endian, nanosecond, block }),
    ]
}

fn records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    let record = (0i64..(u32::MAX as i64) * 1_000_000_000, proptest::collection::vec(any::<u8>(), 0..120))
        .prop_map(|(ts_ns, data)| Record { ts_ns, data });
    proptest::collection::vec(record, 0..max)
}

fn reader(bytes: &[u8]) -> Option<CaptureReader> {
    CaptureReader::new(Input::from_reader(Box::new(Cursor::new(bytes.to_vec()))), "prop").ok()
}

/// Reads every record; the last `Next` tells how reading ended (`None` at a clean end).
fn read_all(mut reader: CaptureReader) -> (Vec<Record>, Option<&'static str>) {
    let mut got = Vec::new();
    loop {
        match reader.next() {
            Next::Packet(p) => got.push(Record { ts_ns: p.ts_ns, data: p.data.to_vec() }),
            Next::Skipped(..) => {}
            Next::CutShort(..) => return (got, Some("cut short")),
            Next::Corrupt(..) => return (got, Some("corrupt")),
            Next::End => return (got, None),
        }
    }
}

fn decode_all(bytes: &[u8]) {
    let Some(mut reader) = reader(bytes) else { return };
    let mut decoder = FileDecoder::new("prop", Options::default(), &reader);
    decoder.run(&mut reader);
    check_tables(&decoder.into_tables());
}

proptest! {
    #[test]
    fn round_trip(c in container(), linktype in 0u16..300, recs in records(12)) {
        let built = build(c, linktype, &recs);
        let (got, end) = read_all(reader(&built.bytes).expect("opens"));
        let want: Vec<Record> = recs.iter().map(|r| as_read(c, r)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(end, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn truncation_at_every_byte_keeps_whole_records(c in container(), recs in records(6)) {
        let built = build(c, 1, &recs);
        for cut in 0..=built.bytes.len() {
            let bytes = &built.bytes[..cut];
            decode_all(bytes);
            let opened = reader(bytes);
            prop_assert_eq!(opened.is_some(), cut >= built.magic_len, "cut {}", cut);
            let Some(r) = opened else { continue };
            let (got, end) = read_all(r);
            let whole = built.ends.iter().filter(|&&e| e <= cut).count();
            let want: Vec<Record> = recs[..whole].iter().map(|r| as_read(c, r)).collect();
            prop_assert_eq!(got, want, "cut {}", cut);
            let at_boundary = built.headers.contains(&cut) || built.ends.contains(&cut);
            prop_assert_eq!(end, (!at_boundary).then_some("cut short"), "cut {}", cut);
        }
    }

    #[test]
    fn corruption_never_panics_and_stats_add_up(
        c in container(),
        recs in records(8),
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..8),
        words in proptest::collection::vec((any::<usize>(), prop_oneof![Just(0u32), Just(u32::MAX), Just(0x7fff_ffff), any::<u32>()]), 0..3),
    ) {
        let mut bytes = build(c, 1, &recs).bytes;
        let n = bytes.len();
        for (at, bit) in flips {
            bytes[at % n] ^= 1 << bit;
        }
        for (at, word) in words {
            let at = at % n;
            let end = (at + 4).min(n);
            bytes[at..end].copy_from_slice(&word.to_le_bytes()[..end - at]);
        }
        decode_all(&bytes);
    }
}
