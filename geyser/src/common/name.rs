//! Endpoint names: the one rule every transport applies before it turns a name into a socket
//! path, a pipe path or a bootstrap service name.

use super::{Error, Result};

/// Longest endpoint name, in bytes.
pub const MAX_ENDPOINT_NAME: usize = 64;

/// Checks an endpoint name: 1 to [`MAX_ENDPOINT_NAME`] ASCII letters, digits, `.`, `_` or `-`,
/// not starting with `.` ([`Error::InvalidArgument`] otherwise, quoting at most 128
/// characters of it).
pub fn check_endpoint_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ENDPOINT_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        what: "endpoint name",
        reason: format!(
            "`{}`: use 1 to {MAX_ENDPOINT_NAME} of A-Z a-z 0-9 . _ - (not starting with .)",
            name.chars().take(2 * MAX_ENDPOINT_NAME).collect::<String>()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "camera-1", "x.y_z", &"n".repeat(MAX_ENDPOINT_NAME)] {
            assert!(check_endpoint_name(good).is_ok(), "{good}");
        }
        let long = "n".repeat(MAX_ENDPOINT_NAME + 1);
        for bad in ["", ".hidden", "a/b", "sp ace", "é", long.as_str()] {
            assert!(
                matches!(check_endpoint_name(bad), Err(Error::InvalidArgument { .. })),
                "{bad}"
            );
        }
        let huge = "/".repeat(10_000);
        let Err(Error::InvalidArgument { reason, .. }) = check_endpoint_name(&huge) else {
            panic!("accepted");
        };
        assert!(
            reason.len() < 300,
            "the error quotes a bounded part of the name"
        );
    }
}
