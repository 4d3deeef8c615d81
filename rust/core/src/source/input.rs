//! A buffered byte stream over a capture's bytes (a file, a stream), optionally gzip or zstd compressed (detected by magic).
//! Records are handed out as slices of the internal buffer: one copy from the kernel (or the
//! decompressor) into the buffer, none after.
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use super::location::{LocalFile, Location};
use crate::error::{CaptureError, DecodeError};

/// Reads from files go 1 MiB at a time.
const CHUNK: usize = 1 << 20;
/// In-memory streams start small: the fuzzers allocate one per input, and a small buffer
/// exercises the refill and growth paths with small inputs.
const SMALL_CHUNK: usize = 4096;

/// The decompression ratio is checked only past this many output bytes: a small capture of a few
/// zero-filled frames inflates beyond any ratio without being a bomb.
pub const RATIO_GRACE: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Fewer bytes than asked for were left in the stream.
#[derive(Debug)]
pub enum Short {
    /// The stream ended where it may end, with `have` bytes left (now consumed).
    Eof { have: usize },
    /// The stream ended before its end marker (a compressed stream cut short), with `have` bytes
    /// left (now consumed): a cut even where `have` is 0.
    Cut { have: usize },
    Io(io::Error),
}

pub struct Input {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The stream ended before its end marker: the bytes it gave stand, the rest is missing.
    cut: bool,
    /// Stream offset (after decompression) of `buf[start]`.
    offset: u64,
    pub compression: Compression,
}

impl Input {
    /// Opens a file with the default decompression ratio limit.
    pub fn open(path: &Path) -> Result<Input, CaptureError> {
        Input::open_with(path, super::MAX_DECOMPRESSION_RATIO)
    }

    /// Opens a file; see [`Input::open_location`].
    pub fn open_with(path: &Path, max_ratio: u64) -> Result<Input, CaptureError> {
        Input::open_location(&LocalFile::new(path), max_ratio)
    }

    /// Opens a capture from its start; a compressed one is read through a decompressor that
    /// stops (with [`DecodeError::DecompressionRatio`]) once it inflates over `max_ratio` to one.
    /// The compression is told by the first bytes, which are read and then handed on, so a
    /// stream that cannot seek back (a pipe) is opened as a file is.
    pub fn open_location(location: &dyn Location, max_ratio: u64) -> Result<Input, CaptureError> {
        let name = location.name();
        let mut stream = location.open_at(0).map_err(|e| CaptureError::io(name, e))?;
        let mut magic = [0u8; 4];
        let (n, failed) = read_up_to(&mut stream, &mut magic);
        if let Some(e) = failed {
            return Err(CaptureError::io(name, e));
        }
        let magic = magic.get(..n).unwrap_or_default().to_vec();
        let compression = detect_compression(&magic);
        let stream: Box<dyn Read + Send> = Box::new(io::Cursor::new(magic).chain(stream));
        // A small plain file gets a buffer its size: zeroing 1 MiB for each of a thousand small
        // files was a tenth of reading them. The buffer grows if the file does.
        let capacity = match compression {
            Compression::None => location.size().map_or(CHUNK, |n| usize::try_from(n).unwrap_or(CHUNK).clamp(SMALL_CHUNK, CHUNK)),
            Compression::Gzip | Compression::Zstd => CHUNK,
        };
        let consumed = Arc::new(AtomicU64::new(0));
        let counted = |stream| Counted { inner: io::BufReader::with_capacity(CHUNK, stream), consumed: consumed.clone() };
        let inner: Box<dyn Read + Send> = match compression {
            Compression::None => stream,
            Compression::Gzip => {
                let decoder = flate2::bufread::MultiGzDecoder::new(counted(stream));
                Box::new(ReadAhead::spawn(Inflating::new(decoder, consumed.clone(), max_ratio)))
            }
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(counted(stream)).map_err(|e| CaptureError::io(name, e))?;
                Box::new(ReadAhead::spawn(Inflating::new(decoder, consumed.clone(), max_ratio)))
            }
        };
        Ok(Input::with_buffer(inner, compression, capacity))
    }

    /// An uncompressed capture read from byte `offset` on (a piece of a capture split across threads).
    pub fn open_at(location: &dyn Location, offset: u64) -> Result<Input, CaptureError> {
        let stream = location.open_at(offset).map_err(|e| CaptureError::io(location.name(), e))?;
        let mut input = Input::with_buffer(stream, Compression::None, CHUNK);
        input.offset = offset;
        Ok(input)
    }

    /// An uncompressed in-memory or custom stream (tests, fuzzing).
    pub fn from_reader(inner: Box<dyn Read + Send>) -> Input {
        Input::with_buffer(inner, Compression::None, SMALL_CHUNK)
    }

    fn with_buffer(inner: Box<dyn Read + Send>, compression: Compression, capacity: usize) -> Input {
        Input { inner, buf: vec![0; capacity], start: 0, end: 0, eof: false, cut: false, offset: 0, compression }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The bytes buffered and not yet consumed: after a failed `take`, the part of the record
    /// that came before the failure.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// True once the stream has ended before its end marker (a compressed stream cut short):
    /// its end is then a cut, not the end of the capture.
    pub fn cut_short(&self) -> bool {
        self.cut
    }

    // Invariant of the buffer arithmetic below: start <= end <= buf.len(). Callers bound `n` by
    // the record and block limits, so `start + n` cannot overflow.

    /// Buffers at least `n` bytes unless the stream ends first; returns how many are buffered.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n || self.eof {
            return Ok(self.end - self.start);
        }
        if self.start.saturating_add(n) > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            if self.end == self.buf.len() {
                // Only reachable with start == 0 and end < n. Grow as bytes arrive, not as a
                // header claims: a short file that announces a huge block costs only its size.
                self.buf.resize(self.buf.len().saturating_mul(2).min(n), 0);
            }
            // Reads land in the free tail: a file that shrinks or grows under us only changes what
            // read() returns (no memory map, so no SIGBUS).
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // As Wireshark (WTAP_ERR_SHORT_READ): a compressed stream that merely ends early
                // is a capture cut short, its bytes so far as good as a plain file's.
                Err(e) if is_cut(&e) => {
                    self.eof = true;
                    self.cut = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Up to `n` bytes without consuming them.
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let have = self.fill(n)?.min(n);
        Ok(&self.buf[self.start..self.start + have])
    }

    /// Exactly `n` bytes, consumed. On a short stream the remaining bytes are consumed too.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&[u8], Short> {
        // Most records are already buffered: that test inline, the refill out of line.
        let have = if self.end - self.start >= n { n } else { self.fill(n).map_err(Short::Io)? };
        if have < n {
            self.offset += have as u64;
            self.start = self.end;
            return Err(if self.cut { Short::Cut { have } } else { Short::Eof { have } });
        }
        let s = self.start;
        self.start += n;
        self.offset += n as u64;
        Ok(&self.buf[s..self.start])
    }

    /// True when no byte is left.
    pub fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.fill(1)? == 0)
    }
}

/// Why a decompressing stream stopped, carried to the record readers inside an `io::Error`.
#[derive(Debug)]
enum Stopped {
    Ratio { compressed: u64, decompressed: u64, limit: u64 },
    /// The compressed bytes are not a valid stream.
    Broken(String),
    /// The compressed stream ended before its end (truncated, not corrupt). `Input` takes it
    /// as the end of its stream (`Short::Cut`): it never reaches the record readers.
    Cut,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Ratio { compressed, decompressed, limit } => {
                write!(f, "{decompressed} bytes from {compressed} compressed bytes is over {limit}:1")
            }
            Stopped::Broken(m) => f.write_str(m),
            Stopped::Cut => f.write_str("the compressed stream ends before its end"),
        }
    }
}

impl std::error::Error for Stopped {}

/// The `errors` row for a stream that failed under a reader.
pub fn decode_error(e: io::Error) -> DecodeError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Stopped>()) {
        Some(&Stopped::Ratio { compressed, decompressed, limit }) => {
            DecodeError::DecompressionRatio { compressed, decompressed, limit }
        }
        Some(Stopped::Broken(m)) => DecodeError::Decompress(m.clone()),
        Some(cut @ Stopped::Cut) => DecodeError::Decompress(cut.to_string()),
        None => DecodeError::Io(e.to_string()),
    }
}

/// The decompressor ran out of input before its stream's end.
fn is_cut(e: &io::Error) -> bool {
    matches!(e.get_ref().and_then(|inner| inner.downcast_ref::<Stopped>()), Some(Stopped::Cut))
}

/// The compressed stream, counting the bytes its decompressor has consumed.
struct Counted {
    inner: io::BufReader<Box<dyn Read + Send>>,
    consumed: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.inner.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Counted {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.consume(n);
    }
}

/// Decompression on a thread of its own, a few chunks ahead of the decoding: a compressed capture
/// then takes about the longer of the two, not their sum (mixed_2m.pcap.gz: 1.17 s, of which
/// inflating alone is 0.56 s). Memory: at most `AHEAD + 2` chunks.
struct ReadAhead {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    used: mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

const AHEAD: usize = 2;

impl ReadAhead {
    fn spawn(mut stream: impl Read + Send + 'static) -> ReadAhead {
        let (send, chunks) = mpsc::sync_channel(AHEAD);
        let (used, recycled) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || loop {
            let mut chunk = recycled.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
            chunk.resize(CHUNK, 0);
            let (n, failed) = read_up_to(&mut stream, &mut chunk);
            chunk.truncate(n);
            // The bytes that came before a failure go first: they hold the last whole records.
            // The reader went away (reading stopped early): so does this thread.
            if n > 0 && send.send(Ok(chunk)).is_err() {
                return;
            }
            match failed {
                Some(e) => {
                    let _ = send.send(Err(e));
                    return;
                }
                // Short of a chunk: the stream ended (the reader sees the channel close).
                None if n < CHUNK => return,
                None => {}
            }
        });
        ReadAhead { chunks, used, current: Vec::new(), at: 0 }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let _ = self.used.send(std::mem::replace(&mut self.current, chunk));
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The stream ended, or failed and said so before.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A decompressor that refuses to inflate past `max_ratio` output bytes per input byte.
struct Inflating<D> {
    decoder: D,
    consumed: Arc<AtomicU64>,
    produced: u64,
    max_ratio: u64,
}

impl<D> Inflating<D> {
    fn new(decoder: D, consumed: Arc<AtomicU64>, max_ratio: u64) -> Self {
        Inflating { decoder, consumed, produced: 0, max_ratio }
    }
}

impl<D: Read> Read for Inflating<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // flate2 and zstd say UnexpectedEof when their input ends inside a stream (a deflate
        // block, a gzip member's header or trailer, a zstd frame); corrupt input is another kind.
        let n = self.decoder.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Interrupted => e,
            io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::UnexpectedEof, Stopped::Cut),
            _ => io::Error::other(Stopped::Broken(e.to_string())),
        })?;
        self.produced = self.produced.saturating_add(n as u64);
        let compressed = self.consumed.load(Ordering::Relaxed);
        if self.produced > RATIO_GRACE && self.produced > compressed.saturating_mul(self.max_ratio) {
            let (decompressed, limit) = (self.produced, self.max_ratio);
            return Err(io::Error::other(Stopped::Ratio { compressed, decompressed, limit }));
        }
        Ok(n)
    }
}

fn detect_compression(magic: &[u8]) -> Compression {
    match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Reads until `buf` is full, the stream ends or fails; how many bytes came, and the failure.
/// The bytes before a failure are kept: a stream cut short still gave them.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_across_chunks_and_short_end() {
        let data: Vec<u8> = (0..(CHUNK + 100)).map(|i| i as u8).collect();
        let mut input = Input::from_reader(Box::new(io::Cursor::new(data.clone())));
        assert_eq!(input.take(CHUNK - 2).unwrap().len(), CHUNK - 2);
        assert_eq!(input.take(10).unwrap(), &data[CHUNK - 2..CHUNK + 8]);
        assert_eq!(input.offset(), CHUNK as u64 + 8);
        match input.take(1000) {
            Err(Short::Eof { have }) => assert_eq!(have, 92),
            _ => panic!("expected a short read"),
        }
        assert!(input.at_end().unwrap());
    }

    #[test]
    fn buffer_grows_with_the_data_not_with_the_claim() {
        let mut input = Input::from_reader(Box::new(io::Cursor::new(vec![7u8; 100])));
        assert!(matches!(input.take(16 << 20), Err(Short::Eof { have: 100 })));
        assert_eq!(input.buf.len(), SMALL_CHUNK);
        let data: Vec<u8> = (0..3 * CHUNK + 5).map(|i| (i % 251) as u8).collect();
        let mut input = Input::from_reader(Box::new(io::Cursor::new(data.clone())));
        assert_eq!(input.take(5).unwrap(), &data[..5]);
        assert_eq!(input.take(3 * CHUNK).unwrap(), &data[5..]);
        assert_eq!(input.buf.len(), 3 * CHUNK);
    }

    /// How a stream read to its end ended.
    #[derive(Debug, PartialEq)]
    enum Ending {
        Clean,
        Cut,
        Failed(DecodeError),
    }

    /// Reads `data` from a file through `open_with` until the stream ends or fails: how many
    /// bytes it gave, and how it ended.
    fn drain(name: &str, data: &[u8], max_ratio: u64) -> (u64, Ending) {
        let path = std::env::temp_dir().join(format!("icmpscope-input-{}-{name}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        let mut input = Input::open_with(&path, max_ratio).unwrap();
        let end = loop {
            match input.take(CHUNK) {
                Ok(_) => continue,
                Err(Short::Eof { .. }) => break Ending::Clean,
                Err(Short::Cut { .. }) => break Ending::Cut,
                Err(Short::Io(e)) => break Ending::Failed(decode_error(e)),
            }
        };
        std::fs::remove_file(&path).unwrap();
        (input.offset(), end)
    }

    #[test]
    fn gzip_and_zstd_bombs_are_stopped() {
        use std::io::Write;
        let zeros = vec![0u8; 64 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::bulk::compress(&zeros, 3).unwrap();
        for (name, data) in [("gz", &gz), ("zst", &zst)] {
            let (read, end) = drain(name, data, 1000);
            let Ending::Failed(DecodeError::DecompressionRatio { compressed, decompressed, limit: 1000 }) = end else {
                panic!("{name}: {end:?}");
            };
            assert!(decompressed > RATIO_GRACE && decompressed > compressed * 1000, "{name}");
            assert!(read < 16 << 20, "{name}: stopped early, after {read} bytes");
            // With room for its ratio the same stream reads to the end.
            assert_eq!(drain(name, data, 1_000_000), (64 << 20, Ending::Clean), "{name}");
        }
    }

    #[test]
    fn a_broken_compressed_stream_is_a_decompression_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &[1u8; 1000]).unwrap();
        let mut gz = gz.finish().unwrap();
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        let (_, end) = drain("broken.gz", &gz, 1000);
        assert!(matches!(end, Ending::Failed(DecodeError::Decompress(_))), "{end:?}");
    }

    /// What a decompressor reading `data` gives before it stops, however it stops.
    fn decompressible(mut decoder: impl Read) -> u64 {
        let mut buf = vec![0; 1 << 16];
        let mut n = 0;
        while let Ok(k @ 1..) = decoder.read(&mut buf) {
            n += k as u64;
        }
        n
    }

    #[test]
    fn a_compressed_stream_cut_short_gives_every_byte_before_the_cut() {
        use std::io::Write;
        // 3 MiB over several 1 MiB chunks, compressible but not trivially.
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 29) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::bulk::compress(&data, 3).unwrap();
        for (name, whole) in [("gz", &gz), ("zst", &zst)] {
            let n = whole.len();
            // Into the trailer (gzip's CRC and size, zstd's last block), mid-stream, into the header.
            for cut in [n - 3, n - 8, n * 2 / 3, n / 2, n / 10, 5] {
                let part = &whole[..cut];
                let expected = if name == "gz" {
                    decompressible(flate2::read::MultiGzDecoder::new(part))
                } else {
                    decompressible(zstd::stream::read::Decoder::new(part).unwrap())
                };
                assert_eq!(drain(name, part, 1000), (expected, Ending::Cut), "{name} cut at {cut} of {n}");
            }
        }
    }
}
