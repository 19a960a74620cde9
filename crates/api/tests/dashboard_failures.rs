//! Failure triage on the dashboard over HTTP (issue 22; no browser, the browser test is
//! `crates/neo-backfill/tests/dashboard_e2e.rs`): a backfill's Failures section groups its
//! failed entities by cause as `GET /public-api/backfills/{id}/failures` does, escapes the
//! receiver's words, links each sample entity to its items view, offers "Rerun this cause"
//! only once the backfill is terminal, and that button creates a child over exactly that
//! cause's entities, whose page says what it reruns.

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use browser::Browser;
use helpers::TestApp;
use jiff::{SignedDuration, Timestamp};
use neo_domain::triage::signature;
use neo_store::{AttemptReport, Outcome, Settlement};
use serde_json::{json, Value};

/// Claims up to `n` items at `at` and settles each by its entity id: `None` succeeded,
/// `Some((status, error))` failed with that HTTP status and error.
async fn run(
    app: &TestApp,
    id: &str,
    n: usize,
    at: Timestamp,
    result: impl Fn(&str) -> Option<(u16, String)>,
) -> Vec<String> {
    let claimed = app
        .store
        .claim_items(id, "w1", n, at, at + SignedDuration::from_secs(30))
        .await
        .unwrap()
        .claimed;
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| {
            let r = result(&c.entity_id);
            Outcome {
                backfill_id: id.to_owned(),
                ord: c.ord,
                execution_id: c.execution_id.clone(),
                settlement: match &r {
                    None => Settlement::Succeeded,
                    Some((_, e)) => Settlement::Failed(e.clone()),
                },
                attempt: AttemptReport {
                    started_at: Some(at),
                    http_status: Some(r.map_or(200, |(s, _)| s)),
                },
            }
        })
        .collect();
    app.store.settle(&outcomes, 1_000, at).await.unwrap();
    claimed.into_iter().map(|c| c.entity_id).collect()
}

/// How the receiver fails each entity: 101, 103 and 105 with a 422 naming the ticket, 102 and
/// 106 with a 504, 104 with hostile text; 107 succeeds.
fn receiver(entity: &str) -> Option<(u16, String)> {
    match entity {
        "101" | "103" | "105" => Some((
            422,
            format!("the executor answered HTTP 422: ticket {entity} failed validation"),
        )),
        "102" | "106" => Some((504, "the executor answered HTTP 504".into())),
        "104" => Some((422, "<script>alert('x')</script> ticket 104 refused".into())),
        _ => None,
    }
}

/// A page's text with askama's escapes undone (numeric `<` and `>` too).
fn unescaped(body: &str) -> String {
    browser::unescaped(&body.replace("&#60;", "<").replace("&#62;", ">"))
}

/// `t` as the page shows it in Sydney.
fn sydney(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::get("Australia/Sydney").unwrap())
        .strftime("%a %-d %b %H:%M %Z")
        .to_string()
}

/// The rows of the Failures table, in order.
fn cluster_rows(page: &str) -> Vec<&str> {
    page.split("<tr class=\"failure-cluster\"")
        .skip(1)
        .map(|r| &r[..r.find("</tr>").unwrap()])
        .collect()
}

#[tokio::test]
async fn failures_are_grouped_by_cause_and_one_cause_is_rerun_alone() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let ids: Vec<String> = (101..=107).map(|i| i.to_string()).collect();
    let id = app
        .backfill_from(
            &key,
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids},
                   "max_in_flight": 10, "timezone": "Australia/Sydney"}),
        )
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;

    // No failure yet: no section.
    let page = b.get(&format!("/backfills/{id}")).await.body;
    assert!(page.contains("<div id=\"failures\""), "{page}");
    assert!(!page.contains("id=\"h-failures\""), "{page}");

    // Four, then two an hour later; 107 is still pending, so the backfill is RUNNING.
    let t1 = app.now();
    let t2 = t1 + SignedDuration::from_hours(1);
    assert_eq!(run(&app, &id, 4, t1, receiver).await.len(), 4);
    assert_eq!(run(&app, &id, 2, t2, receiver).await.len(), 2);

    let page = b.get(&format!("/backfills/{id}")).await.body;
    assert!(!page.contains("<script>alert"), "escaped: {page}");
    assert!(page.contains("id=\"h-failures\""), "{page}");
    // The same clusters as the API's, in its order.
    let api = app
        .get(&key, &format!("/public-api/backfills/{id}/failures"))
        .await;
    let api = api.body["data"].as_array().unwrap().clone();
    let text = unescaped(&page);
    let rows = cluster_rows(&text);
    assert_eq!(rows.len(), 3, "{text}");
    let sig_422 = signature("the executor answered HTTP 422: ticket 101 failed validation");
    let sig_504 = signature("the executor answered HTTP 504");
    let sig_script = signature("<script>alert('x')</script> ticket 104 refused");
    assert_eq!(
        sig_422,
        "the executor answered HTTP 422: ticket <n> failed validation"
    );
    for (row, (kind, count, sig, entities), c) in [
        ("http_4xx", 3, &sig_422, vec!["101", "103", "105"]),
        ("http_5xx", 2, &sig_504, vec!["102", "106"]),
        ("http_4xx", 1, &sig_script, vec!["104"]),
    ]
    .iter()
    .enumerate()
    .map(|(i, e)| (rows[i], e, &api[i]))
    {
        assert!(
            row.starts_with(&format!(
                " data-kind=\"{kind}\" data-count=\"{count}\" data-signature=\"{sig}\">"
            )),
            "{row}"
        );
        assert_eq!(c["signature"], Value::from(sig.as_str()), "API: {c}");
        assert_eq!(c["count"], *count);
        assert!(
            row.contains(&format!("<code class=\"signature\">{sig}</code>")),
            "{row}"
        );
        assert!(
            row.contains(&format!(
                "class=\"sample-error err-text\">{}</span>",
                c["sample_error"].as_str().unwrap()
            )),
            "{row}"
        );
        // Each sample entity links to the items view of that entity.
        for e in entities {
            assert!(
                row.contains(&format!(
                    "<a href=\"/backfills/{id}?entity_id={e}#items\" class=\"entity-link\" data-entity=\"{e}\"><code>{e}</code></a>"
                )),
                "{row}"
            );
        }
        assert_eq!(row.matches("class=\"entity-link\"").count(), entities.len());
        // Not terminal: no rerun yet.
        assert!(!row.contains("Rerun this cause"), "{row}");
    }
    // First and last seen, in the backfill's zone.
    let first = rows[0];
    assert!(
        first.contains(&format!(
            "<span class=\"small\">first</span> <time datetime=\"{t1}\" data-zone=\"Australia/Sydney\""
        )),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            ">{}</time><br><span class=\"small\">last</span> <time datetime=\"{t2}\"",
            sydney(t1)
        )),
        "{first}"
    );
    assert!(
        first.contains(&format!(">{}</time>", sydney(t2))),
        "{first}"
    );
    // Hostile text is escaped where it is shown and where the form carries it.
    assert!(
        page.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; ticket 104 refused"),
        "{page}"
    );
    assert!(
        page.contains("<code class=\"signature\">&#60;script&#62;alert(&#39;…&#39;)&#60;/script&#62; ticket &#60;n&#62; refused</code>"),
        "{page}"
    );
    // The entity link opens the items view of that entity.
    let items = b.get(&format!("/backfills/{id}?entity_id=103")).await.body;
    assert_eq!(items.matches("<tr data-status=").count(), 1, "{items}");
    assert!(
        items.contains("<tr data-status=\"failed\" data-entity=\"103\">"),
        "{items}"
    );

    // A rerun of a cause while the backfill runs: the API's 409, in words.
    let rerun = |sig: String, token: String| {
        let b = &b;
        let path = format!("/backfills/{id}/rerun-cause");
        async move {
            b.post(
                &path,
                &[("csrf", token.as_str()), ("signature", &sig)],
                true,
            )
            .await
        }
    };
    let r = rerun(sig_422.clone(), csrf.clone()).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);
    // Without the session's token, nothing.
    let r = rerun(sig_422.clone(), "forged".into()).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // 107 succeeds: COMPLETED with 6 failures; each cause offers its rerun.
    run(&app, &id, 1, t2 + SignedDuration::from_hours(1), receiver).await;
    app.store
        .complete_if_settled(&id, t2 + SignedDuration::from_hours(1))
        .await
        .unwrap();
    let state = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(state.body["data"]["state"], "COMPLETED", "{:?}", state.body);
    let section = b.get(&format!("/backfills/{id}/failures")).await.body;
    assert_eq!(section.matches(">Rerun this cause</button>").count(), 3);
    assert!(
        section.contains(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
        )),
        "{section}"
    );
    assert!(
        section.contains("<input type=\"hidden\" name=\"signature\" value=\"&#60;script&#62;alert(&#39;…&#39;)&#60;/script&#62; ticket &#60;n&#62; refused\">"),
        "{section}"
    );
    assert!(!section.contains("<script>"), "{section}");
    // An empty cause, and one no failure has.
    let r = rerun(" ".into(), csrf.clone()).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = rerun("the executor answered HTTP 418".into(), csrf.clone()).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);

    // Rerun the 422s: a child over exactly 101, 103 and 105.
    let r = rerun(sig_422.clone(), csrf.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let to = r.location().to_owned();
    assert!(to.ends_with("?flash=rerun"), "{to}");
    let child = &to["/backfills/".len()..to.find('?').unwrap()];
    let items = app
        .get(
            &key,
            &format!("/public-api/backfills/{child}/items?page_size=100"),
        )
        .await;
    let mut entities: Vec<&str> = items.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["entity_id"].as_str().unwrap())
        .collect();
    entities.sort();
    assert_eq!(entities, ["101", "103", "105"]);
    let api = app
        .get(&key, &format!("/public-api/backfills/{child}"))
        .await;
    assert_eq!(
        api.body["data"]["rerun_causes"],
        json!({"error_signatures": [sig_422], "failure_kinds": []})
    );
    // The child's page says what it reruns, and has no failure of its own.
    let page = b.get(&to).await.body;
    assert!(
        page.contains("Rerun created over the 3 failed entities"),
        "{page}"
    );
    assert!(
        unescaped(&page).contains(&format!(
            "<p class=\"small\" id=\"rerun-causes\">Rerun of: <code class=\"rerun-signature\">{sig_422}</code></p>"
        )),
        "{page}"
    );
    assert!(!page.contains("id=\"h-failures\""), "{page}");
    // The plain rerun of the parent is refused while the child is active.
    let r = b
        .post(
            &format!("/backfills/{id}/rerun-failed"),
            &[("csrf", &csrf)],
            true,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

#[tokio::test]
async fn a_rerun_of_kinds_names_them() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1", "2", "3"]).await;
    run(&app, &id, 3, app.now(), |e| match e {
        "1" => Some((504, "the executor answered HTTP 504".into())),
        "2" => Some((429, "the executor answered HTTP 429".into())),
        _ => None,
    })
    .await;
    app.store.complete_if_settled(&id, app.now()).await.unwrap();
    let r = app
        .post(
            &key,
            &format!("/public-api/backfills/{id}/rerun-failed"),
            json!({"failure_kinds": ["http_5xx", "throttled"], "error_signatures": ["x <n>"]}),
        )
        .await;
    // "x <n>" matches nothing, but the kinds do.
    assert_eq!(r.status, 201, "{:?}", r.body);
    let child = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Browser::new(&app);
    b.sign_in(&key).await;
    let page = unescaped(&b.get(&format!("/backfills/{child}")).await.body);
    assert!(
        page.contains("id=\"rerun-causes\">Rerun of: <span class=\"badge rerun-kind\">http_5xx</span> / <span class=\"badge rerun-kind\">throttled</span> / <code class=\"rerun-signature\">x <n></code></p>"),
        "{page}"
    );
    // A plain rerun names no cause.
    let parent = b.get(&format!("/backfills/{id}")).await.body;
    assert!(!parent.contains("id=\"rerun-causes\""), "{parent}");
}
