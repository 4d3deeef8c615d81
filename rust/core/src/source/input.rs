//! A buffered byte stream over a file, optionally gzip or zstd compressed (detected by magic).
//! Records are handed out as slices of the internal buffer: one copy from the kernel (or the
//! decompressor) into the buffer, none after.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::CaptureError;

const CHUNK: usize = 1 << 20;

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
    Eof { have: usize },
    Io(io::Error),
}

pub struct Input {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Stream offset (after decompression) of `buf[start]`.
    offset: u64,
    pub compression: Compression,
}

impl Input {
    pub fn open(path: &Path) -> Result<Input, CaptureError> {
        let name = path.display().to_string();
        let mut file = File::open(path).map_err(|e| CaptureError::io(&name, e))?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| CaptureError::io(&name, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| CaptureError::io(&name, e))?;
        let compression = detect_compression(&magic[..n]);
        let inner: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(file),
            Compression::Gzip => {
                Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(CHUNK, file)))
            }
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(file).map_err(|e| CaptureError::io(&name, e))?,
            ),
        };
        Ok(Input::with_compression(inner, compression))
    }

    /// An uncompressed in-memory or custom stream (tests, fuzzing).
    pub fn from_reader(inner: Box<dyn Read + Send>) -> Input {
        Input::with_compression(inner, Compression::None)
    }

    fn with_compression(inner: Box<dyn Read + Send>, compression: Compression) -> Input {
        Input { inner, buf: vec![0; CHUNK], start: 0, end: 0, eof: false, offset: 0, compression }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Buffers at least `n` bytes unless the stream ends first; returns how many are buffered.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n || self.eof {
            return Ok(self.end - self.start);
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n.next_power_of_two(), 0);
            }
        }
        while self.end - self.start < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
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
    pub fn take(&mut self, n: usize) -> Result<&[u8], Short> {
        let have = self.fill(n).map_err(Short::Io)?;
        if have < n {
            self.offset += have as u64;
            self.start = self.end;
            return Err(Short::Eof { have });
        }
        let s = self.start;
        self.start += n;
        self.offset += n as u64;
        Ok(&self.buf[s..s + n])
    }

    /// True when no byte is left.
    pub fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.fill(1)? == 0)
    }
}

fn detect_compression(magic: &[u8]) -> Compression {
    match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
}
