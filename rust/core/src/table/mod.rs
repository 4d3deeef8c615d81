//! Arrow tables: one builder per table of SPEC "Tables", filled row by row, finished into
//! `RecordBatch`es. Addresses, MACs and file names are dictionary-encoded (polars Categorical).
pub mod columns;

use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
    UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};

use columns::{dict_type, field, ts_type, Interner, KeyColumn};

use crate::icmp::IcmpMessage;
use crate::ip::IpPacket;
use crate::link::LinkFrame;
use crate::reassembly::DatagramRow;
use crate::tunnel::{Path, Tunnel};

/// A MAC address printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

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
struct PathColumn {
    /// (row, path) of the tunnelled rows, in row order.
    tunnelled: Vec<(usize, Path)>,
}

impl PathColumn {
    fn push(&mut self, row: usize, path: Path) {
        if !path.is_empty() {
            self.tunnelled.push((row, path));
        }
    }

    fn finish(&mut self, rows: usize) -> ArrayRef {
        let tunnelled = std::mem::take(&mut self.tunnelled);
        if tunnelled.is_empty() {
            return Arc::new(arrow_array::StringArray::new_null(rows));
        }
        let mut values = StringBuilder::with_capacity(rows, tunnelled.len() * 8);
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
        field("file", d(), false),
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
        field("datagram_len", DataType::UInt32, false),
        field("reassembled", DataType::Boolean, false),
        field("gateway", d(), true),
        field("mtu", DataType::UInt32, true),
        field("router_lifetime", DataType::UInt16, true),
        field("mask", d(), true),
        field("inner_src", d(), true),
        field("inner_dst", d(), true),
        field("inner_proto", DataType::UInt8, true),
        field("inner_sport", DataType::UInt16, true),
        field("inner_dport", DataType::UInt16, true),
        field("tunnel", DataType::Utf8, true),
        field("outer_src", d(), true),
        field("outer_dst", d(), true),
        field("tunnel_id", DataType::UInt32, true),
    ]))
}

/// Where a row came from: file and frame number, and the frame's time.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub frame: u64,
    pub ts_ns: i64,
}

#[derive(Default)]
pub struct IcmpTable {
    /// Set by a scan of another table: rows are counted nowhere and built not at all.
    pub skip: bool,
    rows: usize,
    addrs: Interner<IpAddr>,
    macs: Interner<Mac>,
    frame: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    ip_version: UInt8Builder,
    src: KeyColumn<IpAddr>,
    dst: KeyColumn<IpAddr>,
    ttl: UInt8Builder,
    vlan: UInt16Builder,
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
    datagram_len: UInt32Builder,
    reassembled: BooleanBuilder,
    gateway: KeyColumn<IpAddr>,
    mtu: UInt32Builder,
    router_lifetime: UInt16Builder,
    mask: KeyColumn<IpAddr>,
    inner_src: KeyColumn<IpAddr>,
    inner_dst: KeyColumn<IpAddr>,
    inner_proto: UInt8Builder,
    inner_sport: UInt16Builder,
    inner_dport: UInt16Builder,
    tunnel: PathColumn,
    outer_src: KeyColumn<IpAddr>,
    outer_dst: KeyColumn<IpAddr>,
    tunnel_id: UInt32Builder,
}

impl IcmpTable {
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
        self.rows += 1;
        self.frame.append_value(at.frame);
        self.ts.append_value(at.ts_ns);
        self.ip_version.append_value(ip.version);
        self.src.push(&mut self.addrs, Some(ip.src));
        self.dst.push(&mut self.addrs, Some(ip.dst));
        self.ttl.append_value(ip.ttl);
        self.vlan.append_option(link.vlan);
        self.src_mac.push(&mut self.macs, link.src_mac.map(Mac));
        self.dst_mac.push(&mut self.macs, link.dst_mac.map(Mac));
        self.icmp_type.append_value(m.icmp_type);
        self.icmp_code.append_value(m.code);
        self.checksum_ok.append_value(m.checksum_ok);
        self.checksum.append_option(m.checksum);
        self.icmp_id.append_option(m.id);
        self.icmp_seq.append_option(m.seq);
        self.payload_len.append_value(m.payload_len);
        self.payload_entropy.append_option(m.payload_entropy);
        self.datagram_len.append_value(u32::try_from(ip.datagram_len()).unwrap_or(u32::MAX));
        self.reassembled.append_value(reassembled);
        self.gateway.push(&mut self.addrs, m.gateway);
        self.mtu.append_option(m.mtu);
        self.router_lifetime.append_option(m.router_lifetime);
        self.mask.push(&mut self.addrs, m.mask.map(IpAddr::V4));
        let q = m.inner.unwrap_or_default();
        self.inner_src.push(&mut self.addrs, q.src);
        self.inner_dst.push(&mut self.addrs, q.dst);
        self.inner_proto.append_option(q.proto);
        self.inner_sport.append_option(q.sport);
        self.inner_dport.append_option(q.dport);
        // A message tunnelled at the link level only (MPLS, PPPoE) has its own header outermost.
        let outer = tunnel.is_tunnelled().then(|| tunnel.outer.unwrap_or((ip.src, ip.dst)));
        self.tunnel.push(self.rows - 1, tunnel.scope.path);
        self.outer_src.push(&mut self.addrs, outer.map(|o| o.0));
        self.outer_dst.push(&mut self.addrs, outer.map(|o| o.1));
        self.tunnel_id.append_option(tunnel.id);
    }

    /// The rows so far as a batch; the builder starts again empty (the dictionaries stay).
    pub fn finish(&mut self, file: &ArrayRef) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let a = self.addrs.take_values();
        let m = self.macs.take_values();
        let tunnel = self.tunnel.finish(rows);
        batch(
            &icmp_schema(),
            vec![
                file_column(file, rows),
                Arc::new(self.frame.finish()),
                ts(&mut self.ts),
                Arc::new(self.ip_version.finish()),
                self.src.finish(&a),
                self.dst.finish(&a),
                Arc::new(self.ttl.finish()),
                Arc::new(self.vlan.finish()),
                self.src_mac.finish(&m),
                self.dst_mac.finish(&m),
                Arc::new(self.icmp_type.finish()),
                Arc::new(self.icmp_code.finish()),
                Arc::new(self.checksum_ok.finish()),
                Arc::new(self.checksum.finish()),
                Arc::new(self.icmp_id.finish()),
                Arc::new(self.icmp_seq.finish()),
                Arc::new(self.payload_len.finish()),
                Arc::new(self.payload_entropy.finish()),
                Arc::new(self.datagram_len.finish()),
                Arc::new(self.reassembled.finish()),
                self.gateway.finish(&a),
                Arc::new(self.mtu.finish()),
                Arc::new(self.router_lifetime.finish()),
                self.mask.finish(&a),
                self.inner_src.finish(&a),
                self.inner_dst.finish(&a),
                Arc::new(self.inner_proto.finish()),
                Arc::new(self.inner_sport.finish()),
                Arc::new(self.inner_dport.finish()),
                tunnel,
                self.outer_src.finish(&a),
                self.outer_dst.finish(&a),
                Arc::new(self.tunnel_id.finish()),
            ],
        )
    }
}

/// The `file` column: one dictionary value repeated, so it costs 4 bytes a row.
pub fn file_dictionary(name: &str) -> ArrayRef {
    Arc::new(arrow_array::StringArray::from(vec![name]))
}

fn file_column(values: &ArrayRef, rows: usize) -> ArrayRef {
    let keys = arrow_array::UInt32Array::from(vec![0u32; rows]);
    Arc::new(
        arrow_array::DictionaryArray::<arrow_array::types::UInt32Type>::try_new(keys, values.clone())
            .expect("one file value"),
    )
}

pub fn fragments_schema() -> SchemaRef {
    let d = dict_type;
    Arc::new(Schema::new(vec![
        field("file", d(), false),
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
        field("tunnel", DataType::Utf8, true),
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

    pub fn finish(&mut self, file: &ArrayRef) -> RecordBatch {
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
        field("file", d(), false),
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
        field("tunnel", DataType::Utf8, true),
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

    pub fn finish(&mut self, file: &ArrayRef) -> RecordBatch {
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
        field("file", dict_type(), false),
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
        self.reason.append_value(error.to_string());
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn finish(&mut self, file: &ArrayRef) -> RecordBatch {
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
