//! What a ConnectWise condition may name on each resource: field paths with their types, and
//! aliases. Every schema but the custom fields' is built from the resource's compile table
//! ([`crate::records::fields::cw`]), so that the simulator accepts exactly the names the
//! connector's compiler may send, and refuses others as ConnectWise does.

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::records::Kind;

/// The type of a field in a [`Schema`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Number,
    Text,
    Bool,
    Datetime,
    /// A reference object (`board`, `owner`): only `= null` / `!= null` are meaningful.
    Object,
    /// Typed at run time (custom field `value`).
    Any,
}

impl From<Kind> for FieldType {
    fn from(k: Kind) -> FieldType {
        match k {
            Kind::Number => FieldType::Number,
            Kind::Text => FieldType::Text,
            Kind::Bool => FieldType::Bool,
            Kind::DateTime => FieldType::Datetime,
        }
    }
}

/// The fields a condition may name, with aliases (`dateEntered` → `_info/dateEntered`).
pub(crate) struct Schema {
    pub fields: Cow<'static, [(&'static str, FieldType)]>,
    pub aliases: &'static [(&'static str, &'static str)],
}

/// The condition names of the `_info` dates every record carries.
const INFO_ALIASES: &[(&str, &str)] = &[
    ("dateEntered", "_info/dateEntered"),
    ("lastUpdated", "_info/lastUpdated"),
];

impl Schema {
    /// A resource's schema from its compile table's fields: the `_info` aliases stand for
    /// themselves, and each reference (`company` of `company/id`) is an object field, so that
    /// `company = null` and `fields=company` work on every resource.
    pub(crate) fn from_fields(fields: &[(&'static str, Kind)]) -> Schema {
        let mut out: Vec<(&'static str, FieldType)> = Vec::with_capacity(fields.len() + 16);
        for &(name, kind) in fields {
            if INFO_ALIASES.iter().any(|(alias, _)| *alias == name) {
                continue;
            }
            if let Some((prefix, _)) = name.rsplit_once('/') {
                if prefix != "_info" && !out.iter().any(|(n, _)| *n == prefix) {
                    out.push((prefix, FieldType::Object));
                }
            }
            out.push((name, kind.into()));
        }
        Schema {
            fields: Cow::Owned(out),
            aliases: INFO_ALIASES,
        }
    }

    /// Resolves a user-written path (any case) to its canonical spelling and type.
    pub(crate) fn resolve(&self, raw: &str) -> Option<(&'static str, FieldType)> {
        let target = self
            .aliases
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(raw))
            .map_or(raw, |(_, canonical)| *canonical);
        self.fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(target))
            .copied()
    }
}

/// Fields of `/service/tickets` usable in `conditions`, `orderBy` and `fields`: its compile table's.
pub(crate) static TICKET_SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::from_fields(crate::records::fields::cw::TICKET));

/// Fields of one `customFields[]` item, for `customFieldConditions`.
pub(crate) static CUSTOM_FIELD_SCHEMA: Schema = Schema {
    fields: Cow::Borrowed(&[
        ("id", FieldType::Number),
        ("caption", FieldType::Text),
        ("type", FieldType::Text),
        ("entryMethod", FieldType::Text),
        ("numberOfDecimals", FieldType::Number),
        ("value", FieldType::Any),
    ]),
    aliases: &[],
};

/// Tickets have no child collections in the simulator, so any `childConditions` field is unknown.
pub(crate) static NO_CHILD_SCHEMA: Schema = Schema {
    fields: Cow::Borrowed(&[]),
    aliases: &[],
};
