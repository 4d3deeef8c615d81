//! Fragment reassembly with evidence: IPv4 and IPv6 fragments, and the pieces of two layers that
//! fragment below or above IP, as Wireshark reassembles them too: 6LoWPAN's FRAG1/FRAGN (RFC
//! 4944, the IPv6 datagram uncompressed) and CAPWAP data fragments (RFC 5415). One reassembler
//! holds them all, under one budget and cap; [`Layer`] in the key keeps them apart.
//!
//! Which frame completes a datagram follows Wireshark's `fragment_add_check` (reassemble.c), so
//! our reassembled datagrams are tshark's: the payload length is set by the first last fragment
//! (MF = 0) seen, later tails that disagree are ignored, and the datagram completes when the bytes
//! from offset 0 are contiguous up to that length. Fragments without payload, or not captured
//! whole, are evidence only: they count in the datagram's row but hold no bytes and set no length.
//!
//! Which bytes win an overlap: the fragment with the lowest offset, and of fragments at the same
//! offset the first to arrive. That is the "BSD" policy of target-based reassembly (FreeBSD's
//! `ip_reass`: an arriving fragment gives way to the one before it and trims the ones after it),
//! and also what Wireshark's reassembly produces, so the reassembled bytes equal tshark's.
//! Overlap facts (bytes, conflicting bytes) are recorded whatever the policy.
//!
//! Memory is bounded: a byte budget (fragment bytes plus a fixed cost per datagram and per run of
//! bytes held) and a cap on datagrams in flight; the datagram whose first fragment is oldest is
//! evicted (and reported) to make room. Timeouts run on capture time, from a datagram's first
//! fragment, as the kernels' `ipfrag_time`. Each fragment costs O(log runs + its length), amortised:
//! held bytes live in an ordered map of runs over a per-datagram arena, never rescanned whole.
use std::collections::{BTreeMap, HashMap, VecDeque};
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

/// Budget charged per datagram in flight besides its bytes: index entry, slot, queue entry and the
/// first node of its run map (about 600 bytes by bench/test_bench_reassembly.py, rounded up).
pub const DATAGRAM_COST: usize = 768;
/// Budget charged per run of held bytes (one map entry).
pub const RUN_COST: usize = 32;

/// What is fragmented: an IP datagram, or the pieces of a link or tunnel layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Layer {
    #[default]
    Ip,
    /// A 6LoWPAN datagram: `src`/`dst` hold the link addresses' interface identifiers (the mesh
    /// header's originator and final address when there is one) in their low 64 bits, `id` the
    /// datagram tag. Wireshark keys on those addresses and the tag, not on the datagram size.
    Lowpan,
    /// A CAPWAP data packet: `src`/`dst` are its carrier's addresses (not ports, as Wireshark's
    /// key), `id` the fragment id.
    Capwap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub layer: Layer,
    /// The IP version, which picks the timeout (6LoWPAN: 6, RFC 4944's 60 s; CAPWAP: its carrier's).
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 keys on the protocol too (RFC 791); IPv6 does not (0).
    pub proto: u8,
    pub id: u32,
    pub vlan_key: u32,
    /// The tunnel the datagram travelled in (empty outside tunnels).
    pub tunnel: crate::tunnel::Scope,
}

/// One fragment handed to the reassembler.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub frame: u64,
    pub ts_ns: i64,
    /// Offset of the fragment's payload in the datagram's payload, in bytes.
    pub offset: u32,
    /// Payload length the header declares.
    pub len: u32,
    pub more: bool,
    /// The payload when it was captured whole and is not empty (`len` bytes). Only such fragments
    /// take part in reassembly, as in Wireshark.
    pub data: Option<&'a [u8]>,
    /// Upper-layer protocol (IPv6: the fragment header's next header).
    pub proto: u8,
    /// IP header bytes in front of the fragmentable part (IPv6: without the fragment header); 0
    /// for the pieces of other layers, whose payload is the whole datagram.
    pub header_len: u32,
}

/// The `datagrams` table row of a datagram that completed, timed out, was evicted or was left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRow {
    pub key: Key,
    /// From the first fragment at offset 0 (RFC 8200: its next header), else the first seen.
    pub proto: u8,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub fragments: u32,
    pub header_len: u32,
    /// `header_len` plus the reassembled payload; while incomplete, plus the furthest payload byte
    /// any fragment declared. Offsets stop at 65528 and records at 256 KiB, so u32 holds it.
    pub total_len: u32,
    pub complete: bool,
    /// Bytes of arriving fragments that were already held (duplicates included).
    pub overlap_bytes: u32,
    pub conflicting_overlap: bool,
    pub timed_out: bool,
    pub evicted: bool,
}

impl DatagramRow {
    /// Larger than any IP datagram can be: the ping of death.
    pub fn oversize(&self) -> bool {
        self.total_len > 65535
    }
}

/// Payload bytes `start..end` (the map key is `start`) from the fragment at offset `origin`,
/// stored at `at` in the datagram's arena.
#[derive(Debug, Clone, Copy)]
struct Run {
    end: u32,
    origin: u32,
    at: usize,
}

struct Pending {
    row: DatagramRow,
    /// Creation order, to tell this datagram from an older one with the same key in the queues.
    serial: u64,
    /// Source of `row.proto`/`row.header_len`: 0 any fragment, 1 one at offset 0, 2 one at
    /// offset 0 whose bytes are held.
    header_rank: u8,
    runs: BTreeMap<u32, Run>,
    /// Append-only byte store of the runs; replaced bytes stay as garbage until compaction.
    arena: Vec<u8>,
    /// Arena bytes that runs still refer to.
    live: usize,
    /// Payload length, from the first last fragment holding bytes.
    end: Option<u32>,
    /// Bytes held below `end` (once known): the datagram is complete when this reaches `end`.
    below_end: u32,
    /// Furthest payload byte any fragment declared.
    reach: u32,
    cost: usize,
}

impl Pending {
    fn new(key: Key, serial: u64, piece: &Piece) -> Self {
        Pending {
            row: DatagramRow {
                key,
                proto: piece.proto,
                first_frame: piece.frame,
                last_frame: piece.frame,
                first_ts: piece.ts_ns,
                last_ts: piece.ts_ns,
                fragments: 0,
                header_len: piece.header_len,
                total_len: 0,
                complete: false,
                overlap_bytes: 0,
                conflicting_overlap: false,
                timed_out: false,
                evicted: false,
            },
            serial,
            header_rank: 0,
            runs: BTreeMap::new(),
            arena: Vec::new(),
            live: 0,
            end: None,
            below_end: 0,
            reach: 0,
            cost: DATAGRAM_COST,
        }
    }

    fn compute_cost(&self) -> usize {
        DATAGRAM_COST + self.arena.capacity() + self.runs.len() * RUN_COST
    }

    fn complete(&self) -> bool {
        self.end.is_some_and(|end| self.below_end >= end)
    }

    /// Bytes held below `limit`.
    fn held_below(&self, limit: u32) -> u32 {
        self.runs.range(..limit).map(|(&start, r)| r.end.min(limit) - start).sum()
    }

    /// Counts newly held bytes `from..to` towards completion.
    fn newly_held(&mut self, from: u32, to: u32) {
        if let Some(end) = self.end {
            self.below_end += to.min(end).saturating_sub(from);
        }
    }

    /// Stores `data[from - origin..to - origin]` as a run from the fragment at `origin`.
    fn push_run(&mut self, from: u32, to: u32, origin: u32, data: &[u8]) {
        let Some(bytes) = data.get((from - origin) as usize..(to - origin) as usize) else { return };
        if bytes.is_empty() {
            return;
        }
        let at = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.live += bytes.len();
        self.runs.insert(from, Run { end: to, origin, at });
    }

    /// Adds a fragment's bytes at `offset` (`offset + data.len()` fits u32: the caller checked).
    /// Held bytes from a fragment at a higher offset give way; the others stay. `scratch` is a
    /// reused buffer for the overlapped runs.
    fn insert(&mut self, offset: u32, data: &[u8], scratch: &mut Vec<(u32, Run)>) {
        let stop = offset + data.len() as u32;
        scratch.clear();
        if let Some((&start, run)) = self.runs.range(..offset).next_back() {
            if run.end > offset {
                scratch.push((start, *run));
            }
        }
        scratch.extend(self.runs.range(offset..stop).map(|(&s, r)| (s, *r)));
        let mut cursor = offset;
        // Start of the stretch of this fragment's bytes that will be stored.
        let mut taken_from = offset;
        for &(start, run) in scratch.iter() {
            let (a, b) = (start.max(offset), run.end.min(stop));
            self.newly_held(cursor, a);
            cursor = b;
            let held = self.arena.get(run.at + (a - start) as usize..run.at + (b - start) as usize);
            let arriving = data.get((a - offset) as usize..(b - offset) as usize);
            self.row.overlap_bytes = self.row.overlap_bytes.saturating_add(b - a);
            if held != arriving {
                self.row.conflicting_overlap = true;
            }
            if run.origin > offset {
                // This fragment starts first, so it wins; a run starts at or after its origin,
                // hence after `offset`: only its tail past this fragment survives.
                self.runs.remove(&start);
                if run.end > b {
                    self.runs.insert(b, Run { end: run.end, origin: run.origin, at: run.at + (b - start) as usize });
                }
                self.live -= (b - a) as usize;
            } else {
                self.push_run(taken_from, a, offset, data);
                taken_from = b;
            }
        }
        self.newly_held(cursor, stop);
        self.push_run(taken_from, stop, offset, data);
        if self.arena.len() > 2 * self.live + 4096 {
            self.compact();
        }
    }

    /// Drops replaced bytes from the arena (amortised: only once they outweigh the live ones).
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.live);
        for (&start, run) in self.runs.iter_mut() {
            let len = (run.end - start) as usize;
            if let Some(bytes) = self.arena.get(run.at..run.at + len) {
                run.at = arena.len();
                arena.extend_from_slice(bytes);
            }
        }
        self.arena = arena;
    }

    /// The payload, once complete: the runs below `end`, contiguous by then. When each lies in the
    /// arena where it lies in the payload (fragments in order, no overlap: the usual case), the
    /// arena is the payload and is handed over instead of copied.
    fn assemble(&mut self, end: u32) -> Vec<u8> {
        let in_place = self.runs.range(..end).all(|(&start, run)| run.at == start as usize);
        if in_place && self.arena.len() >= end as usize {
            let mut out = std::mem::take(&mut self.arena);
            out.truncate(end as usize);
            return out;
        }
        let mut out = Vec::with_capacity(end as usize);
        for (&start, run) in self.runs.range(..end) {
            let len = (run.end.min(end) - start) as usize;
            out.extend_from_slice(self.arena.get(run.at..run.at + len).unwrap_or_default());
        }
        out
    }
}

/// A completed datagram: its row, and its payload to decode.
pub struct Complete {
    pub row: DatagramRow,
    pub payload: Vec<u8>,
}

/// The bound that made room by evicting the oldest datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes,
    Datagrams,
}

/// How a datagram ended without completing.
#[derive(Clone, Copy)]
enum Ending {
    TimedOut,
    Evicted,
    EndOfCapture,
}

#[derive(Default)]
pub struct Reassembler {
    config: Config,
    /// Datagrams in flight: their slot in `slots`. aHash, keyed at random per map: fragment ids
    /// are the sender's to choose, so the hash must resist chosen collisions, and SipHash (std's)
    /// cost ~800 instructions a fragment on these keys (callgrind, mixed 200k).
    index: HashMap<Key, usize, ahash::RandomState>,
    /// The datagrams themselves, in reused slots, so that the queues refer to them without hashing.
    slots: Vec<Option<Pending>>,
    free: Vec<usize>,
    /// (first fragment's time, serial, slot) by arrival of the first fragment, one queue per IP
    /// version (their timeouts differ). Entries of datagrams that already ended are skipped, and
    /// swept once they outnumber the live ones.
    queues: [VecDeque<(i64, u64, usize)>; 2],
    serial: u64,
    bytes: usize,
    scratch: Vec<(u32, Run)>,
    /// Rows of datagrams that ended without completing (timed out, evicted, left at the end).
    pub finished: Vec<DatagramRow>,
    pub evictions: u64,
    pub timeouts: u64,
    /// Each eviction not yet drained by the caller: the bound hit and the evicted datagram's first frame.
    pub limit_hits: Vec<(Limit, u64)>,
}

fn queue_of(key: &Key) -> usize {
    usize::from(key.version == 6)
}

impl Reassembler {
    pub fn new(config: Config) -> Self {
        Reassembler { config, ..Default::default() }
    }

    pub fn in_flight(&self) -> usize {
        self.index.len()
    }

    /// Bytes charged to the budget: fragment bytes held plus the fixed costs.
    pub fn bytes_held(&self) -> usize {
        self.bytes
    }

    fn live(&self, serial: u64, slot: usize) -> bool {
        self.slots.get(slot).and_then(Option::as_ref).is_some_and(|p| p.serial == serial)
    }

    /// The oldest live entry of queue `q`, dropping ended ones on the way.
    fn front(&mut self, q: usize) -> Option<(i64, usize)> {
        while let Some(&(ts, serial, slot)) = self.queues[q].front() {
            if self.live(serial, slot) {
                return Some((ts, slot));
            }
            self.queues[q].pop_front();
        }
        None
    }

    /// Ends datagrams whose first fragment is older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: i64) {
        for (q, timeout) in [self.config.timeout_v4_ns, self.config.timeout_v6_ns].into_iter().enumerate() {
            while let Some((first_ts, slot)) = self.front(q) {
                if now.saturating_sub(first_ts) <= timeout {
                    break;
                }
                self.queues[q].pop_front();
                self.timeouts += 1;
                self.end(slot, Ending::TimedOut);
            }
        }
    }

    /// Takes the datagram out of its slot and the index.
    fn take(&mut self, slot: usize) -> Option<Pending> {
        let p = self.slots.get_mut(slot)?.take()?;
        self.index.remove(&p.row.key);
        self.free.push(slot);
        self.bytes -= p.cost;
        Some(p)
    }

    fn end(&mut self, slot: usize, how: Ending) {
        if let Some(p) = self.take(slot) {
            let mut row = p.row;
            row.timed_out = matches!(how, Ending::TimedOut);
            row.evicted = matches!(how, Ending::Evicted);
            self.finished.push(row);
        }
    }

    /// Evicts the datagram whose first fragment is oldest to stay within `limit`; false when none
    /// is left.
    fn evict_oldest(&mut self, limit: Limit) -> bool {
        let fronts = [self.front(0), self.front(1)];
        let oldest = match fronts {
            [Some(a), Some(b)] => usize::from(b.0 < a.0),
            [Some(_), None] => 0,
            [None, Some(_)] => 1,
            [None, None] => return false,
        };
        if let Some((_, _, slot)) = self.queues[oldest].pop_front() {
            self.evictions += 1;
            if let Some(p) = self.slots.get(slot).and_then(Option::as_ref) {
                self.limit_hits.push((limit, p.row.first_frame));
            }
            self.end(slot, Ending::Evicted);
        }
        true
    }

    /// Sweeps ended entries out of queue `q` once they outnumber the datagrams in flight.
    fn sweep(&mut self, q: usize) {
        if self.queues[q].len() > 2 * self.index.len() + 1024 {
            let mut queue = std::mem::take(&mut self.queues[q]);
            queue.retain(|&(_, serial, slot)| self.live(serial, slot));
            self.queues[q] = queue;
        }
    }

    /// The slot of the datagram `key`, a new one if it is not in flight.
    fn slot_for(&mut self, key: Key, piece: &Piece) -> usize {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        while self.index.len() >= self.config.max_datagrams && self.evict_oldest(Limit::Datagrams) {}
        self.serial += 1;
        let pending = Some(Pending::new(key, self.serial, piece));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = pending;
                slot
            }
            None => {
                self.slots.push(pending);
                self.slots.len() - 1
            }
        };
        self.index.insert(key, slot);
        let q = queue_of(&key);
        self.queues[q].push_back((piece.ts_ns, self.serial, slot));
        self.bytes += DATAGRAM_COST;
        self.sweep(q);
        slot
    }

    pub fn add(&mut self, key: Key, piece: Piece) -> Option<Complete> {
        self.expire(piece.ts_ns);
        let slot = self.slot_for(key, &piece);
        let scratch = &mut self.scratch;
        let p = self.slots.get_mut(slot)?.as_mut()?;
        p.row.fragments = p.row.fragments.saturating_add(1);
        p.row.last_frame = piece.frame;
        p.row.last_ts = piece.ts_ns;
        let rank = match (piece.offset, piece.data) {
            (0, Some(_)) => 2,
            (0, None) => 1,
            _ => 0,
        };
        if rank > p.header_rank {
            p.header_rank = rank;
            p.row.proto = piece.proto;
            p.row.header_len = piece.header_len;
        }
        let stop = piece.offset.saturating_add(piece.len);
        p.reach = p.reach.max(stop);
        // Empty pieces, and pieces whose end would not fit u32 (no header declares one), are
        // evidence only.
        let data = piece.data.filter(|d| {
            !d.is_empty() && u32::try_from(d.len()).is_ok_and(|n| piece.offset.checked_add(n).is_some())
        });
        if let Some(data) = data {
            if !piece.more && p.end.is_none() {
                p.end = Some(stop);
                p.below_end = p.held_below(stop);
            }
            p.insert(piece.offset, data, scratch);
        }
        let cost = p.compute_cost();
        self.bytes = self.bytes - p.cost + cost;
        p.cost = cost;
        let payload_len = if p.complete() { p.end.unwrap_or(0) } else { p.reach };
        p.row.total_len = p.row.header_len.saturating_add(payload_len);
        if p.complete() {
            let mut done = self.take(slot)?;
            let payload = done.assemble(done.end.unwrap_or(0));
            let mut row = done.row;
            row.complete = true;
            return Some(Complete { row, payload });
        }
        while self.bytes > self.config.max_bytes && self.evict_oldest(Limit::Bytes) {}
        None
    }

    /// Ends every datagram still in flight at the end of a capture whose last record is at `now`:
    /// those older than their timeout by then timed out, the others are left incomplete.
    pub fn finish(&mut self, now: Option<i64>) {
        if let Some(now) = now {
            self.expire(now);
        }
        let mut left: Vec<(u64, usize)> =
            self.slots.iter().enumerate().filter_map(|(i, p)| p.as_ref().map(|p| (p.serial, i))).collect();
        left.sort_unstable();
        for (_, slot) in left {
            self.end(slot, Ending::EndOfCapture);
        }
        self.queues = Default::default();
        self.slots = Vec::new();
        self.free = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key { layer: Layer::Ip, version: 4, src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap(), proto: 1, id: 7, vlan_key: 0, tunnel: Default::default() }
    }

    fn piece(frame: u64, offset: u32, more: bool, data: &[u8]) -> Piece<'_> {
        let len = data.len() as u32;
        Piece { frame, ts_ns: frame as i64, offset, len, more, data: Some(data), proto: 1, header_len: 20 }
    }

    #[test]
    fn reverse_order_with_conflicting_overlap() {
        let mut r = Reassembler::default();
        assert!(r.add(key(), piece(1, 16, false, &[3; 8])).is_none());
        assert!(r.add(key(), piece(2, 8, true, &[2; 16])).is_none()); // starts first: wins 16..24
        let done = r.add(key(), piece(3, 0, true, &[1; 8])).expect("complete");
        assert_eq!(done.payload, [[1; 8], [2; 8], [2; 8]].concat());
        assert_eq!(done.row.overlap_bytes, 8);
        assert!(done.row.conflicting_overlap);
        assert_eq!((done.row.total_len, done.row.fragments, done.row.last_frame), (44, 3, 3));
        assert_eq!(r.in_flight(), 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn payload_is_the_same_handed_over_in_place_or_copied() {
        let bytes: Vec<u8> = (0..40).collect();
        let [a, b, c] = [&bytes[..16], &bytes[16..32], &bytes[32..]];
        // In order, overlapping or not: the arena is the payload. Out of order: copied.
        let orders: [&[(u32, bool, &[u8])]; 4] = [
            &[(0, true, a), (16, true, b), (32, false, c)],
            &[(0, true, &bytes[..24]), (16, true, b), (32, false, c)],
            &[(32, false, c), (0, true, a), (16, true, b)],
            &[(16, true, b), (0, true, a), (32, false, c)],
        ];
        for order in orders {
            let mut r = Reassembler::default();
            let done = order.iter().enumerate().find_map(|(i, &(offset, more, data))| r.add(key(), piece(i as u64, offset, more, data)));
            assert_eq!(done.expect("complete").payload, bytes, "{order:?}");
        }
    }

    #[test]
    fn lowest_offset_wins_and_ties_keep_the_first() {
        let mut r = Reassembler::default();
        r.add(key(), piece(1, 0, true, &[1; 16]));
        r.add(key(), piece(2, 0, true, &[2; 24])); // same offset: keeps 0..16, adds 16..24
        r.add(key(), piece(3, 8, true, &[3; 24])); // higher offset: adds only 24..32
        let done = r.add(key(), piece(4, 32, false, &[4; 8])).expect("complete");
        assert_eq!(done.payload, [&[1u8; 16][..], &[2; 8], &[3; 8], &[4; 8]].concat());
        assert_eq!(done.row.overlap_bytes, 16 + 16);
        assert!(done.row.conflicting_overlap);
    }

    #[test]
    fn identical_duplicates_are_overlap_without_conflict() {
        let mut r = Reassembler::default();
        r.add(key(), piece(1, 0, true, &[1; 8]));
        r.add(key(), piece(2, 0, true, &[1; 8]));
        let done = r.add(key(), piece(3, 8, false, &[5; 3])).expect("complete");
        assert_eq!((done.row.overlap_bytes, done.row.conflicting_overlap, done.payload.len()), (8, false, 11));
    }

    #[test]
    fn first_tail_sets_the_length_and_later_tails_are_ignored() {
        let mut r = Reassembler::default();
        r.add(key(), piece(1, 8, false, &[2; 8])); // end 16
        r.add(key(), piece(2, 8, false, &[2; 16])); // a second tail claiming 24: ignored
        let done = r.add(key(), piece(3, 0, true, &[1; 8])).expect("complete at 16 bytes");
        assert_eq!((done.payload.len(), done.row.total_len), (16, 36));
    }

    #[test]
    fn evidence_only_pieces_hold_nothing_and_set_no_end() {
        let mut r = Reassembler::default();
        let truncated = Piece { data: None, ..piece(1, 8, false, &[0; 70000]) };
        assert!(r.add(key(), truncated).is_none());
        assert!(r.add(key(), piece(2, 0, true, &[1; 8])).is_none());
        r.finish(None);
        let row = &r.finished[0];
        assert_eq!((row.fragments, row.complete, row.total_len), (2, false, 20 + 8 + 70000));
        assert!(row.oversize());
    }

    #[test]
    fn layers_never_mix_and_share_the_bounds() {
        // The same addresses and id at three layers: three datagrams, one cap over them all.
        let mut r = Reassembler::new(Config { max_datagrams: 2, ..Config::default() });
        let at = |layer| Key { layer, ..key() };
        let whole = |frame, data| Piece { header_len: 0, ..piece(frame, 0, true, data) };
        assert!(r.add(at(Layer::Lowpan), whole(1, &[1; 8])).is_none());
        assert!(r.add(at(Layer::Capwap), whole(2, &[2; 8])).is_none());
        assert_eq!(r.in_flight(), 2);
        let done = r.add(at(Layer::Capwap), Piece { header_len: 0, ..piece(3, 8, false, &[3; 4]) }).expect("complete");
        assert_eq!((done.row.key.layer, done.payload, done.row.total_len), (Layer::Capwap, [[2u8; 8].as_slice(), &[3; 4]].concat(), 12));
        r.add(at(Layer::Ip), piece(4, 0, true, &[4; 8]));
        r.add(at(Layer::Capwap), whole(5, &[5; 8])); // a third in flight: the oldest (6LoWPAN) goes
        assert_eq!((r.evictions, r.finished[0].key.layer, r.in_flight()), (1, Layer::Lowpan, 2));
    }

    #[test]
    fn timeouts_are_per_version() {
        let mut r = Reassembler::default();
        let mut v6 = key();
        v6.version = 6;
        r.add(v6, piece(1, 0, true, &[0; 8]));
        let mut p = piece(2, 0, true, &[0; 8]);
        p.ts_ns = 1_000_000_000;
        r.add(key(), p); // IPv4, behind the IPv6 datagram in arrival
        let mut late = piece(3, 8, false, &[0; 8]);
        late.ts_ns = 32_000_000_000; // the IPv4 datagram is 31 s old, the IPv6 one 32 s
        assert!(r.add(key(), late).is_none());
        assert_eq!(r.timeouts, 1);
        assert!(r.finished[0].timed_out && r.finished[0].key.version == 4);
        r.finish(Some(62_000_000_001));
        assert_eq!(r.timeouts, 3); // the IPv6 datagram and the new IPv4 one, by the capture's end
    }

    #[test]
    fn budget_and_cap_evict_the_oldest() {
        let mut r = Reassembler::new(Config { max_bytes: 2 * DATAGRAM_COST + 64, ..Config::default() });
        r.add(key(), piece(1, 0, true, &[0; 8]));
        let mut k2 = key();
        k2.id = 8;
        r.add(k2, piece(2, 0, true, &[0; 64]));
        assert_eq!((r.evictions, r.finished.len(), r.in_flight()), (1, 1, 1));
        assert!(r.finished[0].evicted && r.finished[0].key.id == 7);
        assert!(r.bytes_held() <= 2 * DATAGRAM_COST + 64);

        let mut r = Reassembler::new(Config { max_datagrams: 2, ..Config::default() });
        for id in 0..5 {
            r.add(Key { id, ..key() }, piece(u64::from(id), 0, true, &[0; 8]));
        }
        assert_eq!((r.evictions, r.in_flight()), (3, 2));
    }

    #[test]
    fn queues_do_not_keep_completed_datagrams() {
        let mut r = Reassembler::default();
        for id in 0..100_000u32 {
            r.add(Key { id, ..key() }, piece(1, 0, true, &[0; 8]));
            assert!(r.add(Key { id, ..key() }, piece(2, 8, false, &[0; 8])).is_some());
        }
        assert!(r.queues[0].len() <= 1024 + 2);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn hostile_overlaps_stay_linear_and_compact() {
        // Many tiny fragments, each at a lower offset than the last, over one large run: each
        // one replaces a prefix of what is held.
        let mut r = Reassembler::new(Config { max_bytes: usize::MAX, ..Config::default() });
        let big = vec![9u8; 60_000];
        r.add(key(), piece(1, 8000 * 8, true, &big));
        for (i, off) in (0..8000u32).rev().enumerate() {
            r.add(key(), piece(2 + i as u64, off * 8, true, &[1; 16]));
        }
        let p = r.slots[r.index[&key()]].as_ref().unwrap();
        assert!(p.arena.len() <= 2 * p.live + 4096);
        assert_eq!(p.live, 8000 * 8 + 60_000);
        let done = r.add(key(), piece(9000, 8000 * 8 + 60_000, false, &[2; 8])).expect("complete");
        assert_eq!(done.payload.len(), 8000 * 8 + 60_008);
        assert_eq!(&done.payload[..16], &[1; 16]);
        assert_eq!(done.payload[8000 * 8], 1); // the last tiny fragment started before the big run
        assert_eq!(done.payload[8000 * 8 + 8], 9);
    }
}
