//! Operator control on the dashboard over HTTP (issue 21; no browser, the browser test is
//! `crates/neo-backfill/tests/dashboard_e2e.rs`): the wizard's start, credit cap and trial
//! fields, accepted into the API's create and refused at step 3 in words; a backfill page
//! saying why it paused, with its trial's result and Continue / Cancel, its credits against
//! its cap (edited from the page), and its ETA or why there is none, in its live part and in
//! the list; and (issue 23) how many run at once when the orchestrator has slowed it.

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use browser::{unescaped, Browser};
use helpers::TestApp;
use jiff::{SignedDuration, Timestamp};
use neo_domain::control::PauseReason;
use neo_store::{AttemptReport, Outcome, Settlement};
use serde_json::{json, Value};

/// Signs in a tenant with one simulated workflow (`tier` credits per entity); returns the
/// browser, its CSRF token, the API key and the workflow id.
async fn signed_in(app: &TestApp, tier: i64) -> (Browser, String, String, i64) {
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Triage", "credit_tier": tier, "executor": {"type": "simulated"}}),
        )
        .await;
    let mut b = Browser::new(app);
    let csrf = b.sign_in(&key).await;
    (b, csrf, key, wf)
}

async fn tenant_id(app: &TestApp) -> String {
    app.store.tenant_by_name("acme").await.unwrap().unwrap().id
}

async fn api_backfill(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(key, &format!("/public-api/backfills/{id}"))
        .await
        .body["data"]
        .clone()
}

/// Claims up to `n` items at `at` and settles them: `Ok(())` succeeded, `Err(text)` failed.
async fn run(app: &TestApp, id: &str, n: usize, at: Timestamp, results: &[Result<(), &str>]) {
    let claimed = app
        .store
        .claim_items(id, "w1", n, at, at + SignedDuration::from_secs(30))
        .await
        .unwrap()
        .claimed;
    assert_eq!(claimed.len(), results.len(), "claimed {claimed:?}");
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .zip(results)
        .map(|(c, r)| Outcome {
            backfill_id: id.to_owned(),
            ord: c.ord,
            execution_id: c.execution_id.clone(),
            settlement: match r {
                Ok(()) => Settlement::Succeeded,
                Err(e) => Settlement::Failed((*e).to_owned()),
            },
            attempt: AttemptReport {
                started_at: Some(at),
                http_status: Some(if r.is_ok() { 200 } else { 422 }),
            },
        })
        .collect();
    app.store.settle(&outcomes, 25, at).await.unwrap();
}

/// The element with `id="{id}"`, from its opening tag to the end of its line.
fn element<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let start = page[..at].rfind('<').unwrap();
    let end = page[at..].find('\n').map_or(page.len(), |e| at + e);
    &page[start..end]
}

#[tokio::test]
async fn the_wizard_takes_a_start_a_credit_cap_and_a_trial() {
    let app = TestApp::spawn().await;
    let (b, csrf, key, wf) = signed_in(&app, 2).await;
    let page = b.get("/backfills/new").await.body;
    for input in ["start_at", "max_credits", "trial_sample_size"] {
        assert!(
            page.contains(&format!("<input id=\"{input}\" name=\"{input}\"")),
            "{page}"
        );
    }
    assert!(page.contains("type=\"datetime-local\""), "{page}");
    let wf_s = wf.to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("workflow", wf_s.as_str()),
        ("filter_mode", "ids"),
        ("entity_ids_text", "1001\n1002\n1003\n1004\n1005\n1006"),
        ("windows_mode", "always"),
        ("timezone", "Australia/Sydney"),
        ("max_in_flight", "3"),
        // 22:00 on Christmas Eve in Sydney (AEDT, UTC+11).
        ("start_at", "2026-12-24T22:00"),
        ("max_credits", " 8 "),
        ("trial_sample_size", "2"),
    ];
    // Step 3's check passes and the review says what will happen.
    let r = b
        .post(
            "/backfills/check",
            &[&form[..], &[("step", "4")]].concat(),
            true,
        )
        .await;
    assert!(
        r.body.contains("data-ok=\"true\" data-open=\"4\""),
        "{}",
        r.body
    );
    let review = unescaped(&b.post("/backfills/review", &form, true).await.body);
    assert!(
        review.contains("not before <span data-start-at>Thu 24 Dec 22:00 AEDT (Australia/Sydney)</span>, then inside its windows"),
        "{review}"
    );
    assert!(
        review.contains("<strong data-max-credits=\"8\">8 credits</strong>"),
        "{review}"
    );
    assert!(
        review.contains("<strong data-trial-sample=\"2\">2 entities</strong> first"),
        "{review}"
    );
    // 6 entities at 2 credits: 12, above the cap.
    assert!(
        review.contains("The credit cap (8) is below the cost estimate (12 credits): the backfill pauses at the cap until you raise it."),
        "{review}"
    );

    let r = b.post("/backfills", &form, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let to = r.location().to_owned();
    let id = to["/backfills/".len()..to.find('?').unwrap()].to_owned();
    let api = api_backfill(&app, &key, &id).await;
    assert_eq!(api["start_at"], "2026-12-24T11:00:00Z", "{api}");
    assert_eq!(api["max_credits"], 8);
    assert_eq!(api["trial"]["sample_size"], 2);
    assert!(api["trial"]["result"].is_null());

    // The page says so: configuration, credits and the trial in the live part.
    let page = unescaped(&b.get(&to).await.body);
    assert!(
        element(&page, "cfg-max-credits").contains("8 credits (pauses when reached)"),
        "{page}"
    );
    assert!(
        element(&page, "cfg-start-at").contains("Thu 24 Dec 22:00 AEDT"),
        "{page}"
    );
    assert!(
        element(&page, "credits").contains("0 / 8 credits"),
        "{page}"
    );
    let trial = element(&page, "trial");
    assert!(
        trial.contains("data-trial-sample=\"2\" data-trial-phase=\"running\""),
        "{trial}"
    );
    // RUNNING before its start: its window (the start) has not opened.
    let eta = element(&page, "eta");
    assert!(eta.contains("data-basis=\"measuring\""), "{eta}");
    assert!(eta.contains("it works once its window opens"), "{eta}");
}

#[tokio::test]
async fn the_wizard_refuses_bad_control_fields_at_step_3_in_words() {
    let app = TestApp::spawn().await;
    let (b, csrf, _, wf) = signed_in(&app, 1).await;
    let wf_s = wf.to_string();
    let form = |start: &'static str, cap: &'static str, sample: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("workflow", wf_s.clone()),
            ("filter_mode", "json".into()),
            ("filter_spec", r#"{"entity_ids": ["1", "2", "3"]}"#.into()),
            ("windows_mode", "always".into()),
            ("timezone", "Europe/London".into()),
            ("start_at", start.into()),
            ("max_credits", cap.into()),
            ("trial_sample_size", sample.into()),
        ]
    };
    let post = |path: &'static str, f: Vec<(&'static str, String)>| {
        let b = &b;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = b.post(path, &pairs, true).await;
            (r.status, unescaped(&r.body))
        }
    };

    // Step 3 stays open with each problem next to its input, in words.
    let mut f = form("2028-01-01T09:00", "0", "4");
    f.push(("step", "4".into()));
    let (_, text) = post("/backfills/check", f).await;
    assert!(text.contains("data-ok=\"false\" data-open=\"3\""), "{text}");
    for (input, words) in [
        ("start_at", "Start at must be within a year from now"),
        (
            "max_credits",
            "The credit cap must be between 1 and 1000000000000, or empty for no cap",
        ),
        (
            "trial_sample_size",
            "The trial sample size must be at most the 3 entities of the backfill",
        ),
    ] {
        assert!(
            text.contains(&format!(
                "id=\"err-{input}\" data-input=\"{input}\">{words}</p>"
            )),
            "{input}: {text}"
        );
    }
    assert!(
        !text.contains("max_credits must"),
        "no member names: {text}"
    );
    let mut f = form("next tuesday", "lots", "");
    f.push(("step", "4".into()));
    let (_, text) = post("/backfills/check", f).await;
    assert!(
        text.contains(
            "Start at must be a date and time such as 2026-12-24 22:00, not “next tuesday”."
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "The credit cap must be a whole number, not “lots”; leave it empty for none."
        ),
        "{text}"
    );
    // 01:30 on 29 March 2026 does not happen in London.
    let mut f = form("2026-03-29T01:30", "", "");
    f.push(("step", "4".into()));
    let (_, text) = post("/backfills/check", f).await;
    assert!(
        text.contains("Start at: 2026-03-29 01:30 does not exist in Europe/London (the clocks go forward then)"),
        "{text}"
    );

    // Create refused by the API's own rules: its 422 names the field, shown at step 3.
    let (status, text) = post("/backfills", form("", "0", "")).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("data-step=\"3\""), "{text}");
    assert!(
        text.contains("id=\"err-max_credits\" data-input=\"max_credits\">The credit cap must be between 1 and 1000000000000, or empty for no cap</p>"),
        "{text}"
    );
    let (status, text) = post("/backfills", form("", "", "9")).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("id=\"err-trial_sample_size\" data-input=\"trial_sample_size\">The trial sample size must be at most the 3 entities of the backfill</p>"),
        "{text}"
    );
    let (status, text) = post("/backfills", form("2028-01-01T09:00", "", "")).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("id=\"err-start_at\" data-input=\"start_at\">Start at must be within a year from now</p>"),
        "{text}"
    );
    // What the form cannot read is refused before the API.
    let (status, text) = post("/backfills", form("", "", "0.5")).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("id=\"err-trial_sample_size\""), "{text}");
    let list = app
        .get(&app.key("acme").await, "/public-api/backfills")
        .await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn a_trial_pauses_with_its_result_then_continues_from_the_page() {
    let app = TestApp::spawn().await;
    let (b, csrf, key, wf) = signed_in(&app, 1).await;
    let ids: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    let id = app
        .backfill_from(
            &key,
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids},
                   "trial": {"sample_size": 2}}),
        )
        .await;
    let t = app.now();
    // The sample (2 of 10, spread): one succeeds, one fails with hostile text.
    run(
        &app,
        &id,
        5,
        t,
        &[Ok(()), Err("<script>alert('x')</script> board locked")],
    )
    .await;
    let paused = app
        .store
        .pause_itself(&tenant_id(&app).await, &id, PauseReason::TrialComplete, t)
        .await
        .unwrap();
    assert!(paused, "the trial's pause");

    let page = b.get(&format!("/backfills/{id}")).await.body;
    assert!(!page.contains("<script>alert"), "escaped: {page}");
    let text = unescaped(&page);
    let reason = element(&text, "pause-reason");
    assert!(
        reason.contains("data-pause-reason=\"trial_complete\""),
        "{reason}"
    );
    assert!(
        reason.contains(PauseReason::TrialComplete.message()),
        "{reason}"
    );
    assert!(
        element(&text, "trial").contains("sample of 2 entities done: 1 succeeded, 1 failed, 0 skipped; waiting for you to continue or cancel"),
        "{text}"
    );
    let eta = element(&text, "eta");
    assert!(eta.contains("data-basis=\"not_running\""), "{eta}");
    assert!(
        eta.contains("not running: no ETA while it is paused"),
        "{eta}"
    );
    // The Trial result panel, with Continue and Cancel instead of Resume and Cancel.
    let actions = b.get(&format!("/backfills/{id}/actions")).await.body;
    assert!(actions.contains("id=\"trial-result\""), "{actions}");
    assert!(actions.contains("<strong id=\"trial-succeeded\">1</strong> succeeded, <strong id=\"trial-failed\">1</strong> failed, <strong id=\"trial-skipped\">0</strong> skipped"), "{actions}");
    assert!(!actions.contains("<script>"), "escaped: {actions}");
    assert!(
        actions.contains("<td data-label=\"Error\">&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; board locked</td><td data-label=\"Entities\">1</td>"),
        "{actions}"
    );
    assert!(
        actions.contains("Continue runs the other 8 entities"),
        "{actions}"
    );
    assert!(
        actions.contains("id=\"trial-continue\">Continue</button>"),
        "{actions}"
    );
    assert!(actions.contains(
        "action=\"/backfills/{id}/cancel\""
            .replace("{id}", &id)
            .as_str()
    ));
    assert!(
        actions.contains("id=\"trial-cancel\">Cancel</button>"),
        "{actions}"
    );
    assert!(!actions.contains("id=\"action-resume\""), "{actions}");
    // The list says why it is paused.
    let list = unescaped(&b.get("/backfills").await.body);
    assert!(
        list.contains("data-pause-reason=\"trial_complete\" title=\"The trial sample has run."),
        "{list}"
    );

    // Continue: the existing resume signal; the rest runs, the result stays on the page.
    let r = b
        .post(&format!("/backfills/{id}/resume"), &[("csrf", &csrf)], true)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(api_backfill(&app, &key, &id).await["state"], "RUNNING");
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    assert!(!live.contains("data-pause-reason"), "{live}");
    assert!(
        element(&live, "trial").contains(
            "data-trial-phase=\"done\">sample of 2 entities: 1 succeeded, 1 failed, 0 skipped"
        ),
        "{live}"
    );
    assert!(
        element(&live, "eta").contains("data-basis=\"measuring\""),
        "{live}"
    );
    let actions = b.get(&format!("/backfills/{id}/actions")).await.body;
    assert!(!actions.contains("trial-result"), "{actions}");
    assert!(actions.contains("id=\"action-pause\""), "{actions}");
    // The rest is no longer held: it is claimed (up to max in flight, 5).
    run(&app, &id, 5, app.now(), &[Ok(()); 5]).await;
}

#[tokio::test]
async fn a_budget_pause_is_explained_and_the_cap_raised_from_the_edit_form() {
    let app = TestApp::spawn().await;
    let (b, csrf, key, wf) = signed_in(&app, 1).await;
    let id = app
        .backfill_from(
            &key,
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2", "3", "4", "5"]},
                   "max_credits": 2}),
        )
        .await;
    let t = app.now();
    // The claim never passes the cap: 2 of 5.
    run(&app, &id, 5, t, &[Ok(()), Ok(())]).await;
    assert!(app
        .store
        .pause_itself(&tenant_id(&app).await, &id, PauseReason::BudgetReached, t)
        .await
        .unwrap());
    let page = unescaped(&b.get(&format!("/backfills/{id}")).await.body);
    let reason = element(&page, "pause-reason");
    assert!(
        reason.contains("data-pause-reason=\"budget_reached\""),
        "{reason}"
    );
    assert!(
        reason.contains(
            "The backfill reached its credit cap (max_credits). Raise the cap, then resume."
        ),
        "{reason}"
    );
    let credits = element(&page, "credits");
    assert!(
        credits.contains("data-spent=\"2\" data-cap=\"2\">2 / 2 credits"),
        "{credits}"
    );
    assert!(
        credits.contains("1 per entity; all 5 entities: 5"),
        "{credits}"
    );
    assert!(
        page.contains("name=\"max_credits\" type=\"text\" inputmode=\"numeric\" autocomplete=\"off\" value=\"2\""),
        "the edit form holds the cap: {page}"
    );
    let list = unescaped(&b.get("/backfills/rows").await.body);
    assert!(list.contains(">credit cap reached</span>"), "{list}");

    let edit = |fields: Vec<(&'static str, &'static str)>| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let b = &b;
        let path = format!("/backfills/{id}/edit");
        async move { b.post(&path, &form, true).await }
    };
    // Not a number, and the API's rule.
    let r = edit(vec![("max_credits", "lots")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body
            .contains("The credit cap must be a whole number of credits, or empty for no cap."),
        "{}",
        r.body
    );
    let r = edit(vec![("max_credits", "0")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body
            .contains("max_credits must be between 1 and 1000000000000"),
        "{}",
        r.body
    );
    // Raised (as the form sends it, with its other fields): still paused until resumed.
    let r = edit(vec![
        ("name", ""),
        ("max_in_flight", "5"),
        ("max_credits", "4"),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("Saved. It stays paused at its credit cap until you resume it."),
        "{}",
        r.body
    );
    assert_eq!(api_backfill(&app, &key, &id).await["max_credits"], 4);
    // A form without the field leaves the cap alone; an empty one removes it.
    edit(vec![("name", "Budgeted")]).await;
    assert_eq!(api_backfill(&app, &key, &id).await["max_credits"], 4);
    let r = edit(vec![("max_credits", "")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(api_backfill(&app, &key, &id).await["max_credits"].is_null());
    let page = unescaped(&b.get(&format!("/backfills/{id}")).await.body);
    assert!(page.contains("credit cap 2 → 4"), "history: {page}");
    assert!(page.contains("credit cap 4 → none"), "history: {page}");
    assert!(
        element(&page, "credits").contains("2 credits (no cap)"),
        "{page}"
    );
    // Resume: it runs again.
    b.post(&format!("/backfills/{id}/resume"), &[("csrf", &csrf)], true)
        .await;
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    assert!(!live.contains("data-pause-reason"), "{live}");
}

#[tokio::test]
async fn a_measured_eta_is_shown_in_the_viewers_and_the_backfills_zone() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app, 1).await;
    let ids: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    let id = app
        .backfill_from(
            &key,
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids},
                   "timezone": "Australia/Sydney"}),
        )
        .await;
    // Too little measured yet: the basis says so.
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    let eta = element(&live, "eta");
    assert!(
        eta.contains("data-eta=\"\" data-basis=\"measuring\""),
        "{eta}"
    );
    assert!(
        eta.contains("measuring throughput… (an ETA needs 20 settled items over 30 s of work)"),
        "{eta}"
    );
    // 5 items every 10 s for a minute: 30 settled over 50 s of work.
    let mut t = app.now();
    for _ in 0..6 {
        run(&app, &id, 5, t, &[Ok(()); 5]).await;
        app.clock.set(t);
        t += SignedDuration::from_secs(10);
    }
    let api = api_backfill(&app, &key, &id).await;
    assert_eq!(api["eta_basis"], "measured", "{api}");
    let at = api["eta"].as_str().unwrap().to_owned();
    let page = unescaped(&b.get(&format!("/backfills/{id}")).await.body);
    let eta = element(&page, "eta");
    assert!(
        eta.contains(&format!("data-eta=\"{at}\" data-basis=\"measured\"")),
        "{eta}"
    );
    // The viewer's zone (the page's script; UTC without it), then the backfill's zone.
    let when: Timestamp = at.parse().unwrap();
    let sydney = when
        .to_zoned(jiff::tz::TimeZone::get("Australia/Sydney").unwrap())
        .strftime("%a %-d %b %H:%M %Z")
        .to_string();
    assert!(
        eta.contains(&format!(
            "<time datetime=\"{at}\" data-zone=\"UTC\" data-viewer"
        )),
        "{eta}"
    );
    assert!(
        eta.contains(&format!(
            "<span class=\"eta-zone\">{sydney} (Australia/Sydney)</span>"
        )),
        "{eta}"
    );
    assert!(eta.contains("items/min"), "{eta}");
    assert_eq!(
        api["items_per_minute"]
            .as_f64()
            .map(|r| format!("{r:.1} items/min")),
        eta.split("measured ")
            .nth(1)
            .map(|r| r[..r.find('<').unwrap()].to_owned()),
        "{eta}"
    );
    // The list: the same, the backfill's zone on a second line.
    let list = unescaped(&b.get("/backfills/rows").await.body);
    assert!(
        list.contains(&format!("data-eta=\"{at}\" data-basis=\"measured\"><time datetime=\"{at}\" data-zone=\"UTC\" data-viewer")),
        "{list}"
    );
    assert!(
        list.contains(&format!("{sydney} (Australia/Sydney) · in ")),
        "{list}"
    );
}

/// Issue 23: the live part says how many run at once, and why fewer when the orchestrator has
/// adapted the backfill to a throttling executor or PSA; the API reads the same.
#[tokio::test]
async fn the_adapted_concurrency_is_shown_with_why() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app, 1).await;
    let id = app
        .backfill_from(
            &key,
            json!({"target_workflow_id": wf, "max_in_flight": 40,
                   "filter_spec": {"entity_ids": ["1", "2", "3"]}}),
        )
        .await;
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    let c = element(&live, "concurrency");
    assert!(c.contains("data-effective=\"40\" data-max=\"40\""), "{c}");
    assert!(c.contains("up to 40 of 40 at once"), "{c}");
    assert!(!c.contains("slowed"), "{c}");
    assert_eq!(
        api_backfill(&app, &key, &id).await["effective_max_in_flight"],
        40
    );

    app.store
        .set_effective_max_in_flight(&[(id.clone(), Some(18))])
        .await
        .unwrap();
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    let c = element(&live, "concurrency");
    assert!(c.contains("up to 18 of 40 at once"), "{c}");
    assert!(
        c.contains(
            "slowed: the executor or the PSA throttles; it climbs back as executions succeed"
        ),
        "{c}"
    );
    assert_eq!(
        api_backfill(&app, &key, &id).await["effective_max_in_flight"],
        18
    );
    // Never above max_in_flight, even after an edit lowers it.
    let r = app
        .patch(
            &key,
            &format!("/public-api/backfills/{id}"),
            json!({"max_in_flight": 10}),
        )
        .await;
    assert_eq!(r.body["data"]["effective_max_in_flight"], 10, "{}", r.body);
}

/// Issue 23: the live part shows the tenant's PSA budget (what backfills took this hour of
/// their share), the per-company cap and each company blackout, marking those that hold now;
/// the API reads the same, and an edit replaces or removes them.
#[tokio::test]
async fn the_psa_budget_and_company_blackouts_are_shown() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app, 1).await;
    let tenant = tenant_id(&app).await;
    app.store
        .put_integration(
            &tenant,
            "connectwise",
            json!({"site_url": "https://psa.example", "company_id": "msp", "public_key": "p",
                   "requests_per_hour": 36_000, "backfill_share": 50}),
            json!({"private_key": "k", "client_id": "c"}),
            app.now(),
        )
        .await
        .unwrap();
    let g = app
        .store
        .take_psa_budget(&tenant, 7, app.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.granted, 7);
    let today = app
        .now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let id = app
        .backfill_from(
            &key,
            json!({"target_workflow_id": wf, "max_in_flight": 20, "max_in_flight_per_company": 5,
                   "filter_spec": {"entity_ids": ["1", "2", "3"]}, "timezone": "UTC",
                   "company_blackouts": {"19": {"dates": [today]}, "27": {"dates": ["2031-01-02"]}}}),
        )
        .await;
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    let budget = element(&live, "psa-budget");
    assert!(
        budget.contains(
            "7 / 18,000 backfill requests this hour (50% of the PSA's 36,000 an hour; the rest is left for live traffic)"
        ),
        "{budget}"
    );
    let per = element(&live, "per-company");
    assert!(per.contains("at most 5 of one company at once"), "{per}");
    let bo = element(&live, "blackouts");
    assert!(
        bo.contains(&format!(
            "Company 19: {today} <strong class=\"held\">· held now</strong>"
        )),
        "{bo}"
    );
    assert!(bo.contains("Company 27: 2031-01-02</li>"), "{bo}");
    let read = api_backfill(&app, &key, &id).await;
    assert_eq!(read["held_companies"], json!(["19"]), "{read}");
    assert_eq!(read["max_in_flight_per_company"], 5);
    let i = app.get(&key, "/public-api/integrations").await;
    assert_eq!(
        i.body["data"][0]["budget"],
        json!({"requests_per_hour": 36000, "backfill_share": 50,
               "backfill_requests_per_hour": 18000, "backfill_requests_this_hour": 7})
    );

    // An edit names the broken rule; a valid one replaces the blackouts, `null` removes them.
    let r = app
        .patch(
            &key,
            &format!("/public-api/backfills/{id}"),
            json!({"company_blackouts": {"19": {"dates": ["24/12/2026"]}}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.to_string().contains("company_blackouts.19.dates[0]"),
        "{}",
        r.body
    );
    let r = app
        .patch(
            &key,
            &format!("/public-api/backfills/{id}"),
            json!({"company_blackouts": {"27": {"weekly": {"monday": [{"run_start_time": "00:00", "run_end_time": "23:59"}]}}},
                   "max_in_flight_per_company": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["held_companies"], json!([]), "{}", r.body);
    assert_eq!(r.body["data"]["max_in_flight_per_company"], Value::Null);
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    assert!(!live.contains("id=\"per-company\""));
    let bo = element(&live, "blackouts");
    assert!(
        bo.contains("Company 27: weekly Mon 00:00 → 23:59 (UTC)"),
        "{bo}"
    );
    let r = app
        .patch(
            &key,
            &format!("/public-api/backfills/{id}"),
            json!({"company_blackouts": null}),
        )
        .await;
    assert_eq!(
        r.body["data"]["company_blackouts"],
        Value::Null,
        "{}",
        r.body
    );
    let live = unescaped(&b.get(&format!("/backfills/{id}/live")).await.body);
    assert!(!live.contains("id=\"blackouts\""));
}
