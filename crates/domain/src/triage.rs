//! Failure triage (issue 22): what a failure's error says once its specifics are masked (its
//! *signature*), what kind of failure it is, and which failures a "rerun this cause" takes.
//!
//! 1,400 failed tickets are rarely 1,400 problems: usually a validation error that names a
//! different ticket each time, a timeout, a connection refused. Masking the ids, numbers,
//! UUIDs, e-mail addresses, quoted values and timestamps of each error turns them into a few
//! signatures the operator can read and act on (rerun the timeouts, fix the workflow for the
//! rest). The kind comes from the HTTP status the execution got, else from the fixed words our
//! executors and connectors write their errors in (`the executor did not answer within …`).
//! Pure, so the API, the dashboard and the store (which picks a rerun's entities) agree.

use serde::{Deserialize, Serialize};

crate::backfill::string_enum!(
    /// What kind of failure an error is: `timeout` (no answer in time), `throttled` (HTTP 429),
    /// `http_4xx`, `http_5xx` (the executor's answer), `connection` (could not connect, or
    /// the connection broke), `executor_error` (the executor answered but reported failure, or
    /// its target is refused), `psa_rejected` (the PSA refused a read or write),
    /// `psa_unavailable` (the PSA could not be reached after retries), `other`.
    #[schema(title = "FailureKind")]
    FailureKind {
        Timeout => "timeout",
        Throttled => "throttled",
        Http4xx => "http_4xx",
        Http5xx => "http_5xx",
        Connection => "connection",
        ExecutorError => "executor_error",
        PsaRejected => "psa_rejected",
        PsaUnavailable => "psa_unavailable",
        Other => "other",
    }
);

/// An error's kind, from the HTTP status its execution got (if any) and its words.
pub fn classify(error: &str, http_status: Option<u16>) -> FailureKind {
    let e = error.to_ascii_lowercase();
    if e.contains("did not answer within")
        || e.contains("timed out")
        || e.contains("before the deadline")
    {
        return FailureKind::Timeout;
    }
    if e.contains("could not be reached") || e.contains("broke the connection") {
        return FailureKind::Connection;
    }
    if e.contains("the psa is unavailable") {
        return FailureKind::PsaUnavailable;
    }
    if e.contains("the psa refused") {
        return FailureKind::PsaRejected;
    }
    let status = http_status.or_else(|| status_in(&e));
    match status {
        Some(429) => FailureKind::Throttled,
        Some(408) => FailureKind::Timeout,
        Some(s) if (400..500).contains(&s) => FailureKind::Http4xx,
        Some(s) if (500..600).contains(&s) => FailureKind::Http5xx,
        _ if e.starts_with("the executor") => FailureKind::ExecutorError,
        _ => FailureKind::Other,
    }
}

/// The status after "http " in an error's (lower-cased) words.
fn status_in(e: &str) -> Option<u16> {
    let at = e.find("http ")? + 5;
    let digits: String = e[at..].chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 3).then(|| digits.parse().ok()).flatten()
}

/// An error with its specifics masked: quoted values become `"…"`, UUIDs `<uuid>`, e-mail
/// addresses `<email>`, timestamps and dates `<time>`, numbers `<n>` and any other word with
/// a digit in it (`T00013`, `ex_019ad3…`) `<id>`. The status after `HTTP` is kept (a 502 is
/// not a 504). Idempotent.
pub fn signature(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let chars: Vec<char> = error.chars().collect();
    let mut i = 0;
    let mut after_http = false;
    while i < chars.len() {
        let c = chars[i];
        if let Some(close) = closing_quote(c) {
            if let Some(len) = chars[i + 1..].iter().position(|d| *d == close) {
                let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                if inner == "…" || inner.is_empty() {
                    out.push(c);
                    out.push_str(&inner);
                    out.push(close);
                } else {
                    out.push(c);
                    out.push('…');
                    out.push(close);
                }
                i += len + 2;
                after_http = false;
                continue;
            }
        }
        if is_word(c) {
            let start = i;
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            // Sentence punctuation is not part of the word.
            let mut end = i;
            while end > start && matches!(chars[end - 1], '.' | ':' | '-' | '+' | '/') {
                end -= 1;
            }
            let word: String = chars[start..end].iter().collect();
            let tail: String = chars[end..i].iter().collect();
            let keep = after_http && word.len() == 3 && word.chars().all(|d| d.is_ascii_digit());
            after_http = word.eq_ignore_ascii_case("http");
            out.push_str(&if keep { word } else { mask(&word) });
            out.push_str(&tail);
            continue;
        }
        if !c.is_whitespace() {
            after_http = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn closing_quote(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '\'' => Some('\''),
        '`' => Some('`'),
        '“' => Some('”'),
        '‘' => Some('’'),
        '«' => Some('»'),
        _ => None,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@' | '+' | '/')
}

/// One word, masked if it is specific.
fn mask(word: &str) -> String {
    if word.is_empty() || (word.starts_with('<') && word.ends_with('>')) {
        return word.to_owned();
    }
    if is_uuid(word) {
        return "<uuid>".into();
    }
    if let Some((user, domain)) = word.split_once('@') {
        if !user.is_empty() && domain.contains('.') {
            return "<email>".into();
        }
    }
    if is_time(word) {
        return "<time>".into();
    }
    if word
        .chars()
        .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
    {
        return "<n>".into();
    }
    if word.chars().any(|c| c.is_ascii_digit()) {
        return "<id>".into();
    }
    word.to_owned()
}

fn is_uuid(w: &str) -> bool {
    let parts: Vec<&str> = w.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `2026-12-03`, `2026-12-03T22:00:00Z`, `22:00:05`: a date or a time of day.
fn is_time(w: &str) -> bool {
    let b = w.as_bytes();
    let date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    let clock = b.len() >= 5
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit);
    date || clock
}

/// Which failures a rerun takes: those whose signature or kind is listed (either list may be
/// empty; both empty takes every failure, as rerun-failed without a body does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(title = "RerunCauses")]
pub struct Causes {
    #[serde(default)]
    pub error_signatures: Vec<String>,
    #[serde(default)]
    pub failure_kinds: Vec<FailureKind>,
}

impl Causes {
    pub fn is_empty(&self) -> bool {
        self.error_signatures.is_empty() && self.failure_kinds.is_empty()
    }

    /// Whether a failure with `error` and `http_status` is one of these causes.
    pub fn matches(&self, error: &str, http_status: Option<u16>) -> bool {
        self.is_empty()
            || self.failure_kinds.contains(&classify(error, http_status))
            || self.error_signatures.iter().any(|s| *s == signature(error))
    }
}

/// One failed entity, as triage reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<T> {
    pub entity_id: String,
    pub error: String,
    pub http_status: Option<u16>,
    pub at: T,
}

/// Failures sharing a signature and a kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster<T> {
    pub signature: String,
    pub kind: FailureKind,
    pub count: u64,
    /// The first failure's error as it was.
    pub sample_error: String,
    /// The first few entities (in the order given).
    pub sample_entities: Vec<String>,
    pub first_seen: T,
    pub last_seen: T,
}

/// Entities a cluster names as samples.
pub const SAMPLE_ENTITIES: usize = 5;

/// The clusters of `failures`, most frequent first (ties: by signature).
pub fn clusters<T: Copy + Ord>(failures: &[Failure<T>]) -> Vec<Cluster<T>> {
    let mut by: std::collections::HashMap<(String, FailureKind), Cluster<T>> =
        std::collections::HashMap::new();
    for f in failures {
        let sig = signature(&f.error);
        let kind = classify(&f.error, f.http_status);
        let c = by.entry((sig.clone(), kind)).or_insert_with(|| Cluster {
            signature: sig,
            kind,
            count: 0,
            sample_error: f.error.clone(),
            sample_entities: Vec::new(),
            first_seen: f.at,
            last_seen: f.at,
        });
        c.count += 1;
        if c.sample_entities.len() < SAMPLE_ENTITIES {
            c.sample_entities.push(f.entity_id.clone());
        }
        c.first_seen = c.first_seen.min(f.at);
        c.last_seen = c.last_seen.max(f.at);
    }
    let mut out: Vec<Cluster<T>> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.signature.cmp(&b.signature))
            .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn specifics_are_masked() {
        assert_eq!(
            signature(
                "the executor answered HTTP 422: ticket 1234 is locked by jane.doe@example.com"
            ),
            "the executor answered HTTP 422: ticket <n> is locked by <email>"
        );
        assert_eq!(
            signature("record T00013 (id 550e8400-e29b-41d4-a716-446655440000) changed at 2026-12-03T22:00:05Z"),
            "record <id> (id <uuid>) changed at <time>"
        );
        assert_eq!(
            signature("field 'Summary' must not be \"x\"; board “Help Desk” is closed."),
            "field '…' must not be \"…\"; board “…” is closed."
        );
        assert_eq!(
            signature("the executor did not answer within 30000 ms"),
            "the executor did not answer within <n> ms"
        );
        assert_eq!(
            signature("the executor could not be reached"),
            "the executor could not be reached"
        );
    }

    #[test]
    fn kinds_come_from_the_status_and_the_words() {
        let k = |e: &str, s: Option<u16>| classify(e, s);
        assert_eq!(
            k("the executor did not answer within 30000 ms", None),
            FailureKind::Timeout
        );
        assert_eq!(
            k("the executor answered HTTP 504", Some(504)),
            FailureKind::Http5xx
        );
        assert_eq!(
            k("the executor answered HTTP 504", None),
            FailureKind::Http5xx
        );
        assert_eq!(
            k("the executor answered HTTP 429", None),
            FailureKind::Throttled
        );
        assert_eq!(
            k("the executor answered HTTP 422: nope", Some(422)),
            FailureKind::Http4xx
        );
        assert_eq!(
            k("the executor could not be reached", None),
            FailureKind::Connection
        );
        assert_eq!(
            k("the executor broke the connection", None),
            FailureKind::Connection
        );
        assert_eq!(
            k("the executor reported failure", Some(200)),
            FailureKind::ExecutorError
        );
        assert_eq!(
            k(
                "the PSA refused the request: ticket: the PSA answered HTTP 400 (request refused)",
                None
            ),
            FailureKind::PsaRejected
        );
        assert_eq!(
            k("the PSA is unavailable: HTTP 503", None),
            FailureKind::PsaUnavailable
        );
        assert_eq!(k("something else", None), FailureKind::Other);
    }

    #[test]
    fn clusters_count_and_sort() {
        let f = |id: &str, e: &str, s: Option<u16>, at: i64| Failure {
            entity_id: id.into(),
            error: e.into(),
            http_status: s,
            at,
        };
        let failures = vec![
            f(
                "1",
                "the executor answered HTTP 422: ticket 1 is invalid",
                Some(422),
                5,
            ),
            f("2", "the executor answered HTTP 504", Some(504), 3),
            f(
                "3",
                "the executor answered HTTP 422: ticket 3 is invalid",
                Some(422),
                1,
            ),
            f("4", "the executor could not be reached", None, 2),
            f(
                "5",
                "the executor answered HTTP 422: ticket 5 is invalid",
                Some(422),
                9,
            ),
        ];
        let c = clusters(&failures);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0].signature,
            "the executor answered HTTP 422: ticket <n> is invalid"
        );
        assert_eq!((c[0].kind, c[0].count), (FailureKind::Http4xx, 3));
        assert_eq!(c[0].sample_entities, ["1", "3", "5"]);
        assert_eq!((c[0].first_seen, c[0].last_seen), (1, 9));
        assert_eq!(
            c[0].sample_error,
            "the executor answered HTTP 422: ticket 1 is invalid"
        );
        let causes = Causes {
            error_signatures: vec![c[0].signature.clone()],
            failure_kinds: vec![FailureKind::Connection],
        };
        let taken: Vec<&str> = failures
            .iter()
            .filter(|f| causes.matches(&f.error, f.http_status))
            .map(|f| f.entity_id.as_str())
            .collect();
        assert_eq!(taken, ["1", "3", "4", "5"]);
        assert!(Causes::default().matches("anything", None));
    }

    proptest! {
        #[test]
        fn a_signature_is_stable_and_blind_to_specifics(
            a in 0u64..1_000_000_000,
            b in 0u64..1_000_000_000,
            user in "[a-z]{1,8}",
            quoted in "[A-Za-z0-9 ]{0,12}",
            text in "\\PC{0,60}",
        ) {
            let tpl = |n: u64, m: u64, u: &str, q: &str| {
                format!("ticket {n} (T{m:05}) of {u}@example.com: field 'x{q}' at 2026-01-0{}T10:00:00Z", n % 9 + 1)
            };
            prop_assert_eq!(signature(&tpl(a, b, &user, &quoted)), signature(&tpl(b, a, "zed", "other")));
            let s = signature(&text);
            prop_assert_eq!(signature(&s), s);
        }
    }
}
