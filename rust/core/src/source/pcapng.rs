//! pcapng: a chain of blocks. Sections (SHB) set the byte order and reset the interfaces (IDB),
//! each with its own link type, snaplen and timestamp resolution/offset. Packets come from
//! EPB, SPB and the obsolete PB; every other block is skipped (unknown ones are reported).
use super::input::{decode_error, Input, Short};
use super::{stream_failed, CutIn, Limits, Next, Packet};
use crate::error::DecodeError;

const SHB: u32 = 0x0A0D_0D0A;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// Blocks Wireshark shows as frames although they carry no packet: systemd journal entries and
/// custom blocks. They are counted as records (of link type `NON_PACKET`, decoded as "other").
const RECORD_BLOCKS: &[u32] = &[9, 0x0BAD, 0x4000_0BAD];
/// The link type given to those records: outside the LINKTYPE_* range.
pub const NON_PACKET: u32 = 0xFFFF_0000;
/// Blocks we understand and deliberately skip: name resolution, interface statistics,
/// decryption secrets, Sysdig/process-information blocks.
const KNOWN_SKIPPED: &[u32] = &[4, 5, 0x0A, 0x8000_0001];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// if_tsresol: the unit is 10^-n seconds, or 2^-n with the high bit set.
    tsresol: u8,
    tsoffset_s: i64,
}

impl Interface {
    fn ts_ns(&self, raw: u64) -> i64 {
        let exp = u32::from(self.tsresol & 0x7f);
        let ns: i128 = if self.tsresol & 0x80 != 0 {
            if exp >= 127 { 0 } else { (i128::from(raw) * 1_000_000_000) >> exp }
        } else if exp <= 9 {
            i128::from(raw) * 10i128.pow(9 - exp)
        } else if exp <= 38 {
            i128::from(raw) / 10i128.pow(exp - 9)
        } else {
            0
        };
        let total = ns + i128::from(self.tsoffset_s) * 1_000_000_000;
        total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

#[derive(Debug, Clone)]
pub struct PcapngReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    pub sections: u32,
    limits: Limits,
}

fn u16_at(be: bool, b: &[u8], at: usize) -> Option<u16> {
    let w: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if be { u16::from_be_bytes(w) } else { u16::from_le_bytes(w) })
}

fn u32_at(be: bool, b: &[u8], at: usize) -> Option<u32> {
    let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if be { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) })
}

fn u64_at(be: bool, b: &[u8], at: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(if be { u64::from_be_bytes(w) } else { u64::from_le_bytes(w) })
}

impl PcapngReader {
    /// Checks the first Section Header Block without consuming it.
    pub fn open(input: &mut Input, limits: Limits) -> Result<PcapngReader, String> {
        let head = input.peek(12).map_err(|e| decode_error(e).to_string())?;
        let Some(magic) = u32_at(false, head, 8) else {
            return Err("pcapng section header is cut short".into());
        };
        let big_endian = match magic {
            BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
            _ => return Err("bad pcapng byte-order magic".into()),
        };
        Ok(PcapngReader { big_endian, interfaces: Vec::new(), sections: 0, limits })
    }

    /// What decodes the blocks that follow: the byte order and the interfaces. Two readers in
    /// the same state read the same bytes the same way.
    pub fn same_state(&self, other: &PcapngReader) -> bool {
        self.big_endian == other.big_endian && self.interfaces == other.interfaces
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// This reader's state for a piece of the file read from elsewhere (its sections are the
    /// piece's own).
    pub fn for_piece(&self) -> PcapngReader {
        PcapngReader { sections: 0, ..self.clone() }
    }

    /// Where a packet block seems to start at or after `window[0]` (offsets in `window` that
    /// are multiples of 4 from `aligned`): from there `BLOCKS_TO_AGREE` blocks in a row, none a
    /// section header, have a sane length that their trailing copy repeats (or the chain ends
    /// exactly at the end of the file, `at_eof`). A guess, checked by the caller like pcap's.
    pub fn block_start(&self, window: &[u8], aligned: usize, at_eof: bool) -> Option<usize> {
        (aligned..window.len()).step_by(4).find(|&start| self.plausible_chain(window, start, at_eof))
    }

    fn plausible_chain(&self, window: &[u8], start: usize, at_eof: bool) -> bool {
        const BLOCKS_TO_AGREE: usize = 8;
        let be = self.big_endian;
        let mut at = start;
        for i in 0..BLOCKS_TO_AGREE {
            let (Some(block_type), Some(total)) = (u32_at(be, window, at), u32_at(be, window, at + 4)) else {
                return at == window.len() && at_eof;
            };
            let starts_with_packet = i > 0 || matches!(block_type, EPB | PB | SPB);
            if !starts_with_packet || block_type == SHB || total < 12 || total % 4 != 0 || u64::from(total) > self.limits.max_block_len {
                return false;
            }
            let len = total as usize;
            match u32_at(be, window, at + len - 4) {
                Some(trailer) if trailer == total => at += len,
                Some(_) => return false,
                // Past the window: the blocks before it agreed (the first must fit).
                None => return i > 0,
            }
        }
        true
    }

    pub fn next<'a>(&mut self, input: &'a mut Input) -> Next<'a> {
        loop {
            let offset = input.offset();
            let head = match input.peek(12) {
                Ok(h) => h,
                Err(e) => {
                    let within = self.cut_in(input.buffered());
                    return stream_failed(e, offset, within);
                }
            };
            if head.is_empty() {
                if input.cut_short() {
                    return Next::CutShort(DecodeError::StreamCutShort, offset, CutIn::Other);
                }
                return Next::End;
            }
            let Some(block_type) = u32_at(false, head, 0).filter(|_| head.len() >= 8) else {
                let (have, within) = (head.len() as u64, self.cut_in(head));
                let _ = input.take(8);
                return Next::CutShort(DecodeError::CutShort { need: 8, have }, offset, within);
            };
            if block_type == SHB {
                let Some(magic) = u32_at(false, head, 8) else {
                    let have = head.len() as u64;
                    let _ = input.take(12);
                    return Next::CutShort(DecodeError::CutShort { need: 12, have }, offset, CutIn::Other);
                };
                self.big_endian = match magic {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    m => return Next::Corrupt(DecodeError::BadSection(m), offset),
                };
                self.interfaces.clear();
                self.sections += 1;
            }
            let be = self.big_endian;
            let block_type = if block_type == SHB { SHB } else { u32_at(be, head, 0).unwrap_or(0) };
            let total = u64::from(u32_at(be, head, 4).unwrap_or(0));
            if total < 12 || total % 4 != 0 {
                return Next::Corrupt(DecodeError::BadBlockLength(total), offset);
            }
            let limit = self.limits.max_block_len;
            if total > limit {
                return Next::Corrupt(DecodeError::BlockTooLong { len: total, limit }, offset);
            }
            let Ok(len) = usize::try_from(total) else {
                return Next::Corrupt(DecodeError::BadBlockLength(total), offset);
            };
            // The body lies between the 8-byte head and the 4-byte trailing length (`total >= 12`).
            // Packet blocks take their own path: the borrow checker (NLL) cannot yet see that the
            // loop does not go on with a block that was returned.
            if matches!(block_type, EPB | PB | SPB) {
                return match input.take(len) {
                    Ok(block) => self.packet(block_type, block.get(8..len - 4).unwrap_or_default(), offset),
                    Err(short) => cut_short(short, total, offset, CutIn::Frame),
                };
            }
            let block = match input.take(len) {
                Ok(b) => b,
                Err(short) => return cut_short(short, total, offset, block_cut_in(block_type)),
            };
            let body = block.get(8..len - 4).unwrap_or_default();
            match block_type {
                SHB => {}
                IDB => self.interfaces.push(parse_idb(be, body)),
                t if KNOWN_SKIPPED.contains(&t) => {}
                t if RECORD_BLOCKS.contains(&t) => {
                    return Next::Packet(Packet { ts_ns: 0, orig_len: 0, linktype: NON_PACKET, data: &[], offset })
                }
                t => return Next::Skipped(DecodeError::UnknownBlock(t), offset),
            }
        }
    }

    /// What a cut falls in when `head`, the start of a block, is all that came of it.
    fn cut_in(&self, head: &[u8]) -> CutIn {
        u32_at(self.big_endian, head, 0).map_or(CutIn::Other, block_cut_in)
    }

    fn packet<'a>(&self, block_type: u32, body: &'a [u8], offset: u64) -> Next<'a> {
        let be = self.big_endian;
        let short = |need: usize| {
            Next::Corrupt(DecodeError::Truncated { layer: "pcapng packet block", need, have: body.len() }, offset)
        };
        let (if_id, ts_raw, caplen, orig_len, data_at) = match block_type {
            EPB | PB => {
                let (Some(ts_hi), Some(ts_lo), Some(caplen), Some(orig_len)) =
                    (u32_at(be, body, 4), u32_at(be, body, 8), u32_at(be, body, 12), u32_at(be, body, 16))
                else {
                    return short(20);
                };
                let if_id = if block_type == EPB {
                    u32_at(be, body, 0)
                } else {
                    u16_at(be, body, 0).map(u32::from)
                };
                let ts = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
                (if_id.unwrap_or(0), Some(ts), caplen as usize, orig_len, 20)
            }
            _ => {
                let Some(orig_len) = u32_at(be, body, 0) else { return short(4) };
                let mut caplen = (orig_len as usize).min(body.len().saturating_sub(4));
                if let Some(iface) = self.interfaces.first() {
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                }
                (0, None, caplen, orig_len, 4)
            }
        };
        let Some(iface) = self.interfaces.get(if_id as usize) else {
            return Next::Corrupt(DecodeError::UnknownInterface(if_id), offset);
        };
        let limit = self.limits.max_record_len;
        if caplen as u64 > limit {
            return Next::Corrupt(DecodeError::RecordTooLong { caplen: caplen as u64, limit }, offset);
        }
        let Some(data) = body.get(data_at..).and_then(|d| d.get(..caplen)) else {
            return short(data_at + caplen);
        };
        // A Simple Packet Block has no timestamp: it reads as the epoch, as in Wireshark.
        let ts_ns = ts_raw.map_or(0, |raw| iface.ts_ns(raw));
        Next::Packet(Packet { ts_ns, orig_len, linktype: iface.linktype, data, offset })
    }
}

/// Blocks read as frames (packets and the records Wireshark lists as frames): a cut inside one
/// is that frame's.
fn block_cut_in(block_type: u32) -> CutIn {
    if matches!(block_type, EPB | PB | SPB) || RECORD_BLOCKS.contains(&block_type) { CutIn::Frame } else { CutIn::Other }
}

fn cut_short<'a>(short: Short, need: u64, offset: u64, within: CutIn) -> Next<'a> {
    match short {
        Short::Eof { have } | Short::Cut { have } => {
            Next::CutShort(DecodeError::CutShort { need, have: have as u64 }, offset, within)
        }
        Short::Io(e) => stream_failed(e, offset, within),
    }
}

fn parse_idb(be: bool, body: &[u8]) -> Interface {
    let mut iface = Interface {
        linktype: u32::from(u16_at(be, body, 0).unwrap_or(u16::MAX)),
        snaplen: u32_at(be, body, 4).unwrap_or(0),
        tsresol: 6,
        tsoffset_s: 0,
    };
    let mut at = 8;
    while let (Some(code), Some(len)) = (u16_at(be, body, at), u16_at(be, body, at + 2)) {
        let len = usize::from(len);
        let Some(value) = body.get(at + 4..).and_then(|v| v.get(..len)) else { break };
        match (code, value) {
            (0, _) => break,
            (9, &[tsresol]) => iface.tsresol = tsresol,
            (14, _) if len == 8 => iface.tsoffset_s = u64_at(be, value, 0).unwrap_or(0) as i64,
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    iface
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        let mut i = Interface { linktype: 1, snaplen: 0, tsresol: 6, tsoffset_s: 0 };
        assert_eq!(i.ts_ns(1_500_000), 1_500_000_000);
        i.tsresol = 9;
        assert_eq!(i.ts_ns(7), 7);
        i.tsresol = 0x80 | 10; // 1/1024 s
        assert_eq!(i.ts_ns(512), 500_000_000);
        i.tsresol = 3;
        i.tsoffset_s = 100;
        assert_eq!(i.ts_ns(1), 100_001_000_000);
    }
}
