//! Properties of plans and reverts over random records and random field updates.

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// Writable fields of [`TICKETS`], none nested in another: changing one never changes another.
const POOL: [(&str, ValueKind); 6] = [
    ("summary", ValueKind::String),
    ("priority/id", ValueKind::Number),
    ("status/id", ValueKind::Number),
    ("status/name", ValueKind::String),
    ("budgetHours", ValueKind::Number),
    ("closedFlag", ValueKind::Bool),
];

/// A value of few possibilities, so that a target often equals the current value.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(Value::from),
        (-3i64..3).prop_map(|n| json!(n as f64 / 2.0)),
        "[ab]{0,2}".prop_map(Value::String),
    ]
}

/// A record with any of the pool's fields absent or holding any value, and sometimes a parent
/// object that is not an object.
fn record() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(proptest::option::of(scalar()), POOL.len()),
        proptest::option::of(scalar()),
    )
        .prop_map(|(values, parent)| {
            let set: Vec<FieldChange> = POOL
                .iter()
                .zip(values)
                .filter_map(|((f, _), v)| {
                    v.map(|after| FieldChange {
                        field: (*f).into(),
                        before: Value::Null,
                        after,
                    })
                })
                .collect();
            let mut r = apply_changes(&json!({"id": 1, "company": {"name": "Acme"}}), &set);
            if let Some(p) = parent {
                r["priority"] = p;
            }
            r
        })
}

/// A value to set a field of `kind` to: a literal of that kind or null, or a template.
fn target(kind: ValueKind) -> BoxedStrategy<Value> {
    let literal = match kind {
        ValueKind::Number => prop_oneof![
            (-3i64..3).prop_map(Value::from),
            (-3i64..3).prop_map(|n| json!(n as f64 / 2.0)),
        ]
        .boxed(),
        ValueKind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        _ => "[ab]{0,2}".prop_map(Value::String).boxed(),
    };
    let templates: Vec<&str> = match kind {
        ValueKind::Number => vec!["{{priority/id}}", "{{budgetHours}}"],
        ValueKind::Bool => vec!["{{closedFlag}}"],
        _ => vec![
            "{{summary}}",
            "a{{entity_id}}",
            "{{company.name}}: {{status/name}}",
        ],
    };
    prop_oneof![
        6 => literal,
        1 => Just(Value::Null),
        2 => proptest::sample::select(templates).prop_map(|t| json!(t)),
    ]
    .boxed()
}

/// Random `update_fields` actions over a subset of the pool, spread over one to three actions.
fn updates() -> impl Strategy<Value = PsaActions> {
    let fields: Vec<_> = POOL
        .iter()
        .map(|(f, k)| {
            (any::<bool>(), target(*k), 0usize..3)
                .prop_map(move |(on, v, a)| (on.then_some((*f, v)), a))
        })
        .collect();
    fields.prop_filter_map("no field set", |picked| {
        let mut actions = vec![serde_json::Map::new(); 3];
        for (p, a) in picked {
            if let Some((f, v)) = p {
                actions[a].insert(f.into(), v);
            }
        }
        let list: Vec<Value> = actions
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|m| json!({"type": "update_fields", "fields": m}))
            .collect();
        (!list.is_empty()).then(|| parsed(Value::Array(list)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_revert_restores_the_planned_fields(actions in updates(), record in record()) {
        // A template the record cannot fill fails the entity: nothing to revert.
        let Ok(plan) = actions.plan(&record, &ctx()) else { return Ok(()) };
        prop_assert_eq!(PsaActions::parse(&actions.to_stored(), &TICKETS).unwrap(), actions.clone());
        prop_assert!(plan.notes.is_empty());
        prop_assert!(plan_still_valid(&plan, &record));
        let written = apply_to(&record, &plan);
        for c in &plan.changes {
            prop_assert!(!same_value(&c.before, &c.after), "{:?}", c);
            prop_assert_eq!(&current_value(&record, &c.field), &c.before);
            prop_assert_eq!(&current_value(&written, &c.field), &c.after);
        }
        // Idempotent: the fields are at their targets (templates copying fields the plan
        // changes read the new value, so only literal and context targets are compared).
        let again = actions.plan(&written, &ctx());
        if plan.changes.is_empty() {
            prop_assert_eq!(again, Ok(Plan::default()));
        }
        let Revert::Restore(back) = revert(&plan.changes, &written) else {
            return Err(TestCaseError::fail("changed since, though untouched"));
        };
        prop_assert_eq!(back.len(), plan.changes.len());
        let restored = apply_changes(&written, &back);
        for c in &plan.changes {
            prop_assert_eq!(current_value(&restored, &c.field), current_value(&record, &c.field));
        }
        // Fields the plan did not touch are as they were.
        for (f, _) in POOL {
            if !plan.changes.iter().any(|c| c.field == f) {
                prop_assert_eq!(current_value(&restored, f), current_value(&record, f));
            }
        }
    }

    #[test]
    fn a_revert_skips_a_record_changed_since_exactly_on_audited_fields(
        actions in updates(),
        record in record(),
        other in 0..POOL.len(),
        value in scalar(),
    ) {
        let Ok(plan) = actions.plan(&record, &ctx()) else { return Ok(()) };
        let written = apply_to(&record, &plan);
        let field = POOL[other].0;
        prop_assume!(!same_value(&current_value(&written, field), &value));
        let edit = FieldChange { field: field.into(), before: Value::Null, after: value.clone() };
        let edited = apply_changes(&written, &[edit]);
        let audit = plan.changes.iter().find(|c| c.field == field);
        let audited = audit.is_some();
        match revert(&plan.changes, &edited) {
            Revert::ChangedSince { fields } => {
                prop_assert!(audited, "skipped for an unaudited field {}", field);
                prop_assert_eq!(fields, vec![field.to_owned()]);
            }
            Revert::Restore(_) => prop_assert!(!audited, "{} was audited and changed", field),
        }
        // The same edit between a shadow run and its apply: the shadow plan still describes
        // the record unless the edit moved one of the fields it changes.
        let edit = FieldChange { field: field.into(), before: Value::Null, after: value.clone() };
        let moved = !same_value(&current_value(&record, field), &value);
        prop_assert_eq!(plan_still_valid(&plan, &apply_changes(&record, &[edit])), !(audited && moved));
    }

    #[test]
    fn literal_plans_are_idempotent(actions in updates(), record in record()) {
        let literal = actions.updates().all(|(_, u)| match &u.value {
            FieldValue::Literal(_) => true,
            FieldValue::Template(t) => !t.parts().iter().any(|p| matches!(p, Part::Read(Source::Record(_)))),
        });
        prop_assume!(literal);
        let plan = actions.plan(&record, &ctx()).unwrap();
        let again = actions.plan(&apply_to(&record, &plan), &ctx()).unwrap();
        prop_assert!(again.is_empty(), "{:?}", again);
    }
}
