//! Templates of field values and note texts: literal text and `{{path}}` placeholders, parsed
//! once when the workflow is written so that a run only looks values up.
//!
//! A template that is exactly one placeholder copies the value with its JSON type, so
//! `"{{priority/id}}"` writes a number into a number field; anything else is text. Placeholder
//! paths take `.` or `/` between segments (`{{company.name}}` is `{{company/name}}`): people
//! write the one they know from other tools, and both mean the PSA's nested object.

use serde_json::Value;

use super::{is_field_path, value_at, Context, WritableFields};

/// Longest template, in characters (a field value's text or a note's).
pub const MAX_TEMPLATE_CHARS: usize = 4000;

/// A parsed template: the text as written (its stored form) and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Read(Source),
}

/// What a placeholder reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A field of the record, as a `/`-separated path in the provider's spelling.
    Record(String),
    BackfillId,
    EntityId,
    WorkflowId,
}

/// Why a template could not be rendered for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// The record lacks the path, or holds null there.
    Missing(String),
    /// The path holds an object or an array, which is no value to write or print.
    NotScalar(String),
}

impl Template {
    /// Parses `s`; the error is the message of a [`crate::FieldError`] at the template's path.
    pub(crate) fn parse(s: &str, fields: &dyn WritableFields) -> Result<Self, String> {
        if s.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(format!(
                "a template has at most {MAX_TEMPLATE_CHARS} characters"
            ));
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                let at = s[..s.len() - rest.len() + open].chars().count();
                return Err(format!(
                    "unmatched {{{{ at character {at}: every {{{{ needs a closing }}}} (there is no escaping)"
                ));
            };
            parts.push(Part::Read(placeholder(&after[..close], fields)?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self {
            source: s.to_owned(),
            parts,
        })
    }

    /// The template as written: what is stored and shown.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The source of a template that is exactly one placeholder (it copies a typed value).
    pub fn whole_placeholder(&self) -> Option<&Source> {
        match self.parts.as_slice() {
            [Part::Read(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether the template reads anything (else it is a literal string).
    pub fn has_placeholders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Read(_)))
    }

    /// The record fields the template reads, in order (with repeats).
    pub fn record_reads(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Read(Source::Record(path)) => Some(path.as_str()),
            _ => None,
        })
    }

    /// The value the template gives for `record`: a copied value for a whole placeholder,
    /// otherwise a string.
    pub(crate) fn render(&self, record: &Value, ctx: &Context) -> Result<Value, RenderError> {
        match self.whole_placeholder() {
            Some(src) => lookup(src, record, ctx),
            None => self.render_text(record, ctx).map(Value::String),
        }
    }

    /// The template as text (a note's), a whole placeholder included.
    pub(crate) fn render_text(&self, record: &Value, ctx: &Context) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Read(src) => match lookup(src, record, ctx)? {
                    Value::String(s) => out.push_str(&s),
                    Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Ok(out)
    }
}

fn placeholder(inner: &str, fields: &dyn WritableFields) -> Result<Source, String> {
    let name = inner.trim();
    if name.is_empty() {
        return Err("empty placeholder {{}}: name a field, e.g. {{summary}}".into());
    }
    let path = name.replace('.', "/");
    if !is_field_path(&path) {
        return Err(format!(
            "{{{{{inner}}}}} does not name a field (segments of letters, digits and _ joined by . or /)"
        ));
    }
    Ok(match path.as_str() {
        "backfill_id" => Source::BackfillId,
        "entity_id" => Source::EntityId,
        "workflow_id" => Source::WorkflowId,
        _ if fields.readable(&path) => Source::Record(fields.canonical(&path)),
        _ => {
            return Err(format!(
                "template reads unknown field {path} for {}",
                fields.describe()
            ))
        }
    })
}

fn lookup(src: &Source, record: &Value, ctx: &Context) -> Result<Value, RenderError> {
    let path = match src {
        Source::BackfillId => return Ok(Value::String(ctx.backfill_id.clone())),
        Source::EntityId => return Ok(Value::String(ctx.entity_id.clone())),
        Source::WorkflowId => return Ok(Value::String(ctx.workflow_id.clone())),
        Source::Record(path) => path,
    };
    match value_at(record, path) {
        None | Some(Value::Null) => Err(RenderError::Missing(path.clone())),
        Some(Value::Array(_) | Value::Object(_)) => Err(RenderError::NotScalar(path.clone())),
        Some(v) => Ok(v.clone()),
    }
}
