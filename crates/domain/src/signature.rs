//! Webhook signatures: `X-Neo-Signature: sha256=<hex>` is HMAC-SHA256 with the workflow secret
//! over `"{timestamp}.{body}"`, where `timestamp` (Unix seconds) is sent as `X-Neo-Timestamp`.
//! Used on the requests the service sends to webhook executors and on the completions they post back.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signed timestamp may be from now, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value `sha256=<hex>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let bytes = mac(secret, timestamp, body).finalize().into_bytes();
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

/// Verifies a signature in constant time and checks the timestamp against `now` (Unix seconds).
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
) -> Result<(), SignatureError> {
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
    mac(secret, timestamp, body)
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = sign(b"secret", 1_000, b"{}");
        assert!(s.starts_with("sha256="));
        assert_eq!(verify(b"secret", 1_000, b"{}", &s, 1_100), Ok(()));
        assert_eq!(
            verify(b"other", 1_000, b"{}", &s, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", 1_000, b"{ }", &s, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", 1_000, b"{}", &s, 1_400),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"secret", 1_000, b"{}", "md5=00", 1_000),
            Err(SignatureError::Malformed)
        );
    }

    /// Found by the `completion` fuzz target's seeds: an extreme `X-Neo-Timestamp` overflowed
    /// the skew check (a panic in debug builds) instead of being stale.
    #[test]
    fn extreme_timestamps_are_stale() {
        for ts in [i64::MIN, i64::MAX, -1] {
            let s = sign(b"secret", ts, b"{}");
            assert_eq!(
                verify(b"secret", ts, b"{}", &s, 1_764_000_000),
                Err(SignatureError::Stale),
                "{ts}"
            );
        }
    }

    /// A sign inside the hex (`+a` for `0a`) is another spelling of the same MAC: refused.
    #[test]
    fn only_the_canonical_hex_verifies() {
        let s = sign(b"secret", 1_000, b"{}");
        let hex = &s["sha256=".len()..];
        let pos = (0..64)
            .step_by(2)
            .find(|&i| &hex[i..i + 1] == "0")
            .expect("a byte below 0x10");
        let mut other = hex.to_owned();
        other.replace_range(pos..pos + 1, "+");
        assert!(u8::from_str_radix(&other[pos..pos + 2], 16).is_ok());
        assert_eq!(
            verify(b"secret", 1_000, b"{}", &format!("sha256={other}"), 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(
                b"secret",
                1_000,
                b"{}",
                &s.to_uppercase().replace("SHA256=", "sha256="),
                1_000
            ),
            Ok(())
        );
    }
}
