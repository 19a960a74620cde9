//! An explicit entity id list as a person pastes it: a spreadsheet column (one id a line), ids
//! separated by commas (or semicolons, tabs), or a JSON array. The API's `filter_spec.entity_ids`
//! takes only a JSON array of distinct strings and refuses a duplicate, which is right for a
//! program; a person pasting ticket numbers gets the list read the way they wrote it, trimmed,
//! empties dropped and duplicates removed, and is *told* how many were removed
//! ([`IdList::notice`]) rather than refused. Each id must still pass the API's rule
//! ([`crate::filter::is_entity_id`]); the result is what `entity_ids` is built from.

use serde_json::Value;

use crate::filter::{is_entity_id, MAX_ENTITY_IDS};

/// A pasted list, read: distinct ids in the order first given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdList {
    pub ids: Vec<String>,
    /// Ids dropped because they were already in the list.
    pub duplicates: usize,
}

impl IdList {
    /// What reading changed, in words ("2 duplicates removed"); `None` when nothing was removed.
    pub fn notice(&self) -> Option<String> {
        match self.duplicates {
            0 => None,
            1 => Some("1 duplicate removed".to_owned()),
            n => Some(format!("{n} duplicates removed")),
        }
    }
}

/// Reads a pasted id list (see the module doc). The error says in words what is wrong and, for
/// one id, which one (its position among the ids given, counting from 1).
pub fn parse_id_list(text: &str) -> Result<IdList, String> {
    let text = text.trim();
    let raw: Vec<String> = if text.starts_with('[') {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "The list starts with [ but is not a JSON array ({e}); paste one id a line instead"
            )
        })?;
        let Value::Array(items) = v else {
            unreachable!("a JSON text starting with [ is an array")
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.trim().to_owned()),
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
                other => Err(format!(
                    "Id {} of the JSON array is {other}, not a string or a whole number",
                    i + 1
                )),
            })
            .collect::<Result<_, _>>()?
    } else {
        text.split(['\n', '\r', ',', ';', '\t'])
            .map(|s| unquote(s.trim()).trim().to_owned())
            .collect()
    };
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    let mut duplicates = 0;
    for (i, id) in raw.into_iter().filter(|s| !s.is_empty()).enumerate() {
        if !is_entity_id(&id) {
            let shown: String = id.chars().take(24).collect();
            let more = if shown.len() < id.len() { "…" } else { "" };
            return Err(format!(
                "Id {} (\u{201c}{shown}{more}\u{201d}) is not an entity id: ids are at most 64 characters, without control characters",
                i + 1
            ));
        }
        if seen.insert(id.clone()) {
            ids.push(id);
        } else {
            duplicates += 1;
        }
    }
    if ids.is_empty() {
        return Err(
            "No entity id given: paste ids one a line, separated by commas, or as a JSON array"
                .to_owned(),
        );
    }
    if ids.len() > MAX_ENTITY_IDS {
        return Err(format!(
            "{} distinct ids given; a backfill takes at most {MAX_ENTITY_IDS}",
            ids.len()
        ));
    }
    Ok(IdList { ids, duplicates })
}

/// `"1001"` or `'1001'` without its quotes (a list copied from code or a CSV export).
fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<String> {
        parse_id_list(text).unwrap().ids
    }

    #[test]
    fn lines_commas_and_json_arrays_read_alike() {
        let want = vec!["1001", "1002", "T-3"];
        assert_eq!(ids("1001\n1002\nT-3\n"), want);
        assert_eq!(
            ids("  1001\r\n\r\n 1002 \r\nT-3"),
            want,
            "a spreadsheet column"
        );
        assert_eq!(ids("1001, 1002,,T-3"), want);
        assert_eq!(ids("1001;1002\tT-3"), want);
        assert_eq!(ids("\"1001\", '1002', \"T-3\""), want, "quoted");
        assert_eq!(ids(r#"["1001", " 1002 ", "T-3"]"#), want);
        assert_eq!(ids("[1001, 1002, \"T-3\"]"), want, "numbers become strings");
        assert_eq!(
            ids("ticket one\nticket two"),
            vec!["ticket one", "ticket two"]
        );
    }

    #[test]
    fn duplicates_are_removed_and_counted() {
        let l = parse_id_list("1\n2\n1\n3\n2\n").unwrap();
        assert_eq!(l.ids, vec!["1", "2", "3"]);
        assert_eq!(l.duplicates, 2);
        assert_eq!(l.notice().as_deref(), Some("2 duplicates removed"));
        let l = parse_id_list(r#"["7", "7"]"#).unwrap();
        assert_eq!(l.notice().as_deref(), Some("1 duplicate removed"));
        assert_eq!(parse_id_list("1,2").unwrap().notice(), None);
    }

    #[test]
    fn bad_lists_say_why_in_words() {
        for (text, says) in [
            ("", "No entity id given"),
            (" \n , \n", "No entity id given"),
            ("[]", "No entity id given"),
            ("[1, 2", "not a JSON array"),
            ("[1, {\"id\": 2}]", "Id 2 of the JSON array is {\"id\":2}"),
            ("[1.5]", "not a string or a whole number"),
        ] {
            let e = parse_id_list(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let long = format!("1\n{}", "x".repeat(65));
        let e = parse_id_list(&long).unwrap_err();
        assert!(e.starts_with("Id 2 (\u{201c}xxxx"), "{e}");
        assert!(e.contains("at most 64 characters"), "{e}");
        let e = parse_id_list("a\u{7}b").unwrap_err();
        assert!(e.contains("control characters"), "{e}");
    }

    #[test]
    fn the_api_limit_holds() {
        let many: String = (0..=MAX_ENTITY_IDS).map(|i| format!("{i}\n")).collect();
        let e = parse_id_list(&many).unwrap_err();
        assert!(e.contains("at most 100000"), "{e}");
    }
}
