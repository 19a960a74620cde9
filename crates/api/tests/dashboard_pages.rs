//! The dashboard's backfill, execution, search, workflow and error pages over HTTP (no
//! browser; the browser test is `crates/neo-backfill/tests/dashboard_e2e.rs`): why an
//! execution failed with every attempt, items found by entity id with the view in the URL,
//! a backfill waiting for its window in its own zone, names and audited edits, styled errors,
//! and executor edits that keep a webhook's secret.

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use browser::{unescaped, Browser};
use helpers::TestApp;
use jiff::SignedDuration;
use neo_store::{AttemptReport, Outcome, Settlement};
use serde_json::json;

/// Signs in a tenant with one simulated workflow; returns the browser, its CSRF token, the
/// API key and the workflow id.
async fn signed_in(app: &TestApp) -> (Browser, String, String, i64) {
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let mut b = Browser::new(app);
    let csrf = b.sign_in(&key).await;
    (b, csrf, key, wf)
}

#[tokio::test]
async fn an_execution_page_shows_the_receivers_words_and_every_attempt() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app).await;
    let id = app.backfill(&key, wf, &["590"]).await;
    // What the orchestrator records: a 503 retried, then a 422 with the receiver's reason.
    let t0 = app.now();
    let claim = |at| {
        app.store
            .claim_items(&id, "w1", 1, at, at + SignedDuration::from_secs(30))
    };
    let c = claim(t0).await.unwrap().claimed.remove(0);
    let outcome = |settlement, start, code| Outcome {
        backfill_id: id.clone(),
        ord: c.ord,
        execution_id: c.execution_id.clone(),
        settlement,
        attempt: AttemptReport {
            started_at: Some(start),
            http_status: Some(code),
        },
    };
    let retry = Settlement::Retry {
        error: "the executor answered HTTP 503: maintenance until 22:00".into(),
        at: t0,
    };
    app.store
        .settle(
            &[outcome(retry, t0, 503)],
            25,
            t0 + SignedDuration::from_millis(1200),
        )
        .await
        .unwrap();
    let t1 = t0 + SignedDuration::from_secs(5);
    claim(t1).await.unwrap();
    let failed =
        Settlement::Failed("the executor answered HTTP 422: board Help Desk is locked".into());
    app.store
        .settle(
            &[outcome(failed, t1, 422)],
            25,
            t1 + SignedDuration::from_millis(300),
        )
        .await
        .unwrap();

    let items = b.get(&format!("/backfills/{id}")).await;
    assert!(
        items
            .body
            .contains("the executor answered HTTP 422: board Help Desk is locked"),
        "the items table shows the real error: {}",
        items.body
    );
    let page = b.get(&format!("/executions/{}", c.execution_id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = unescaped(&page.body);
    let attempts = &text[text.find("id=\"attempts\"").expect("an attempts table")..];
    let rows: Vec<&str> = attempts.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "two attempts: {attempts}");
    assert!(
        rows[0].contains(">1<") && rows[0].contains("503") && rows[0].contains("failed, retried")
    );
    assert!(rows[0].contains("maintenance until 22:00") && rows[0].contains("1.2 s"));
    assert!(
        rows[1].contains(">2<")
            && rows[1].contains("422")
            && rows[1].contains("board Help Desk is locked")
    );
    assert!(rows[1].contains("300 ms"), "{}", rows[1]);
    // Times are <time> elements in the backfill's zone with UTC on hover.
    assert!(text.contains("<time datetime=\"2026-11-28T21:07:35Z\" data-zone=\"UTC\" title=\"2026-11-28 21:07:35 UTC\">Sat 28 Nov 21:07 UTC</time>"), "{text}");
}

#[tokio::test]
async fn items_are_found_by_entity_id_and_paged_with_the_view_in_the_url() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app).await;
    let ids: Vec<String> = (1..=60).map(|i| format!("{}", 1000 + i)).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let id = app.backfill(&key, wf, &refs).await;

    let one = b.get(&format!("/backfills/{id}?entity_id=1042")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body.matches("data-entity=").count(), 1, "{}", one.body);
    assert!(one.body.contains("data-entity=\"1042\""));
    let none = b.get(&format!("/backfills/{id}/items?entity_id=590")).await;
    assert!(
        none.body.contains("No item with entity id 590."),
        "{}",
        none.body
    );
    let bad = b.get(&format!("/backfills/{id}/items?entity_id=%07")).await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // 25 a page by default, 50 when asked; next and previous keep the filter and size.
    let first = b
        .send(
            b.http
                .get(format!("{}/backfills/{id}/items?page_size=50", b.base))
                .header("hx-request", "true"),
            &[],
        )
        .await;
    assert_eq!(first.body.matches("data-entity=").count(), 50);
    assert_eq!(
        first.headers["hx-replace-url"].to_str().unwrap(),
        format!("/backfills/{id}?page_size=50"),
        "the view becomes the page's address"
    );
    let next = unescaped(&first.body);
    let at = next.find("id=\"items-next\"").expect("a next page");
    let href = &next[next[..at].rfind("href=\"").unwrap() + 6..];
    let href = &href[..href.find('"').unwrap()];
    assert!(
        href.starts_with(&format!("/backfills/{id}?page_size=50&cursor=")),
        "{href}"
    );
    let second = b.get(href).await;
    assert_eq!(second.status, 200);
    assert_eq!(
        second.body.matches("data-entity=").count(),
        10,
        "the last 10"
    );
    assert!(second.body.contains("data-entity=\"1051\""));
    assert!(second.body.contains("id=\"items-prev\""));
    assert!(!second.body.contains("id=\"items-next\""));
}

#[tokio::test]
async fn a_named_backfill_waiting_for_its_window_says_when_it_opens_in_its_zone() {
    let app = TestApp::spawn().await;
    let (b, csrf, key, wf) = signed_in(&app).await;
    // Saturday 21:07 UTC is Sunday 08:07 in Sydney; the window opens Monday 09:00 there.
    let id = app.backfill_from(&key, json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]},
                   "name": "Sydney overnight sweep", "timezone": "Australia/Sydney",
                   "daily_execution_windows": {"monday": [{"run_start_time": "09:00", "run_end_time": "10:00"}]}})).await;
    let page = unescaped(&b.get(&format!("/backfills/{id}")).await.body);
    assert!(
        page.contains("<h1 id=\"backfill-title\">Sydney overnight sweep</h1>"),
        "{page}"
    );
    assert!(page.contains(">waiting for window</span>"), "{page}");
    assert!(
        page.contains("waiting for window — opens Mon 09:00 Australia/Sydney (in 1 d)."),
        "{page}"
    );
    assert!(page.contains("ETA when its window opens"), "{page}");
    let list = unescaped(&b.get("/backfills").await.body);
    assert!(list.contains("Sydney overnight sweep"), "{list}");

    // Edit it while it runs: the API's rules, then History says who changed what.
    let bad = b
        .post(
            &format!("/backfills/{id}/edit"),
            &[("csrf", &csrf), ("max_in_flight", "0")],
            true,
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body.contains("max_in_flight must be from 1 to 100"),
        "{}",
        bad.body
    );
    let ok = b
        .post(
            &format!("/backfills/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("max_in_flight", "7"),
                ("name", "Sydney sweep"),
            ],
            true,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("Saved."));
    let page = unescaped(&b.get(&format!("/backfills/{id}")).await.body);
    assert!(
        page.contains("<dd id=\"cfg-max-in-flight\">7</dd>"),
        "{page}"
    );
    assert!(page.contains("max in flight 5 → 7"), "{page}");
    assert!(
        page.contains("renamed from Sydney overnight sweep to Sydney sweep"),
        "{page}"
    );
    assert!(
        page.contains("by test key …"),
        "the key by its environment and hint: {page}"
    );
    let no_csrf = b
        .post(
            &format!("/backfills/{id}/edit"),
            &[("max_in_flight", "9")],
            true,
        )
        .await;
    assert_eq!(no_csrf.status, 403);
}

#[tokio::test]
async fn errors_are_styled_pages_for_a_browser_and_fragments_for_htmx() {
    let app = TestApp::spawn().await;
    let (b, _, _, _) = signed_in(&app).await;
    let missing = b
        .get("/backfills/bf_00000000000000000000000000000000")
        .await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("<h1>Not found</h1>"),
        "{}",
        missing.body
    );
    assert!(missing.body.contains("/static/dashboard.css"));
    let fragment = b
        .send(
            b.http
                .get(format!(
                    "{}/backfills/bf_00000000000000000000000000000000/live",
                    b.base
                ))
                .header("hx-request", "true"),
            &[],
        )
        .await;
    assert_eq!(fragment.status, 404);
    assert!(!fragment.body.contains("<html"), "{}", fragment.body);
    let page = b
        .send(
            b.http
                .get(format!("{}/no/such/page", b.base))
                .header("accept", "text/html,application/xhtml+xml"),
            &[],
        )
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("There is no page at this address."));
    // The API keeps its envelope, whatever the client accepts.
    let api = b
        .send(
            b.http
                .get(format!("{}/public-api/nope", b.base))
                .header("accept", "text/html"),
            &[],
        )
        .await;
    assert_eq!(api.status, 404);
    assert!(api.body.contains("\"not_found\""), "{}", api.body);
}

#[tokio::test]
async fn an_entity_is_found_across_backfills() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app).await;
    let id = app.backfill(&key, wf, &["590", "591"]).await;
    let now = app.now();
    let c = app
        .store
        .claim_items(&id, "w1", 2, now, now + SignedDuration::from_secs(30))
        .await
        .unwrap();
    let done: Vec<Outcome> = c
        .claimed
        .iter()
        .map(|c| Outcome {
            backfill_id: id.clone(),
            ord: c.ord,
            execution_id: c.execution_id.clone(),
            settlement: Settlement::Failed("the executor answered HTTP 422: no such board".into()),
            attempt: AttemptReport::default(),
        })
        .collect();
    app.store.settle(&done, 25, now).await.unwrap();
    let page = unescaped(&b.get("/search?entity_id=590").await.body);
    assert!(page.contains("Executions of entity 590"), "{page}");
    assert_eq!(page.matches("data-status=\"failed\"").count(), 1, "{page}");
    assert!(page.contains("no such board"));
    assert!(page.contains(&format!("/backfills/{id}?entity_id=590")));
    let none = unescaped(&b.get("/search?entity_id=777").await.body);
    assert!(
        none.contains("No backfill has run entity 777 yet."),
        "{none}"
    );
}

#[tokio::test]
async fn a_workflows_executor_is_edited_keeping_its_secret() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Hook", "executor": {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "whsec_kept_0123456789"}}),
        )
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let page = b.get("/workflows").await;
    assert!(
        !page.body.contains("whsec_kept_0123456789"),
        "no secret in the page"
    );
    let path = format!("/workflows/{wf}/executor");
    let saved = b
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("type", "webhook"),
                ("url", "https://hooks.example.com/b"),
                ("secret", ""),
            ],
            true,
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let tenant = app.store.tenant_by_name("acme").await.unwrap().unwrap();
    let w = app.store.workflow(&tenant.id, wf).await.unwrap().unwrap();
    assert_eq!(w.executor["url"], "https://hooks.example.com/b");
    assert_eq!(
        w.executor["secret"], "whsec_kept_0123456789",
        "a blank secret keeps it"
    );
    let refused = b
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("type", "webhook"),
                ("url", "ftp://x"),
                ("secret", ""),
            ],
            true,
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("executor.url"), "{}", refused.body);
    let off = b
        .post(
            &format!("/workflows/{wf}/disable"),
            &[("csrf", &csrf)],
            false,
        )
        .await;
    assert_eq!((off.status, off.location()), (303, "/workflows"));
    let w = app.store.workflow(&tenant.id, wf).await.unwrap().unwrap();
    assert_eq!(w.state.as_str(), "DISABLED");
}

#[tokio::test]
async fn a_backfill_is_cloned_into_the_wizard() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app).await;
    let id = app.backfill_from(&key, json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["7", "8"]},
                   "name": "Nightly tidy", "timezone": "Europe/Paris", "max_in_flight": 9,
                   "daily_execution_windows": {"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]}})).await;
    let page = b.get(&format!("/backfills/{id}")).await;
    assert!(page
        .body
        .contains(&format!("href=\"/backfills/new?from={id}\"")));
    // Ended, its workflow is free again: the clone picks it.
    let r = app
        .post_empty(&key, &format!("/public-api/backfills/{id}/cancel"))
        .await;
    assert_eq!(r.status, 202);
    let wizard = unescaped(&b.get(&format!("/backfills/new?from={id}")).await.body);
    assert!(wizard.contains("id=\"clone-note\""), "{wizard}");
    let radio = &wizard[wizard
        .find(&format!("name=\"workflow\" value=\"{wf}\""))
        .unwrap()..];
    assert!(
        radio[..radio.find('>').unwrap()].contains(" checked"),
        "the source's workflow is picked: {radio}"
    );
    assert!(wizard.contains("\"entity_ids\": ["), "the filter: {wizard}");
    assert!(
        wizard.contains(
            r#"data-prefill="{"monday":[{"run_start_time":"22:00","run_end_time":"06:00"}]"#
        ),
        "the windows: {wizard}"
    );
    assert!(
        wizard.contains("value=\"Europe/Paris\" data-keep"),
        "{wizard}"
    );
    assert!(wizard.contains("value=\"9\""), "{wizard}");
    assert!(wizard.contains("value=\"Nightly tidy\""), "{wizard}");
    // Another tenant's backfill is not found.
    let other = app.key("globex").await;
    let mut o = Browser::new(&app);
    o.sign_in(&other).await;
    assert_eq!(
        o.get(&format!("/backfills/new?from={id}")).await.status,
        404
    );
}

#[tokio::test]
async fn items_show_the_tickets_summary_and_link_to_it_in_the_psa() {
    let app = TestApp::spawn().await;
    let (b, _, key, wf) = signed_in(&app).await;
    let sim = app.connectwise_sim(&key, 20).await;
    let id = app.backfill_from(&key, json!({"target_workflow_id": wf, "filter_spec": {"conditions": {"combinator": "and", "rules": [{"field": "$closed", "operator": "=", "value": false}]}}})).await;
    // What the orchestrator's snapshot appends from the PSA's page.
    let tickets = sim.tickets();
    let entries: Vec<neo_store::SnapshotEntry> = tickets
        .iter()
        .take(2)
        .map(|t| neo_store::SnapshotEntry {
            id: t.id.to_string(),
            number: None,
            summary: Some(t.summary.clone()),
            company: None,
        })
        .collect();
    assert!(app
        .store
        .append_items(&id, &entries, None, None, true, app.now())
        .await
        .unwrap());
    let page = unescaped(&b.get(&format!("/backfills/{id}")).await.body);
    let t = &tickets[0];
    assert!(page.contains(&t.summary), "{page}");
    assert!(
        page.contains(&format!(
            "href=\"{}/v4_6_release/services/system_io/Service/fv_sr100_request.rsp?service_recid={}\"",
            sim.base_url, t.id
        )),
        "{page}"
    );
    // The API's items carry the summary too.
    let items = app
        .get(&key, &format!("/public-api/backfills/{id}/items"))
        .await;
    assert_eq!(items.body["data"][0]["summary"], t.summary.as_str());
}
