//! The one place that knows where a field of the create request is entered in the wizard and
//! what a person calls it. The API's rules answer with a JSON path and a message written for
//! a program (`daily_execution_windows.monday[0].run_start_time`, `max_in_flight must be from 1
//! to 100`); the wizard shows each next to its input, in words ("Monday's first window: start
//! time …", "Max in flight must be from 1 to 100"), and marks that input. Every message the
//! wizard shows for a field comes through [`Problem::of`], whichever check found it (a step's
//! check, the preflight, the windows summary or the create itself).

/// How the wizard's form was filled in, which decides the input a path points at.
#[derive(Debug, Clone, Default)]
pub(super) struct FormShape {
    /// `builder`, `json` or `ids` (step 2's filter tabs).
    pub(super) filter_mode: String,
    /// Per weekday (Monday first), the form row of each window the request holds: rows left
    /// empty are not sent, so `monday[1]` may be the third row.
    pub(super) window_rows: [Vec<usize>; 7],
}

/// Something to fix, at its step, next to its input when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub(super) step: u8,
    /// The id of the input (or input group) in the wizard page.
    pub(super) input: Option<String>,
    pub(super) text: String,
    /// A page that helps: `(href, words)`.
    pub(super) link: Option<(String, String)>,
}

/// A remark about an input that is not a problem ("2 duplicates removed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Note {
    pub(super) input: String,
    pub(super) text: String,
}

/// What one check says about one step: its problems and notes (none: the step is fine). A
/// fragment carrying it replaces every mark the wizard shows on that step.
#[derive(Debug, Clone, Default)]
pub(super) struct StepMarks {
    /// 1 to 4.
    pub(super) step: u8,
    pub(super) problems: Vec<Problem>,
    pub(super) notes: Vec<Note>,
}

impl StepMarks {
    pub(super) fn new(step: u8) -> Self {
        Self {
            step,
            ..Default::default()
        }
    }

    /// Adds a problem, unless its input has one already (an input shows one problem at a
    /// time, and its error element's id is unique).
    pub(super) fn push(&mut self, p: Problem) {
        if p.input.is_none() || !self.problems.iter().any(|q| q.input == p.input) {
            self.problems.push(p);
        }
    }
}

impl Problem {
    /// A problem the wizard found itself, in words already.
    pub(super) fn at(step: u8, input: Option<&str>, text: impl Into<String>) -> Self {
        Self {
            step,
            input: input.map(str::to_owned),
            text: text.into(),
            link: None,
        }
    }

    /// The API's `(field, message)` as the wizard shows it.
    pub(super) fn of(field: &str, message: &str, shape: &FormShape) -> Self {
        let place = place(field, shape);
        let message = rename_members(&translate_paths(message, shape));
        let text = match place.leaf {
            Some(leaf) if message.starts_with("\"\" ") => {
                format!(
                    "{}: the {leaf} is missing; give a time as HH:MM",
                    place.words
                )
            }
            Some(leaf) if message.starts_with('"') => {
                format!("{}: {leaf} {message}", place.words)
            }
            // "max in flight must be …" names its field already.
            _ if message.to_lowercase().contains(&place.words.to_lowercase()) => {
                capitalise(&message)
            }
            _ => format!("{}: {message}", place.words),
        };
        Self {
            step: place.step,
            input: place.input,
            text,
            link: None,
        }
    }
}

/// Where a path is entered: its step, input, words, and the member of a window it names.
struct Place {
    step: u8,
    input: Option<String>,
    words: String,
    leaf: Option<&'static str>,
}

fn place(field: &str, shape: &FormShape) -> Place {
    let at = |step, input: Option<&str>, words: &str| Place {
        step,
        input: input.map(str::to_owned),
        words: words.to_owned(),
        leaf: None,
    };
    match field {
        "target_workflow_id" | "entity_type" | "workflow" => {
            return at(1, Some("workflow-choices"), "Workflow")
        }
        "timezone" => return at(3, Some("timezone"), "Time zone"),
        "max_in_flight" => return at(3, Some("max_in_flight"), "Max in flight"),
        "name" => return at(4, Some("name"), "Name"),
        "start_at" => return at(3, Some("start_at"), "Start at"),
        "max_credits" => return at(3, Some("max_credits"), "Credit cap"),
        "trial" | "trial.sample_size" => {
            return at(3, Some("trial_sample_size"), "Trial sample size")
        }
        "mode" => return at(4, Some("shadow"), "Shadow run"),
        _ => {}
    }
    if let Some(rest) = field.strip_prefix("filter_spec") {
        let input = match (shape.filter_mode.as_str(), rest) {
            ("ids", _) => "entity_ids_text",
            ("builder", ".limit") => "rb-limit",
            ("builder", _) => "builder",
            _ => "filter_spec",
        };
        return at(2, Some(input), &filter_words(rest));
    }
    if let Some(rest) = field.strip_prefix("daily_execution_windows") {
        return window_place(rest, shape);
    }
    at(4, None, field)
}

/// `.entity_ids[2]` → "Entity id 3"; `.conditions.rules[0].rules[1].value` → "Rule 1.2 (value)".
fn filter_words(rest: &str) -> String {
    if rest.is_empty() {
        return "The filter".into();
    }
    if let Some(ids) = rest.strip_prefix(".entity_ids") {
        return match index(ids) {
            Some((i, _)) => format!("Entity id {}", i + 1),
            None => "Entity ids".into(),
        };
    }
    if rest == ".limit" {
        return "Limit".into();
    }
    let Some(mut tree) = rest.strip_prefix(".conditions") else {
        return format!("The filter ({})", rest.trim_start_matches('.'));
    };
    let mut numbers = Vec::new();
    while let Some(r) = tree.strip_prefix(".rules") {
        match index(r) {
            Some((i, after)) => {
                numbers.push((i + 1).to_string());
                tree = after;
            }
            None => break,
        }
    }
    let member = match tree.trim_start_matches('.') {
        "" => String::new(),
        m => match m.split_once('[') {
            Some((name, i)) => {
                let n = i
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .map_or(0, |n| n + 1);
                format!(" ({name} {n})")
            }
            None => format!(" ({m})"),
        },
    };
    if numbers.is_empty() {
        format!("The rules{member}")
    } else {
        format!("Rule {}{member}", numbers.join("."))
    }
}

/// `[3]…` → `(3, "…")`.
fn index(s: &str) -> Option<(usize, &str)> {
    let (n, after) = s.strip_prefix('[')?.split_once(']')?;
    Some((n.parse().ok()?, after))
}

const ORDINALS: [&str; 10] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

fn window_place(rest: &str, shape: &FormShape) -> Place {
    let whole = Place {
        step: 3,
        input: Some("windows-editor".into()),
        words: "Windows".into(),
        leaf: None,
    };
    let Some(rest) = rest.strip_prefix('.') else {
        return whole;
    };
    let Some((day, after)) = rest.split_once('[') else {
        return whole;
    };
    let Some(d) = neo_domain::windows::WEEKDAYS.iter().position(|w| *w == day) else {
        return whole;
    };
    let Some((k, leaf)) = index(&format!("[{after}")).map(|(k, l)| (k, l.to_owned())) else {
        return whole;
    };
    let row = shape.window_rows[d].get(k).copied().unwrap_or(k);
    let (part, leaf) = match leaf.as_str() {
        ".run_end_time" => ("end", Some("end time")),
        ".run_start_time" => ("start", Some("start time")),
        _ => ("start", None),
    };
    let ordinal = ORDINALS
        .get(k)
        .map_or_else(|| format!("window {}", k + 1), |o| format!("{o} window"));
    Place {
        step: 3,
        input: Some(format!("{day}_{part}_{row}")),
        words: format!("{}'s {ordinal}", capitalise(day)),
        leaf,
    }
}

/// Replaces the JSON paths inside a message ("overlaps daily_execution_windows.monday[0]")
/// with their words.
fn translate_paths(message: &str, shape: &FormShape) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = ["daily_execution_windows.", "filter_spec."]
            .iter()
            .filter_map(|p| rest.find(p))
            .min();
        let Some(at) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let len = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ';' | ',' | ')'))
            .unwrap_or(rest.len() - at);
        let words = place(&rest[at..at + len], shape).words;
        // Mid-sentence, "Monday's first window" stays capitalised; "The filter" does not.
        out.push_str(&match words.strip_prefix("The ") {
            Some(w) => format!("the {w}"),
            None => words,
        });
        rest = &rest[at + len..];
    }
}

/// The request's member names as the wizard labels them.
fn rename_members(message: &str) -> String {
    [
        ("run_start_time", "the start time"),
        ("run_end_time", "the end time"),
        ("max_in_flight", "max in flight"),
        ("daily_execution_windows", "the windows"),
        ("entity_ids", "entity ids"),
        ("filter_spec", "the filter"),
        ("timezone", "time zone"),
        ("start_at", "start at"),
        ("max_credits", "the credit cap"),
        ("or null for no cap", "or empty for no cap"),
        ("trial.sample_size", "the trial sample size"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (name, words)| {
        m.replace(name, words)
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(mode: &str) -> FormShape {
        FormShape {
            filter_mode: mode.into(),
            ..Default::default()
        }
    }

    #[test]
    fn window_paths_become_the_row_and_words() {
        let mut s = shape("json");
        // Monday's second row was left empty: the request's monday[1] is the third row.
        s.window_rows[0] = vec![0, 2];
        let p = Problem::of(
            "daily_execution_windows.monday[0].run_start_time",
            "\"25:00\" is not a time of day as HH:MM or HH:MM:SS",
            &s,
        );
        assert_eq!(p.step, 3);
        assert_eq!(p.input.as_deref(), Some("monday_start_0"));
        assert_eq!(
            p.text,
            "Monday's first window: start time \"25:00\" is not a time of day as HH:MM or HH:MM:SS"
        );
        let p = Problem::of(
            "daily_execution_windows.monday[1]",
            "overlaps daily_execution_windows.monday[0]; a day's windows must not overlap",
            &s,
        );
        assert_eq!(p.input.as_deref(), Some("monday_start_2"));
        assert_eq!(
            p.text,
            "Monday's second window: overlaps Monday's first window; a day's windows must not overlap"
        );
        let p = Problem::of(
            "daily_execution_windows.sunday[0].run_end_time",
            "run_end_time must differ from run_start_time (an empty window never opens)",
            &s,
        );
        assert_eq!(p.input.as_deref(), Some("sunday_end_0"));
        assert_eq!(
            p.text,
            "Sunday's first window: the end time must differ from the start time (an empty window never opens)"
        );
        let p = Problem::of(
            "daily_execution_windows.friday[0].run_end_time",
            "\"\" is not a time of day as HH:MM or HH:MM:SS",
            &s,
        );
        assert_eq!(
            p.text,
            "Friday's first window: the end time is missing; give a time as HH:MM"
        );
    }

    #[test]
    fn settings_read_as_their_labels() {
        let s = shape("json");
        let p = Problem::of("max_in_flight", "max_in_flight must be from 1 to 100", &s);
        assert_eq!(
            (p.step, p.input.as_deref(), p.text.as_str()),
            (
                3,
                Some("max_in_flight"),
                "Max in flight must be from 1 to 100"
            )
        );
        let p = Problem::of(
            "timezone",
            "EST is a fixed offset, not a place's time zone; use an IANA zone such as America/New_York",
            &s,
        );
        assert_eq!(p.input.as_deref(), Some("timezone"));
        assert_eq!(
            p.text,
            "EST is a fixed offset, not a place's time zone; use an IANA zone such as America/New_York"
        );
        let p = Problem::of(
            "timezone",
            "\"Mars/Olympus\" is not a known IANA timezone",
            &s,
        );
        assert_eq!(p.text, "\"Mars/Olympus\" is not a known IANA time zone");
        let p = Problem::of(
            "target_workflow_id",
            "a CONVERSATIONAL workflow cannot be backfilled",
            &s,
        );
        assert_eq!((p.step, p.input.as_deref()), (1, Some("workflow-choices")));
        let p = Problem::of(
            "trial.sample_size",
            "trial.sample_size must be at most the 60 entities of the backfill",
            &s,
        );
        assert_eq!(
            (p.step, p.input.as_deref(), p.text.as_str()),
            (
                3,
                Some("trial_sample_size"),
                "The trial sample size must be at most the 60 entities of the backfill"
            )
        );
        let p = Problem::of("start_at", "start_at must be within a year from now", &s);
        assert_eq!(
            (p.step, p.input.as_deref(), p.text.as_str()),
            (
                3,
                Some("start_at"),
                "Start at must be within a year from now"
            )
        );
        let p = Problem::of(
            "max_credits",
            "max_credits must be between 1 and 1000000000000, or null for no cap",
            &s,
        );
        assert_eq!((p.step, p.input.as_deref()), (3, Some("max_credits")));
        assert_eq!(
            p.text,
            "The credit cap must be between 1 and 1000000000000, or empty for no cap"
        );
        let p = Problem::of("reprocess", "odd", &s);
        assert_eq!(
            (p.step, p.input, p.text.as_str()),
            (4, None, "reprocess: odd")
        );
    }

    #[test]
    fn filter_paths_point_at_the_filter_tab_in_use() {
        let p = Problem::of(
            "filter_spec.entity_ids[2]",
            "duplicate entity id \"7\"",
            &shape("json"),
        );
        assert_eq!(p.input.as_deref(), Some("filter_spec"));
        assert_eq!(p.text, "Entity id 3: duplicate entity id \"7\"");
        let p = Problem::of(
            "filter_spec.entity_ids",
            "2 of 2 entity ids were not found in the PSA: 9, x",
            &shape("ids"),
        );
        assert_eq!(p.input.as_deref(), Some("entity_ids_text"));
        assert_eq!(p.text, "2 of 2 entity ids were not found in the PSA: 9, x");
        let p = Problem::of(
            "filter_spec.conditions.rules[0].rules[1].value",
            "expected a number",
            &shape("builder"),
        );
        assert_eq!(p.input.as_deref(), Some("builder"));
        assert_eq!(p.text, "Rule 1.2 (value): expected a number");
        let p = Problem::of(
            "filter_spec.limit",
            "limit must be at least 1",
            &shape("builder"),
        );
        assert_eq!(p.input.as_deref(), Some("rb-limit"));
        assert_eq!(p.text, "Limit must be at least 1");
    }
}
