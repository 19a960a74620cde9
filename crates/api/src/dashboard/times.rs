//! Times as an operator reads them: in the backfill's own zone (its windows are in that zone,
//! so "opens Thu 22:00" means what the schedule says), with the exact instant in UTC on
//! hover. Every time is a `<time datetime=…>` element carrying its zone, so the page-wide
//! switch in `dashboard.js` can show all of them in UTC or in the viewer's zone instead,
//! without a round trip; without JavaScript the server's text stands. A time that is about the
//! viewer rather than the backfill (an ETA read beside its backfill-zone text) is a
//! [`viewer`] element, which the script shows in the viewer's own zone.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::view;

/// One instant, ready for a page.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    /// RFC 3339 in UTC (the element's `datetime`).
    pub iso: String,
    /// The zone it is shown in (an IANA name).
    pub zone: String,
    /// `Thu 3 Dec 22:00 GMT`, in `zone`.
    pub text: String,
    /// `2026-12-03 22:00:00 UTC`, the hover text.
    pub utc: String,
}

/// The zone named `tz`, or UTC when the name is not one (stored zones are validated; this
/// only keeps a page from failing).
fn zone(tz: &str) -> (TimeZone, &str) {
    match TimeZone::get(tz) {
        Ok(z) => (z, tz),
        Err(_) => (TimeZone::UTC, "UTC"),
    }
}

/// `t` shown in the zone `tz`.
pub fn when(t: Timestamp, tz: &str) -> When {
    let (z, name) = zone(tz);
    When {
        iso: t.to_string(),
        zone: name.to_owned(),
        text: t.to_zoned(z).strftime("%a %-d %b %H:%M %Z").to_string(),
        utc: t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

/// `Thu 22:00 Europe/London`: when a window opens, named by its zone as the schedule is.
pub fn opening(t: Timestamp, tz: &str) -> String {
    let (z, name) = zone(tz);
    format!("{} {name}", t.to_zoned(z).strftime("%a %H:%M"))
}

/// "waiting for window — opens Thu 22:00 Europe/London (in 27 h)".
pub fn waiting_text(opens: Timestamp, tz: &str, now: Timestamp) -> String {
    format!(
        "waiting for window — opens {} (in {})",
        opening(opens, tz),
        view::human_duration(opens.duration_since(now))
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `<time>` element (`{{ w|safe }}` in a template).
impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"<time datetime="{}" data-zone="{}" title="{}">{}</time>"#,
            escape(&self.iso),
            escape(&self.zone),
            escape(&self.utc),
            escape(&self.text)
        )
    }
}

/// `t` for the viewer: a `<time data-viewer>` element the page's script shows in the viewer's
/// own zone (in UTC when the switch says UTC); its server text is UTC, which names itself.
pub fn viewer(t: Timestamp) -> String {
    let w = when(t, "UTC");
    format!(
        r#"<time datetime="{}" data-zone="UTC" data-viewer title="{}">{}</time>"#,
        escape(&w.iso),
        escape(&w.utc),
        escape(&w.text)
    )
}

/// A relative time (`5 min ago`) whose hover gives the instant, in a `<time>` element the
/// switch leaves alone (`data-relative`).
pub fn relative(t: Timestamp, now: Timestamp, tz: &str) -> String {
    let w = when(t, tz);
    format!(
        r#"<time datetime="{}" data-relative title="{} · {}">{}</time>"#,
        escape(&w.iso),
        escape(&w.text),
        escape(&w.utc),
        escape(&view::relative(t, now))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_backfill_zone_with_utc_on_hover() {
        let t: Timestamp = "2026-12-03T11:00:00Z".parse().unwrap();
        let w = when(t, "Australia/Sydney");
        assert_eq!(w.text, "Thu 3 Dec 22:00 AEDT");
        assert_eq!(w.utc, "2026-12-03 11:00:00 UTC");
        assert_eq!(
            w.to_string(),
            r#"<time datetime="2026-12-03T11:00:00Z" data-zone="Australia/Sydney" title="2026-12-03 11:00:00 UTC">Thu 3 Dec 22:00 AEDT</time>"#
        );
        assert_eq!(when(t, "Not/AZone").zone, "UTC");
        let now: Timestamp = "2026-12-02T08:00:00Z".parse().unwrap();
        assert_eq!(
            waiting_text(t, "Australia/Sydney", now),
            "waiting for window — opens Thu 22:00 Australia/Sydney (in 1 d 3 h)"
        );
        assert!(relative(t, now, "UTC").contains(">in 1 d 3 h</time>"));
        assert_eq!(
            viewer(t),
            r#"<time datetime="2026-12-03T11:00:00Z" data-zone="UTC" data-viewer title="2026-12-03 11:00:00 UTC">Thu 3 Dec 11:00 UTC</time>"#
        );
    }
}
