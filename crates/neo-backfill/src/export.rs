//! `export`: a backfill's items and their outcomes, for records and client reports.
//!
//! The values come from outside (entity ids and numbers from a PSA or an id list, error texts
//! from executors and PSAs), and a CSV file is usually opened in a spreadsheet: a cell starting
//! with `=`, `+`, `-`, `@` (or a tab or carriage return) would be taken as a formula there, so
//! such a CSV value is written with a leading `'` (CSV formula injection). JSON lines carry the
//! values as they are stored: their readers are programs. Items are read page by page with the
//! store's keyset listing, so a backfill of millions of items never sits in memory; a backfill
//! still running is exported as its pages are read, not as of one instant.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use neo_domain::clock::rfc3339;
use neo_store::{Item, ItemFilter};
use serde_json::json;

use crate::args::{redact_url, DbArgs};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The backfill to export (its id, `bf_…`).
    #[arg(long, env = "NEO_EXPORT_BACKFILL")]
    pub backfill: String,
    /// `csv` or `jsonl` (one JSON object per line).
    #[arg(long, env = "NEO_EXPORT_FORMAT", default_value = "csv", value_parser = ["csv", "jsonl"])]
    pub format: String,
    /// Write to this new file (never overwritten) instead of stdout.
    #[arg(long, env = "NEO_EXPORT_OUT")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
}

/// Items read per query.
const PAGE: usize = 1000;

/// The columns, in order (also the JSON members).
const COLUMNS: [&str; 9] = [
    "entity_id",
    "entity_number",
    "status",
    "attempts",
    "error",
    "execution_id",
    "updated_at",
    "next_attempt_at",
    "summary",
];

fn cells(i: &Item) -> [String; 9] {
    [
        i.entity_id.clone(),
        i.entity_number.clone().unwrap_or_default(),
        i.status.as_str().to_owned(),
        i.attempts.to_string(),
        i.error.clone().unwrap_or_default(),
        i.execution_id.clone().unwrap_or_default(),
        rfc3339(i.updated_at),
        i.next_attempt_at.map(rfc3339).unwrap_or_default(),
        i.summary.clone().unwrap_or_default(),
    ]
}

/// One CSV field (RFC 4180): a value a spreadsheet would read as a formula gets a leading
/// `'`; a value holding a quote, a comma or a line break is quoted, its quotes doubled.
pub fn csv_field(value: &str) -> String {
    let guarded = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if guarded.contains(['"', ',', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn json_line(i: &Item) -> anyhow::Result<String> {
    let v = json!({
        "entity_id": i.entity_id,
        "entity_number": i.entity_number,
        "status": i.status.as_str(),
        "attempts": i.attempts,
        "error": i.error,
        "execution_id": i.execution_id,
        "updated_at": rfc3339(i.updated_at),
        "next_attempt_at": i.next_attempt_at.map(rfc3339),
        "summary": i.summary,
    });
    let mut line = serde_json::to_string(&v)?;
    line.push('\n');
    Ok(line)
}

pub async fn export(a: ExportArgs) -> anyhow::Result<()> {
    let url = &a.db.database_url;
    // Looked up before the store opens: opening would create (and migrate) a database that
    // is not there.
    let Some(tenant) = neo_store::backup::backfill_tenant(url, &a.backfill)
        .await
        .with_context(|| format!("reading {}", redact_url(url)))?
    else {
        bail!(
            "there is no backfill {:?} in the database at {}",
            a.backfill,
            redact_url(url)
        );
    };
    let store = neo_store::connect(url)
        .await
        .with_context(|| format!("opening {}", redact_url(url)))?;
    let backfill = store
        .backfill(&tenant, &a.backfill)
        .await?
        .with_context(|| format!("backfill {:?} was deleted meanwhile", a.backfill))?;

    // To a file: written beside it and named when complete, so a partial export never looks
    // like a whole one.
    let tmp = a
        .out
        .as_deref()
        .map(|p| neo_store::backup::temporary_beside(p, "export"));
    if let Some(out) = &a.out {
        neo_store::backup::check_new_file(out, "export")?;
    }
    let mut sink: Box<dyn Write + Send> = match &tmp {
        Some(t) => Box::new(std::io::BufWriter::new(
            std::fs::File::create_new(t).with_context(|| format!("creating {}", t.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let csv = a.format == "csv";
    let written = async {
        if csv {
            let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
            sink.write_all(csv_line(&header).as_bytes())?;
        }
        let (mut after, mut n) = (None, 0u64);
        loop {
            let page = store
                .list_items(&tenant, &a.backfill, &ItemFilter::default(), after, PAGE)
                .await?;
            for i in &page.items {
                let line = if csv {
                    csv_line(&cells(i))
                } else {
                    json_line(i)?
                };
                sink.write_all(line.as_bytes())?;
                n += 1;
            }
            after = page.items.last().map(|i| i.ord);
            if !page.has_more || after.is_none() {
                break;
            }
        }
        sink.flush()?;
        Ok::<_, anyhow::Error>(n)
    }
    .await;
    drop(sink);
    let published = written.and_then(|n| match (&tmp, &a.out) {
        (Some(t), Some(out)) => neo_store::backup::publish(t, out).map(|()| n),
        _ => Ok(n),
    });
    if let (Err(_), Some(t)) = (&published, &tmp) {
        let _ = std::fs::remove_file(t);
    }
    let n = published?;
    // The data may be on stdout: the summary goes to stderr.
    eprintln!(
        "exported {n} items of backfill {} ({}) as {}{}",
        backfill.id,
        backfill.state,
        a.format,
        a.out
            .as_deref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_guarded() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(
            csv_field("=cmd|' /C calc'!A0,\"x\""),
            "\"'=cmd|' /C calc'!A0,\"\"x\"\"\""
        );
        assert_eq!(csv_field("a=b"), "a=b", "only a leading sign is a formula");
    }
}
