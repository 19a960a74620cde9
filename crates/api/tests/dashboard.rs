//! The dashboard over HTTP (no browser): sign-in and its cookie, sessions that follow the key's
//! revocation, CSRF on every form (the wizard has its own tests: `dashboard_wizard.rs`),
//! the action buttons, the rerun chain, and no secret in any page.
//! The browser end-to-end test is `crates/neo-backfill/tests/dashboard_e2e.rs`.

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use browser::{Browser, Page};
use helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn sign_in_sets_a_strict_httponly_session_cookie_that_is_not_the_key() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let mut b = Browser::new(&app);

    // Not signed in: pages send to the sign-in form (htmx gets HX-Redirect).
    let r = b.get("/backfills").await;
    assert_eq!((r.status, r.location()), (303, "/login"));
    let r = b
        .send(
            b.http
                .get(format!("{}/backfills/rows", b.base))
                .header("hx-request", "true"),
            &[],
        )
        .await;
    assert_eq!((r.status, r.location()), (200, "/login"));

    // A wrong key is refused with a visible message.
    let login = b.get("/login").await;
    let token = login.csrf();
    let wrong = format!("neo_sk_test_{}", "x".repeat(40));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf", token.as_str()), ("api_key", wrong.as_str())])
        .finish();
    let r = b
        .send(
            b.http
                .post(format!("{}/login", b.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone()),
            &[format!("neo_login_csrf={token}")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("Sign-in refused: invalid API key"),
        "{}",
        r.body
    );
    // Without the double-submit cookie the form is refused.
    let r = b
        .send(
            b.http
                .post(format!("{}/login", b.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);

    let token = login.csrf();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf", token.as_str()), ("api_key", key.as_str())])
        .finish();
    let r = b
        .send(
            b.http
                .post(format!("{}/login", b.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            &[format!("neo_login_csrf={token}")],
        )
        .await;
    assert_eq!(r.status, 303);
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("neo_session="))
        .unwrap();
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(
        !cookie.contains(&key[12..]),
        "the cookie holds the key: {cookie}"
    );

    let csrf = b.sign_in(&key).await;
    let page = b.get("/backfills").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Backfills"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.headers["cache-control"], "no-store");

    // Sign out: the session is gone server-side.
    let r = b.post("/logout", &[("csrf", &csrf)], false).await;
    assert_eq!((r.status, r.location()), (303, "/login?signed_out=1"));
    let r = b.get("/backfills").await;
    assert_eq!((r.status, r.location()), (303, "/login"));
}

#[tokio::test]
async fn a_revoked_key_ends_its_sessions_at_once() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let mut b = Browser::new(&app);
    b.sign_in(&key).await;
    assert_eq!(b.get("/workflows").await.status, 200);
    let keys = app
        .store
        .list_api_keys(&app.store.tenant_by_name("acme").await.unwrap().unwrap().id)
        .await
        .unwrap();
    app.store
        .revoke_api_key(&keys[0].id, app.now())
        .await
        .unwrap();
    let r = b.get("/workflows").await;
    assert_eq!((r.status, r.location()), (303, "/login"));
}

#[tokio::test]
async fn every_form_post_checks_the_csrf_token() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1", "2"]).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let wf_s = wf.to_string();
    let create_form = [
        ("workflow", wf_s.as_str()),
        ("filter_mode", "json"),
        ("filter_spec", r#"{"entity_ids": ["9"]}"#),
        ("windows_mode", "always"),
        ("timezone", "UTC"),
    ];
    for (path, form) in [
        (format!("/backfills/{id}/pause"), &[][..]),
        (format!("/backfills/{id}/cancel"), &[][..]),
        (format!("/backfills/{id}/rerun-failed"), &[][..]),
        ("/backfills".to_owned(), &create_form[..]),
        ("/backfills/preflight".to_owned(), &create_form[..]),
        ("/backfills/windows-summary".to_owned(), &create_form[..]),
        ("/backfills/review".to_owned(), &create_form[..]),
        ("/backfills/check".to_owned(), &create_form[..]),
        ("/logout".to_owned(), &[][..]),
    ] {
        let r = b.post(&path, form, true).await;
        assert_eq!(r.status, 403, "{path} without a token: {}", r.body);
        assert!(r.body.contains("security token"), "{}", r.body);
        let mut bad = form.to_vec();
        bad.push(("csrf", "forged"));
        let r = b.post(&path, &bad, true).await;
        assert_eq!(r.status, 403, "{path} with a wrong token");
    }
    // Nothing happened.
    let now = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(now.body["data"]["state"], "RUNNING");
    assert_eq!(
        app.get(&key, "/public-api/backfills").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // With the token the pause works and says so.
    let r = b
        .post(&format!("/backfills/{id}/pause"), &[("csrf", &csrf)], true)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Pause: backfill is now PAUSED."),
        "{}",
        r.body
    );
    assert_eq!(r.headers["hx-trigger"], "refresh-live");
    let now = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(now.body["data"]["state"], "PAUSED");
    // A refused signal shows the API's message.
    let r = b
        .post(
            &format!("/backfills/{id}/rerun-failed"),
            &[("csrf", &csrf)],
            true,
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);
}

#[tokio::test]
async fn rerun_failed_links_the_child_to_its_parent() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1", "2", "3"]).await;
    app.settle(
        &id,
        &[("1", "succeeded"), ("2", "failed"), ("3", "failed")],
        "COMPLETED",
    )
    .await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in(&key).await;
    let page = b.get(&format!("/backfills/{id}")).await;
    assert!(
        page.body.contains(">Rerun failed</button>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-failed=\"2\""));
    let items = b.get(&format!("/backfills/{id}/items?status=failed")).await;
    assert_eq!(items.body.matches("data-status=\"failed\"").count(), 2);
    assert!(items.body.contains("executor said no"));

    let r = b
        .post(
            &format!("/backfills/{id}/rerun-failed"),
            &[("csrf", &csrf)],
            true,
        )
        .await;
    let to = r.location().to_owned();
    assert!(to.ends_with("?flash=rerun"), "{to} {}", r.body);
    let child = b.get(&to).await;
    assert!(
        child
            .body
            .contains(&format!("id=\"parent-link\" class=\"id\" title=\"{id}\"")),
        "{}",
        child.body
    );
    assert!(child
        .body
        .contains("Rerun created over the 2 failed entities"));
    let parent = b.get(&format!("/backfills/{id}")).await;
    let child_id = &to["/backfills/".len()..to.find('?').unwrap()];
    assert!(
        parent
            .body
            .contains(&format!("href=\"/backfills/{child_id}\"")),
        "{}",
        parent.body
    );
    assert!(parent.body.contains("data-relation=\"rerun\""));
}

#[tokio::test]
async fn no_secret_appears_in_any_served_page_or_script() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let webhook_secret = "whsec_dashboard_test_0123456789";
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Hook", "executor": {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": webhook_secret}}),
        )
        .await;
    let psa_secrets = ["PRIVATE-cw-secret-1", "CLIENT-guid-secret-2"];
    let r = app
        .send(
            app.client
                .put(app.url("/public-api/integrations/connectwise"))
                .bearer_auth(&key)
                .json(&json!({"site_url": "https://cw.example.com", "company_id": "acme",
                    "public_key": "pubkey", "private_key": psa_secrets[0], "client_id": psa_secrets[1]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = app.backfill(&key, wf, &["1", "2"]).await;
    let mut b = Browser::new(&app);
    let login = b.get("/login").await.body;
    b.sign_in(&key).await;
    let mut pages = vec![("/login".to_owned(), login)];
    for path in [
        "/".to_owned(),
        "/backfills".into(),
        "/backfills/rows".into(),
        "/backfills/new".into(),
        format!("/backfills/{id}"),
        format!("/backfills/{id}/live"),
        format!("/backfills/{id}/items"),
        "/workflows".into(),
        "/static/dashboard.js".into(),
        "/static/dashboard.css".into(),
        "/static/htmx-2.0.11.min.js".into(),
    ] {
        let p = b.get(&path).await;
        assert!(p.status == 200 || p.status == 303, "{path}: {}", p.status);
        pages.push((path, p.body));
    }
    let key_secret = &key["neo_sk_test_".len()..];
    for (path, body) in &pages {
        for secret in [key.as_str(), key_secret, webhook_secret]
            .iter()
            .chain(psa_secrets.iter())
        {
            assert!(!body.contains(secret), "{path} shows a secret");
        }
    }
    // The workflows page shows the webhook without its secret.
    let wf_page = &pages.iter().find(|p| p.0 == "/workflows").unwrap().1;
    assert!(
        wf_page.contains("webhook → http://127.0.0.1:9/x"),
        "{wf_page}"
    );
}

/// Issue 14: the API-keys page was open to any session while the API's key routes need an
/// Entra ID admin. A dashboard session is an API key, so the page is 403 with where keys are
/// managed, and the nav does not offer it.
#[tokio::test]
async fn the_api_keys_page_is_refused_to_a_key_session_and_not_offered() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let mut b = Browser::new(&app);
    b.sign_in(&key).await;
    let r = b.get("/api-keys").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("neo-backfill keys") && r.body.contains("Entra ID admin"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(&key[..16]), "{}", r.body);
    // The API says the same to the same key.
    let api = app.get(&key, "/public-api/api-keys").await;
    api.assert_error(403, "FORBIDDEN");
    let page = b.get("/backfills").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("href=\"/workflows\""), "{}", page.body);
    assert!(!page.body.contains("href=\"/api-keys\""), "{}", page.body);
}

/// A sign-in with a wrong key through `http`, with `headers` on the form's GET and POST.
async fn wrong_sign_in(app: &TestApp, http: &reqwest::Client, headers: &[(&str, &str)]) -> Page {
    sign_in_with(
        app,
        http,
        headers,
        &format!("neo_sk_test_{}", "x".repeat(40)),
    )
    .await
}

async fn sign_in_with(
    app: &TestApp,
    http: &reqwest::Client,
    headers: &[(&str, &str)],
    key: &str,
) -> Page {
    let with = |mut r: reqwest::RequestBuilder| {
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r
    };
    let r = with(http.get(app.url("/login"))).send().await.unwrap();
    let login = Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    };
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.csrf();
    let r = with(http.post(app.url("/login")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("neo_login_csrf={token}"))
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("csrf", token.as_str()), ("api_key", key)])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[track_caller]
fn assert_refused(p: &Page) {
    assert_eq!(p.status, 401, "{}", p.body);
    assert!(
        p.body.contains("Sign-in refused: invalid API key"),
        "{}",
        p.body
    );
}

#[track_caller]
fn assert_limited(p: &Page) {
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(
        p.body
            .contains("Too many requests to sign in from your address"),
        "{}",
        p.body
    );
    let after: u64 = p.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&after), "{after}");
}

/// Issue 14: sign-in was not rate limited. Ten attempts per 60 s per client address (the TCP
/// peer here): the 11th is 429 with `Retry-After` — even with the right key — while another
/// address still gets the normal page; a minute later the address may try again.
#[tokio::test]
async fn sign_in_attempts_are_limited_per_client_address() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.2");
    for _ in 0..10 {
        assert_refused(&wrong_sign_in(&app, &a, &[]).await);
    }
    assert_limited(&wrong_sign_in(&app, &a, &[]).await);
    assert_limited(&sign_in_with(&app, &a, &[], &key).await);

    assert_refused(&wrong_sign_in(&app, &b, &[]).await);
    assert_eq!(sign_in_with(&app, &b, &[], &key).await.status, 303);

    app.clock.advance(jiff::SignedDuration::from_secs(60));
    assert_refused(&wrong_sign_in(&app, &a, &[]).await);
    assert_eq!(sign_in_with(&app, &a, &[], &key).await.status, 303);
}

fn secure_cookies(p: &Page) -> Vec<bool> {
    p.set_cookies()
        .iter()
        .map(|c| c.ends_with("; Secure"))
        .collect()
}

/// Issue 14: the `Secure` flag followed an untrusted `X-Forwarded-Proto`. By default both
/// `X-Forwarded-Proto` and `X-Forwarded-For` are ignored: no `Secure` flag from a header, and a
/// client cannot dodge the sign-in limit by inventing addresses.
#[tokio::test]
async fn forwarded_headers_are_ignored_by_default() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let http = client_from("127.0.0.1");
    let https = [("x-forwarded-proto", "https")];
    let ok = sign_in_with(&app, &http, &https, &key).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(secure_cookies(&ok), [false, false]);
    for i in 1..10 {
        let xff = format!("203.0.113.{i}");
        assert_refused(&wrong_sign_in(&app, &http, &[("x-forwarded-for", &xff)]).await);
    }
    assert_limited(&wrong_sign_in(&app, &http, &[("x-forwarded-for", "203.0.113.99")]).await);
}

/// With `behind_proxy` (`--behind-proxy`) both headers are trusted: `Secure` cookies when the
/// proxy says https, and the sign-in limit counts the forwarded address (the last entry, the one
/// the proxy added).
#[tokio::test]
async fn forwarded_headers_are_trusted_behind_a_proxy() {
    let app = TestApp::spawn_with(|c| c.behind_proxy = true).await;
    let key = app.key("acme").await;
    let http = client_from("127.0.0.1");
    let via = |ip: &'static str| [("x-forwarded-proto", "https"), ("x-forwarded-for", ip)];
    let ok = sign_in_with(&app, &http, &via("198.51.100.7, 203.0.113.1"), &key).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(secure_cookies(&ok), [true, true]);
    let plain = sign_in_with(&app, &http, &[("x-forwarded-proto", "http")], &key).await;
    assert_eq!(secure_cookies(&plain), [false, false]);
    for _ in 0..9 {
        assert_refused(&wrong_sign_in(&app, &http, &via("203.0.113.1")).await);
    }
    assert_limited(&wrong_sign_in(&app, &http, &via("198.51.100.7, 203.0.113.1")).await);
    // Another forwarded address from the same proxy connection is not limited.
    assert_refused(&wrong_sign_in(&app, &http, &via("203.0.113.2")).await);
}
