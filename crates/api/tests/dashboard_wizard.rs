//! The dashboard's new-backfill wizard over HTTP (no browser): its create going through the
//! API's rules, each step checked before the next opens with its problems in words, and the
//! rule builder's vocabulary per entity type from the tenant PSA's compile tables.
//! The browser end-to-end test is `crates/neo-backfill/tests/dashboard_e2e.rs`.

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use browser::{unescaped, Browser, Page};
use helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn the_wizard_creates_through_the_api_rules() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Tier 2", "credit_tier": 2, "executor": {"type": "simulated"}}),
        )
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let wizard = b.get("/backfills/new").await;
    assert_eq!(wizard.status, 200);
    assert!(wizard.body.contains("Tier 2"));
    assert!(wizard.body.contains("Europe/London"), "the time zone list");
    let wf_s = wf.to_string();
    let base = vec![
        ("csrf", csrf.as_str()),
        ("workflow", wf_s.as_str()),
        ("filter_mode", "json"),
        ("filter_spec", r#"{"entity_ids": ["1001", "1002", "1003"]}"#),
        ("windows_mode", "windows"),
        ("timezone", "Europe/London"),
        ("max_in_flight", "3"),
    ];
    let mut form = base.clone();
    for d in ["monday", "tuesday", "wednesday", "thursday", "friday"] {
        form.push((Box::leak(format!("{d}_start").into_boxed_str()), "22:00"));
        form.push((Box::leak(format!("{d}_end").into_boxed_str()), "06:00"));
    }
    form.push(("saturday_start", ""));
    form.push(("saturday_end", ""));

    // Preflight: the verify result and the cost estimate.
    let r = b.post("/backfills/preflight", &form, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("3 entities match"), "{}", r.body);
    assert!(r.body.contains("6 credits"), "{}", r.body);
    let mut bad = form.clone();
    bad[3] = ("filter_spec", r#"{"entity_ids": []}"#);
    let r = b.post("/backfills/preflight", &bad, true).await;
    assert!(r.body.contains("ERROR"), "{}", r.body);
    // In words, and marking the filter's input (no JSON path).
    let text = unescaped(&r.body);
    assert!(text.contains("Entity ids needs 1 to 100000 ids"), "{text}");
    assert!(
        text.contains(r#"id="err-filter_spec" data-input="filter_spec""#),
        "{text}"
    );
    assert!(!text.contains("filter_spec.entity_ids"), "{text}");

    // The plain-language summary of the windows, with the next window (T0 is a Saturday
    // 21:07 UTC: Monday 22:00 London is 2 d 0 h 53 min away).
    let r = b.post("/backfills/windows-summary", &form, true).await;
    assert!(
        r.body
            .contains("Weeknights 22:00 → 06:00 Europe/London; next window opens in 2 d"),
        "{}",
        r.body
    );
    let mut overlapping = form.clone();
    overlapping.push(("monday_start", "23:00"));
    overlapping.push(("monday_end", "01:00"));
    let r = b
        .post("/backfills/windows-summary", &overlapping, true)
        .await;
    let text = unescaped(&r.body);
    assert!(
        text.contains("Monday's second window: overlaps Monday's first window"),
        "{text}"
    );
    assert!(text.contains(r#"id="err-monday_start_1""#), "{text}");
    assert!(!text.contains("daily_execution_windows"), "{text}");

    let r = b.post("/backfills/review", &form, true).await;
    assert!(r.body.contains("Tier 2"), "{}", r.body);

    // The API's validation, messages and fields.
    let mut too_many = form.clone();
    too_many[6] = ("max_in_flight", "500");
    let r = b.post("/backfills", &too_many, true).await;
    assert_eq!(r.status, 422);
    let text = unescaped(&r.body);
    assert!(
        text.contains("Max in flight must be from 1 to 100"),
        "{text}"
    );
    assert!(text.contains(r#"id="err-max_in_flight""#), "{text}");
    let mut bad_tz = form.clone();
    bad_tz[5] = ("timezone", "Mars/Olympus");
    let r = b.post("/backfills", &bad_tz, true).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("not a known IANA time zone"), "{}", r.body);

    let r = b.post("/backfills", &form, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let to = r.location().to_owned();
    assert!(
        to.starts_with("/backfills/bf_") && to.ends_with("?flash=created"),
        "{to}"
    );
    let id = to["/backfills/".len()..to.find('?').unwrap()].to_owned();
    let api = app
        .get(&key, &format!("/public-api/backfills/{id}"))
        .await
        .body["data"]
        .clone();
    assert_eq!(api["timezone"], "Europe/London");
    assert_eq!(api["max_in_flight"], 3);
    assert_eq!(
        api["daily_execution_windows"]["friday"],
        json!([{"run_start_time": "22:00", "run_end_time": "06:00"}])
    );
    assert!(api["daily_execution_windows"]["saturday"].is_null());
    let key_id = &app
        .store
        .list_api_keys(&app.store.tenant_by_name("acme").await.unwrap().unwrap().id)
        .await
        .unwrap()[0]
        .id;
    assert_eq!(api["created_by"], key_id.as_str());

    let page = b.get(&to).await;
    assert!(
        page.body
            .contains("Backfill created over 3 entities; cost estimate 6 credits"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Next window"), "outside its windows");
    // A second active backfill of the same workflow: the API's 409.
    let r = b.post("/backfills", &form, true).await;
    assert_eq!(r.status, 409);
    assert!(r
        .body
        .contains("another backfill of this workflow is active"));
}

// ---- the wizard's steps (issue 18): each step checked before the next opens, in words ----

/// A complete wizard form for `wf` (a JSON filter, always open) plus `extra` fields: one named
/// like a base field replaces it; others (window rows) are added in order.
fn wizard_form<'a>(
    csrf: &'a str,
    wf: &'a str,
    filter: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("csrf", csrf),
        ("workflow", wf),
        ("filter_mode", "json"),
        ("filter_spec", filter),
        ("windows_mode", "always"),
        ("timezone", "UTC"),
        ("max_in_flight", "5"),
    ];
    let base = form.len();
    for (k, v) in extra {
        match form[..base].iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => form.push((k, v)),
        }
    }
    form
}

/// `POST /backfills/check` asking to open `step`: (ok, the step to show, the page's text).
async fn check(b: &Browser, form: &[(&str, &str)], step: &str) -> (bool, String, String) {
    let mut form = form.to_vec();
    form.push(("step", step));
    let r = b.post("/backfills/check", &form, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = unescaped(&r.body);
    let ok = text.contains(r#"data-ok="true""#);
    let at = text.find("data-open=\"").expect("data-open") + 11;
    let open = text[at..at + 1].to_owned();
    (ok, open, text)
}

#[tokio::test]
async fn a_bad_window_time_marks_its_input_in_words() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await.to_string();
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let form = wizard_form(
        &csrf,
        &wf,
        r#"{"entity_ids": ["1"]}"#,
        &[
            ("windows_mode", "windows"),
            // Monday: a first row left empty (no window), then 25:00 → 06:00.
            ("monday_start", ""),
            ("monday_end", ""),
            ("monday_start", "25:00"),
            ("monday_end", "06:00"),
        ],
    );
    // The live summary marks the start input of the second row (the first window sent).
    let r = b.post("/backfills/windows-summary", &form, true).await;
    let text = unescaped(&r.body);
    assert!(
        text.contains(
            r#"<p class="field-error" id="err-monday_start_1" data-input="monday_start_1">Monday's first window: start time "25:00" is not a time of day"#
        ),
        "{text}"
    );
    assert!(!text.contains("run_start_time"), "{text}");
    // The review cannot be opened past it: step 3 is shown with the same words.
    let (ok, open, text) = check(&b, &form, "4").await;
    assert_eq!((ok, open.as_str()), (false, "3"), "{text}");
    assert!(
        text.contains("Fix the problem marked in this step to continue."),
        "{text}"
    );
    assert!(text.contains(r#"id="err-monday_start_1""#), "{text}");
    // A time zone that is a fixed offset is refused at the same step, with the zone to use.
    let est = wizard_form(
        &csrf,
        &wf,
        r#"{"entity_ids": ["1"]}"#,
        &[("timezone", "EST")],
    );
    let (ok, open, text) = check(&b, &est, "4").await;
    assert_eq!((ok, open.as_str()), (false, "3"), "{text}");
    assert!(
        text.contains(r#"id="err-timezone" data-input="timezone">EST is a fixed offset, not a place's time zone; use an IANA zone such as America/New_York"#),
        "{text}"
    );
    // And the wizard's page does not offer such zones.
    let page = b.get("/backfills/new").await;
    assert!(page.body.contains(r#"<option value="Europe/London">"#));
    assert!(
        !page.body.contains(r#"<option value="EST">"#),
        "EST is offered"
    );
}

#[tokio::test]
async fn max_in_flight_zero_is_refused_at_its_step_and_tabs_cannot_skip_a_bad_step() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await.to_string();
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let ids = r#"{"entity_ids": ["1", "2"]}"#;
    for bad in ["0", "1000"] {
        let form = wizard_form(&csrf, &wf, ids, &[("max_in_flight", bad)]);
        // Opening step 3 checks steps 1 and 2 only.
        let (ok, open, _) = check(&b, &form, "3").await;
        assert_eq!((ok, open.as_str()), (true, "3"));
        // Leaving step 3 is refused, with the input marked in words.
        let (ok, open, text) = check(&b, &form, "4").await;
        assert_eq!((ok, open.as_str()), (false, "3"), "{text}");
        assert!(
            text.contains(r#"<p class="field-error" id="err-max_in_flight" data-input="max_in_flight">Max in flight must be from 1 to 100</p>"#),
            "{text}"
        );
        // The live summary says the same while the user types.
        let r = b.post("/backfills/windows-summary", &form, true).await;
        assert!(r.body.contains(r#"id="err-max_in_flight""#), "{}", r.body);
    }
    let form = wizard_form(&csrf, &wf, ids, &[("max_in_flight", "lots")]);
    let (_, _, text) = check(&b, &form, "4").await;
    assert!(
        text.contains("Max in flight must be a whole number, not “lots”."),
        "{text}"
    );
    // The step tabs: asking for step 4 with a bad filter stops at step 2; with no workflow, at 1.
    let form = wizard_form(&csrf, &wf, "{not json", &[]);
    let (ok, open, text) = check(&b, &form, "4").await;
    assert_eq!((ok, open.as_str()), (false, "2"), "{text}");
    assert!(text.contains(r#"id="err-filter_spec""#), "{text}");
    assert!(text.contains("The filter is not valid JSON"), "{text}");
    let form = wizard_form(&csrf, "", ids, &[]);
    let (ok, open, text) = check(&b, &form, "4").await;
    assert_eq!((ok, open.as_str()), (false, "1"), "{text}");
    assert!(
        text.contains(r#"id="err-workflow-choices" data-input="workflow-choices">Pick a workflow to continue."#),
        "{text}"
    );
    // All good: step 4 opens.
    let form = wizard_form(&csrf, &wf, ids, &[]);
    let (ok, open, text) = check(&b, &form, "4").await;
    assert_eq!((ok, open.as_str()), (true, "4"), "{text}");
    assert!(!text.contains("field-error"), "{text}");
}

#[tokio::test]
async fn a_pasted_column_with_a_duplicate_is_accepted_and_says_so() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await.to_string();
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let column = "1001\r\n 1002 \r\n\r\n1001\r\n1003\r\n";
    let form = wizard_form(
        &csrf,
        &wf,
        "",
        &[("filter_mode", "ids"), ("entity_ids_text", column)],
    );
    let r = b.post("/backfills/preflight", &form, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = unescaped(&r.body);
    assert!(text.contains(r#"data-level="OK""#), "{text}");
    assert!(text.contains("3 entities match"), "{text}");
    assert!(text.contains("the ids were not checked"), "{text}");
    assert!(
        text.contains(r#"<p class="field-note" id="note-entity_ids_text" data-input="entity_ids_text">1 duplicate removed.</p>"#),
        "{text}"
    );
    let (ok, open, text) = check(&b, &form, "4").await;
    assert_eq!((ok, open.as_str()), (true, "4"), "{text}");
    let review = unescaped(&b.post("/backfills/review", &form, true).await.body);
    assert!(
        review.contains("3 entity ids (1 duplicate removed): 1001, 1002, 1003"),
        "{review}"
    );
    // A list that is not one says why, at its input.
    let bad = wizard_form(
        &csrf,
        &wf,
        "",
        &[
            ("filter_mode", "ids"),
            ("entity_ids_text", "[1, {\"x\": 2}]"),
        ],
    );
    let (ok, open, text) = check(&b, &bad, "3").await;
    assert_eq!((ok, open.as_str()), (false, "2"), "{text}");
    assert!(
        text.contains(r#"id="err-entity_ids_text" data-input="entity_ids_text">Id 2 of the JSON array is {"x":2}, not a string or a whole number"#),
        "{text}"
    );
    let r = b.post("/backfills", &form, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let to = r.location().to_owned();
    let id = &to["/backfills/".len()..to.find('?').unwrap()];
    let api = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(
        api.body["data"]["filter_spec"],
        json!({"entity_ids": ["1001", "1002", "1003"]})
    );
}

#[tokio::test]
async fn step_one_marks_a_workflow_that_has_an_active_backfill() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let busy = app.workflow(&key, "Busy").await;
    let free = app.workflow(&key, "Free").await;
    let active = app.backfill(&key, busy, &["1", "2"]).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let page = b.get("/backfills/new").await;
    let text = unescaped(&page.body);
    assert!(
        text.contains(&format!(
            r#"<span class="active-marker" id="active-{busy}" data-active-backfill="{active}">Has an active backfill, <a href="/backfills/{active}">{active}</a> (RUNNING)"#
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"value="{busy}" data-name="Busy" data-tier="1" disabled aria-describedby="active-{busy}""#
        )),
        "{text}"
    );
    assert!(!text.contains(&format!("id=\"active-{free}\"")), "{text}");
    // Posted anyway (the page was open before the backfill started): step 1 refuses it.
    let busy_s = busy.to_string();
    let form = wizard_form(&csrf, &busy_s, r#"{"entity_ids": ["9"]}"#, &[]);
    let (ok, open, text) = check(&b, &form, "2").await;
    assert_eq!((ok, open.as_str()), (false, "1"), "{text}");
    assert!(
        text.contains(&format!(
            "Busy already has an active backfill ({active}, RUNNING)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"<a href="/backfills/{active}" class="field-error-link">Open {active}</a>"#
        )),
        "{text}"
    );
    // A paused one counts as well; a completed one does not.
    app.post_empty(&key, &format!("/public-api/backfills/{active}/pause"))
        .await;
    let (ok, _, _) = check(&b, &form, "2").await;
    assert!(!ok);
    app.settle(
        &active,
        &[("1", "succeeded"), ("2", "succeeded")],
        "COMPLETED",
    )
    .await;
    let (ok, open, text) = check(&b, &form, "2").await;
    assert_eq!((ok, open.as_str()), (true, "2"), "{text}");
    assert!(!unescaped(&b.get("/backfills/new").await.body).contains("active-marker"));
}

#[tokio::test]
async fn the_review_shows_the_cost_and_warns_past_the_months_credits() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Big", "credit_tier": 3, "executor": {"type": "simulated"}}),
        )
        .await
        .to_string();
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    // Within the month's 10,000 credits: the count and cost, no warning.
    let small = wizard_form(&csrf, &wf, r#"{"entity_ids": ["1", "2", "3"]}"#, &[]);
    let r = b.post("/backfills/review", &small, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = unescaped(&r.body);
    assert!(
        text.contains(r#"<strong data-entities="3">3</strong>"#),
        "{text}"
    );
    assert!(
        text.contains(r#"<strong data-credits="9">9 credits</strong> (3 entities × 3 credits"#),
        "{text}"
    );
    assert!(
        text.contains(r#"<span data-credits-left="10000">10000</span> of 10000"#),
        "{text}"
    );
    assert!(!text.contains("review-credit-warning"), "{text}");
    // 4,000 pasted ids × 3 credits: 12,000, more than is left this month.
    let column: String = (1..=4000).map(|i| format!("{i}\n")).collect();
    let big = wizard_form(
        &csrf,
        &wf,
        "",
        &[("filter_mode", "ids"), ("entity_ids_text", &column)],
    );
    let r = b.post("/backfills/review", &big, true).await;
    let text = unescaped(&r.body);
    assert!(text.contains(r#"data-entities="4000""#), "{text}");
    assert!(text.contains("12000 credits"), "{text}");
    assert!(
        text.contains(r#"<p class="msg warn" role="alert" id="review-credit-warning">The estimate of 12000 credits exceeds the 10000 credits left this month; the backfill can still be created"#),
        "{text}"
    );
}

/// Issue 19: a rule group on an entity type the tenant's PSA has no filters for is refused at
/// step 2, in the API's words; an id list for the same workflow passes.
#[tokio::test]
async fn step_two_refuses_a_filter_on_a_type_the_psa_cannot_filter() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let _sim = app.connectwise_sim(&key, 5).await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Tidy tasks", "entity_type": "task", "executor": {"type": "simulated"}}),
        )
        .await
        .to_string();
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let filter = r#"{"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": ">", "value": 0}]}}"#;
    let (ok, open, text) = check(&b, &wizard_form(&csrf, &wf, filter, &[]), "3").await;
    assert!(!ok && open == "2", "{text}");
    assert!(
        text.contains(
            "cannot list task entities for a filter (tasks are listed per project ticket)"
        ),
        "{text}"
    );
    let (ok, open, text) = check(
        &b,
        &wizard_form(&csrf, &wf, r#"{"entity_ids": ["19"]}"#, &[]),
        "3",
    )
    .await;
    assert!(ok && open == "3", "{text}");
}

// ---- the rule builder's vocabulary (issue: the wizard offers the entity types the tenant's
// PSA supports, with the right rule-builder fields for each) ----

/// The JSON data block the wizard page carries for its rule builder.
fn vocabulary(page: &Page) -> serde_json::Value {
    let open = r#"<script type="application/json" id="rule-vocabulary">"#;
    let at = page.body.find(open).expect("the vocabulary block") + open.len();
    let len = page.body[at..].find("</script>").unwrap();
    serde_json::from_str(&page.body[at..at + len]).expect("the vocabulary is JSON")
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// With a ConnectWise integration, the page carries each entity type's aliases and native
/// fields from the compile tables, and step 1 marks a workflow whose type takes ids only.
#[tokio::test]
async fn the_wizard_carries_the_psas_fields_per_entity_type() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let _sim = app.connectwise_sim(&key, 5).await;
    let mut ids = Vec::new();
    for (name, entity) in [
        ("Enrich companies", "company"),
        ("Tidy contacts", "contact"),
        ("Chase tasks", "task"),
    ] {
        ids.push(
            app.workflow_with(
                &key,
                json!({"name": name, "entity_type": entity, "executor": {"type": "simulated"}}),
            )
            .await,
        );
    }
    let mut b = Browser::new(&app);
    b.sign_in(&key).await;
    let page = b.get("/backfills/new").await;
    assert_eq!(page.status, 200);
    let v = vocabulary(&page);
    assert_eq!(
        (v["psa"].as_str(), v["psa_label"].as_str()),
        (Some("connectwise"), Some("ConnectWise"))
    );
    let company = &v["entities"]["company"];
    assert_eq!(company["filters"], true);
    assert!(
        strings(&company["aliases"]).contains(&"$company"),
        "{company}"
    );
    assert!(
        !strings(&company["aliases"]).contains(&"$closed"),
        "{company}"
    );
    assert!(
        company["fields"]
            .as_array()
            .unwrap()
            .contains(&json!(["territory/name", "string"])),
        "{company}"
    );
    let contact = &v["entities"]["contact"];
    assert_eq!(
        strings(&contact["aliases"]),
        ["$id", "$created", "$updated", "$company"],
        "{contact}"
    );
    assert!(strings(&v["entities"]["ticket"]["aliases"]).contains(&"$closed"));
    let task = &v["entities"]["task"];
    assert_eq!(task["filters"], false);
    assert_eq!(task["note"], "tasks are listed per project ticket");
    assert!(task["fields"].as_array().unwrap().is_empty());
    // Each workflow says its entity type; the task one is marked, and its radio points at why.
    let body = unescaped(&page.body);
    assert!(
        body.contains(&format!(
            r#"value="{}" data-name="Enrich companies" data-tier="1" data-entity="company""#,
            ids[0]
        )),
        "{body}"
    );
    assert!(body.contains(&format!(
        r#"<span class="ids-only-marker" id="ids-only-{}">ids only on ConnectWise: tasks are listed per project ticket</span>"#,
        ids[2]
    )), "{body}");
    assert!(
        body.contains(&format!(r#"aria-describedby="ids-only-{}""#, ids[2])),
        "{body}"
    );
    assert_eq!(
        body.matches("ids-only-marker").count(),
        1,
        "only the task workflow is marked"
    );
}

/// Without an integration there is no PSA to ask: an empty vocabulary (the builder keeps its
/// ticket aliases) and no workflow marked.
#[tokio::test]
async fn without_an_integration_the_wizard_carries_no_vocabulary() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    app.workflow_with(
        &key,
        json!({"name": "Chase tasks", "entity_type": "task", "executor": {"type": "simulated"}}),
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in(&key).await;
    let page = b.get("/backfills/new").await;
    let v = vocabulary(&page);
    assert_eq!(v["psa"], serde_json::Value::Null);
    assert_eq!(v["entities"], json!({}));
    assert!(!page.body.contains("ids-only-marker"), "{}", page.body);
}
