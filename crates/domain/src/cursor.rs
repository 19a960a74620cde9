//! Opaque, tamper-evident keyset cursors: `base64url(json) . base64url(hmac)`.
//! A cursor names the last row of the previous page and the list it belongs to; a cursor that
//! does not decode, whose signature does not match, or that belongs to another list is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;

#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this server issued for this list")]
pub struct InvalidCursor;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// Which list the cursor belongs to (e.g. `backfills`, `items:<backfill id>`).
    l: String,
    k: T,
}

impl CursorCodec {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key length");
        m.update(payload);
        m
    }

    pub fn encode<T: Serialize>(&self, list: &str, key: &T) -> String {
        let payload = serde_json::to_vec(&Envelope {
            l: list.to_owned(),
            k: key,
        })
        .expect("cursor keys serialize");
        let sig = self.mac(&payload).finalize().into_bytes();
        format!("{}.{}", B64.encode(&payload), B64.encode(sig))
    }

    pub fn decode<T: DeserializeOwned>(
        &self,
        list: &str,
        cursor: &str,
    ) -> Result<T, InvalidCursor> {
        let (p, s) = cursor.split_once('.').ok_or(InvalidCursor)?;
        let payload = B64.decode(p).map_err(|_| InvalidCursor)?;
        let sig = B64.decode(s).map_err(|_| InvalidCursor)?;
        self.mac(&payload)
            .verify_slice(&sig)
            .map_err(|_| InvalidCursor)?;
        let env: Envelope<T> = serde_json::from_slice(&payload).map_err(|_| InvalidCursor)?;
        if env.l != list {
            return Err(InvalidCursor);
        }
        Ok(env.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let c = CursorCodec::new(b"k".to_vec());
        let s = c.encode("backfills", &("bf_1".to_string(), 7i64));
        let back: (String, i64) = c.decode("backfills", &s).unwrap();
        assert_eq!(back, ("bf_1".to_string(), 7));
        assert!(c.decode::<(String, i64)>("items", &s).is_err());
        let mut t = s.clone();
        t.replace_range(0..1, if &s[0..1] == "A" { "B" } else { "A" });
        assert!(c.decode::<(String, i64)>("backfills", &t).is_err());
        assert!(c.decode::<(String, i64)>("backfills", "garbage").is_err());
        let other = CursorCodec::new(b"other".to_vec());
        assert!(other.decode::<(String, i64)>("backfills", &s).is_err());
    }
}
