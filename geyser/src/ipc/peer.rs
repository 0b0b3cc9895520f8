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
    /// These uids (Unix only; a Windows connection refuses it with `Error::Unsupported`). An
    /// empty list admits nobody (e.g. `ProducerOptions::trusted` with no trusted peer).
    Uids(Vec<u32>),
}

impl std::str::FromStr for PeerPolicy {
    type Err = crate::Error;

    /// `same-user`, `any-user`, `uids:1000,1001`, or `none` (no uid: nobody).
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = |why: String| crate::Error::InvalidArgument {
            what: "peer policy",
            reason: format!("`{s}`: {why}; use same-user, any-user, uids:UID[,UID…] or none"),
        };
        match s.to_ascii_lowercase().as_str() {
            "same-user" | "same" => Ok(PeerPolicy::SameUser),
            "any-user" | "any" => Ok(PeerPolicy::AnyUser),
            "none" => Ok(PeerPolicy::Uids(Vec::new())),
            other => {
                let list = other
                    .strip_prefix("uids:")
                    .ok_or_else(|| bad("unknown policy".into()))?;
                list.split(',')
                    .map(|u| u.trim().parse::<u32>().map_err(|e| bad(e.to_string())))
                    .collect::<crate::Result<Vec<_>>>()
                    .map(PeerPolicy::Uids)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_from_their_names() {
        assert_eq!(
            "same-user".parse::<PeerPolicy>().unwrap(),
            PeerPolicy::SameUser
        );
        assert_eq!("ANY".parse::<PeerPolicy>().unwrap(), PeerPolicy::AnyUser);
        assert_eq!(
            "none".parse::<PeerPolicy>().unwrap(),
            PeerPolicy::Uids(vec![])
        );
        assert_eq!(
            "uids:1000, 1001".parse::<PeerPolicy>().unwrap(),
            PeerPolicy::Uids(vec![1000, 1001])
        );
        let e = "uids:x".parse::<PeerPolicy>().unwrap_err().to_string();
        assert!(e.contains("same-user"), "{e}");
        assert!("everyone".parse::<PeerPolicy>().is_err());
    }
}
