//! Bodies of the fuzz targets over this crate (`fuzz/fuzz_targets/`), replayed on the committed
//! corpora by the normal test suite (`crates/neo-backfill/tests/fuzz_corpus.rs`), so the two cannot
//! drift. Each takes the fuzzer's raw input and panics when an invariant breaks.

use axum::http::{HeaderMap, HeaderValue};
use neo_domain::backfill::ExecutionStatus;
use neo_domain::signature::{self, SignatureError};

use crate::auth::{bearer_token, hash_key, parse_key, KEY_PREFIX};
use crate::extract::parse_json;
use crate::routes::executions::{
    completion_outcome, completion_signature, CompleteExecutionRequest,
};

/// `bearer`: the `Authorization` header value of every authenticated request. Invariants: no
/// panic; an accepted token is non-empty and trimmed, and `Bearer <token>` gives it back; a
/// token that parses as an API key formats back to itself; the Entra path's header decoding
/// takes any token.
pub fn bearer(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let Some(token) = bearer_token(&value) else {
        let v = value.to_str().unwrap_or("");
        assert!(
            !(v.starts_with("Bearer ") || v.starts_with("bearer ")) || v[7..].trim().is_empty(),
            "a Bearer header with a token was refused: {v:?}"
        );
        return;
    };
    assert!(!token.is_empty() && token.trim() == token, "{token:?}");
    let again = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
    assert_eq!(
        bearer_token(&again),
        Some(token),
        "Bearer <token> round trip"
    );
    match parse_key(token) {
        Some(parts) => {
            assert_eq!(
                parts.to_string(),
                token,
                "an API key formats back to itself"
            );
            assert!(matches!(parts.env, "live" | "test"));
            assert_eq!(token.len(), KEY_PREFIX.len() + parts.env.len() + 1 + 40);
            assert_ne!(hash_key(token), hash_key(&token.to_ascii_uppercase()));
        }
        None => {
            // Entra ID: the header is decoded before any key lookup; it must only fail.
            let _ = jsonwebtoken::decode_header(token);
        }
    }
}

/// The secret and "now" the `completion` target verifies against.
pub const COMPLETION_SECRET: &[u8] = b"whsec_fuzzing_secret_0123456789";
pub const COMPLETION_NOW: i64 = 1_764_000_000;
/// The execution the `completion` target's messages are about.
pub const COMPLETION_EXECUTION: &str = "ex_0190000000007000800000000000fuzz";

/// `completion`: `POST /public-api/executions/{id}/complete`. The input is three parts separated by
/// the first two newlines: the `X-Neo-Timestamp` value, the `X-Neo-Signature` value, the body.
/// Invariants: no panic; every rejection is a 4xx; a signature verifies only when it is the
/// canonical `sign(...)` (hex in any case) and the timestamp is within the skew; the body is read
/// as the handler reads it, and a `failed` outcome always carries an error.
pub fn completion(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (Some(ts), Some(sig)) = (parts.next(), parts.next()) else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [("x-neo-timestamp", ts), ("x-neo-signature", sig)] {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    let request: Result<CompleteExecutionRequest, _> = parse_json(body);
    if let Err(e) = &request {
        assert!(e.status.is_client_error(), "{} for a bad body", e.status);
    }
    match completion_signature(&headers) {
        Err(e) => assert_eq!(e.status.as_u16(), 401),
        Ok((ts, sig)) => {
            let signed = signature::Signed {
                timestamp: ts,
                direction: signature::Direction::Complete,
                execution_id: COMPLETION_EXECUTION,
                body,
            };
            let canonical = signature::sign(
                COMPLETION_SECRET,
                ts,
                signature::Direction::Complete,
                COMPLETION_EXECUTION,
                body,
            );
            let verdict = signature::verify(COMPLETION_SECRET, signed, sig, COMPLETION_NOW);
            let fresh = ts
                .checked_sub(COMPLETION_NOW)
                .is_some_and(|d| d.abs() <= 300);
            match verdict {
                Ok(()) => {
                    assert!(
                        sig.eq_ignore_ascii_case(&canonical),
                        "{sig:?} verified, but the signature is {canonical:?}"
                    );
                    assert!(fresh, "a stale timestamp {ts} verified");
                }
                Err(SignatureError::Stale) => assert!(!fresh),
                Err(_) => {}
            }
            // The canonical signature of this very body and timestamp verifies iff fresh.
            assert_eq!(
                signature::verify(COMPLETION_SECRET, signed, &canonical, COMPLETION_NOW).is_ok(),
                fresh
            );
        }
    }
    if let Ok(req) = request {
        let had_error = req.error.clone();
        match completion_outcome(req) {
            Ok((ExecutionStatus::Succeeded, error)) => assert_eq!(error, None),
            Ok((ExecutionStatus::Failed, error)) => {
                let error = error.expect("a failed outcome has an error");
                if let Some(e) = had_error {
                    assert_eq!(error, e);
                }
            }
            Ok((other, _)) => panic!("a completion reported {other:?}"),
            Err(e) => assert_eq!(e.status.as_u16(), 422),
        }
    }
}
