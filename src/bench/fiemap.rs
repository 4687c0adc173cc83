//! Counting a file's extents with the FIEMAP ioctl, as `filefrag` does: a fragmented
//! copy-on-write file has tens of thousands, more than one call returns, so the calls go
//! on from the end of the last extent seen until the kernel marks one the last.

use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Updater, opcode};

/// `struct fiemap_extent`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

/// `struct fiemap` without its flexible array of extents.
#[repr(C)]
#[derive(Debug, Default)]
struct Header {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
}

/// Extents asked for per call.
const BATCH: usize = 512;

/// The header followed by room for [`BATCH`] extents, as the kernel reads and fills it.
#[repr(C)]
struct Request {
    header: Header,
    extents: [Extent; BATCH],
}

/// FS_IOC_FIEMAP, `_IOWR('f', 11, struct fiemap)`: the size in the opcode is the header's.
const FIEMAP: Opcode = opcode::read_write::<Header>(b'f', 11);
/// FIEMAP_FLAG_SYNC: write dirty data first, so delayed allocation is counted as placed.
const FLAG_SYNC: u32 = 1;
/// FIEMAP_EXTENT_LAST: no extent follows this one.
const EXTENT_LAST: u32 = 1;

/// One extent as the count needs it: where it begins and ends in the file, and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub logical: u64,
    pub length: u64,
    pub flags: u32,
}

/// The number of extents of the file open at `fd`.
pub fn extent_count(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut request = Box::new(Request { header: Header::default(), extents: [Extent::default(); BATCH] });
    count_extents(|start| {
        request.header = Header {
            start,
            length: u64::MAX - start,
            flags: FLAG_SYNC,
            mapped_extents: 0,
            extent_count: BATCH as u32,
            reserved: 0,
        };
        // SAFETY: the opcode is _IOWR('f', 11, struct fiemap); `Request` is that struct
        // followed by `extent_count` extents, which the kernel fills no further than.
        unsafe { rustix::ioctl::ioctl(fd, Updater::<FIEMAP, Request>::new(&mut *request)) }?;
        let mapped = (request.header.mapped_extents as usize).min(BATCH);
        Ok(request.extents[..mapped]
            .iter()
            .map(|e| Span { logical: e.logical, length: e.length, flags: e.flags })
            .collect())
    })
}

/// Counts extents batch by batch: `fetch(start)` returns the extents from file offset
/// `start` on, as many as one call gives.
pub fn count_extents(mut fetch: impl FnMut(u64) -> Result<Vec<Span>, Errno>) -> Result<u64, Errno> {
    let mut start = 0u64;
    let mut total = 0u64;
    loop {
        let batch = fetch(start)?;
        let Some(last) = batch.last() else { return Ok(total) };
        total += batch.len() as u64;
        let next = last.logical.saturating_add(last.length);
        // A last extent, or one that does not move on (never loop forever on a kernel
        // that answers oddly).
        if last.flags & EXTENT_LAST != 0 || next <= start {
            return Ok(total);
        }
        start = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_kernels_layout() {
        assert_eq!(std::mem::size_of::<Header>(), 32);
        assert_eq!(std::mem::size_of::<Extent>(), 56);
        assert_eq!(FIEMAP, 0xc020_660b);
    }

    /// A file of `n` 4 KiB extents served `per_call` at a time, as the kernel does.
    fn fake(n: u64, per_call: usize) -> impl FnMut(u64) -> Result<Vec<Span>, Errno> {
        move |start| {
            Ok((start / 4096..n)
                .take(per_call)
                .map(|i| Span {
                    logical: i * 4096,
                    length: 4096,
                    flags: if i == n - 1 { EXTENT_LAST } else { 0 },
                })
                .collect())
        }
    }

    #[test]
    fn counts_more_extents_than_one_call_returns() {
        assert_eq!(count_extents(fake(2000, 512)).unwrap(), 2000);
        assert_eq!(count_extents(fake(512, 512)).unwrap(), 512);
        assert_eq!(count_extents(fake(1, 512)).unwrap(), 1);
        assert_eq!(count_extents(|_| Ok(Vec::new())).unwrap(), 0, "an empty file");
        let mut calls = 0;
        let mut inner = fake(1025, 512);
        count_extents(|s| {
            calls += 1;
            inner(s)
        })
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[test]
    fn stops_when_the_kernel_gives_no_progress_or_an_error() {
        let stuck = |_| Ok(vec![Span { logical: 0, length: 0, flags: 0 }]);
        assert_eq!(count_extents(stuck).unwrap(), 1);
        assert_eq!(count_extents(|_| Err(Errno::NOTSUP)).unwrap_err(), Errno::NOTSUP);
    }
}
