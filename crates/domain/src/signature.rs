//! Webhook signatures. `X-Neo-Signature: sha256=<hex>` is HMAC-SHA256 with the workflow's
//! webhook secret over
//!
//! ```text
//! {timestamp}.{direction}.{execution_id}.{body}
//! ```
//!
//! where `timestamp` (Unix seconds) is sent as `X-Neo-Timestamp`, `direction` says which message
//! it is ([`Direction`]: `execution` and `cancel` are what the service sends to the executor,
//! `complete` is what the executor posts back, `event` is a notification to a tenant's
//! endpoint) and `execution_id` is the execution the message is about (for an `event`, the
//! event's id). Binding both means a captured message cannot be replayed as another kind of
//! message or for another execution: a completion signed for execution X never settles Y, and a
//! request the service sent is never accepted back as a completion.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signed timestamp may be from now, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// Which message a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The service asks the executor to run an execution.
    Execution,
    /// The service tells the executor an accepted execution was cancelled.
    Cancel,
    /// The executor reports an execution's outcome (`POST /executions/{id}/complete`).
    Complete,
    /// The service notifies an endpoint of an event (the signed id is the event's id).
    Event,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Execution => "execution",
            Direction::Cancel => "cancel",
            Direction::Complete => "complete",
            Direction::Event => "event",
        }
    }
}

fn mac(
    secret: &[u8],
    timestamp: i64,
    direction: Direction,
    execution_id: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(direction.as_str().as_bytes());
    m.update(b".");
    m.update(execution_id.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value `sha256=<hex>`.
pub fn sign(
    secret: &[u8],
    timestamp: i64,
    direction: Direction,
    execution_id: &str,
    body: &[u8],
) -> String {
    let bytes = mac(secret, timestamp, direction, execution_id, body)
        .finalize()
        .into_bytes();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signed timestamp is too far from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// The message a signature is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: i64,
    pub direction: Direction,
    pub execution_id: &'a str,
    pub body: &'a [u8],
}

/// Verifies a signature in constant time and checks the timestamp against `now` (Unix seconds).
pub fn verify(secret: &[u8], m: Signed<'_>, header: &str, now: i64) -> Result<(), SignatureError> {
    let timestamp = m.timestamp;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    // Hex digits only: `from_str_radix` alone also takes a sign (`+f`), which would let
    // another spelling of the same MAC verify.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed);
    }
    let mut sig = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).map_err(|_| SignatureError::Malformed)?;
        sig[i] = u8::from_str_radix(s, 16).map_err(|_| SignatureError::Malformed)?;
    }
    // `abs_diff`: any i64 timestamp, however far, is only stale (a subtraction overflowed).
    if now.abs_diff(timestamp) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    mac(secret, timestamp, m.direction, m.execution_id, m.body)
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(ts: i64, id: &str, body: &'static [u8]) -> Signed<'static> {
        let id: &'static str = Box::leak(id.to_owned().into_boxed_str());
        Signed {
            timestamp: ts,
            direction: Direction::Complete,
            execution_id: id,
            body,
        }
    }

    #[test]
    fn sign_and_verify() {
        let s = sign(b"secret", 1_000, Direction::Complete, "ex_1", b"{}");
        assert!(s.starts_with("sha256="));
        let ok = completion(1_000, "ex_1", b"{}");
        assert_eq!(verify(b"secret", ok, &s, 1_100), Ok(()));
        assert_eq!(
            verify(b"other", ok, &s, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", completion(1_000, "ex_1", b"{ }"), &s, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(b"secret", ok, &s, 1_400), Err(SignatureError::Stale));
        assert_eq!(
            verify(b"secret", ok, "md5=00", 1_000),
            Err(SignatureError::Malformed)
        );
    }

    /// A completion signed for one execution does not verify for another, and a message the
    /// service sent (direction `execution` or `cancel`) does not verify as a completion.
    #[test]
    fn signatures_are_bound_to_the_execution_and_the_direction() {
        let s = sign(b"secret", 1_000, Direction::Complete, "ex_X", b"{}");
        assert_eq!(
            verify(b"secret", completion(1_000, "ex_Y", b"{}"), &s, 1_000),
            Err(SignatureError::Mismatch)
        );
        for d in [Direction::Execution, Direction::Cancel] {
            let sent = sign(b"secret", 1_000, d, "ex_X", b"{}");
            assert_eq!(
                verify(b"secret", completion(1_000, "ex_X", b"{}"), &sent, 1_000),
                Err(SignatureError::Mismatch),
                "{d:?}"
            );
        }
    }

    /// Found by the `completion` fuzz target's seeds: an extreme `X-Neo-Timestamp` overflowed
    /// the skew check (a panic in debug builds) instead of being stale.
    #[test]
    fn extreme_timestamps_are_stale() {
        for ts in [i64::MIN, i64::MAX, -1] {
            let s = sign(b"secret", ts, Direction::Complete, "ex_1", b"{}");
            assert_eq!(
                verify(b"secret", completion(ts, "ex_1", b"{}"), &s, 1_764_000_000),
                Err(SignatureError::Stale),
                "{ts}"
            );
        }
    }

    /// A sign inside the hex (`+a` for `0a`) is another spelling of the same MAC: refused.
    #[test]
    fn only_the_canonical_hex_verifies() {
        let s = sign(b"secret", 1_000, Direction::Complete, "ex_1", b"{}");
        let m = completion(1_000, "ex_1", b"{}");
        let hex = &s["sha256=".len()..];
        let pos = (0..64)
            .step_by(2)
            .find(|&i| &hex[i..i + 1] == "0")
            .expect("a byte below 0x10");
        let mut other = hex.to_owned();
        other.replace_range(pos..pos + 1, "+");
        assert!(u8::from_str_radix(&other[pos..pos + 2], 16).is_ok());
        assert_eq!(
            verify(b"secret", m, &format!("sha256={other}"), 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(
                b"secret",
                m,
                &s.to_uppercase().replace("SHA256=", "sha256="),
                1_000
            ),
            Ok(())
        );
    }
}
