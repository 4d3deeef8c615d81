//! Capture sources: a (possibly compressed) byte stream, and the pcap/pcapng record readers on it.
pub mod input;
pub mod location;
pub mod pcap;
pub mod pcapng;
#[cfg(test)]
mod properties;

use std::io;
use std::path::Path;

pub use input::{Compression, Input};
pub use location::{LocalFile, Location, Stream};
use location::read_at;

use crate::error::{CaptureError, DecodeError};

/// Records longer than this are corruption, as in Wireshark (WTAP_MAX_PACKET_SIZE_STANDARD).
pub const MAX_RECORD_LEN: u64 = 256 * 1024;
/// The largest pcapng block we accept (a record plus generous room for options).
pub const MAX_BLOCK_LEN: u64 = 16 * 1024 * 1024;
/// Decompressed bytes per compressed byte. Real captures stay far below (gzip cannot exceed
/// 1032:1 at all); a bomb of zeros in zstd runs at tens of thousands to one.
pub const MAX_DECOMPRESSION_RATIO: u64 = 1000;

/// What a capture may ask of the reader. A record or block over its limit makes the rest of the
/// file untrusted (reading stops, as Wireshark does); so does a compressed stream that inflates
/// past the ratio, checked once the first few MiB are out (`input::RATIO_GRACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_record_len: u64,
    pub max_block_len: u64,
    pub max_decompression_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_len: MAX_RECORD_LEN,
            max_block_len: MAX_BLOCK_LEN,
            max_decompression_ratio: MAX_DECOMPRESSION_RATIO,
        }
    }
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub ts_ns: i64,
    pub orig_len: u32,
    pub linktype: u32,
    pub data: &'a [u8],
    /// Byte offset of the record (or block) in the decompressed stream.
    pub offset: u64,
}

#[derive(Debug)]
pub enum Next<'a> {
    Packet(Packet<'a>),
    /// Not a frame, e.g. an unknown pcapng block; reading goes on.
    Skipped(DecodeError, u64),
    /// The stream ended inside a record, or a compressed stream before its end: what came
    /// before stands.
    CutShort(DecodeError, u64, CutIn),
    /// The rest of the stream cannot be trusted (e.g. an absurd record length): reading stops.
    Corrupt(DecodeError, u64),
    End,
}

/// What a cut fell in the middle of: a frame's record gives its `errors` row the frame number
/// the record would have had (as tshark's frame.number), anything else none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutIn {
    /// A record counted as a frame (pcap record; pcapng packet or record block).
    Frame,
    /// A file or section header, an interface description or other non-frame block, or no
    /// record at all (a compressed stream that ended between records).
    Other,
}

impl CutIn {
    /// A pcap record of which `have` bytes came: none means no record was begun.
    fn record(have: usize) -> CutIn {
        if have > 0 { CutIn::Frame } else { CutIn::Other }
    }
}

/// The stream failed under a reader at `offset`, inside `within`: a tripped limit means the
/// rest is untrusted, anything else (a read error, a broken compressed stream) cuts the capture
/// short.
fn stream_failed<'a>(e: io::Error, offset: u64, within: CutIn) -> Next<'a> {
    match input::decode_error(e) {
        e @ DecodeError::DecompressionRatio { .. } => Next::Corrupt(e, offset),
        e => Next::CutShort(e, offset, within),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

#[derive(Clone)]
enum Records {
    Pcap(pcap::PcapReader),
    Pcapng(pcapng::PcapngReader),
}

/// Reads the frames of one capture, whatever its format and compression.
pub struct CaptureReader {
    input: Input,
    records: Records,
}

impl CaptureReader {
    /// Opens with the default limits.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        CaptureReader::open_with(path, Limits::default())
    }

    pub fn open_with(path: &Path, limits: Limits) -> Result<CaptureReader, CaptureError> {
        CaptureReader::open_location(&LocalFile::new(path), limits)
    }

    /// Opens the capture at `location` from its start.
    pub fn open_location(location: &dyn Location, limits: Limits) -> Result<CaptureReader, CaptureError> {
        let input = Input::open_location(location, limits.max_decompression_ratio)?;
        CaptureReader::new_with(input, location.name(), limits)
    }

    /// Detects the format by magic, with the default limits. `name` is used in errors only.
    pub fn new(input: Input, name: &str) -> Result<CaptureReader, CaptureError> {
        CaptureReader::new_with(input, name, Limits::default())
    }

    pub fn new_with(mut input: Input, name: &str, limits: Limits) -> Result<CaptureReader, CaptureError> {
        let not_capture = |offset: u64, detail: String| CaptureError::NotACapture {
            path: name.to_owned(),
            offset,
            detail,
        };
        let magic = input.peek(4).map_err(|e| not_capture(0, input::decode_error(e).to_string()))?;
        let magic: [u8; 4] = match magic.try_into() {
            Ok(m) => m,
            Err(_) => {
                let n = magic.len();
                let detail = if input.cut_short() {
                    format!("only {n} bytes before the {} stream is cut short", input.compression.name())
                } else {
                    format!("only {n} bytes")
                };
                return Err(not_capture(0, detail));
            }
        };
        let records = if pcap::PcapHeader::magic(magic).is_some() {
            Records::Pcap(pcap::PcapReader::open(&mut input, limits).map_err(|d| not_capture(0, d))?)
        } else if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            Records::Pcapng(pcapng::PcapngReader::open(&mut input, limits).map_err(|d| not_capture(8, d))?)
        } else {
            return Err(not_capture(0, format!("unknown magic {:02x?}", magic)));
        };
        Ok(CaptureReader { input, records })
    }

    pub fn format(&self) -> Format {
        match self.records {
            Records::Pcap(_) => Format::Pcap,
            Records::Pcapng(_) => Format::Pcapng,
        }
    }

    pub fn compression(&self) -> Compression {
        self.input.compression
    }

    /// Stream offset of the next record.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// Offsets that split an uncompressed pcap or pcapng file into about `parts` pieces at what
    /// look like record (block) starts (increasing, none for compressed or small files, or for
    /// streams, whose size is not known).
    /// Guesses: a piece is only used once the records before it are found to end exactly at
    /// its start, with the reader in the state the piece started in (`state`).
    pub fn split_points(&self, location: &dyn Location, parts: usize, min_piece: u64) -> Vec<u64> {
        const WINDOW: u64 = 4 << 20;
        if self.input.compression != Compression::None || parts < 2 {
            return Vec::new();
        }
        let Ok(size) = location.size() else { return Vec::new() };
        let piece = size / parts as u64;
        if piece < min_piece.max(1) {
            return Vec::new();
        }
        let start_in: StartIn = match &self.records {
            Records::Pcap(reader) => {
                let reader = *reader;
                let Ok(first_header) = read_at(location, self.input.offset(), 16) else { return Vec::new() };
                if first_header.len() < 16 {
                    return Vec::new();
                }
                let first_sec = reader.header.u32_at(&first_header, 0);
                Box::new(move |window, _, at_eof| reader.record_start(window, at_eof, first_sec))
            }
            Records::Pcapng(reader) => {
                let Some(state) = pcapng_state_at_first_packet(location, reader.limits()) else { return Vec::new() };
                // Blocks start at multiples of 4 from the file's start.
                Box::new(move |window, from, at_eof| state.block_start(window, ((4 - from % 4) % 4) as usize, at_eof))
            }
        };
        let first = self.input.offset();
        let mut points: Vec<u64> = Vec::new();
        for k in 1..parts as u64 {
            let from = (k * piece).max(points.last().map_or(first, |&p| p + 1));
            let Ok(window) = read_at(location, from, WINDOW) else { break };
            let at_eof = from + window.len() as u64 >= size;
            if let Some(start) = start_in(&window, from, at_eof) {
                points.push(from + start as u64);
            }
        }
        points
    }

    /// Readers of the same file from each of `offsets` (`split_points`) on. A pcapng piece
    /// starts with the byte order and interfaces of the file's first packet.
    pub fn resume_at(&self, location: &dyn Location, offsets: &[u64]) -> Result<Vec<CaptureReader>, CaptureError> {
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let records = match &self.records {
            Records::Pcap(reader) => Records::Pcap(*reader),
            Records::Pcapng(reader) => match pcapng_state_at_first_packet(location, reader.limits()) {
                Some(state) => Records::Pcapng(state),
                None => return Err(CaptureError::io(location.name(), io::Error::other("no pcapng packet to resume from"))),
            },
        };
        offsets.iter().map(|&offset| Ok(CaptureReader { input: Input::open_at(location, offset)?, records: records.clone() })).collect()
    }

    /// What decides how the records ahead are read (pcapng: byte order and interfaces).
    pub fn state(&self) -> ReaderState {
        ReaderState(match &self.records {
            Records::Pcap(_) => None,
            Records::Pcapng(reader) => Some(reader.clone()),
        })
    }

    pub fn next(&mut self) -> Next<'_> {
        match &mut self.records {
            Records::Pcap(r) => r.next(&mut self.input),
            Records::Pcapng(r) => r.next(&mut self.input),
        }
    }
}

/// Where a record seems to start in a window read from file offset `from` (`window`, `from`,
/// whether the window reaches the end of the file).
type StartIn = Box<dyn Fn(&[u8], u64, bool) -> Option<usize>>;

/// A snapshot of [`CaptureReader::state`].
pub struct ReaderState(Option<pcapng::PcapngReader>);

impl ReaderState {
    /// True when a reader in state `self` reads the bytes ahead as one in `other` does.
    pub fn same_as(&self, other: &ReaderState) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => a.same_state(b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// A pcapng file's reader state once its first packet is read (sections, interfaces and blocks
/// before it walked): what a piece that starts later assumes. None without such a packet.
fn pcapng_state_at_first_packet(location: &dyn Location, limits: Limits) -> Option<pcapng::PcapngReader> {
    let mut head = CaptureReader::open_location(location, limits).ok()?;
    loop {
        match head.next() {
            Next::Packet(_) => break,
            Next::Skipped(..) => continue,
            Next::CutShort(..) | Next::Corrupt(..) | Next::End => return None,
        }
    }
    match &head.records {
        Records::Pcapng(reader) => Some(reader.for_piece()),
        Records::Pcap(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture truncated on disk while it is being read: the reader sees a shorter stream (it
    /// reads, it does not map the file) and reports the cut.
    #[test]
    fn file_truncated_between_reads() {
        let record = 1000usize;
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0];
        for i in 0..4000u32 {
            bytes.extend_from_slice(&i.to_le_bytes());
            bytes.extend_from_slice(&[0; 4]);
            bytes.extend_from_slice(&(record as u32).to_le_bytes());
            bytes.extend_from_slice(&(record as u32).to_le_bytes());
            bytes.resize(bytes.len() + record, 0xee);
        }
        let path = std::env::temp_dir().join(format!("icmpscope-truncated-{}.pcap", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = CaptureReader::open(&path).unwrap();
        let mut packets = 0;
        while packets < 10 {
            assert!(matches!(reader.next(), Next::Packet(_)));
            packets += 1;
        }
        // Cut the file well past what is buffered (one read of 1 MiB), in the middle of a record.
        let cut = 24 + 1500 * (16 + record) + 77;
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut as u64).unwrap();
        let end = loop {
            match reader.next() {
                Next::Packet(p) => {
                    assert_eq!(p.data.len(), record);
                    packets += 1;
                }
                other => break format!("{other:?}"),
            }
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(packets, 1500);
        assert!(end.starts_with("CutShort(CutShort { need: 1016, have: 77 }"), "{end}");
    }
}
