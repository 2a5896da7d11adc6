//! Where the local frontier's backlog goes past `frontier.memory`: segment files of
//! spilled requests in a directory of the run's own.
//!
//! A spill writes a run of requests as one *extent* (at most [`EXTENT_REQUESTS`] requests)
//! at the end of the current segment file; the backlog keeps the extents in its order and
//! reads one back whole when it reaches it. A segment file is deleted as soon as its last
//! extent was read back, the directory when the store is dropped.
//!
//! The files are a cache, not the crawl's record: with `--state-dir` every admitted request
//! is also in the state store until it is durably done, so a killed process loses nothing
//! by losing its spill files (a resume queues the pending requests again, spilling as it
//! goes); the next run removes what a killed one left in `<state-dir>/spill`.
//!
//! The record format (little-endian varints): depth, redirect-chain length, the chain's
//! fingerprints (16 bytes each), the fingerprint (16 bytes), URL length, URL bytes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use super::messages::CrawlRequest;
use super::routing::QueueId;
use super::urls::Fingerprint;

/// The most requests in one extent (what one read brings back into memory).
pub const EXTENT_REQUESTS: usize = 256;

/// A segment file is closed for writing past this size.
const SEGMENT_BYTES: u64 = 64 << 20;

/// A run of spilled requests in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    segment: u32,
    offset: u64,
    len: u32,
    count: u32,
}

impl Extent {
    /// Requests in the extent.
    pub fn count(&self) -> usize {
        self.count as usize
    }
}

struct Segment {
    file: File,
    /// Extents written and not yet read back.
    live: u32,
}

/// The segment files of one frontier.
pub struct SpillStore {
    dir: PathBuf,
    /// Whether the directory was made (it is made at the first spill).
    made: bool,
    segments: HashMap<u32, Segment>,
    /// The segment being written, and its length.
    current: Option<(u32, u64)>,
    next_segment: u32,
    buf: Vec<u8>,
    /// Bytes in live extents.
    bytes: u64,
}

impl SpillStore {
    /// A store in `dir`, which it owns: whatever is there is removed, now and when the
    /// store is dropped. Nothing is created before the first spill.
    pub fn new(dir: PathBuf) -> Self {
        remove_dir(&dir);
        Self {
            dir,
            made: false,
            segments: HashMap::new(),
            current: None,
            next_segment: 0,
            buf: Vec::new(),
            bytes: 0,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of requests on disk (not yet read back).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes `requests` (at most [`EXTENT_REQUESTS`]) as one extent.
    pub fn write(&mut self, requests: &[CrawlRequest]) -> io::Result<Extent> {
        debug_assert!(requests.len() <= EXTENT_REQUESTS);
        self.buf.clear();
        for r in requests {
            encode(r, &mut self.buf);
        }
        let (segment, offset) = self.segment_for_write()?;
        let file = &mut self.segments.get_mut(&segment).ok_or_else(|| missing(segment))?.file;
        // On an error nothing refers to the bytes that did get written: the next write goes
        // over them.
        file.write_all_at(&self.buf, offset)?;
        let len = self.buf.len() as u32;
        self.current = Some((segment, offset + u64::from(len)));
        if let Some(s) = self.segments.get_mut(&segment) {
            s.live += 1;
        }
        self.bytes += u64::from(len);
        Ok(Extent { segment, offset, len, count: requests.len() as u32 })
    }

    /// Reads an extent back (for `host`) and lets it go: its segment is deleted when no
    /// other extent lives in it.
    pub fn read(&mut self, extent: Extent, host: &Arc<str>) -> io::Result<Vec<CrawlRequest>> {
        let result = self.read_bytes(extent).and_then(|bytes| decode(&bytes, extent.count(), host));
        self.release(extent);
        result
    }

    fn read_bytes(&self, extent: Extent) -> io::Result<Vec<u8>> {
        let segment = self.segments.get(&extent.segment).ok_or_else(|| missing(extent.segment))?;
        let mut bytes = vec![0; extent.len as usize];
        segment.file.read_exact_at(&mut bytes, extent.offset)?;
        Ok(bytes)
    }

    /// Forgets an extent without reading it.
    pub fn release(&mut self, extent: Extent) {
        self.bytes = self.bytes.saturating_sub(u64::from(extent.len));
        let Some(segment) = self.segments.get_mut(&extent.segment) else { return };
        segment.live = segment.live.saturating_sub(1);
        if segment.live == 0 && self.current.is_none_or(|(id, _)| id != extent.segment) {
            self.segments.remove(&extent.segment);
            let _ = std::fs::remove_file(self.segment_path(extent.segment));
        }
    }

    fn segment_path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("segment-{id:06}.spill"))
    }

    /// The segment to append to and where, opening a new one when there is none or the
    /// current one is full (a full one without live extents is deleted).
    fn segment_for_write(&mut self) -> io::Result<(u32, u64)> {
        if let Some((id, len)) = self.current {
            if len < SEGMENT_BYTES {
                return Ok((id, len));
            }
            self.current = None;
            if self.segments.get(&id).is_some_and(|s| s.live == 0) {
                self.segments.remove(&id);
                let _ = std::fs::remove_file(self.segment_path(id));
            }
        }
        if !self.made {
            std::fs::create_dir_all(&self.dir)?;
            self.made = true;
        }
        let id = self.next_segment;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.segment_path(id))?;
        self.next_segment += 1;
        self.segments.insert(id, Segment { file, live: 0 });
        self.current = Some((id, 0));
        Ok((id, 0))
    }
}

impl Drop for SpillStore {
    fn drop(&mut self) {
        self.segments.clear();
        if self.made {
            remove_dir(&self.dir);
        }
    }
}

impl std::fmt::Debug for SpillStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillStore").field("dir", &self.dir).field("bytes", &self.bytes).finish()
    }
}

fn remove_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "could not remove the frontier's spill directory: {e}")
        }
    }
}

fn missing(segment: u32) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("spill segment {segment} is not open"))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode(r: &CrawlRequest, out: &mut Vec<u8>) {
    put_varint(out, u64::from(r.queue.0));
    put_varint(out, u64::from(r.depth));
    put_varint(out, r.redirect_chain.len() as u64);
    for fp in &r.redirect_chain {
        out.extend_from_slice(&fp.to_be_bytes());
    }
    out.extend_from_slice(&r.fingerprint.to_be_bytes());
    put_varint(out, r.url.as_str().len() as u64);
    out.extend_from_slice(r.url.as_str().as_bytes());
}

/// Reads records from a byte slice; every malformed read is an `InvalidData` error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("a record runs past its extent"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bytes(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("a number is too long"))
    }

    fn fingerprint(&mut self) -> io::Result<Fingerprint> {
        let bytes: [u8; 16] = self.bytes(16)?.try_into().map_err(|_| invalid("a short fingerprint"))?;
        Ok(Fingerprint::from_be_bytes(bytes))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("spill file: {what}"))
}

fn decode(bytes: &[u8], count: usize, host: &Arc<str>) -> io::Result<Vec<CrawlRequest>> {
    let mut r = Reader(bytes);
    let mut requests = Vec::with_capacity(count);
    for _ in 0..count {
        let queue = QueueId(u16::try_from(r.varint()?).map_err(|_| invalid("a queue out of range"))?);
        let depth = u32::try_from(r.varint()?).map_err(|_| invalid("a depth out of range"))?;
        let chain_len = r.varint()? as usize;
        if chain_len > r.0.len() / 16 {
            return Err(invalid("a redirect chain runs past its extent"));
        }
        let redirect_chain = (0..chain_len).map(|_| r.fingerprint()).collect::<io::Result<Vec<_>>>()?;
        let fingerprint = r.fingerprint()?;
        let url_len = r.varint()? as usize;
        let text = std::str::from_utf8(r.bytes(url_len)?).map_err(|_| invalid("a URL that is not UTF-8"))?;
        let url = Url::parse(text).map_err(|e| invalid(&format!("a URL that does not parse ({e})")))?;
        requests.push(CrawlRequest { url, fingerprint, host: host.clone(), depth, redirect_chain, queue });
    }
    if !r.0.is_empty() {
        return Err(invalid("bytes left after the extent's records"));
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crawl::urls;

    fn req(i: usize) -> CrawlRequest {
        let url = Url::parse(&format!("http://a.test/p/{i}?q=é")).expect("url");
        CrawlRequest {
            fingerprint: urls::fingerprint(&url),
            url,
            host: "a.test".into(),
            depth: i as u32,
            redirect_chain: (0..i % 3).map(|j| Fingerprint(j as u128 * 7)).collect(),
            queue: QueueId((i % 3) as u16),
        }
    }

    #[test]
    fn extents_round_trip_and_segments_go_when_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill_dir = dir.path().join("spill");
        let host: Arc<str> = "a.test".into();
        let mut store = SpillStore::new(spill_dir.clone());
        assert!(!spill_dir.exists(), "nothing is made before the first spill");
        let batches: Vec<Vec<CrawlRequest>> =
            (0..4).map(|b| (0..EXTENT_REQUESTS).map(|i| req(b * 1000 + i)).collect()).collect();
        let extents: Vec<Extent> = batches.iter().map(|b| store.write(b).expect("write")).collect();
        assert!(store.bytes() > 0);
        for (extent, batch) in extents.iter().zip(&batches).rev() {
            let back = store.read(*extent, &host).expect("read");
            assert_eq!(back.len(), batch.len());
            for (a, b) in back.iter().zip(batch) {
                assert_eq!(
                    (&a.url, a.fingerprint, a.depth, &a.redirect_chain, a.queue),
                    (&b.url, b.fingerprint, b.depth, &b.redirect_chain, b.queue)
                );
                assert_eq!(&*a.host, "a.test");
            }
        }
        assert_eq!(store.bytes(), 0);
        drop(store);
        assert!(!spill_dir.exists(), "the directory goes with the store");
    }

    #[test]
    fn a_damaged_extent_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SpillStore::new(dir.path().join("spill"));
        let extent = store.write(&[req(1), req(2)]).expect("write");
        let file = OpenOptions::new().write(true).open(store.segment_path(extent.segment)).expect("open");
        file.write_all_at(&[0xff; 40], extent.offset + 5).expect("damage");
        let err = store.read(extent, &"a.test".into()).expect_err("damaged");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn leftovers_of_a_killed_run_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill_dir = dir.path().join("spill");
        std::fs::create_dir_all(&spill_dir).expect("mkdir");
        std::fs::write(spill_dir.join("segment-000000.spill"), b"old").expect("write");
        let _store = SpillStore::new(spill_dir.clone());
        assert!(!spill_dir.exists());
    }
}
