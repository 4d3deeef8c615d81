//! IPv4 and IPv6 fragment reassembly with evidence.
//!
//! Overlap policy: the bytes that arrived first win (the "first" policy of target-based
//! reassembly, as Windows and Solaris behave); overlap facts are recorded whatever the policy.
//! Memory is bounded: bytes held and datagrams in flight have caps, and the oldest datagram is
//! evicted (and reported) to make room. Timeouts run on capture time, not wall time.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub timeout_v4_ns: i64,
    pub timeout_v6_ns: i64,
    pub max_bytes: usize,
    pub max_datagrams: usize,
}

impl Default for Config {
    fn default() -> Self {
        // The Linux defaults (ipfrag_time 30 s, ip6frag_time 60 s).
        Config { timeout_v4_ns: 30_000_000_000, timeout_v6_ns: 60_000_000_000, max_bytes: 32 << 20, max_datagrams: 65536 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 keys on the protocol too (RFC 791); IPv6 does not (0).
    pub proto: u8,
    pub id: u32,
    pub vlan_key: u32,
}

/// One fragment handed to the reassembler.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub frame: u64,
    pub ts_ns: i64,
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
    /// Upper-layer protocol of the datagram.
    pub proto: u8,
    /// IP header bytes in front of the fragmentable part (of this fragment).
    pub header_len: usize,
}

/// The `datagrams` table row of a datagram that completed, timed out, was evicted or was left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRow {
    pub key: Key,
    pub proto: u8,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub fragments: u32,
    /// IP header plus reassembled payload (the end of the furthest fragment when incomplete).
    pub total_len: u64,
    pub complete: bool,
    pub overlap_bytes: u32,
    pub conflicting_overlap: bool,
    pub evicted: bool,
}

struct Pending {
    row: DatagramRow,
    header_len: usize,
    /// Non-overlapping byte ranges held, sorted by offset.
    held: Vec<(u32, Vec<u8>)>,
    /// Payload length, known once the last fragment (MF = 0) arrives.
    end: Option<u64>,
    bytes: usize,
}

impl Pending {
    fn covered(&self) -> bool {
        let Some(end) = self.end else { return false };
        let mut next = 0u64;
        for (off, data) in &self.held {
            if u64::from(*off) > next {
                return false;
            }
            next = next.max(u64::from(*off) + data.len() as u64);
        }
        next >= end
    }

    /// Adds the bytes of `piece` not already held, recording overlaps. Returns bytes added.
    fn insert(&mut self, offset: u32, data: &[u8]) -> usize {
        let start = u64::from(offset);
        let stop = start + data.len() as u64;
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        let mut cursor = start;
        for (off, held) in &self.held {
            let (h0, h1) = (u64::from(*off), u64::from(*off) + held.len() as u64);
            if h1 <= start || h0 >= stop {
                continue;
            }
            let (o0, o1) = (h0.max(start), h1.min(stop));
            self.row.overlap_bytes = self.row.overlap_bytes.saturating_add((o1 - o0) as u32);
            let ours = &data[(o0 - start) as usize..(o1 - start) as usize];
            let theirs = &held[(o0 - h0) as usize..(o1 - h0) as usize];
            if ours != theirs {
                self.row.conflicting_overlap = true;
            }
            if h0 > cursor {
                gaps.push((cursor, h0));
            }
            cursor = cursor.max(h1);
        }
        if cursor < stop {
            gaps.push((cursor, stop));
        }
        let mut added = 0;
        for (g0, g1) in gaps {
            let bytes = data[(g0 - start) as usize..(g1 - start) as usize].to_vec();
            added += bytes.len();
            // Offsets fit u32: they come from a 13-bit (v4) or 16-bit (v6) field times 8, plus a length.
            let at = self.held.partition_point(|(o, _)| u64::from(*o) < g0);
            self.held.insert(at, (g0 as u32, bytes));
        }
        added
    }

    fn assemble(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.end.unwrap_or(0) as usize);
        for (_, data) in &self.held {
            out.extend_from_slice(data);
        }
        out
    }
}

/// A completed datagram: its row, and its payload to decode.
pub struct Complete {
    pub row: DatagramRow,
    pub header_len: usize,
    pub payload: Vec<u8>,
}

/// The bound that made room by evicting the oldest datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes,
    Datagrams,
}

#[derive(Default)]
pub struct Reassembler {
    config: Config,
    pending: HashMap<Key, Pending>,
    /// Arrival order of datagrams, for timeouts and eviction (stale entries are skipped).
    order: VecDeque<(i64, u64, Key)>,
    bytes: usize,
    /// Rows of datagrams that ended without completing (timed out, evicted).
    pub finished: Vec<DatagramRow>,
    pub evictions: u64,
    pub timeouts: u64,
    /// Each eviction not yet drained by the caller: the bound hit and the evicted datagram's first frame.
    pub limit_hits: Vec<(Limit, u64)>,
}

impl Reassembler {
    pub fn new(config: Config) -> Self {
        Reassembler { config, ..Default::default() }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub fn bytes_held(&self) -> usize {
        self.bytes
    }

    fn timeout(&self, key: &Key) -> i64 {
        if key.version == 4 { self.config.timeout_v4_ns } else { self.config.timeout_v6_ns }
    }

    /// Ends datagrams whose first fragment is older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: i64) {
        while let Some(&(first_ts, first_frame, key)) = self.order.front() {
            let live = self.pending.get(&key).is_some_and(|p| p.row.first_frame == first_frame);
            if live && now.saturating_sub(first_ts) <= self.timeout(&key) {
                break;
            }
            self.order.pop_front();
            if live {
                self.timeouts += 1;
                self.end(&key, false);
            }
        }
    }

    fn end(&mut self, key: &Key, evicted: bool) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.bytes;
            let mut row = p.row;
            row.evicted = evicted;
            self.finished.push(row);
        }
    }

    fn evict_oldest(&mut self, limit: Limit) -> bool {
        while let Some((_, first_frame, key)) = self.order.pop_front() {
            if self.pending.get(&key).is_some_and(|p| p.row.first_frame == first_frame) {
                self.evictions += 1;
                self.limit_hits.push((limit, first_frame));
                self.end(&key, true);
                return true;
            }
        }
        false
    }

    /// A completed datagram leaves its entry in `order` until it reaches the front, which an
    /// older datagram that never completes can hold off indefinitely (up to the timeout, and
    /// forever when capture time stands still). Dropping them once they outnumber the live
    /// entries keeps `order` within twice the datagrams in flight, at amortized constant cost.
    fn drop_stale_order(&mut self) {
        if self.order.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.order.retain(|(_, first_frame, key)| pending.get(key).is_some_and(|p| p.row.first_frame == *first_frame));
        }
    }

    pub fn add(&mut self, key: Key, piece: Piece) -> Option<Complete> {
        self.expire(piece.ts_ns);
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.config.max_datagrams && self.evict_oldest(Limit::Datagrams) {}
            self.order.push_back((piece.ts_ns, piece.frame, key));
            self.pending.insert(
                key,
                Pending {
                    row: DatagramRow {
                        key,
                        proto: piece.proto,
                        first_frame: piece.frame,
                        last_frame: piece.frame,
                        first_ts: piece.ts_ns,
                        last_ts: piece.ts_ns,
                        fragments: 0,
                        total_len: 0,
                        complete: false,
                        overlap_bytes: 0,
                        conflicting_overlap: false,
                        evicted: false,
                    },
                    header_len: piece.header_len,
                    held: Vec::new(),
                    end: None,
                    bytes: 0,
                },
            );
        }
        let p = self.pending.get_mut(&key)?;
        p.row.fragments = p.row.fragments.saturating_add(1);
        p.row.last_frame = piece.frame;
        p.row.last_ts = piece.ts_ns;
        let stop = u64::from(piece.offset) + piece.data.len() as u64;
        if piece.offset == 0 {
            p.header_len = piece.header_len;
            p.row.proto = piece.proto;
        }
        if !piece.more && p.end.is_none() {
            p.end = Some(stop);
        }
        let added = p.insert(piece.offset, piece.data);
        p.bytes += added;
        let end = p.end.unwrap_or(0).max(stop);
        p.row.total_len = p.row.total_len.max(p.header_len as u64 + end);
        self.bytes += added;
        if p.covered() {
            let mut done = self.pending.remove(&key)?;
            self.bytes -= done.bytes;
            let payload_len = done.end.unwrap_or(0) as usize;
            let mut payload = done.assemble();
            payload.truncate(payload_len);
            done.row.complete = true;
            done.row.total_len = (done.header_len + payload_len) as u64;
            self.drop_stale_order();
            return Some(Complete { row: done.row, header_len: done.header_len, payload });
        }
        while self.bytes > self.config.max_bytes && self.evict_oldest(Limit::Bytes) {}
        None
    }

    /// Ends every datagram still in flight (end of file).
    pub fn finish(&mut self) {
        let keys: Vec<Key> = self.order.drain(..).map(|(_, _, k)| k).collect();
        for key in keys {
            self.end(&key, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key { version: 4, src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap(), proto: 1, id: 7, vlan_key: 0 }
    }

    fn piece(frame: u64, offset: u32, more: bool, data: &[u8]) -> Piece<'_> {
        Piece { frame, ts_ns: frame as i64, offset, more, data, proto: 1, header_len: 20 }
    }

    #[test]
    fn reverse_order_with_conflicting_overlap() {
        let mut r = Reassembler::default();
        assert!(r.add(key(), piece(1, 16, false, &[3; 8])).is_none());
        assert!(r.add(key(), piece(2, 8, true, &[2; 16])).is_none()); // overlaps 16..24 with 3s
        let done = r.add(key(), piece(3, 0, true, &[1; 8])).expect("complete");
        assert_eq!(done.payload.len(), 24);
        assert_eq!(&done.payload[16..], &[3; 8]); // first arrival wins
        assert_eq!(done.row.overlap_bytes, 8);
        assert!(done.row.conflicting_overlap);
        assert_eq!(done.row.total_len, 44);
        assert_eq!(r.in_flight(), 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn completed_datagrams_leave_no_trace_behind_a_stuck_one() {
        // One datagram that never completes, then many that do, all at the same capture time:
        // the arrival order must not keep an entry per completed datagram.
        let mut r = Reassembler::default();
        r.add(key(), piece(1, 0, true, &[0; 8]));
        for id in 0..10_000u32 {
            let k = Key { id: id + 100, ..key() };
            let mut first = piece(2, 0, true, &[0; 8]);
            first.ts_ns = 1;
            let mut last = piece(3, 8, false, &[0; 8]);
            last.ts_ns = 1;
            assert!(r.add(k, first).is_none());
            assert!(r.add(k, last).is_some());
        }
        assert_eq!(r.in_flight(), 1);
        assert!(r.order.len() <= 2 * r.in_flight() + 64, "{} entries", r.order.len());
    }

    #[test]
    fn timeout_and_budget_evict() {
        let mut r = Reassembler::new(Config { max_bytes: 16, ..Config::default() });
        r.add(key(), piece(1, 0, true, &[0; 8]));
        let mut k2 = key();
        k2.id = 8;
        r.add(k2, piece(2, 0, true, &[0; 16]));
        assert_eq!(r.evictions, 1);
        assert_eq!(r.finished.len(), 1);
        assert!(r.finished[0].evicted);
        let mut late = piece(3, 8, false, &[0; 8]);
        late.ts_ns = 31_000_000_003;
        r.add(key(), late);
        assert_eq!(r.timeouts, 1);
    }
}
