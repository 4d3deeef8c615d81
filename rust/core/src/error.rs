//! Error values. File-level problems (`CaptureError`) stop or cut a file short and become Python
//! exceptions or warnings; packet-level problems (`DecodeError`) are data: a counter and an
//! `errors` row, never an exception.
use thiserror::Error;

/// A problem with a whole capture file.
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a pcap or pcapng capture (byte offset {offset}: {detail})")]
    NotACapture { path: String, offset: u64, detail: String },
}

impl CaptureError {
    pub fn io(path: &str, source: std::io::Error) -> Self {
        CaptureError::Io { path: path.to_owned(), source }
    }
}

/// Why a record (or part of a file) could not be decoded. Each becomes one `errors` row.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("link type {0} is not supported")]
    UnsupportedLinkType(u32),
    #[error("{layer} header truncated: {have} of {need} bytes captured")]
    Truncated { layer: &'static str, need: usize, have: usize },
    #[error("IP version {0} where IPv4 or IPv6 was expected")]
    BadIpVersion(u8),
    #[error("IPv4 header length {0} bytes is below the 20-byte minimum")]
    BadIhl(usize),
    #[error("IPv4 total length {total} is shorter than its header length {header}")]
    BadTotalLength { total: usize, header: usize },
    #[error("IPv6 extension header chain longer than {0} headers (max_ext_headers)")]
    ExtChainTooLong(usize),
    #[error("IPv6 extension header {0} runs past the packet")]
    BadExtHeader(u8),
    #[error("tunnels nested deeper than {0} levels: the inner ones are not opened")]
    TunnelTooDeep(usize),
    #[error("record caplen {caplen} exceeds the {limit}-byte limit (max_record_len): corrupt capture")]
    RecordTooLong { caplen: u64, limit: u64 },
    #[error("record caplen {caplen} exceeds orig_len {orig_len}")]
    CaplenOverOrig { caplen: u32, orig_len: u32 },
    #[error("capture cut short in the middle of a record ({have} of {need} bytes)")]
    CutShort { need: u64, have: u64 },
    #[error("capture cut short: the compressed stream ends, without its end marker, between records")]
    StreamCutShort,
    #[error("pcapng block length {0} is invalid")]
    BadBlockLength(u64),
    #[error("pcapng block length {len} exceeds the {limit}-byte limit (max_block_len): corrupt capture")]
    BlockTooLong { len: u64, limit: u64 },
    #[error("pcapng packet refers to interface {0}, which was not described")]
    UnknownInterface(u32),
    #[error("pcapng block type {0:#x} skipped")]
    UnknownBlock(u32),
    #[error("pcapng section with byte-order magic {0:#010x} is not valid")]
    BadSection(u32),
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error(
        "{decompressed} bytes inflated from {compressed} compressed bytes, over the {limit}:1 limit \
         (max_decompression_ratio): a compression bomb is not followed"
    )]
    DecompressionRatio { compressed: u64, decompressed: u64, limit: u64 },
    #[error("reassembly held over {limit} bytes (max_reassembly_bytes): datagram of frame {first_frame} evicted")]
    ReassemblyMemory { limit: usize, first_frame: u64 },
    #[error("over {limit} datagrams in reassembly (max_datagrams): datagram of frame {first_frame} evicted")]
    ReassemblyDatagrams { limit: usize, first_frame: u64 },
    #[error("over {limit} flow directions (max_flows): packets of directions not yet in flows are left out of it from here on")]
    FlowsFull { limit: usize },
    #[error("read error: {0}")]
    Io(String),
}

impl DecodeError {
    /// A short stable code for the `errors.kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType(_) => "unsupported_link_type",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::BadIpVersion(_) => "bad_ip_version",
            DecodeError::BadIhl(_) => "bad_ip_header_length",
            DecodeError::BadTotalLength { .. } => "bad_ip_total_length",
            DecodeError::ExtChainTooLong(_) => "ext_chain_too_long",
            DecodeError::BadExtHeader(_) => "bad_ext_header",
            DecodeError::TunnelTooDeep(_) => "tunnel_too_deep",
            DecodeError::RecordTooLong { .. } => "record_too_long",
            DecodeError::CaplenOverOrig { .. } => "caplen_over_orig_len",
            DecodeError::CutShort { .. } | DecodeError::StreamCutShort => "cut_short",
            DecodeError::BadBlockLength(_) => "bad_block_length",
            DecodeError::BlockTooLong { .. } => "block_too_long",
            DecodeError::UnknownInterface(_) => "unknown_interface",
            DecodeError::UnknownBlock(_) => "unknown_block",
            DecodeError::BadSection(_) => "bad_section",
            DecodeError::Decompress(_) => "decompress",
            DecodeError::DecompressionRatio { .. } => "decompression_ratio",
            DecodeError::ReassemblyMemory { .. } => "reassembly_memory_limit",
            DecodeError::ReassemblyDatagrams { .. } => "reassembly_datagram_limit",
            DecodeError::FlowsFull { .. } => "flows_limit",
            DecodeError::Io(_) => "io",
        }
    }
}
