//! Per-tenant sliding-window rate limit with `X-RateLimit-*` headers (docs/api.md §2).

use jiff::SignedDuration;

use crate::helpers::*;

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_headers() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit = 3;
        c.rate_window = SignedDuration::from_secs(60);
    })
    .await;
    let key = app.key("acme").await;
    let reset = (app.now() + SignedDuration::from_secs(60))
        .as_second()
        .to_string();
    for remaining in ["2", "1", "0"] {
        let r = app.get(&key, "/public-api/tenant").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
        assert_eq!(r.header("x-ratelimit-reset"), Some(reset.as_str()));
    }
    app.clock.advance(SignedDuration::from_secs(20));
    let r = app.get(&key, "/public-api/tenant").await;
    r.assert_error(429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("40"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));

    // The limit is per tenant, shared by all its keys; another tenant is not affected.
    let key2 = app.key("acme").await;
    app.get(&key2, "/public-api/tenant")
        .await
        .assert_error(429, "rate_limited");
    let other = app.key("globex").await;
    assert_eq!(app.get(&other, "/public-api/tenant").await.status, 200);

    // Refused requests do not count; once the first three leave the window the tenant has
    // its whole allowance again.
    app.clock.advance(SignedDuration::from_secs(40));
    let r = app.get(&key, "/public-api/tenant").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));
}
