//! Arrow tables: one builder per table of SPEC "Tables", filled row by row, finished into
//! `RecordBatch`es. Addresses, MACs and file names are dictionary-encoded (polars Categorical).
pub mod columns;

use std::net::IpAddr;
use std::sync::Arc;
use rustc_hash::FxHashMap;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, PrimitiveBuilder, StringBuilder, StringViewBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
    UInt8Builder,
};
use arrow_array::types::{UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{ArrayRef, ArrowPrimitiveType, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};

use columns::{
    dict_type, field, text_list_type, ts_type, Internable, Interner, KeyColumn, SparseColumn, SparseKeyColumn, SparseTextList, Zeros,
};

use crate::icmp::{self, IcmpMessage};
use crate::ip::IpPacket;
use crate::link::LinkFrame;
use crate::reassembly::DatagramRow;
use crate::tunnel::{Path, Tunnel};

/// A MAC address printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl Internable for Mac {
    type Index = FxHashMap<u64, u32>;
    #[inline]
    fn find(index: &Self::Index, value: Self) -> Option<u32> {
        index.get(&value.bits()).copied()
    }
    fn insert(index: &mut Self::Index, value: Self, key: u32) {
        index.insert(value.bits(), key);
    }
    fn clear(index: &mut Self::Index) {
        index.clear();
    }
}

impl Mac {
    fn bits(self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

fn ts(builder: &mut TimestampNanosecondBuilder) -> ArrayRef {
    Arc::new(builder.finish().with_timezone("UTC"))
}

/// The `tunnel` column: the path as text (`gre>gre`), null outside tunnels. Only tunnelled rows
/// are kept until `finish`, so plain traffic costs nothing here.
#[derive(Default)]
pub(crate) struct PathColumn {
    /// (row, path) of the tunnelled rows, in row order.
    tunnelled: Vec<(usize, Path)>,
}

impl PathColumn {
    fn push(&mut self, row: usize, path: Path) {
        if !path.is_empty() {
            self.tunnelled.push((row, path));
        }
    }

    /// A string-view column: polars' own string layout, so it crosses into polars without a
    /// conversion (a plain Utf8 column of 5M nulls took 46 ms to convert).
    fn finish(&mut self, rows: usize) -> ArrayRef {
        let tunnelled = std::mem::take(&mut self.tunnelled);
        if tunnelled.is_empty() {
            return Arc::new(arrow_array::StringViewArray::new_null(rows));
        }
        let mut values = StringViewBuilder::with_capacity(rows);
        let mut text = String::new();
        let mut next = tunnelled.iter().peekable();
        for row in 0..rows {
            match next.next_if(|(r, _)| *r == row) {
                Some((_, path)) => {
                    use std::fmt::Write;
                    text.clear();
                    let _ = write!(text, "{path}");
                    values.append_value(&text);
                }
                None => values.append_null(),
            }
        }
        Arc::new(values.finish())
    }
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    // Every column is built to the schema's type with one value per row.
    RecordBatch::try_new(schema.clone(), columns).expect("columns match their schema")
}

pub fn icmp_schema() -> SchemaRef {
    let d = dict_type;
    Arc::new(Schema::new(vec![
        field("file", DataType::Utf8View, false),
        field("frame", DataType::UInt64, false),
        field("ts", ts_type(), false),
        field("ip_version", DataType::UInt8, false),
        field("src", d(), false),
        field("dst", d(), false),
        field("ttl", DataType::UInt8, false),
        field("vlan", DataType::UInt16, true),
        field("src_mac", d(), true),
        field("dst_mac", d(), true),
        field("icmp_type", DataType::UInt8, false),
        field("icmp_code", DataType::UInt8, false),
        field("checksum_ok", DataType::Boolean, false),
        field("checksum", DataType::UInt16, true),
        field("icmp_id", DataType::UInt16, true),
        field("icmp_seq", DataType::UInt16, true),
        field("payload_len", DataType::UInt32, false),
        field("payload_entropy", DataType::Float32, true),
        field("payload_digest", DataType::UInt64, true),
        field("datagram_len", DataType::UInt32, false),
        field("reassembled", DataType::Boolean, false),
        field("gateway", d(), true),
        field("mtu", DataType::UInt32, true),
        field("router_lifetime", DataType::UInt16, true),
        field("advertised", text_list_type(), true),
        field("mask", d(), true),
        field("inner_src", d(), true),
        field("inner_dst", d(), true),
        field("inner_proto", DataType::UInt8, true),
        field("inner_sport", DataType::UInt16, true),
        field("inner_dport", DataType::UInt16, true),
        field("tunnel", DataType::Utf8View, true),
        field("outer_src", d(), true),
        field("outer_dst", d(), true),
        field("tunnel_id", DataType::UInt32, true),
        field("tos", DataType::UInt8, false),
        field("df", DataType::Boolean, true),
        field("ip_id", DataType::UInt16, true),
        field("inner_ttl", DataType::UInt8, true),
        field("quoted_len", DataType::UInt32, true),
        field("nd_target", d(), true),
        field("nd_flags", DataType::UInt8, true),
        field("lladdr", d(), true),
        field("ra_mtu", DataType::UInt32, true),
        field("routes", text_list_type(), true),
        field("inner_seq", DataType::UInt32, true),
        field("inner_flow_seen", DataType::Boolean, true),
        field("sample_agent", d(), true),
        field("sample_rate", DataType::UInt32, true),
    ]))
}

/// Where a row came from: file and frame number, and the frame's time.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub frame: u64,
    pub ts_ns: i64,
}

/// Column positions of the `icmp` schema.
pub mod icmp_column {
    pub const FILE: usize = 0;
    pub const FRAME: usize = 1;
    pub const TS: usize = 2;
    pub const IP_VERSION: usize = 3;
    pub const SRC: usize = 4;
    pub const DST: usize = 5;
    pub const TTL: usize = 6;
    pub const VLAN: usize = 7;
    pub const SRC_MAC: usize = 8;
    pub const DST_MAC: usize = 9;
    pub const ICMP_TYPE: usize = 10;
    pub const ICMP_CODE: usize = 11;
    pub const CHECKSUM_OK: usize = 12;
    pub const CHECKSUM: usize = 13;
    pub const ICMP_ID: usize = 14;
    pub const ICMP_SEQ: usize = 15;
    pub const PAYLOAD_LEN: usize = 16;
    pub const PAYLOAD_ENTROPY: usize = 17;
    pub const PAYLOAD_DIGEST: usize = 18;
    pub const DATAGRAM_LEN: usize = 19;
    pub const REASSEMBLED: usize = 20;
    pub const GATEWAY: usize = 21;
    pub const MTU: usize = 22;
    pub const ROUTER_LIFETIME: usize = 23;
    pub const ADVERTISED: usize = 24;
    pub const MASK: usize = 25;
    pub const INNER_SRC: usize = 26;
    pub const INNER_DST: usize = 27;
    pub const INNER_PROTO: usize = 28;
    pub const INNER_SPORT: usize = 29;
    pub const INNER_DPORT: usize = 30;
    pub const TUNNEL: usize = 31;
    pub const OUTER_SRC: usize = 32;
    pub const OUTER_DST: usize = 33;
    pub const TUNNEL_ID: usize = 34;
    pub const TOS: usize = 35;
    pub const DF: usize = 36;
    pub const IP_ID: usize = 37;
    pub const INNER_TTL: usize = 38;
    pub const QUOTED_LEN: usize = 39;
    pub const ND_TARGET: usize = 40;
    pub const ND_FLAGS: usize = 41;
    pub const LLADDR: usize = 42;
    pub const RA_MTU: usize = 43;
    pub const ROUTES: usize = 44;
    pub const INNER_SEQ: usize = 45;
    pub const INNER_FLOW_SEEN: usize = 46;
    pub const SAMPLE_AGENT: usize = 47;
    pub const SAMPLE_RATE: usize = 48;
    /// How many columns the schema has.
    pub const COUNT: usize = 49;
}

/// The `icmp` columns a scan wants (bit i: schema column i); the others are never built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSet(u64);

impl ColumnSet {
    pub const ALL: ColumnSet = ColumnSet(u64::MAX);

    pub fn of(indices: &[usize]) -> ColumnSet {
        ColumnSet(indices.iter().filter(|&&i| i < 64).fold(0, |set, &i| set | 1 << i))
    }

    #[inline(always)]
    pub fn has(self, column: usize) -> bool {
        self.0 >> column & 1 == 1
    }
}

impl Default for ColumnSet {
    fn default() -> Self {
        ColumnSet::ALL
    }
}

/// The always-present fields of up to [`STAGED_ROWS`] `icmp` rows, column by column: a row is
/// one store per field, and every [`STAGED_ROWS`] rows each column takes its values in one slice
/// copy. Appending to 18 Arrow builders row by row cost ~25 instructions per column and row, and
/// staging whole rows ~8 (gathered back out of the rows); callgrind, echo-only records.
#[derive(Default)]
struct Staged {
    rows: usize,
    frame: Lane<u64>,
    ts: Lane<i64>,
    src: Lane<u32>,
    dst: Lane<u32>,
    src_mac: NullableLane<u32>,
    dst_mac: NullableLane<u32>,
    payload_len: Lane<u32>,
    datagram_len: Lane<u32>,
    payload_entropy: NullableLane<f32>,
    checksum: NullableLane<u16>,
    icmp_id: NullableLane<u16>,
    icmp_seq: NullableLane<u16>,
    ip_version: Lane<u8>,
    ttl: Lane<u8>,
    tos: Lane<u8>,
    // Null for IPv6: validity comes from `ip_version` when the batch is finished, so no row
    // stores one (per-row validity and arrow's bit-by-bit `append_values` for `df` were 20 of
    // the 90 instructions a row these columns cost on the mixed capture, callgrind).
    ip_id: Lane<u16>,
    df: Lane<bool>,
    icmp_type: Lane<u8>,
    icmp_code: Lane<u8>,
    checksum_ok: Lane<bool>,
    reassembled: Lane<bool>,
}

/// Rows staged before they go to the columns: about 9 KiB, in L1 (1024 rows, 70 KiB, were 6 %
/// slower on echo-only records). A power of two.
const STAGED_ROWS: usize = 128;

struct Lane<T>([T; STAGED_ROWS]);

impl<T: Copy + Default> Default for Lane<T> {
    fn default() -> Self {
        Lane([T::default(); STAGED_ROWS])
    }
}

impl<T: Copy> Lane<T> {
    #[inline(always)]
    fn set(&mut self, row: usize, value: T) {
        self.0[row] = value;
    }
}

struct NullableLane<T> {
    values: Lane<T>,
    valid: Lane<bool>,
}

impl<T: Copy + Default> Default for NullableLane<T> {
    fn default() -> Self {
        NullableLane { values: Lane::default(), valid: Lane::default() }
    }
}

impl<T: Copy + Default> NullableLane<T> {
    #[inline(always)]
    fn set(&mut self, row: usize, value: Option<T>) {
        self.values.set(row, value.unwrap_or_default());
        self.valid.set(row, value.is_some());
    }
}

/// The first `rows` staged values of a column.
fn append_lane<T: ArrowPrimitiveType>(column: &mut PrimitiveBuilder<T>, lane: &Lane<T::Native>, rows: usize) {
    column.append_slice(&lane.0[..rows]);
}

/// The first `rows` staged values of a nullable column: a slice copy when none is null.
fn append_nullable_lane<T: ArrowPrimitiveType>(column: &mut PrimitiveBuilder<T>, lane: &NullableLane<T::Native>, rows: usize) {
    let (values, valid) = (&lane.values.0[..rows], &lane.valid.0[..rows]);
    if valid.iter().all(|&v| v) {
        column.append_slice(values);
    } else {
        column.append_values(values, valid);
    }
}

fn append_flags(column: &mut BooleanBuilder, lane: &Lane<bool>, rows: usize) {
    column.append_slice(&lane.0[..rows]);
}

#[derive(Default)]
pub struct IcmpTable {
    /// Columns to build (a projected scan builds only those).
    pub columns: ColumnSet,
    /// Set by a scan of another table: rows are counted nowhere and built not at all.
    pub skip: bool,
    rows: usize,
    staged: Box<Staged>,
    addrs: Interner<IpAddr>,
    macs: Interner<Mac>,
    frame: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    ip_version: UInt8Builder,
    src: KeyColumn<IpAddr>,
    dst: KeyColumn<IpAddr>,
    ttl: UInt8Builder,
    vlan: SparseColumn<UInt16Type>,
    src_mac: KeyColumn<Mac>,
    dst_mac: KeyColumn<Mac>,
    icmp_type: UInt8Builder,
    icmp_code: UInt8Builder,
    checksum_ok: BooleanBuilder,
    checksum: UInt16Builder,
    icmp_id: UInt16Builder,
    icmp_seq: UInt16Builder,
    payload_len: UInt32Builder,
    payload_entropy: Float32Builder,
    payload_digest: SparseColumn<UInt64Type>,
    datagram_len: UInt32Builder,
    reassembled: BooleanBuilder,
    gateway: SparseKeyColumn<IpAddr>,
    mtu: SparseColumn<UInt32Type>,
    router_lifetime: SparseColumn<UInt16Type>,
    advertised: SparseTextList,
    mask: SparseKeyColumn<IpAddr>,
    inner_src: SparseKeyColumn<IpAddr>,
    inner_dst: SparseKeyColumn<IpAddr>,
    inner_proto: SparseColumn<UInt8Type>,
    inner_sport: SparseColumn<UInt16Type>,
    inner_dport: SparseColumn<UInt16Type>,
    tunnel: PathColumn,
    outer_src: SparseKeyColumn<IpAddr>,
    outer_dst: SparseKeyColumn<IpAddr>,
    tunnel_id: SparseColumn<UInt32Type>,
    tos: UInt8Builder,
    df: BooleanBuilder,
    ip_id: UInt16Builder,
    inner_ttl: SparseColumn<UInt8Type>,
    quoted_len: SparseColumn<UInt32Type>,
    nd_target: SparseKeyColumn<IpAddr>,
    nd_flags: SparseColumn<UInt8Type>,
    lladdr: SparseKeyColumn<Mac>,
    ra_mtu: SparseColumn<UInt32Type>,
    routes: SparseTextList,
    inner_seq: SparseColumn<UInt32Type>,
    inner_flow_seen: SparseFlags,
    sample_agent: SparseKeyColumn<IpAddr>,
    sample_rate: SparseColumn<UInt32Type>,
}

/// A boolean column most rows leave null, whose values may still change until it is finished
/// (`inner_flow_seen` of a piece read before the pieces ahead of it were known).
#[derive(Default)]
struct SparseFlags {
    /// (row, value), in row order.
    set: Vec<(u32, bool)>,
}

impl SparseFlags {
    /// Sets row `row`; returns the index to change it by.
    fn push(&mut self, row: usize, value: bool) -> usize {
        self.set.push((row as u32, value));
        self.set.len() - 1
    }

    fn finish(&mut self, rows: usize) -> ArrayRef {
        let set = std::mem::take(&mut self.set);
        let mut values = BooleanBuilder::with_capacity(rows);
        let mut next = set.iter().peekable();
        for row in 0..rows {
            match next.next_if(|(r, _)| *r as usize == row) {
                Some(&(_, v)) => values.append_value(v),
                None => values.append_null(),
            }
        }
        Arc::new(values.finish())
    }
}

impl IcmpTable {
    /// A table whose always-present columns have room for `rows` rows. Only touched pages cost
    /// memory, so an estimate on the high side is free; growing instead meant copies of every
    /// column (`realloc` moved them: 7 % of the samples of a capture read in two pieces).
    pub fn with_capacity(rows: usize) -> IcmpTable {
        IcmpTable {
            frame: UInt64Builder::with_capacity(rows),
            ts: TimestampNanosecondBuilder::with_capacity(rows),
            ip_version: UInt8Builder::with_capacity(rows),
            src: KeyColumn::with_capacity(rows),
            dst: KeyColumn::with_capacity(rows),
            ttl: UInt8Builder::with_capacity(rows),
            src_mac: KeyColumn::with_capacity(rows),
            dst_mac: KeyColumn::with_capacity(rows),
            icmp_type: UInt8Builder::with_capacity(rows),
            icmp_code: UInt8Builder::with_capacity(rows),
            checksum_ok: BooleanBuilder::with_capacity(rows),
            checksum: UInt16Builder::with_capacity(rows),
            icmp_id: UInt16Builder::with_capacity(rows),
            icmp_seq: UInt16Builder::with_capacity(rows),
            payload_len: UInt32Builder::with_capacity(rows),
            payload_entropy: Float32Builder::with_capacity(rows),
            datagram_len: UInt32Builder::with_capacity(rows),
            reassembled: BooleanBuilder::with_capacity(rows),
            tos: UInt8Builder::with_capacity(rows),
            df: BooleanBuilder::with_capacity(rows),
            ip_id: UInt16Builder::with_capacity(rows),
            ..IcmpTable::default()
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// One message; `ip` is the header that carries it (for a reassembled datagram, one whose
    /// lengths are the whole datagram's).
    pub fn push(&mut self, at: Origin, link: &LinkFrame, ip: &IpPacket, m: &IcmpMessage, reassembled: bool, tunnel: &Tunnel) {
        if self.skip {
            return;
        }
        let row = self.rows;
        let c = self.columns;
        self.rows += 1;
        let s = &mut *self.staged;
        // Flushed at STAGED_ROWS, a power of two: the mask changes nothing and spares a bounds
        // check per field.
        let i = s.rows & (STAGED_ROWS - 1);
        s.rows = i + 1;
        s.frame.set(i, at.frame);
        s.ts.set(i, at.ts_ns);
        if c.has(icmp_column::SRC) {
            s.src.set(i, self.src.key_of(&mut self.addrs, ip.src));
        }
        if c.has(icmp_column::DST) {
            s.dst.set(i, self.dst.key_of(&mut self.addrs, ip.dst));
        }
        if c.has(icmp_column::SRC_MAC) {
            s.src_mac.set(i, self.src_mac.key(&mut self.macs, link.src_mac.map(Mac)));
        }
        if c.has(icmp_column::DST_MAC) {
            s.dst_mac.set(i, self.dst_mac.key(&mut self.macs, link.dst_mac.map(Mac)));
        }
        s.payload_len.set(i, m.payload_len);
        s.datagram_len.set(i, u32::try_from(ip.datagram_len()).unwrap_or(u32::MAX));
        s.payload_entropy.set(i, m.payload_entropy);
        s.checksum.set(i, m.checksum);
        s.icmp_id.set(i, m.id);
        s.icmp_seq.set(i, m.seq);
        s.ip_version.set(i, ip.version);
        s.ttl.set(i, ip.ttl);
        s.tos.set(i, ip.tos);
        s.ip_id.set(i, ip.ident);
        s.df.set(i, ip.df);
        s.icmp_type.set(i, m.icmp_type);
        s.icmp_code.set(i, m.code);
        s.checksum_ok.set(i, m.checksum_ok);
        s.reassembled.set(i, reassembled);
        if s.rows == STAGED_ROWS {
            self.append_staged();
        }
        if c.has(icmp_column::VLAN) {
            self.vlan.push(row, link.vlan);
        }
        if c.has(icmp_column::PAYLOAD_DIGEST) {
            self.payload_digest.push(row, m.payload_digest);
        }
        if c.has(icmp_column::GATEWAY) {
            self.gateway.push(row, &mut self.addrs, m.gateway);
        }
        if c.has(icmp_column::MTU) {
            self.mtu.push(row, m.mtu);
        }
        if c.has(icmp_column::ROUTER_LIFETIME) {
            self.router_lifetime.push(row, m.router_lifetime);
        }
        if c.has(icmp_column::ADVERTISED) {
            // `ip` carries the message decoded into `m`.
            if let Some(advertised) = icmp::advertised(ip.version, ip.payload, ip.payload_len) {
                self.advertised.push(row, &advertised);
            }
        }
        if c.has(icmp_column::MASK) {
            self.mask.push(row, &mut self.addrs, m.mask.map(IpAddr::V4));
        }
        if matches!((ip.version, m.icmp_type), (4, 3 | 4 | 5 | 11 | 12) | (6, 1..=4 | 137)) {
            self.push_quote(row, ip);
        }
        if ip.version == 6 && matches!(m.icmp_type, 133..=137) {
            self.push_nd(row, ip);
        }
        if let Some(q) = m.inner {
            if c.has(icmp_column::INNER_SRC) {
                self.inner_src.push(row, &mut self.addrs, q.src);
            }
            if c.has(icmp_column::INNER_DST) {
                self.inner_dst.push(row, &mut self.addrs, q.dst);
            }
            if c.has(icmp_column::INNER_PROTO) {
                self.inner_proto.push(row, q.proto);
            }
            if c.has(icmp_column::INNER_SPORT) {
                self.inner_sport.push(row, q.sport);
            }
            if c.has(icmp_column::INNER_DPORT) {
                self.inner_dport.push(row, q.dport);
            }
            if c.has(icmp_column::INNER_SEQ) {
                self.inner_seq.push(row, q.seq);
            }
        }
        if tunnel.is_tunnelled() {
            // A message tunnelled at the link level only (MPLS, PPPoE) has its own header outermost.
            let (outer_src, outer_dst) = tunnel.outer.unwrap_or((ip.src, ip.dst));
            if c.has(icmp_column::TUNNEL) {
                self.tunnel.push(row, tunnel.scope.path);
            }
            if c.has(icmp_column::OUTER_SRC) {
                self.outer_src.push(row, &mut self.addrs, Some(outer_src));
            }
            if c.has(icmp_column::OUTER_DST) {
                self.outer_dst.push(row, &mut self.addrs, Some(outer_dst));
            }
            if c.has(icmp_column::TUNNEL_ID) {
                self.tunnel_id.push(row, tunnel.id);
            }
            if let Some(sample) = tunnel.sample {
                if c.has(icmp_column::SAMPLE_AGENT) {
                    self.sample_agent.push(row, &mut self.addrs, Some(sample.agent));
                }
                if c.has(icmp_column::SAMPLE_RATE) {
                    self.sample_rate.push(row, Some(sample.rate));
                }
            }
        }
    }

    /// Whether the datagram the last row's error quotes belongs to a direction of `flows` seen
    /// before it; returns an index for [`IcmpTable::mark_flow_seen`] (None when not kept).
    pub fn push_flow_seen(&mut self, seen: bool) -> Option<usize> {
        if self.skip || !self.columns.has(icmp_column::INNER_FLOW_SEEN) || self.rows == 0 {
            return None;
        }
        Some(self.inner_flow_seen.push(self.rows - 1, seen))
    }

    /// The quoted direction was seen after all (in a piece of the capture read before).
    pub fn mark_flow_seen(&mut self, index: usize) {
        if let Some(v) = self.inner_flow_seen.set.get_mut(index) {
            v.1 = true;
        }
    }

    /// The quote columns of row `row`, an error message that `ip` carries. Out of line: errors
    /// are rare.
    #[inline(never)]
    fn push_quote(&mut self, row: usize, ip: &IpPacket) {
        let Some(q) = icmp::quote(ip.version, ip.payload, ip.payload_len) else { return };
        if self.columns.has(icmp_column::INNER_TTL) {
            self.inner_ttl.push(row, q.ttl);
        }
        if self.columns.has(icmp_column::QUOTED_LEN) {
            self.quoted_len.push(row, Some(q.len));
        }
    }

    /// The neighbour discovery columns of row `row`, whose message `ip` carries. Out of line:
    /// most messages are no ND.
    #[inline(never)]
    fn push_nd(&mut self, row: usize, ip: &IpPacket) {
        let c = self.columns;
        let Some(nd) = icmp::neighbor_discovery(ip.payload, ip.payload_len) else { return };
        if c.has(icmp_column::ND_TARGET) {
            self.nd_target.push(row, &mut self.addrs, nd.target.map(IpAddr::V6));
        }
        if c.has(icmp_column::ND_FLAGS) {
            self.nd_flags.push(row, nd.flags);
        }
        if c.has(icmp_column::LLADDR) {
            self.lladdr.push(row, &mut self.macs, nd.lladdr.map(Mac));
        }
        if c.has(icmp_column::RA_MTU) {
            self.ra_mtu.push(row, nd.mtu);
        }
        // A router advertisement's list, empty when it has no route; null for other messages.
        if c.has(icmp_column::ROUTES) && ip.payload.first() == Some(&134) {
            self.routes.push(row, &nd.routes);
        }
    }

    /// The staged rows into their columns (those projected).
    fn append_staged(&mut self) {
        let (c, s) = (self.columns, &*self.staged);
        let rows = s.rows;
        if c.has(icmp_column::FRAME) {
            append_lane(&mut self.frame, &s.frame, rows);
        }
        if c.has(icmp_column::TS) {
            append_lane(&mut self.ts, &s.ts, rows);
        }
        // The IPv4-only columns take their validity from it.
        if c.has(icmp_column::IP_VERSION) || c.has(icmp_column::DF) || c.has(icmp_column::IP_ID) {
            append_lane(&mut self.ip_version, &s.ip_version, rows);
        }
        if c.has(icmp_column::SRC) {
            append_lane(self.src.keys(), &s.src, rows);
        }
        if c.has(icmp_column::DST) {
            append_lane(self.dst.keys(), &s.dst, rows);
        }
        if c.has(icmp_column::TTL) {
            append_lane(&mut self.ttl, &s.ttl, rows);
        }
        if c.has(icmp_column::SRC_MAC) {
            append_nullable_lane(self.src_mac.keys(), &s.src_mac, rows);
        }
        if c.has(icmp_column::DST_MAC) {
            append_nullable_lane(self.dst_mac.keys(), &s.dst_mac, rows);
        }
        if c.has(icmp_column::ICMP_TYPE) {
            append_lane(&mut self.icmp_type, &s.icmp_type, rows);
        }
        if c.has(icmp_column::ICMP_CODE) {
            append_lane(&mut self.icmp_code, &s.icmp_code, rows);
        }
        if c.has(icmp_column::CHECKSUM_OK) {
            append_flags(&mut self.checksum_ok, &s.checksum_ok, rows);
        }
        if c.has(icmp_column::CHECKSUM) {
            append_nullable_lane(&mut self.checksum, &s.checksum, rows);
        }
        if c.has(icmp_column::ICMP_ID) {
            append_nullable_lane(&mut self.icmp_id, &s.icmp_id, rows);
        }
        if c.has(icmp_column::ICMP_SEQ) {
            append_nullable_lane(&mut self.icmp_seq, &s.icmp_seq, rows);
        }
        if c.has(icmp_column::PAYLOAD_LEN) {
            append_lane(&mut self.payload_len, &s.payload_len, rows);
        }
        if c.has(icmp_column::PAYLOAD_ENTROPY) {
            append_nullable_lane(&mut self.payload_entropy, &s.payload_entropy, rows);
        }
        if c.has(icmp_column::DATAGRAM_LEN) {
            append_lane(&mut self.datagram_len, &s.datagram_len, rows);
        }
        if c.has(icmp_column::REASSEMBLED) {
            append_flags(&mut self.reassembled, &s.reassembled, rows);
        }
        if c.has(icmp_column::TOS) {
            append_lane(&mut self.tos, &s.tos, rows);
        }
        if c.has(icmp_column::DF) {
            append_flags(&mut self.df, &s.df, rows);
        }
        if c.has(icmp_column::IP_ID) {
            append_lane(&mut self.ip_id, &s.ip_id, rows);
        }
        self.staged.rows = 0;
    }

    /// The rows so far as a batch; the builder starts again empty (the dictionaries stay).
    pub fn finish(&mut self, file: &str) -> RecordBatch {
        self.append_staged();
        let rows = std::mem::take(&mut self.rows);
        let zeros = Zeros::new(rows);
        let a = self.addrs.take_values();
        let m = self.macs.take_values();
        let c = self.columns;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(icmp_column::COUNT);
        // IPv4 rows: where `df` and `ip_id` are valid (none of the batch's rows when it has none).
        let v4 = {
            let versions = self.ip_version.values_slice();
            let v4 = arrow_buffer::BooleanBuffer::collect_bool(versions.len(), |i| versions[i] == 4);
            (v4.count_set_bits() < v4.len()).then(|| arrow_buffer::NullBuffer::new(v4))
        };
        if c.has(icmp_column::FILE) {
            columns.push(file_column(file, rows));
        }
        if c.has(icmp_column::FRAME) {
            columns.push(Arc::new(self.frame.finish()));
        }
        if c.has(icmp_column::TS) {
            columns.push(ts(&mut self.ts));
        }
        let ip_version = self.ip_version.finish();
        if c.has(icmp_column::IP_VERSION) {
            columns.push(Arc::new(ip_version));
        }
        if c.has(icmp_column::SRC) {
            columns.push(self.src.finish(&a));
        }
        if c.has(icmp_column::DST) {
            columns.push(self.dst.finish(&a));
        }
        if c.has(icmp_column::TTL) {
            columns.push(Arc::new(self.ttl.finish()));
        }
        if c.has(icmp_column::VLAN) {
            columns.push(Arc::new(self.vlan.finish(&zeros)));
        }
        if c.has(icmp_column::SRC_MAC) {
            columns.push(self.src_mac.finish(&m));
        }
        if c.has(icmp_column::DST_MAC) {
            columns.push(self.dst_mac.finish(&m));
        }
        if c.has(icmp_column::ICMP_TYPE) {
            columns.push(Arc::new(self.icmp_type.finish()));
        }
        if c.has(icmp_column::ICMP_CODE) {
            columns.push(Arc::new(self.icmp_code.finish()));
        }
        if c.has(icmp_column::CHECKSUM_OK) {
            columns.push(Arc::new(self.checksum_ok.finish()));
        }
        if c.has(icmp_column::CHECKSUM) {
            columns.push(Arc::new(self.checksum.finish()));
        }
        if c.has(icmp_column::ICMP_ID) {
            columns.push(Arc::new(self.icmp_id.finish()));
        }
        if c.has(icmp_column::ICMP_SEQ) {
            columns.push(Arc::new(self.icmp_seq.finish()));
        }
        if c.has(icmp_column::PAYLOAD_LEN) {
            columns.push(Arc::new(self.payload_len.finish()));
        }
        if c.has(icmp_column::PAYLOAD_ENTROPY) {
            columns.push(Arc::new(self.payload_entropy.finish()));
        }
        if c.has(icmp_column::PAYLOAD_DIGEST) {
            columns.push(Arc::new(self.payload_digest.finish(&zeros)));
        }
        if c.has(icmp_column::DATAGRAM_LEN) {
            columns.push(Arc::new(self.datagram_len.finish()));
        }
        if c.has(icmp_column::REASSEMBLED) {
            columns.push(Arc::new(self.reassembled.finish()));
        }
        if c.has(icmp_column::GATEWAY) {
            columns.push(self.gateway.finish(&zeros, &a));
        }
        if c.has(icmp_column::MTU) {
            columns.push(Arc::new(self.mtu.finish(&zeros)));
        }
        if c.has(icmp_column::ROUTER_LIFETIME) {
            columns.push(Arc::new(self.router_lifetime.finish(&zeros)));
        }
        if c.has(icmp_column::ADVERTISED) {
            columns.push(self.advertised.finish(&zeros));
        }
        if c.has(icmp_column::MASK) {
            columns.push(self.mask.finish(&zeros, &a));
        }
        if c.has(icmp_column::INNER_SRC) {
            columns.push(self.inner_src.finish(&zeros, &a));
        }
        if c.has(icmp_column::INNER_DST) {
            columns.push(self.inner_dst.finish(&zeros, &a));
        }
        if c.has(icmp_column::INNER_PROTO) {
            columns.push(Arc::new(self.inner_proto.finish(&zeros)));
        }
        if c.has(icmp_column::INNER_SPORT) {
            columns.push(Arc::new(self.inner_sport.finish(&zeros)));
        }
        if c.has(icmp_column::INNER_DPORT) {
            columns.push(Arc::new(self.inner_dport.finish(&zeros)));
        }
        if c.has(icmp_column::TUNNEL) {
            columns.push(self.tunnel.finish(rows));
        }
        if c.has(icmp_column::OUTER_SRC) {
            columns.push(self.outer_src.finish(&zeros, &a));
        }
        if c.has(icmp_column::OUTER_DST) {
            columns.push(self.outer_dst.finish(&zeros, &a));
        }
        if c.has(icmp_column::TUNNEL_ID) {
            columns.push(Arc::new(self.tunnel_id.finish(&zeros)));
        }
        if c.has(icmp_column::TOS) {
            columns.push(Arc::new(self.tos.finish()));
        }
        if c.has(icmp_column::DF) {
            columns.push(Arc::new(arrow_array::BooleanArray::new(self.df.finish().values().clone(), v4.clone())));
        }
        if c.has(icmp_column::IP_ID) {
            columns.push(Arc::new(arrow_array::UInt16Array::new(self.ip_id.finish().values().clone(), v4)));
        }
        if c.has(icmp_column::INNER_TTL) {
            columns.push(Arc::new(self.inner_ttl.finish(&zeros)));
        }
        if c.has(icmp_column::QUOTED_LEN) {
            columns.push(Arc::new(self.quoted_len.finish(&zeros)));
        }
        if c.has(icmp_column::ND_TARGET) {
            columns.push(self.nd_target.finish(&zeros, &a));
        }
        if c.has(icmp_column::ND_FLAGS) {
            columns.push(Arc::new(self.nd_flags.finish(&zeros)));
        }
        if c.has(icmp_column::LLADDR) {
            columns.push(self.lladdr.finish(&zeros, &m));
        }
        if c.has(icmp_column::RA_MTU) {
            columns.push(Arc::new(self.ra_mtu.finish(&zeros)));
        }
        if c.has(icmp_column::ROUTES) {
            columns.push(self.routes.finish(&zeros));
        }
        if c.has(icmp_column::INNER_SEQ) {
            columns.push(Arc::new(self.inner_seq.finish(&zeros)));
        }
        if c.has(icmp_column::INNER_FLOW_SEEN) {
            columns.push(self.inner_flow_seen.finish(rows));
        }
        if c.has(icmp_column::SAMPLE_AGENT) {
            columns.push(self.sample_agent.finish(&zeros, &a));
        }
        if c.has(icmp_column::SAMPLE_RATE) {
            columns.push(Arc::new(self.sample_rate.finish(&zeros)));
        }
        let wanted: Vec<usize> = (0..icmp_column::COUNT).filter(|&i| c.has(i)).collect();
        // The indices are the schema's own.
        let schema = Arc::new(icmp_schema().project(&wanted).expect("icmp column indices in range"));
        batch(&schema, columns)
    }
}

/// The `file` column: the capture's name on every row (SPEC: String), as string views that all
/// point at one copy of the name, so polars takes it without a copy.
pub fn file_column(name: &str, rows: usize) -> ArrayRef {
    let mut builder = StringViewBuilder::with_capacity(rows);
    builder.try_append_value_n(name, rows).expect("a file name is shorter than 4 GiB");
    Arc::new(builder.finish())
}

pub fn fragments_schema() -> SchemaRef {
    let d = dict_type;
    Arc::new(Schema::new(vec![
        field("file", DataType::Utf8View, false),
        field("frame", DataType::UInt64, false),
        field("ts", ts_type(), false),
        field("ip_version", DataType::UInt8, false),
        field("src", d(), false),
        field("dst", d(), false),
        field("proto", DataType::UInt8, false),
        field("frag_id", DataType::UInt32, false),
        field("offset", DataType::UInt32, false),
        field("length", DataType::UInt32, false),
        field("more_fragments", DataType::Boolean, false),
        field("vlan", DataType::UInt16, true),
        field("tiny_first", DataType::Boolean, false),
        field("atomic", DataType::Boolean, false),
        field("tunnel", DataType::Utf8View, true),
    ]))
}

#[derive(Default)]
pub struct FragmentsTable {
    pub skip: bool,
    rows: usize,
    addrs: Interner<IpAddr>,
    frame: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    ip_version: UInt8Builder,
    src: KeyColumn<IpAddr>,
    dst: KeyColumn<IpAddr>,
    proto: UInt8Builder,
    frag_id: UInt32Builder,
    offset: UInt32Builder,
    length: UInt32Builder,
    more: BooleanBuilder,
    vlan: UInt16Builder,
    tiny_first: BooleanBuilder,
    atomic: BooleanBuilder,
    tunnel: PathColumn,
}

/// What a fragment row says beyond its header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentRow {
    pub proto: u8,
    pub id: u32,
    pub offset: u32,
    /// Payload bytes after the fragment header.
    pub length: usize,
    pub more: bool,
    /// A first fragment too short for the header of the protocol it carries.
    pub tiny_first: bool,
    /// An IPv6 atomic fragment (offset 0, M = 0).
    pub atomic: bool,
}

impl FragmentsTable {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn push(&mut self, at: Origin, link: &LinkFrame, ip: &IpPacket, frag: &FragmentRow, tunnel: &Tunnel) {
        if self.skip {
            return;
        }
        self.rows += 1;
        self.frame.append_value(at.frame);
        self.ts.append_value(at.ts_ns);
        self.ip_version.append_value(ip.version);
        self.src.push(&mut self.addrs, Some(ip.src));
        self.dst.push(&mut self.addrs, Some(ip.dst));
        self.proto.append_value(frag.proto);
        self.frag_id.append_value(frag.id);
        self.offset.append_value(frag.offset);
        // Bounded by the record size (256 KiB).
        self.length.append_value(u32::try_from(frag.length).unwrap_or(u32::MAX));
        self.more.append_value(frag.more);
        self.vlan.append_option(link.vlan);
        self.tiny_first.append_value(frag.tiny_first);
        self.atomic.append_value(frag.atomic);
        self.tunnel.push(self.rows - 1, tunnel.scope.path);
    }

    pub fn finish(&mut self, file: &str) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let a = self.addrs.take_values();
        batch(
            &fragments_schema(),
            vec![
                file_column(file, rows),
                Arc::new(self.frame.finish()),
                ts(&mut self.ts),
                Arc::new(self.ip_version.finish()),
                self.src.finish(&a),
                self.dst.finish(&a),
                Arc::new(self.proto.finish()),
                Arc::new(self.frag_id.finish()),
                Arc::new(self.offset.finish()),
                Arc::new(self.length.finish()),
                Arc::new(self.more.finish()),
                Arc::new(self.vlan.finish()),
                Arc::new(self.tiny_first.finish()),
                Arc::new(self.atomic.finish()),
                self.tunnel.finish(rows),
            ],
        )
    }
}

pub fn datagrams_schema() -> SchemaRef {
    let d = dict_type;
    Arc::new(Schema::new(vec![
        field("file", DataType::Utf8View, false),
        field("ip_version", DataType::UInt8, false),
        field("src", d(), false),
        field("dst", d(), false),
        field("proto", DataType::UInt8, false),
        field("frag_id", DataType::UInt32, false),
        field("first_frame", DataType::UInt64, false),
        field("last_frame", DataType::UInt64, false),
        field("first_ts", ts_type(), false),
        field("last_ts", ts_type(), false),
        field("fragments", DataType::UInt32, false),
        field("total_len", DataType::UInt32, false),
        field("complete", DataType::Boolean, false),
        field("overlap_bytes", DataType::UInt32, false),
        field("conflicting_overlap", DataType::Boolean, false),
        field("oversize", DataType::Boolean, false),
        field("evicted", DataType::Boolean, false),
        field("header_len", DataType::UInt32, false),
        field("timed_out", DataType::Boolean, false),
        field("tunnel", DataType::Utf8View, true),
    ]))
}

#[derive(Default)]
pub struct DatagramsTable {
    pub skip: bool,
    rows: usize,
    addrs: Interner<IpAddr>,
    ip_version: UInt8Builder,
    src: KeyColumn<IpAddr>,
    dst: KeyColumn<IpAddr>,
    proto: UInt8Builder,
    frag_id: UInt32Builder,
    first_frame: UInt64Builder,
    last_frame: UInt64Builder,
    first_ts: TimestampNanosecondBuilder,
    last_ts: TimestampNanosecondBuilder,
    fragments: UInt32Builder,
    total_len: UInt32Builder,
    complete: BooleanBuilder,
    overlap_bytes: UInt32Builder,
    conflicting: BooleanBuilder,
    oversize: BooleanBuilder,
    evicted: BooleanBuilder,
    header_len: UInt32Builder,
    timed_out: BooleanBuilder,
    tunnel: PathColumn,
}

impl DatagramsTable {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn push(&mut self, d: &DatagramRow) {
        if self.skip {
            return;
        }
        self.rows += 1;
        self.ip_version.append_value(d.key.version);
        self.src.push(&mut self.addrs, Some(d.key.src));
        self.dst.push(&mut self.addrs, Some(d.key.dst));
        self.proto.append_value(d.proto);
        self.frag_id.append_value(d.key.id);
        self.first_frame.append_value(d.first_frame);
        self.last_frame.append_value(d.last_frame);
        self.first_ts.append_value(d.first_ts);
        self.last_ts.append_value(d.last_ts);
        self.fragments.append_value(d.fragments);
        self.total_len.append_value(d.total_len);
        self.complete.append_value(d.complete);
        self.overlap_bytes.append_value(d.overlap_bytes);
        self.conflicting.append_value(d.conflicting_overlap);
        self.oversize.append_value(d.oversize());
        self.evicted.append_value(d.evicted);
        self.header_len.append_value(d.header_len);
        self.timed_out.append_value(d.timed_out);
        self.tunnel.push(self.rows - 1, d.key.tunnel.path);
    }

    pub fn finish(&mut self, file: &str) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let a = self.addrs.take_values();
        batch(
            &datagrams_schema(),
            vec![
                file_column(file, rows),
                Arc::new(self.ip_version.finish()),
                self.src.finish(&a),
                self.dst.finish(&a),
                Arc::new(self.proto.finish()),
                Arc::new(self.frag_id.finish()),
                Arc::new(self.first_frame.finish()),
                Arc::new(self.last_frame.finish()),
                ts(&mut self.first_ts),
                ts(&mut self.last_ts),
                Arc::new(self.fragments.finish()),
                Arc::new(self.total_len.finish()),
                Arc::new(self.complete.finish()),
                Arc::new(self.overlap_bytes.finish()),
                Arc::new(self.conflicting.finish()),
                Arc::new(self.oversize.finish()),
                Arc::new(self.evicted.finish()),
                Arc::new(self.header_len.finish()),
                Arc::new(self.timed_out.finish()),
                self.tunnel.finish(rows),
            ],
        )
    }
}

pub fn errors_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("file", DataType::Utf8View, false),
        field("frame", DataType::UInt64, true),
        field("offset", DataType::UInt64, false),
        field("kind", DataType::Utf8, false),
        field("reason", DataType::Utf8, false),
    ]))
}

#[derive(Default)]
pub struct ErrorsTable {
    pub skip: bool,
    rows: usize,
    frame: UInt64Builder,
    offset: UInt64Builder,
    kind: StringBuilder,
    reason: StringBuilder,
}

impl ErrorsTable {
    pub fn push(&mut self, frame: Option<u64>, offset: u64, error: &crate::error::DecodeError) {
        if self.skip {
            return;
        }
        self.rows += 1;
        self.frame.append_option(frame);
        self.offset.append_value(offset);
        self.kind.append_value(error.kind());
        // Written into the column, not into a String first: a capture can have a row per record
        // (a flood of fragments evicted from reassembly), and the String's growth and copy were
        // a fifth of reading one (callgrind, 200k distinct fragment ids).
        use std::fmt::Write;
        let _ = write!(self.reason, "{error}");
        self.reason.append_value("");
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn finish(&mut self, file: &str) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        batch(
            &errors_schema(),
            vec![
                file_column(file, rows),
                Arc::new(self.frame.finish()),
                Arc::new(self.offset.finish()),
                Arc::new(self.kind.finish()),
                Arc::new(self.reason.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;
    use arrow_array::cast::AsArray;

    #[test]
    fn error_rows_say_what_the_errors_display() {
        let errors = [
            DecodeError::Truncated { layer: "IPv4", need: 20, have: 3 },
            DecodeError::BadIpVersion(7),
            DecodeError::UnsupportedLinkType(147),
        ];
        let mut table = ErrorsTable::default();
        for (frame, error) in errors.iter().enumerate() {
            table.push(Some(frame as u64 + 1), 0, error);
        }
        let batch = table.finish("a.pcap");
        let reasons: Vec<&str> = batch.column(4).as_string::<i32>().iter().flatten().collect();
        assert_eq!(reasons, errors.iter().map(|e| e.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn icmp_column_positions_are_the_schemas() {
        let schema = icmp_schema();
        assert_eq!(schema.fields().len(), icmp_column::COUNT);
        for (name, at) in [
            ("payload_entropy", icmp_column::PAYLOAD_ENTROPY),
            ("payload_digest", icmp_column::PAYLOAD_DIGEST),
            ("router_lifetime", icmp_column::ROUTER_LIFETIME),
            ("advertised", icmp_column::ADVERTISED),
            ("mask", icmp_column::MASK),
            ("tunnel_id", icmp_column::TUNNEL_ID),
            ("tos", icmp_column::TOS),
            ("df", icmp_column::DF),
            ("ip_id", icmp_column::IP_ID),
            ("inner_ttl", icmp_column::INNER_TTL),
            ("quoted_len", icmp_column::QUOTED_LEN),
            ("nd_target", icmp_column::ND_TARGET),
            ("nd_flags", icmp_column::ND_FLAGS),
            ("lladdr", icmp_column::LLADDR),
            ("ra_mtu", icmp_column::RA_MTU),
            ("routes", icmp_column::ROUTES),
            ("inner_seq", icmp_column::INNER_SEQ),
            ("inner_flow_seen", icmp_column::INNER_FLOW_SEEN),
            ("sample_agent", icmp_column::SAMPLE_AGENT),
            ("sample_rate", icmp_column::SAMPLE_RATE),
        ] {
            assert_eq!(schema.index_of(name).ok(), Some(at), "{name}");
        }
    }
}
