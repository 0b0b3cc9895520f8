//! [`SharedRegion`]: memory two processes map, for the host ring (and the CPU-copy
//! comparison path): a memfd sealed against resizing on Unix, an unnamed pagefile-backed
//! section on Windows (whose size is fixed at creation). The OS handle travels like any other
//! (SCM_RIGHTS, or `DuplicateHandle` into the peer); the mapping is unmapped on drop.
//!
//! Mappings start page-aligned (Unix) or allocation-granularity-aligned (64 KiB, Windows).

use crate::common::OwnedOsHandle;
use crate::{Error, Result};

/// A read/write shared mapping of a region, with the OS handle that names it.
pub struct SharedRegion {
    ptr: *mut u8,
    len: usize,
    handle: OwnedOsHandle,
}

// SAFETY: the mapping is plain shared memory owned by this value; access is coordinated by the
// ring protocol (a slot is written by one side at a time), and GPU work on it is waited for.
unsafe impl Send for SharedRegion {}
// SAFETY: as above; `&self` hands out only the pointer and length.
unsafe impl Sync for SharedRegion {}

impl std::fmt::Debug for SharedRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRegion")
            .field("len", &self.len)
            .finish()
    }
}

impl SharedRegion {
    /// A new zero-filled region of `len` bytes, mapped. On Unix the memfd is sealed against
    /// shrinking and growing: a peer that truncated it would make every mapping of it fault.
    #[cfg(unix)]
    pub fn create(name: &str, len: usize) -> Result<Self> {
        use rustix::fs::{MemfdFlags, SealFlags};
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| Error::Io(e.into()))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(|e| Error::Io(e.into()))?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(|e| Error::Io(e.into()))?;
        Self::open(fd, len)
    }

    /// Maps the first `len` bytes of a region another process created. Refuses (with
    /// [`Error::Protocol`]) an FD that is not a memfd sealed against shrinking, or one shorter
    /// than `len`.
    #[cfg(unix)]
    pub fn open(handle: OwnedOsHandle, len: usize) -> Result<Self> {
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        let seals = rustix::fs::fcntl_get_seals(&handle)
            .map_err(|e| Error::Protocol(format!("shared region is not a sealable memfd: {e}")))?;
        if !seals.contains(rustix::fs::SealFlags::SHRINK) {
            return Err(Error::Protocol(
                "shared region memfd is not sealed against shrinking".into(),
            ));
        }
        let stat = rustix::fs::fstat(&handle).map_err(|e| Error::Io(e.into()))?;
        if (stat.st_size as u64) < len as u64 {
            return Err(Error::Protocol(format!(
                "shared region memfd holds {} bytes, {len} announced",
                stat.st_size
            )));
        }
        if len == 0 {
            return Err(Error::Protocol("empty shared region".into()));
        }
        // SAFETY: a fresh shared mapping of `len` bytes of a memfd that is at least that long
        // and cannot shrink (sealed, checked above); nothing else in this process aliases it;
        // it is unmapped in Drop.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &handle,
                0,
            )
        }
        .map_err(|e| Error::Io(e.into()))?;
        Ok(SharedRegion {
            ptr: ptr.cast(),
            len,
            handle,
        })
    }

    /// A new zero-filled region of `len` bytes: an unnamed section backed by the paging file
    /// (fixed size; reachable only through its handle), mapped.
    #[cfg(windows)]
    pub fn create(_name: &str, len: usize) -> Result<Self> {
        use std::os::windows::io::{FromRawHandle, OwnedHandle};
        use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
        use windows_sys::Win32::System::Memory::{CreateFileMappingW, PAGE_READWRITE};
        let size = len as u64;
        // SAFETY: a pagefile-backed section (INVALID_HANDLE_VALUE file), default security, no
        // name; the result is checked and owned below.
        let raw = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                (size >> 32) as u32,
                size as u32,
                std::ptr::null(),
            )
        };
        if raw.is_null() {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: a new section handle that nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        Self::open(handle, len)
    }

    /// Maps the first `len` bytes of a section another process created (and duplicated into
    /// this one). A section shorter than `len` cannot be mapped that far: [`Error::Protocol`].
    #[cfg(windows)]
    pub fn open(handle: OwnedOsHandle, len: usize) -> Result<Self> {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::System::Memory::{MapViewOfFile, FILE_MAP_READ, FILE_MAP_WRITE};
        if len == 0 {
            return Err(Error::Protocol("empty shared region".into()));
        }
        // SAFETY: `handle` is a live handle; MapViewOfFile checks that it is a section and
        // that `len` bytes fit in it, and fails otherwise.
        let view = unsafe {
            MapViewOfFile(
                handle.as_raw_handle(),
                FILE_MAP_READ | FILE_MAP_WRITE,
                0,
                0,
                len,
            )
        };
        if view.Value.is_null() {
            return Err(Error::Protocol(format!(
                "cannot map {len} bytes of the shared section: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(SharedRegion {
            ptr: view.Value.cast(),
            len,
            handle,
        })
    }

    /// The OS handle, to send to the peer.
    pub fn handle(&self) -> &OwnedOsHandle {
        &self.handle
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Slot `index` of `size` bytes.
    pub fn slot(&mut self, index: usize, size: usize) -> &mut [u8] {
        assert!((index + 1) * size <= self.len, "slot out of the mapping");
        // SAFETY: in bounds (checked above); `&mut self` makes this the only view in this
        // process; the peer only touches a slot the protocol gave it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(index * size), size) }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: mapped in `open` with this length, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
        #[cfg(windows)]
        // SAFETY: the view mapped in `open`, unmapped once.
        unsafe {
            windows_sys::Win32::System::Memory::UnmapViewOfFile(
                windows_sys::Win32::System::Memory::MEMORY_MAPPED_VIEW_ADDRESS {
                    Value: self.ptr.cast(),
                },
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mappings_of_one_region_see_the_same_bytes() {
        let mut a = SharedRegion::create("geyser-shm-test", 3 * 4096).unwrap();
        let mut b = SharedRegion::open(a.handle().try_clone().unwrap(), 3 * 4096).unwrap();
        assert!(a.slot(2, 4096).iter().all(|&x| x == 0), "not zero-filled");
        a.slot(1, 4096)[..5].copy_from_slice(b"geyse");
        b.slot(2, 4096)[4095] = 0x5a;
        assert_eq!(&b.slot(1, 4096)[..5], b"geyse");
        assert_eq!(a.slot(2, 4096)[4095], 0x5a);
        assert_ne!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn a_region_shorter_than_announced_is_refused() {
        let a = SharedRegion::create("geyser-shm-test", 4096).unwrap();
        let longer = 1 << 20;
        assert!(matches!(
            SharedRegion::open(a.handle().try_clone().unwrap(), longer),
            Err(Error::Protocol(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn unsealed_memfds_are_refused() {
        let fd =
            rustix::fs::memfd_create("geyser-unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(matches!(
            SharedRegion::open(fd, 4096),
            Err(Error::Protocol(_))
        ));
    }
}
