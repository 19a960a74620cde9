//! Text from outside (an executor's error, a PSA's ticket number, a completion's error) before
//! it is stored. Such text reaches every tenant's shared machinery (the settle transaction,
//! logs, the dashboard), so it is made harmless first: NUL and other control characters
//! removed (PostgreSQL refuses NUL in text, and one refused outcome must not stall settling),
//! and the length capped at [`MAX_STORED_TEXT`] bytes with an ellipsis. Newlines and tabs are
//! kept: error reports are often several lines.

use std::borrow::Cow;

/// Longest stored external text, in bytes (UTF-8), ellipsis included.
pub const MAX_STORED_TEXT: usize = 4096;

const ELLIPSIS: &str = "…";

fn unwanted(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `s` without control characters (but `\n` and `\t`), at most [`MAX_STORED_TEXT`] bytes, cut
/// on a character boundary and ended with `…` when cut. Borrowed when nothing changes.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_STORED_TEXT && !s.chars().any(unwanted) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(MAX_STORED_TEXT));
    let mut chars = s.chars().filter(|c| !unwanted(*c)).peekable();
    while let Some(c) = chars.next() {
        let room = MAX_STORED_TEXT - out.len();
        // Keep room for the ellipsis unless this is the last character and it fits.
        let last = chars.peek().is_none();
        if c.len_utf8() > room || (!last && c.len_utf8() + ELLIPSIS.len() > room) {
            out.push_str(ELLIPSIS);
            return Cow::Owned(out);
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// [`sanitize`] from raw bytes: invalid UTF-8 becomes U+FFFD first.
pub fn sanitize_bytes(b: &[u8]) -> String {
    sanitize(&String::from_utf8_lossy(b)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn controls_go_newlines_stay_long_text_is_cut() {
        assert_eq!(sanitize("bad\u{0}thing"), "badthing");
        assert_eq!(sanitize("a\u{1b}[31mred\u{7f}"), "a[31mred");
        assert_eq!(sanitize("line 1\nline\t2"), "line 1\nline\t2");
        assert!(matches!(sanitize("plain"), Cow::Borrowed("plain")));
        let long = "é".repeat(5000);
        let s = sanitize(&long);
        assert!(
            s.len() <= MAX_STORED_TEXT && s.ends_with('…'),
            "{}",
            s.len()
        );
        assert_eq!(sanitize_bytes(b"ok\xff\x00"), "ok\u{fffd}");
        let exact = "x".repeat(MAX_STORED_TEXT);
        assert_eq!(sanitize(&exact), exact);
    }

    proptest! {
        #[test]
        fn always_storable(s in any::<String>(), pad in 0usize..6000) {
            let input = format!("{s}{}", "y".repeat(pad));
            let out = sanitize(&input);
            prop_assert!(out.len() <= MAX_STORED_TEXT);
            prop_assert!(!out.chars().any(unwanted));
            prop_assert!(!out.contains('\0'));
            if input.len() <= MAX_STORED_TEXT && !input.chars().any(unwanted) {
                prop_assert_eq!(out.as_ref(), input.as_str());
            }
        }
    }
}
