//! Who is at the other end of a connection, and who may be: the same types on every platform;
//! each transport fills and checks them (the Unix socket, or the Windows pipe).

/// Who is at the other end of a connection. On Unix from the socket's `SO_PEERCRED`; on
/// Windows the pipe's process id (the peer's user is checked by SID, see [`PeerPolicy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: u32,
    /// User id.
    #[cfg(unix)]
    pub uid: u32,
    /// Group id.
    #[cfg(unix)]
    pub gid: u32,
}

/// Which peers a connection accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PeerPolicy {
    /// Only processes of our own user (the default): the same effective uid on Unix, the same
    /// token user SID on Windows.
    #[default]
    SameUser,
    /// Anyone who can reach the endpoint. On Windows the pipe's DACL still admits only the
    /// current user.
    AnyUser,
    /// These uids (Unix only; a Windows connection refuses it with `Error::Unsupported`).
    Uids(Vec<u32>),
}
