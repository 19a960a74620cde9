//! What a client may write on a ticket, and how a written value is checked.
//!
//! Each PSA has one table of writable fields in its own names ([`Dialect::fields`]), rather than
//! "any field of the row": a real PSA refuses read-only fields (`id`, `ticketNumber`, the dates
//! it keeps itself), and a connector that sends one must fail here as it would there. A reference
//! (status, priority, board / queue / team, member) must name a record of the data set, and
//! brings along the fields that depend on it (a status its closed flag and closing date, a
//! priority its name), so that a later filter on either sees a consistent row.

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::data::{Board, Dataset, Member, Priority, Status, View};
use crate::eval::parse_datetime;

/// The kind of value a writable field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Text,
    /// Any JSON number.
    Number,
    Integer,
    Bool,
    /// A datetime in any spelling [`parse_datetime`] reads, stored in the PSA's own format.
    DateTime,
    /// A status id.
    Status,
    /// A priority id.
    Priority,
    /// A board (ConnectWise) / queue (Autotask) id.
    Board,
    /// A board name (Halo's `team`).
    BoardName,
    /// A member / resource / agent id (`0` is "unassigned" where the field is nullable).
    Member,
    /// A member identifier (ConnectWise `owner/identifier`).
    MemberIdentifier,
    /// The 1-based id of one of these names (ConnectWise `type/id`: the row holds `{id, name}`).
    Named(&'static [&'static str]),
}

/// One writable field: its name as the client sends it and as the row holds it (`/`-separated
/// for ConnectWise's nested fields), matched case-insensitively.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub nullable: bool,
}

pub(crate) const fn field(name: &'static str, kind: FieldKind, nullable: bool) -> Field {
    Field {
        name,
        kind,
        nullable,
    }
}

/// A checked value, references resolved.
#[derive(Debug)]
pub(crate) enum Resolved {
    Value(Value),
    Status(Status),
    Priority(Priority),
    Board(Board),
    Member(Option<Member>),
    Named(u64, &'static str),
}

/// How one PSA's ticket rows take writes.
pub(crate) struct Dialect {
    pub fields: &'static [Field],
    /// The path of the row's concurrency token (`_info/lastUpdated`, `lastActivityDate`,
    /// `last_update`).
    pub token: &'static str,
    /// Other paths stamped with the token on every change.
    pub also_stamped: &'static [&'static str],
    /// The PSA's datetime format.
    pub datetime: fn(Timestamp) -> String,
    /// Puts a checked value into the row with the fields that follow from it; the instant is
    /// the change's (a closing date takes it).
    pub set: fn(&mut Value, &Field, Resolved, Timestamp),
    /// The key of a note's ticket id (`ticketId`, `ticketID`, `ticket_id`).
    pub note_ticket: &'static str,
}

impl Dialect {
    pub(crate) fn of(view: View) -> &'static Dialect {
        match view {
            View::ConnectWise => &super::cw::DIALECT,
            View::Autotask => &super::at::DIALECT,
            View::Halo => &super::halo::DIALECT,
        }
    }

    /// The writable field `name` (case-insensitive, a leading `/` ignored).
    pub(crate) fn field(&self, name: &str) -> Option<&'static Field> {
        let name = name.strip_prefix('/').unwrap_or(name);
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Checks `v` against the field, resolving references in `data`; the error names the field.
    pub(crate) fn resolve(&self, data: &Dataset, f: &Field, v: &Value) -> Result<Resolved, String> {
        use FieldKind as K;
        let unassigned = f.kind == K::Member && v.as_u64() == Some(0);
        if v.is_null() || (unassigned && f.nullable) {
            return match (f.nullable, f.kind) {
                (false, _) => Err(format!("{} is required and cannot be null.", f.name)),
                (true, K::Member | K::MemberIdentifier) => Ok(Resolved::Member(None)),
                (true, _) => Ok(Resolved::Value(Value::Null)),
            };
        }
        let want = |what: &str| format!("{} must be {what}, not {v}.", f.name);
        let missing = |what: &str, key: &dyn std::fmt::Display| {
            format!("{}: there is no {what} {key}.", f.name)
        };
        let id = || v.as_u64().ok_or_else(|| want("an integer id"));
        let text = || v.as_str().ok_or_else(|| want("a string"));
        Ok(match f.kind {
            K::Text => Resolved::Value(json!(text()?)),
            K::Number if v.is_number() => Resolved::Value(v.clone()),
            K::Number => return Err(want("a number")),
            K::Integer if v.is_i64() || v.is_u64() => Resolved::Value(v.clone()),
            K::Integer => return Err(want("an integer")),
            K::Bool if v.is_boolean() => Resolved::Value(v.clone()),
            K::Bool => return Err(want("true or false")),
            K::DateTime => {
                let t = v.as_str().and_then(parse_datetime);
                Resolved::Value(json!((self.datetime)(t.ok_or_else(|| want("a datetime"))?)))
            }
            K::Status => {
                let id = id()?;
                let s = data.statuses.iter().find(|s| s.id == id);
                Resolved::Status(s.ok_or_else(|| missing("status with id", &id))?.clone())
            }
            K::Priority => {
                let id = id()?;
                let p = data.priorities.iter().find(|p| p.id == id);
                Resolved::Priority(p.ok_or_else(|| missing("priority with id", &id))?.clone())
            }
            K::Board => {
                let id = id()?;
                let b = data.boards.iter().find(|b| b.id == id);
                Resolved::Board(b.ok_or_else(|| missing("board with id", &id))?.clone())
            }
            K::BoardName => {
                let name = text()?;
                let b = data
                    .boards
                    .iter()
                    .find(|b| b.name.eq_ignore_ascii_case(name));
                Resolved::Board(b.ok_or_else(|| missing("team named", &name))?.clone())
            }
            K::Member => {
                let id = id()?;
                let m = data.members.iter().find(|m| m.id == id);
                Resolved::Member(Some(
                    m.ok_or_else(|| missing("member with id", &id))?.clone(),
                ))
            }
            K::Named(names) => {
                let id = id()?;
                let name = usize::try_from(id)
                    .ok()
                    .and_then(|i| names.get(i.checked_sub(1)?));
                Resolved::Named(id, name.ok_or_else(|| missing("value with id", &id))?)
            }
            K::MemberIdentifier => {
                let key = text()?;
                let m = data
                    .members
                    .iter()
                    .find(|m| m.identifier.eq_ignore_ascii_case(key));
                Resolved::Member(Some(m.ok_or_else(|| missing("member", &key))?.clone()))
            }
        })
    }
}

/// The value at a `/`-separated path (a leading `/` ignored), each key matched case-insensitively.
pub(crate) fn get_ci<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/').try_fold(row, |cur, seg| match cur {
        Value::Object(m) => m.get(seg).or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                .map(|(_, v)| v)
        }),
        _ => None,
    })
}

/// Sets the value at a `/`-separated canonical path, creating objects on the way.
pub(crate) fn put(row: &mut Value, path: &str, v: Value) {
    let mut cur = row;
    let mut segs = path.split('/').peekable();
    while let Some(seg) = segs.next() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Value::Object(m) = cur else { return };
        if segs.peek().is_none() {
            m.insert(seg.to_string(), v);
            return;
        }
        cur = m.entry(seg).or_insert_with(|| json!({}));
    }
}

/// Whether a value read earlier still holds: equal JSON, equal numbers, or strings naming the
/// same instant (`…Z` and `….000Z` are one time).
pub(crate) fn same(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) if a != b => {
            matches!((parse_datetime(a), parse_datetime(b)), (Some(x), Some(y)) if x == y)
        }
        _ => actual == expected,
    }
}

/// The closing date a status change implies: `None` when closedness does not change, else the
/// new date (the change's instant when it closes, null when it reopens).
pub(crate) fn closing(
    was_closed: bool,
    status: &Status,
    at: Timestamp,
) -> Option<Option<Timestamp>> {
    (was_closed != status.closed).then(|| status.closed.then_some(at))
}

/// A datetime field's value.
pub(crate) fn time(t: Option<Timestamp>, f: fn(Timestamp) -> String) -> Value {
    t.map_or(Value::Null, |t| Value::String(f(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sameness() {
        let mut row = json!({"_info": {"lastUpdated": "2025-01-01T00:00:00Z"}});
        assert_eq!(
            get_ci(&row, "/_INFO/lastupdated"),
            Some(&json!("2025-01-01T00:00:00Z"))
        );
        assert_eq!(get_ci(&row, "_info/nope"), None);
        put(&mut row, "priority/id", json!(3));
        assert_eq!(row["priority"]["id"], 3);
        assert!(same(
            &json!("2025-01-01T00:00:00Z"),
            &json!("2025-01-01T00:00:00.000Z")
        ));
        assert!(same(&json!(3), &json!(3.0)));
        assert!(!same(
            &json!("2025-01-01T00:00:01Z"),
            &json!("2025-01-01T00:00:00Z")
        ));
        assert!(!same(&json!("a"), &json!("b")));
    }
}
