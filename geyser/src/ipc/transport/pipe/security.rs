//! Who may use the pipe: the current user's token SID, compared with a peer process's, and a
//! security descriptor whose DACL admits that user only.

use std::ffi::c_void;
use std::os::windows::io::AsRawHandle;
use std::ptr;

use windows_sys::Win32::Foundation::{LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    EqualSid, GetTokenInformation, TokenUser, PSID, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::{last_error, owned, wide};
use crate::Result;

/// Memory from `LocalAlloc` that Win32 handed us (SDDL strings, security descriptors).
pub(super) struct LocalMem(pub(super) *mut c_void);

impl Drop for LocalMem {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a Win32 call documented to allocate with
            // LocalAlloc, and is freed only here.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// The user of a process's access token: a buffer that starts with its `TOKEN_USER`, whose SID
/// points into the same buffer.
pub(super) struct TokenUserInfo {
    buf: Vec<u64>,
}

impl TokenUserInfo {
    /// The token user of `process` (a handle with `PROCESS_QUERY_LIMITED_INFORMATION`, or the
    /// current-process pseudo-handle).
    pub(super) fn of_process(process: HANDLE) -> Result<Self> {
        let mut token: HANDLE = ptr::null_mut();
        // SAFETY: `process` is a live process handle with query access (see above); `token`
        // receives a new handle, owned below.
        if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
            return Err(last_error("OpenProcessToken"));
        }
        let token = owned(token, "OpenProcessToken")?;
        let mut len = 0u32;
        // SAFETY: a size query (null buffer, zero length) on a live token handle; it fails
        // with ERROR_INSUFFICIENT_BUFFER and sets `len`.
        unsafe {
            GetTokenInformation(
                token.as_raw_handle(),
                TokenUser,
                ptr::null_mut(),
                0,
                &mut len,
            )
        };
        if len == 0 {
            return Err(last_error("GetTokenInformation"));
        }
        // u64 storage keeps the TOKEN_USER at its required alignment.
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        // SAFETY: `buf` has at least `len` writable bytes, aligned for TOKEN_USER.
        if unsafe {
            GetTokenInformation(
                token.as_raw_handle(),
                TokenUser,
                buf.as_mut_ptr().cast(),
                len,
                &mut len,
            )
        } == 0
        {
            return Err(last_error("GetTokenInformation"));
        }
        Ok(TokenUserInfo { buf })
    }

    pub(super) fn sid(&self) -> PSID {
        // SAFETY: GetTokenInformation(TokenUser) filled `buf`, so it starts with a TOKEN_USER
        // whose SID points into `buf`, which lives as long as `self`.
        unsafe { (*self.buf.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }

    pub(super) fn same_user(&self, other: &TokenUserInfo) -> bool {
        // SAFETY: both SIDs are valid for the lifetime of their buffers (see `sid`).
        unsafe { EqualSid(self.sid(), other.sid()) != 0 }
    }

    /// The SID as text (`S-1-5-21-…`).
    pub(super) fn sid_string(&self) -> Result<String> {
        let mut sid_string: *mut u16 = ptr::null_mut();
        // SAFETY: `self.sid()` is a valid SID (see `sid`); the string is LocalAlloc'ed and
        // owned by `LocalMem` below.
        if unsafe { ConvertSidToStringSidW(self.sid(), &mut sid_string) } == 0 {
            return Err(last_error("ConvertSidToStringSidW"));
        }
        let sid_string = LocalMem(sid_string.cast());
        // SAFETY: ConvertSidToStringSidW returned a NUL-terminated UTF-16 string.
        Ok(unsafe {
            let p = sid_string.0.cast::<u16>();
            let n = (0..).take_while(|i| *p.add(*i) != 0).count();
            String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
        })
    }
}

pub(super) fn current_process() -> HANDLE {
    // SAFETY: returns the current process's pseudo-handle; no preconditions, nothing to close.
    unsafe { GetCurrentProcess() }
}

/// A security descriptor whose DACL grants access to the current user only.
pub(super) struct UserOnly {
    descriptor: LocalMem,
}

impl UserOnly {
    pub(super) fn new() -> Result<Self> {
        let sid_text = TokenUserInfo::of_process(current_process())?.sid_string()?;
        // Protected DACL, one entry: generic all for this user's SID.
        let sddl = wide(&format!("D:P(A;;GA;;;{sid_text})"));
        let mut descriptor: *mut c_void = ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; the descriptor is LocalAlloc'ed, owned below.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                ptr::null_mut(),
            )
        } == 0
        {
            return Err(last_error(
                "ConvertStringSecurityDescriptorToSecurityDescriptorW",
            ));
        }
        Ok(UserOnly {
            descriptor: LocalMem(descriptor),
        })
    }

    pub(super) fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.descriptor.0,
            bInheritHandle: 0,
        }
    }
}
