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
    if hex.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut sig = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).map_err(|_| SignatureError::Malformed)?;
        sig[i] = u8::from_str_radix(s, 16).map_err(|_| SignatureError::Malformed)?;
    }
    if (now - timestamp).abs() > MAX_SKEW_SECS {
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
}
