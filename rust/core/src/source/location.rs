//! Where a capture's bytes come from: a local file, or anything else that reads from a byte
//! offset on (an object in a store, through the binding), or a stream read once (a pipe).
//!
//! A location that can be opened at any offset and knows its size lets a big uncompressed
//! capture be read in pieces side by side (`pipeline::read_location_in_parts`), wherever it is.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The bytes of one capture.
pub trait Location: Send + Sync {
    /// The name the capture has in tables and errors (a path, a URL, `<stdin>`).
    fn name(&self) -> &str;
    /// Its length in bytes; an error where it is not known (a stream).
    fn size(&self) -> io::Result<u64>;
    /// Its bytes from `offset` on.
    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send>>;
    /// About `len` of its bytes from `offset` on (a window looked into, not read through): a
    /// store then fetches that much rather than a whole read-ahead block.
    fn open_window(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let _ = len;
        self.open_at(offset)
    }
}

/// A file on a local disk.
pub struct LocalFile {
    path: PathBuf,
    name: String,
}

impl LocalFile {
    pub fn new(path: &Path) -> LocalFile {
        LocalFile { path: path.to_owned(), name: path.display().to_string() }
    }
}

impl Location for LocalFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }

    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut file = File::open(&self.path)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Box::new(Shrinking { file, at: offset }))
    }
}

/// A stream that can be read once, from its start: standard input, a file object. It has no
/// size, so it is never split.
pub struct Stream {
    name: String,
    reader: Mutex<Option<Box<dyn Read + Send>>>,
}

impl Stream {
    pub fn new(name: &str, reader: Box<dyn Read + Send>) -> Stream {
        Stream { name: name.to_owned(), reader: Mutex::new(Some(reader)) }
    }
}

impl Location for Stream {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> io::Result<u64> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "a stream has no known size"))
    }

    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let taken = self.reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match taken {
            Some(reader) if offset == 0 => Ok(reader),
            _ => Err(io::Error::new(io::ErrorKind::Unsupported, "a stream is read once, from its start")),
        }
    }
}

/// A plain file that may be cut while it is read (a capture rotated or truncated in place).
/// Linux lowers the size before it zeroes the pages it drops, so a read racing with the cut can
/// copy zeros from past the new end: bytes past the size the file has once the read returns are
/// not kept, as if the read had come after the cut (the capture then ends cut short).
struct Shrinking {
    file: File,
    /// Offset of the next byte to read.
    at: u64,
}

impl Read for Shrinking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 {
            return Ok(0);
        }
        let size = self.file.metadata()?.len();
        let kept = size.saturating_sub(self.at).min(n as u64);
        self.at += kept;
        if kept < n as u64 {
            // Read on from where the kept bytes end, should the file grow again.
            self.file.seek(SeekFrom::Start(self.at))?;
        }
        Ok(kept as usize)
    }
}

/// Up to `len` bytes of `location` from `offset` on.
pub fn read_at(location: &dyn Location, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    location.open_window(offset, len)?.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_opens_once_from_its_start() {
        let stream = Stream::new("<stdin>", Box::new(io::Cursor::new(b"abc".to_vec())));
        assert!(stream.size().is_err());
        assert!(stream.open_at(1).is_err(), "not from its start");
        let stream = Stream::new("<stdin>", Box::new(io::Cursor::new(b"abc".to_vec())));
        let mut bytes = Vec::new();
        stream.open_at(0).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"abc");
        assert!(stream.open_at(0).is_err(), "a second time");
    }

    #[test]
    fn a_local_file_reads_from_any_offset() {
        let path = std::env::temp_dir().join(format!("icmpscope-location-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = LocalFile::new(&path);
        assert_eq!(file.size().unwrap(), 10);
        assert_eq!(read_at(&file, 3, 4).unwrap(), b"3456");
        assert_eq!(read_at(&file, 8, 100).unwrap(), b"89");
        std::fs::remove_file(&path).unwrap();
    }
}
