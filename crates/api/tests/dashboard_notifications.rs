//! The dashboard's Notifications page over HTTP (no browser): endpoints are added through the
//! form with the API's own checks and messages (and appear in the API's list as chosen),
//! tested, disabled and enabled, and deleted from the page; the endpoint's page lists its
//! deliveries; the secret never reaches a page; every POST needs the session's CSRF token;
//! another tenant's endpoint is not found; the tenant's text is escaped.

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use browser::{Browser, Page};
use helpers::TestApp;
use serde_json::{json, Value};

const SECRET: &str = "whsec_dashboard_never_shown_0001";
const URL: &str = "https://hooks.example.com/neo";

async fn signed_in(app: &TestApp) -> (Browser, String, String) {
    let key = app.key("acme").await;
    let mut b = Browser::new(app);
    let csrf = b.sign_in(&key).await;
    (b, csrf, key)
}

/// The tenant's endpoints as the API lists them.
async fn api_endpoints(app: &TestApp, key: &str) -> Vec<Value> {
    let r = app.get(key, "/public-api/notification-endpoints").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn api_deliveries(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(
            key,
            &format!("/public-api/notification-endpoints/{id}/deliveries"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

/// Adds an endpoint through the API; returns its id.
async fn api_endpoint(app: &TestApp, key: &str, url: &str) -> String {
    let r = app
        .post(
            key,
            "/public-api/notification-endpoints",
            json!({"url": url, "secret": SECRET}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["data"]["id"].as_str().unwrap().to_owned()
}

/// The create form's fields (`events` checked).
fn create_form<'a>(
    csrf: &'a str,
    url: &'a str,
    secret: &'a str,
    events: &[&'a str],
    format: &'a str,
    description: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![("csrf", csrf), ("url", url), ("secret", secret)];
    f.extend(events.iter().map(|e| ("event_types", *e)));
    f.extend([("format", format), ("description", description)]);
    f
}

/// A page's text with askama's escapes undone (numeric `<` and `>` too).
fn unescaped(body: &str) -> String {
    browser::unescaped(&body.replace("&#60;", "<").replace("&#62;", ">"))
}

/// The rows of the endpoints table.
fn endpoint_rows(page: &str) -> Vec<&str> {
    page.split("<tr class=\"endpoint\"")
        .skip(1)
        .map(|r| &r[..r.find("</tr>").unwrap()])
        .collect()
}

fn delivery_rows(page: &str) -> Vec<&str> {
    page.split("<tr class=\"delivery\"")
        .skip(1)
        .map(|r| &r[..r.find("</tr>").unwrap()])
        .collect()
}

#[track_caller]
fn no_secret(p: &Page) {
    assert!(!p.body.contains(SECRET), "the secret leaked: {}", p.body);
    assert!(!p.body.contains("whsec_dashboard"), "{}", p.body);
}

#[tokio::test]
async fn an_endpoint_added_through_the_form_is_listed_here_and_by_the_api() {
    let app = TestApp::spawn().await;
    let (b, csrf, key) = signed_in(&app).await;

    let page = b.get("/notifications").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<a href=\"/notifications\" aria-current=\"page\">Notifications</a>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No notification endpoint yet."));
    // Every subscribable type is offered, checked; the test event is not.
    for t in neo_domain::notify::EventType::subscribable() {
        assert!(
            page.body.contains(&format!(
                "<input type=\"checkbox\" name=\"event_types\" value=\"{t}\" checked>"
            )),
            "{t}: {}",
            page.body
        );
    }
    assert!(!page.body.contains("value=\"endpoint.test\""));
    assert!(page
        .body
        .contains("<input id=\"ne-secret\" name=\"secret\" type=\"password\""));
    // Other pages link to it.
    let other = b.get("/workflows").await.body;
    assert!(other.contains("<a href=\"/notifications\">Notifications</a>"));

    let description = "Ops <script>alert(1)</script> & co";
    let r = b
        .post(
            "/notifications",
            &create_form(
                &csrf,
                URL,
                SECRET,
                &["backfill.completed", "backfill.failed"],
                "slack",
                description,
            ),
            false,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/notifications?flash=created");

    let api = api_endpoints(&app, &key).await;
    assert_eq!(api.len(), 1, "{api:?}");
    let e = &api[0];
    assert_eq!(e["url"], URL);
    assert_eq!(
        e["event_types"],
        json!(["backfill.completed", "backfill.failed"])
    );
    assert_eq!(e["format"], "slack");
    assert_eq!(e["enabled"], true);
    assert_eq!(e["description"], description);
    let id = e["id"].as_str().unwrap();

    let page = b.get("/notifications?flash=created").await;
    no_secret(&page);
    assert!(page.body.contains("Endpoint added."), "{}", page.body);
    let rows = endpoint_rows(&page.body);
    assert_eq!(rows.len(), 1, "{}", page.body);
    let row = rows[0];
    assert!(
        row.starts_with(&format!(" data-endpoint=\"{id}\" data-enabled=\"true\">")),
        "{row}"
    );
    assert!(row.contains(&format!("<code class=\"endpoint-url\">{URL}</code>")));
    assert!(
        row.contains(">backfill.completed, backfill.failed</td>"),
        "{row}"
    );
    assert!(row.contains(">slack</td>"), "{row}");
    assert!(row.contains(">enabled</span>"), "{row}");
    assert!(row.contains(&format!("<a href=\"/notifications/{id}\"")));
    for action in ["test", "toggle", "delete"] {
        assert!(
            row.contains(&format!("action=\"/notifications/{id}/{action}\"")),
            "{row}"
        );
    }
    assert!(row.contains(">Send a test event</button>"));
    assert!(row.contains(">Disable</button>"));
    assert!(row.contains("hx-confirm=\"Delete the endpoint"));
    // The description is the tenant's text: escaped, on both pages.
    let endpoint = b.get(&format!("/notifications/{id}")).await;
    no_secret(&endpoint);
    for p in [&page.body, &endpoint.body] {
        assert!(!p.contains("<script>alert"), "{p}");
        assert!(
            p.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{p}"
        );
        assert!(unescaped(p).contains(description), "{p}");
    }
    // The form is fresh again: every type checked, nothing typed.
    assert!(page.body.contains("value=\"backfill.started\" checked>"));
    assert!(page
        .body
        .contains("name=\"url\" type=\"url\" required value=\"\""));

    // Without choosing events or format, the API's defaults: every type, json.
    let r = b
        .post(
            "/notifications",
            &[
                ("csrf", csrf.as_str()),
                ("url", "https://second.example.com/hook"),
                ("secret", SECRET),
            ],
            false,
        )
        .await;
    // No box checked is "none", which the API refuses; the dashboard says so.
    assert_eq!(r.status, 422, "{}", r.body);
    no_secret(&r);
    let all: Vec<&str> = neo_domain::notify::EventType::subscribable()
        .map(|t| t.as_str())
        .collect();
    let mut form = create_form(
        &csrf,
        "https://second.example.com/hook",
        SECRET,
        &all,
        "json",
        "",
    );
    form.retain(|(k, _)| *k != "format");
    let r = b.post("/notifications", &form, false).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let api = api_endpoints(&app, &key).await;
    assert_eq!(api.len(), 2);
    let second = api
        .iter()
        .find(|e| e["url"] == "https://second.example.com/hook")
        .unwrap();
    assert_eq!(second["event_types"], json!(all));
    assert_eq!(second["format"], "json");
    assert_eq!(second["description"], Value::Null);
    let page = b.get("/notifications").await.body;
    assert!(page.contains(">every backfill event</td>"), "{page}");
}

#[tokio::test]
async fn refusals_show_the_api_message_keep_the_form_and_create_nothing() {
    let app = TestApp::spawn().await;
    let (b, csrf, key) = signed_in(&app).await;

    // What the API says about each body.
    let api_message = |body: Value| {
        let app = &app;
        let key = &key;
        async move {
            let r = app
                .post(key, "/public-api/notification-endpoints", body)
                .await;
            assert_eq!(r.status, 422, "{:?}", r.body);
            r.body["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let cases = [
        ("ftp://x", SECRET, vec!["backfill.failed"], "url"),
        (URL, "short", vec!["backfill.failed"], "secret"),
        (URL, SECRET, vec![], "event_types"),
    ];
    for (url, secret, events, field) in cases {
        let message =
            api_message(json!({"url": url, "secret": secret, "event_types": events})).await;
        let r = b
            .post(
                "/notifications",
                &create_form(&csrf, url, secret, &events, "slack", "Kept <b>"),
                false,
            )
            .await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        no_secret(&r);
        let text = unescaped(&r.body);
        assert!(
            text.contains(&format!(
                "<p class=\"msg error\" role=\"alert\" id=\"create-error\">{message} (field: {field})</p>"
            )),
            "{field} ({message}): {text}"
        );
        // What was typed is kept, but not the secret.
        assert!(
            text.contains(&format!(
                "name=\"url\" type=\"url\" required value=\"{url}\""
            )),
            "{text}"
        );
        assert!(text.contains("value=\"Kept <b>\""), "{text}");
        assert!(!r.body.contains("Kept <b>"), "escaped: {}", r.body);
        assert!(text.contains("<option value=\"slack\" selected>"), "{text}");
        assert!(
            !r.body.contains(&format!("value=\"{secret}\"")),
            "{}",
            r.body
        );
        for t in ["backfill.started", "backfill.failed"] {
            let checked = events.contains(&t);
            assert_eq!(
                r.body.contains(&format!("value=\"{t}\" checked>")),
                checked,
                "{t}: {}",
                r.body
            );
        }
    }
    assert!(api_endpoints(&app, &key).await.is_empty());
    let page = b.get("/notifications").await.body;
    assert!(page.contains("No notification endpoint yet."));
}

/// The API's per-tenant limit, refused in its words.
#[tokio::test]
async fn the_endpoint_limit_is_the_apis() {
    let app = TestApp::spawn().await;
    let (b, csrf, key) = signed_in(&app).await;
    for i in 0..neo_domain::notify::MAX_ENDPOINTS {
        api_endpoint(&app, &key, &format!("https://h{i}.example.com/neo")).await;
    }
    let r = b
        .post(
            "/notifications",
            &create_form(&csrf, URL, SECRET, &["backfill.failed"], "json", ""),
            false,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body
            .contains("a tenant has at most 20 notification endpoints; delete one first</p>"),
        "{}",
        r.body
    );
    no_secret(&r);
    assert_eq!(
        api_endpoints(&app, &key).await.len(),
        neo_domain::notify::MAX_ENDPOINTS
    );
}

#[tokio::test]
async fn a_test_event_is_written_and_listed_on_the_endpoint_page() {
    let app = TestApp::spawn().await;
    let (b, csrf, key) = signed_in(&app).await;
    let id = api_endpoint(&app, &key, URL).await;

    let page = b.get(&format!("/notifications/{id}")).await;
    assert_eq!(page.status, 200);
    no_secret(&page);
    assert!(page
        .body
        .contains(&format!("<code class=\"endpoint-url\">{URL}</code>")));
    assert!(page.body.contains("set (write-only: it is never shown)"));
    assert!(page.body.contains("No delivery yet."), "{}", page.body);
    assert!(delivery_rows(&page.body).is_empty());

    let r = b
        .post(
            &format!("/notifications/{id}/test"),
            &[("csrf", &csrf)],
            false,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), format!("/notifications/{id}?flash=test"));

    let api = api_deliveries(&app, &key, &id).await;
    assert_eq!(api.len(), 1, "{api:?}");
    assert_eq!(api[0]["event_type"], "endpoint.test");
    let event = api[0]["event_id"].as_str().unwrap();

    let page = b.get(r.location()).await;
    no_secret(&page);
    assert!(page
        .body
        .contains("Test event written; its delivery is listed below."));
    let rows = delivery_rows(&page.body);
    assert_eq!(rows.len(), 1, "{}", page.body);
    let row = rows[0];
    assert!(
        row.starts_with(&format!(
            " data-event=\"{event}\" data-type=\"endpoint.test\" data-state=\"pending\">"
        )),
        "{row}"
    );
    assert!(row.contains("<td data-label=\"Type\" class=\"delivery-type\">endpoint.test</td>"));
    assert!(row.contains("class=\"delivery-attempts\">0</td>"), "{row}");
    // Times as elsewhere: a <time> element the page's switch can convert.
    let created = api[0]["created_at"].as_str().unwrap();
    assert!(
        row.contains(&format!("<time datetime=\"{created}\" data-zone=\"UTC\"")),
        "{row}"
    );
    // No backfill for a test event.
    assert!(
        row.contains("<td data-label=\"Backfill\"><span class=\"small\">none</span></td>"),
        "{row}"
    );

    // From the list's button too: a second one, newest first.
    b.post(
        &format!("/notifications/{id}/test"),
        &[("csrf", &csrf)],
        false,
    )
    .await;
    let page = b.get(&format!("/notifications/{id}")).await.body;
    assert_eq!(delivery_rows(&page).len(), 2);
    assert_eq!(api_deliveries(&app, &key, &id).await.len(), 2);
}

/// Whether the tenant's only endpoint is enabled, per the API.
async fn enabled(app: &TestApp, key: &str) -> bool {
    api_endpoints(app, key).await[0]["enabled"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn disable_enable_and_delete_from_the_page() {
    let app = TestApp::spawn().await;
    let (b, csrf, key) = signed_in(&app).await;
    let id = api_endpoint(&app, &key, URL).await;

    // Disable from the list.
    let r = b
        .post(
            &format!("/notifications/{id}/toggle"),
            &[("csrf", &csrf), ("enabled", "false")],
            false,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/notifications?flash=disabled");
    assert!(!enabled(&app, &key).await);
    let page = b.get(r.location()).await.body;
    assert!(page.contains("Disabled: it gets no new events"), "{page}");
    let row = endpoint_rows(&page)[0].to_owned();
    assert!(row.contains("data-enabled=\"false\""), "{row}");
    assert!(row.contains(">disabled</span>"), "{row}");
    assert!(row.contains("name=\"enabled\" value=\"true\""), "{row}");
    assert!(row.contains(">Enable</button>"), "{row}");
    // Asking twice for the same state keeps it.
    b.post(
        &format!("/notifications/{id}/toggle"),
        &[("csrf", &csrf), ("enabled", "false")],
        false,
    )
    .await;
    assert!(!enabled(&app, &key).await);

    // Enable from the endpoint's page: back to it.
    let r = b
        .post(
            &format!("/notifications/{id}/toggle"),
            &[("csrf", &csrf), ("enabled", "true"), ("next", "endpoint")],
            false,
        )
        .await;
    assert_eq!(r.location(), format!("/notifications/{id}?flash=enabled"));
    assert!(enabled(&app, &key).await);
    let page = b.get(r.location()).await.body;
    assert!(
        page.contains("Enabled: new events reach it again"),
        "{page}"
    );
    assert!(page.contains(">Disable</button>"), "{page}");
    // Without a state, a toggle flips it.
    b.post(
        &format!("/notifications/{id}/toggle"),
        &[("csrf", &csrf)],
        false,
    )
    .await;
    assert!(!enabled(&app, &key).await);

    // Delete (htmx, as the confirm sends it): the browser is sent to the list.
    let r = b
        .post(
            &format!("/notifications/{id}/delete"),
            &[("csrf", &csrf)],
            true,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.location(), "/notifications?flash=deleted");
    assert!(api_endpoints(&app, &key).await.is_empty());
    let page = b.get(r.location()).await.body;
    assert!(page.contains("Endpoint deleted"), "{page}");
    assert!(endpoint_rows(&page).is_empty());
    assert_eq!(b.get(&format!("/notifications/{id}")).await.status, 404);
    // Deleting it again: not found.
    let r = b
        .post(
            &format!("/notifications/{id}/delete"),
            &[("csrf", &csrf)],
            false,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test]
async fn a_forged_or_missing_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (b, _csrf, key) = signed_in(&app).await;
    let id = api_endpoint(&app, &key, URL).await;
    let create = create_form(
        "",
        "https://new.example.com/x",
        SECRET,
        &["backfill.failed"],
        "json",
        "",
    );
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/notifications".into(), create[1..].to_vec()),
        (format!("/notifications/{id}/test"), vec![]),
        (
            format!("/notifications/{id}/toggle"),
            vec![("enabled", "false")],
        ),
        (format!("/notifications/{id}/delete"), vec![]),
    ];
    for (path, fields) in &posts {
        for token in [None, Some("forged"), Some("")] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            for htmx in [false, true] {
                let r = b.post(path, &form, htmx).await;
                assert_eq!(r.status, 403, "{path} {token:?}: {}", r.body);
                assert!(r.body.contains("security token"), "{}", r.body);
                no_secret(&r);
            }
        }
    }
    let api = api_endpoints(&app, &key).await;
    assert_eq!(api.len(), 1, "{api:?}");
    assert_eq!(api[0]["id"], id.as_str());
    assert_eq!(api[0]["enabled"], true);
    assert!(api_deliveries(&app, &key, &id).await.is_empty());
}

#[tokio::test]
async fn another_tenants_endpoint_is_not_found() {
    let app = TestApp::spawn().await;
    let (b, csrf, key) = signed_in(&app).await;
    let other_key = app.key("globex").await;
    let theirs = api_endpoint(&app, &other_key, "https://globex.example.com/secret-hook").await;
    let mine = api_endpoint(&app, &key, URL).await;

    let page = b.get(&format!("/notifications/{theirs}")).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        page.body.contains("notification endpoint not found"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("globex.example.com"));
    for (action, extra) in [
        ("test", None),
        ("toggle", Some(("enabled", "false"))),
        ("toggle", None),
        ("delete", None),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(extra);
        let r = b
            .post(&format!("/notifications/{theirs}/{action}"), &form, false)
            .await;
        assert_eq!(r.status, 404, "{action}: {}", r.body);
    }
    // Theirs is untouched; the list shows only mine.
    let api = api_endpoints(&app, &other_key).await;
    assert_eq!(api.len(), 1);
    assert_eq!(api[0]["enabled"], true);
    assert!(api_deliveries(&app, &other_key, &theirs).await.is_empty());
    let list = b.get("/notifications").await.body;
    assert!(!list.contains("globex.example.com"), "{list}");
    assert!(list.contains(&format!("data-endpoint=\"{mine}\"")));
    // An unknown action on my own is not a page either.
    let r = b
        .post(
            &format!("/notifications/{mine}/explode"),
            &[("csrf", &csrf)],
            false,
        )
        .await;
    assert_eq!(r.status, 404);
}
