//! Classic pcap: a 24-byte file header, then records of a 16-byte header (24 in the modified
//! "Kuznetzov" variant) and the captured bytes.
use super::input::{decode_error, Input, Short};
use super::{stream_failed, CutIn, Limits, Next, Packet};
use crate::error::DecodeError;

#[derive(Debug, Clone, Copy)]
pub struct PcapHeader {
    pub big_endian: bool,
    pub nanosecond: bool,
    pub modified: bool,
    pub snaplen: u32,
    pub linktype: u32,
}

impl PcapHeader {
    /// Recognises the magic of a pcap file; `None` if these 4 bytes are not one.
    pub fn magic(m: [u8; 4]) -> Option<(bool, bool, bool)> {
        // (big_endian, nanosecond, modified)
        match u32::from_le_bytes(m) {
            0xa1b2c3d4 => Some((false, false, false)),
            0xa1b23c4d => Some((false, true, false)),
            0xa1b2cd34 => Some((false, false, true)),
            _ => match u32::from_be_bytes(m) {
                0xa1b2c3d4 => Some((true, false, false)),
                0xa1b23c4d => Some((true, true, false)),
                0xa1b2cd34 => Some((true, false, true)),
                _ => None,
            },
        }
    }

    /// The u32 at `at`; 0 past the end (callers read fixed headers they have taken whole).
    pub fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let Some(&w) = b.get(at..).and_then(|t| t.first_chunk::<4>()) else { return 0 };
        if self.big_endian { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) }
    }
}

#[derive(Clone, Copy)]
pub struct PcapReader {
    pub header: PcapHeader,
    limits: Limits,
}

impl PcapReader {
    /// Reads the file header; `Err` carries what is wrong for `CaptureFormatError`.
    pub fn open(input: &mut Input, limits: Limits) -> Result<PcapReader, String> {
        let raw = input.take(24).map_err(|short| match short {
            Short::Io(e) => decode_error(e).to_string(),
            Short::Eof { .. } | Short::Cut { .. } => "pcap file header is cut short".to_owned(),
        })?;
        let magic = raw.first_chunk::<4>().copied().ok_or("pcap file header is cut short")?;
        let (big_endian, nanosecond, modified) = PcapHeader::magic(magic).ok_or("bad pcap magic")?;
        let mut header = PcapHeader { big_endian, nanosecond, modified, snaplen: 0, linktype: 0 };
        header.snaplen = header.u32_at(raw, 16);
        // The upper bits carry FCS information, not the link type.
        header.linktype = header.u32_at(raw, 20) & 0x03ff_ffff;
        Ok(PcapReader { header, limits })
    }

    fn record_header_len(&self) -> usize {
        if self.header.modified { 24 } else { 16 }
    }

    /// Where a record seems to start at or after `window[0]`: a position from which
    /// `RECORDS_TO_AGREE` record headers in a row are plausible (or the chain ends exactly at the
    /// end of the file, `at_eof`). Only a guess: the caller checks that the records before it
    /// end exactly there.
    pub fn record_start(&self, window: &[u8], at_eof: bool, first_sec: u32) -> Option<usize> {
        (0..window.len()).find(|&start| self.plausible_chain(window, start, at_eof, first_sec))
    }

    fn plausible_chain(&self, window: &[u8], start: usize, at_eof: bool, first_sec: u32) -> bool {
        const RECORDS_TO_AGREE: usize = 8;
        // A capture spans less than this much time from its first record.
        const MAX_SPAN_SECS: u32 = 10 * 366 * 86_400;
        let h = self.header;
        let frac_limit = if h.nanosecond { 1_000_000_000 } else { 1_000_000 };
        let mut at = start;
        for _ in 0..RECORDS_TO_AGREE {
            let Some(b) = window.get(at..at + self.record_header_len()) else {
                return at == window.len() && at_eof;
            };
            let (sec, frac, caplen, orig_len) = (h.u32_at(b, 0), h.u32_at(b, 4), h.u32_at(b, 8), h.u32_at(b, 12));
            let plausible = sec.wrapping_sub(first_sec) <= MAX_SPAN_SECS
                && frac < frac_limit
                && u64::from(caplen) <= self.limits.max_record_len
                && caplen <= orig_len
                && orig_len <= 1 << 24;
            if !plausible {
                return false;
            }
            at += self.record_header_len() + caplen as usize;
        }
        true
    }

    pub fn next<'a>(&mut self, input: &'a mut Input) -> Next<'a> {
        let h = self.header;
        let record_header_len = self.record_header_len();
        let offset = input.offset();
        let (sec, frac, caplen, orig_len) = match input.take(record_header_len) {
            Ok(b) => (h.u32_at(b, 0), h.u32_at(b, 4), h.u32_at(b, 8), h.u32_at(b, 12)),
            Err(Short::Eof { have: 0 }) => return Next::End,
            Err(Short::Cut { have: 0 }) => return Next::CutShort(DecodeError::StreamCutShort, offset, CutIn::Other),
            Err(Short::Eof { have } | Short::Cut { have }) => {
                return Next::CutShort(
                    DecodeError::CutShort { need: record_header_len as u64, have: have as u64 },
                    offset,
                    CutIn::record(have),
                )
            }
            Err(Short::Io(e)) => return stream_failed(e, offset, CutIn::record(input.buffered().len())),
        };
        let limit = self.limits.max_record_len;
        if u64::from(caplen) > limit {
            return Next::Corrupt(DecodeError::RecordTooLong { caplen: caplen.into(), limit }, offset);
        }
        let scale = if h.nanosecond { 1 } else { 1_000 };
        // Cannot overflow: u32::MAX * 10^9 + u32::MAX * 10^3 < i64::MAX.
        let ts_ns = i64::from(sec) * 1_000_000_000 + i64::from(frac) * scale;
        match input.take(caplen as usize) {
            Ok(data) => Next::Packet(Packet { ts_ns, orig_len, linktype: h.linktype, data, offset }),
            Err(Short::Eof { have } | Short::Cut { have }) => Next::CutShort(
                DecodeError::CutShort {
                    need: u64::from(caplen) + record_header_len as u64,
                    have: (have + record_header_len) as u64,
                },
                offset,
                CutIn::Frame,
            ),
            Err(Short::Io(e)) => stream_failed(e, offset, CutIn::Frame),
        }
    }
}
