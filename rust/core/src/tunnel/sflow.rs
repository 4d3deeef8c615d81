//! sFlow v5 datagrams (UDP 6343): a header naming the agent, then samples. Flow samples (format
//! 1) and expanded flow samples (format 3) hold flow records; a raw packet header record (format
//! 1) holds the first bytes of a sampled packet (Ethernet, IPv4 or IPv6), each opened as a packet
//! of its own. Counter samples and other records are skipped by their lengths.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Bytes, Inner, ETHERNET};
use crate::error::DecodeError;
use crate::wire::{u32_at, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

pub const PORT: u16 = 6343;

const VERSION: u32 = 5;
const FLOW_SAMPLE: u32 = 1;
const EXPANDED_FLOW_SAMPLE: u32 = 3;
const RAW_HEADER: u32 = 1;
const HEADER_ETHERNET: u32 = 1;
const HEADER_IPV4: u32 = 11;
const HEADER_IPV6: u32 = 12;

/// Who sampled a packet, and one in how many it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub agent: IpAddr,
    pub rate: u32,
}

/// A sampled packet's header bytes (its wire length the original frame's, less what the agent
/// stripped) and what they start with.
#[derive(Debug, Clone, Copy)]
pub struct Sampled<'a> {
    pub sample: Sample,
    pub inner: Inner<'a>,
}

/// The sampled packets of one datagram, in order; after an error (a sample cut short) nothing.
pub struct Samples<'a> {
    agent: IpAddr,
    /// The samples not yet walked, and how many the header says are left.
    rest: &'a [u8],
    samples_left: u32,
    /// The flow records of the sample being walked.
    records: &'a [u8],
    records_left: u32,
    rate: u32,
}

/// The samples of an sFlow datagram: `Ok(None)` when it is not sFlow v5, an error when its
/// header is cut. Sampled headers are whole in the datagram: a datagram cut by the capture
/// gives errors for the samples it cut.
pub fn samples(b: Bytes) -> Result<Option<Samples>, DecodeError> {
    let d = b.data;
    let Some(h) = b.header("sFlow", 8)? else { return Ok(None) };
    if u32_at(h, 0) != VERSION {
        return Ok(None);
    }
    let (agent, at) = match u32_at(h, 4) {
        1 => match b.header("sFlow", 28)? {
            Some(h) => (IpAddr::V4(Ipv4Addr::from(u32_at(h, 8))), 12),
            None => return Ok(None),
        },
        2 => match b.header("sFlow", 40)? {
            Some(h) => (IpAddr::V6(Ipv6Addr::from(h.get(8..24).and_then(|a| <[u8; 16]>::try_from(a).ok()).unwrap_or_default())), 24),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    // Sub agent, sequence, uptime, then the sample count.
    let samples_left = u32_at(d, at + 12);
    Ok(Some(Samples { agent, rest: d.get(at + 16..).unwrap_or_default(), samples_left, records: &[], records_left: 0, rate: 0 }))
}

/// `n` bytes at the front of `b` and what follows, or the error of a cut `layer`.
fn take<'a>(b: &'a [u8], n: usize, layer: &'static str) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    match (b.get(..n), b.get(n..)) {
        (Some(head), Some(rest)) => Ok((head, rest)),
        _ => Err(DecodeError::Truncated { layer, need: n, have: b.len() }),
    }
}

/// Rounded up to XDR's four bytes.
fn padded(n: usize) -> usize {
    n.saturating_add(3) & !3
}

impl<'a> Samples<'a> {
    /// The next raw packet header, `Ok(None)` once all are walked.
    fn next_header(&mut self) -> Result<Option<Sampled<'a>>, DecodeError> {
        loop {
            while self.records_left > 0 {
                self.records_left -= 1;
                let (h, rest) = take(self.records, 8, "sFlow flow record")?;
                let (record, rest) = take(rest, padded(u32_at(h, 4) as usize), "sFlow flow record")?;
                self.records = rest;
                if u32_at(h, 0) != RAW_HEADER {
                    continue;
                }
                let (h, header) = take(record, 16, "sFlow raw packet header")?;
                let (header, _) = take(header, u32_at(h, 12) as usize, "sFlow raw packet header")?;
                let ethertype = match u32_at(h, 0) {
                    HEADER_ETHERNET => ETHERNET,
                    HEADER_IPV4 => ETHERTYPE_IPV4,
                    HEADER_IPV6 => ETHERTYPE_IPV6,
                    _ => continue,
                };
                let wire_len = (u32_at(h, 4) as usize).saturating_sub(u32_at(h, 8) as usize);
                let sample = Sample { agent: self.agent, rate: self.rate };
                return Ok(Some(Sampled { sample, inner: Inner { ethertype, bytes: Bytes::new(header, wire_len) } }));
            }
            if self.samples_left == 0 {
                return Ok(None);
            }
            self.samples_left -= 1;
            let (h, rest) = take(self.rest, 8, "sFlow sample")?;
            let (sample, rest) = take(rest, padded(u32_at(h, 4) as usize), "sFlow sample")?;
            self.rest = rest;
            // Enterprise 0's flow samples; the rate and record count sit where the format puts them.
            let (rate_at, head) = match u32_at(h, 0) {
                FLOW_SAMPLE => (8, 32),
                EXPANDED_FLOW_SAMPLE => (12, 44),
                _ => continue,
            };
            let (fields, records) = take(sample, head, "sFlow flow sample")?;
            self.rate = u32_at(fields, rate_at);
            self.records_left = u32_at(fields, head - 4);
            self.records = records;
        }
    }
}

impl<'a> Iterator for Samples<'a> {
    type Item = Result<Sampled<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_header().transpose();
        if matches!(next, Some(Err(_))) {
            (self.samples_left, self.records_left) = (0, 0);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram from agent 10.0.0.9 of a counter sample, then a flow sample of rate 100 with
    /// a non-header record and a 2-byte IPv4 header of a 60-byte packet (4 stripped).
    fn datagram() -> Vec<u8> {
        let words = |w: &[u32]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let mut d = words(&[5, 1, 0x0a00_0009, 0, 1, 1000, 2]);
        d.extend(words(&[2, 4, 0]));
        let mut sample = words(&[1, 0, 100, 100, 0, 1, 2, 2, 1001, 0, 1, 20, 11, 60, 4, 2]);
        sample.extend([0x45, 0, 0, 0]);
        d.extend(words(&[1, sample.len() as u32]));
        d.extend(sample);
        d
    }

    #[test]
    fn raw_headers_of_flow_samples() {
        let d = datagram();
        let all: Vec<_> = samples(Bytes::new(&d, d.len())).unwrap().unwrap().collect();
        let [Ok(s)] = &all[..] else { panic!("{all:?}") };
        assert_eq!(s.sample, Sample { agent: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), rate: 100 });
        assert_eq!((s.inner.ethertype, s.inner.bytes.data, s.inner.bytes.wire_len()), (ETHERTYPE_IPV4, &[0x45u8, 0][..], 56));
    }

    #[test]
    fn cut_samples_are_errors_and_other_versions_are_not_sflow() {
        let d = datagram();
        for keep in 0..d.len() {
            match samples(Bytes::new(&d[..keep], d.len())) {
                Ok(Some(s)) => assert!(s.last().is_some_and(|r| r.is_err()), "{keep}"),
                Ok(None) => panic!("{keep}"),
                Err(e) => assert!(matches!(e, DecodeError::Truncated { layer: "sFlow", .. }), "{keep}"),
            }
        }
        let mut v4 = datagram();
        v4[3] = 4;
        assert!(samples(Bytes::new(&v4, v4.len())).unwrap().is_none());
    }
}
