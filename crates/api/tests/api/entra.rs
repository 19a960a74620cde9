//! Microsoft Entra ID access tokens: RS256 tokens signed with an RSA key generated at test time
//! (openssl CLI), verified against a JWKS served by a small local server; issuer, audience,
//! expiry (against the manual clock, 60 s leeway), algorithm, key id and tenant link; the JWKS
//! refetch policy; and API-key management over HTTP, which only an Entra admin may use.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::SignedDuration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use neo_api::auth::EntraConfig;
use neo_store::Tenant;
use serde_json::{json, Value};

use crate::helpers::*;

const ISS: &str = "https://login.microsoftonline.com/3f6a1c2e-8b4d-4e0f-9a7b-2c5d8e1f0a93/v2.0";
const AUD: &str = "api://neo-backfill";
const TID: &str = "3f6a1c2e-8b4d-4e0f-9a7b-2c5d8e1f0a93";
const OTHER_TID: &str = "b0e7d4c1-5a2f-4b6e-8d3c-9f1a2e7b4c60";
const KID: &str = "neo-test-key-1";
const ADMIN_ROLE: &str = "Neo.Admin";

// ---- RSA keys, generated once per test binary with the openssl CLI ---------------------------

struct RsaKey {
    /// Private key, PEM.
    pem: String,
    /// Modulus, base64url without padding (the JWK `n`).
    n: String,
}

fn openssl(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is needed by these tests");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn generate_rsa_key() -> RsaKey {
    let pem = openssl(&["genrsa", "2048"], None);
    let modulus = openssl(&["rsa", "-noout", "-modulus"], Some(&pem));
    let hex_n = modulus
        .trim()
        .strip_prefix("Modulus=")
        .unwrap_or_else(|| panic!("unexpected openssl output {modulus:?}"));
    let n = URL_SAFE_NO_PAD.encode(hex::decode(hex_n).unwrap());
    RsaKey { pem, n }
}

/// The key the JWKS publishes.
fn key_a() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(generate_rsa_key)
}

/// Another key: an attacker's, or the next key the issuer rolls over to.
fn key_b() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(generate_rsa_key)
}

fn jwk(key: &RsaKey, kid: &str) -> Value {
    json!({"kty": "RSA", "kid": kid, "n": key.n, "e": "AQAB", "alg": "RS256", "use": "sig"})
}

fn sign(key: &RsaKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let enc = EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &enc).unwrap()
}

// ---- a JWKS endpoint whose key set can change during a test ---------------------------------

#[derive(Clone)]
struct JwksState {
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<Value>>,
}

struct JwksServer {
    url: String,
    state: JwksState,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let state = JwksState {
            hits: Arc::new(AtomicUsize::new(0)),
            body: Arc::new(Mutex::new(json!({ "keys": keys }))),
        };
        async fn serve(State(s): State<JwksState>) -> Json<Value> {
            s.hits.fetch_add(1, Ordering::SeqCst);
            Json(s.body.lock().unwrap().clone())
        }
        let router = axum::Router::new()
            .route("/discovery/v2.0/keys", get(serve))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        JwksServer {
            url: format!("http://{addr}/discovery/v2.0/keys"),
            state,
        }
    }

    /// How many times the key set was fetched.
    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.state.body.lock().unwrap() = json!({ "keys": keys });
    }
}

// ---- the app with Entra ID configured and tenant `acme` linked to TID ----------------------

struct Entra {
    app: TestApp,
    jwks: JwksServer,
    tenant: Tenant,
}

impl Entra {
    async fn spawn() -> Self {
        let jwks = JwksServer::start(vec![jwk(key_a(), KID)]).await;
        let jwks_url = jwks.url.clone();
        let app = TestApp::spawn_with(|cfg| {
            cfg.entra = Some(EntraConfig {
                issuers: vec![ISS.into()],
                audiences: vec![AUD.into()],
                jwks_url,
                admin_role: ADMIN_ROLE.into(),
            })
        })
        .await;
        let tenant = app.store.ensure_tenant("acme", app.now()).await.unwrap();
        app.store
            .set_tenant_entra_tid(&tenant.id, Some(TID))
            .await
            .unwrap();
        Entra { app, jwks, tenant }
    }

    fn now(&self) -> i64 {
        self.app.now().as_second()
    }

    /// Claims of a valid token for `acme`, valid for an hour from the clock's now.
    fn claims(&self) -> Value {
        let now = self.now();
        json!({
            "iss": ISS,
            "aud": AUD,
            "tid": TID,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "oid": "5e0c2b7a-1d3f-4a9e-b8c6-7f2d1e0a9b34",
            "preferred_username": "ada@acme.example",
        })
    }

    fn claims_with(&self, changes: Value) -> Value {
        let mut c = self.claims();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// A valid token for `acme` signed with the published key.
    fn token(&self) -> String {
        sign(key_a(), KID, &self.claims())
    }

    fn admin_token(&self) -> String {
        sign(
            key_a(),
            KID,
            &self.claims_with(json!({"roles": [ADMIN_ROLE]})),
        )
    }

    async fn assert_accepted(&self, token: &str) {
        let r = self.app.get(token, "/public-api/tenant").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["data"]["name"], "acme", "{:?}", r.body);
        assert_eq!(r.body["data"]["id"], self.tenant.id.as_str());
    }

    async fn assert_rejected(&self, token: &str) {
        self.assert_rejected_because(token, "").await;
    }

    /// 401 `unauthorized`, with a message that mentions `why`.
    async fn assert_rejected_because(&self, token: &str, why: &str) {
        let r = self.app.get(token, "/public-api/tenant").await;
        r.assert_error(401, "unauthorized");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{msg:?} should mention {why:?}");
    }
}

// ---- tokens ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_token_is_accepted_for_the_linked_tenant() {
    let e = Entra::spawn().await;
    assert_eq!(e.jwks.hits(), 0, "the JWKS is fetched lazily");
    e.assert_accepted(&e.token()).await;
    assert_eq!(e.jwks.hits(), 1);
    // The key set is cached: more tokens do not fetch it again.
    e.assert_accepted(&e.token()).await;
    e.assert_accepted(&e.admin_token()).await;
    assert_eq!(e.jwks.hits(), 1);
}

#[tokio::test]
async fn a_token_for_another_audience_is_401() {
    let e = Entra::spawn().await;
    let t = sign(
        key_a(),
        KID,
        &e.claims_with(json!({"aud": "api://someone-else"})),
    );
    e.assert_rejected_because(&t, "audience").await;
    e.assert_accepted(&e.token()).await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_401() {
    let e = Entra::spawn().await;
    let iss = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0";
    let t = sign(key_a(), KID, &e.claims_with(json!({"iss": iss})));
    e.assert_rejected_because(&t, "issuer").await;
    e.assert_accepted(&e.token()).await;
}

#[tokio::test]
async fn an_expired_token_is_401_beyond_the_60_s_leeway() {
    let e = Entra::spawn().await;
    let now = e.now();
    let expired = sign(
        key_a(),
        KID,
        &e.claims_with(json!({"iat": now - 3700, "nbf": now - 3700, "exp": now - 61})),
    );
    e.assert_rejected_because(&expired, "expired").await;
    // Within the leeway it is still accepted.
    let just = sign(
        key_a(),
        KID,
        &e.claims_with(json!({"iat": now - 3630, "nbf": now - 3630, "exp": now - 30})),
    );
    e.assert_accepted(&just).await;
    // A token that was valid becomes unusable once the clock passes exp + 60 s.
    let t = e.token();
    e.assert_accepted(&t).await;
    e.app.clock.advance(SignedDuration::from_secs(3600 + 61));
    e.assert_rejected_because(&t, "expired").await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_401() {
    let e = Entra::spawn().await;
    let header = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"alg": "none", "typ": "JWT", "kid": KID})).unwrap());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&e.claims()).unwrap());
    e.assert_rejected(&format!("{header}.{payload}.")).await;
    e.assert_accepted(&e.token()).await;
}

#[tokio::test]
async fn an_hs256_token_is_401() {
    let e = Entra::spawn().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    // Signed with a shared secret, including the published modulus as the "secret" (the
    // classic RS256 -> HS256 confusion).
    for secret in [b"not-so-secret".as_slice(), key_a().n.as_bytes()] {
        let t =
            jsonwebtoken::encode(&header, &e.claims(), &EncodingKey::from_secret(secret)).unwrap();
        e.assert_rejected_because(&t, "RS256").await;
    }
    e.assert_accepted(&e.token()).await;
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_401() {
    let e = Entra::spawn().await;
    e.assert_rejected_because(&sign(key_a(), "no-such-kid", &e.claims()), "unknown key")
        .await;
    e.assert_accepted(&e.token()).await;
}

#[tokio::test]
async fn a_token_whose_tid_is_not_linked_is_401() {
    let e = Entra::spawn().await;
    let t = sign(key_a(), KID, &e.claims_with(json!({"tid": OTHER_TID})));
    e.assert_rejected_because(&t, "not linked").await;
    e.assert_accepted(&e.token()).await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_with_the_published_kid_is_401() {
    let e = Entra::spawn().await;
    e.assert_rejected_because(&sign(key_b(), KID, &e.claims()), "signature")
        .await;
    e.assert_accepted(&e.token()).await;
}

// ---- JWKS refetch policy --------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_every_5_minutes() {
    let e = Entra::spawn().await;
    e.assert_accepted(&e.token()).await;
    assert_eq!(e.jwks.hits(), 1);

    // Right after the first fetch an unknown kid does not fetch again.
    e.assert_rejected_because(&sign(key_b(), "kid-2", &e.claims()), "unknown key")
        .await;
    e.assert_rejected_because(&sign(key_b(), "kid-3", &e.claims()), "unknown key")
        .await;
    assert_eq!(e.jwks.hits(), 1);

    // Five minutes later an unknown kid refetches once ...
    e.app.clock.advance(SignedDuration::from_mins(5));
    e.assert_rejected_because(&sign(key_b(), "kid-2", &e.claims()), "unknown key")
        .await;
    assert_eq!(e.jwks.hits(), 2);
    // ... and not again within the next 5 minutes.
    e.app.clock.advance(SignedDuration::from_mins(4));
    e.assert_rejected_because(&sign(key_b(), "kid-2", &e.claims()), "unknown key")
        .await;
    assert_eq!(e.jwks.hits(), 2);

    // The issuer rolls over to a new key: still within 5 minutes of the last fetch, a token
    // with the new kid is refused without a fetch.
    e.jwks
        .publish(vec![jwk(key_a(), KID), jwk(key_b(), "kid-2")]);
    let rolled = sign(
        key_b(),
        "kid-2",
        &e.claims_with(json!({"exp": e.now() + 7200})),
    );
    e.assert_rejected_because(&rolled, "unknown key").await;
    assert_eq!(e.jwks.hits(), 2);

    // Five minutes after the last fetch the new key is fetched and the token accepted, once.
    e.app.clock.advance(SignedDuration::from_mins(1));
    e.assert_accepted(&rolled).await;
    assert_eq!(e.jwks.hits(), 3);
    e.assert_accepted(&rolled).await;
    e.assert_accepted(&e.token()).await;
    assert_eq!(e.jwks.hits(), 3);
}

#[tokio::test]
async fn a_new_key_is_picked_up_5_minutes_after_the_first_fetch() {
    let e = Entra::spawn().await;
    e.assert_accepted(&e.token()).await;
    assert_eq!(e.jwks.hits(), 1);

    e.jwks
        .publish(vec![jwk(key_a(), KID), jwk(key_b(), "kid-2")]);
    e.app.clock.advance(SignedDuration::from_mins(5));
    let t = sign(key_b(), "kid-2", &e.claims());
    e.assert_accepted(&t).await;
    assert_eq!(e.jwks.hits(), 2);
}

// ---- API-key management ---------------------------------------------------------------------

/// Every API-key route, for key `id`: (method, path).
fn key_routes(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/public-api/api-keys".to_owned()),
        ("POST", "/public-api/api-keys".to_owned()),
        ("POST", format!("/public-api/api-keys/{id}/rotate")),
        ("DELETE", format!("/public-api/api-keys/{id}")),
    ]
}

async fn call(app: &TestApp, bearer: &str, method: &str, path: &str) -> Resp {
    match method {
        "GET" => app.get(bearer, path).await,
        "POST" if path.ends_with("/rotate") => app.post_empty(bearer, path).await,
        "POST" => app.post(bearer, path, json!({})).await,
        "DELETE" => app.delete(bearer, path).await,
        _ => unreachable!("{method}"),
    }
}

async fn key_ids(app: &TestApp, tenant: &Tenant) -> Vec<String> {
    app.store
        .list_api_keys(&tenant.id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect()
}

#[tokio::test]
async fn api_key_routes_are_forbidden_to_api_keys() {
    let e = Entra::spawn().await;
    let key = e.app.key("acme").await;
    let ids = key_ids(&e.app, &e.tenant).await;
    assert_eq!(ids.len(), 1);
    for (method, path) in key_routes(&ids[0]) {
        let r = call(&e.app, &key, method, &path).await;
        r.assert_error(403, "FORBIDDEN");
    }
    // Nothing was created, rotated or revoked.
    assert_eq!(key_ids(&e.app, &e.tenant).await, ids);
    assert_eq!(e.app.get(&key, "/public-api/tenant").await.status, 200);
}

#[tokio::test]
async fn api_key_routes_are_forbidden_to_entra_users_without_the_admin_role() {
    let e = Entra::spawn().await;
    let key = e.app.key("acme").await;
    let ids = key_ids(&e.app, &e.tenant).await;
    let no_roles = e.token();
    let reader = sign(
        key_a(),
        KID,
        &e.claims_with(json!({"roles": ["Neo.Reader", "neo.admin"]})),
    );
    for token in [&no_roles, &reader] {
        e.assert_accepted(token).await;
        for (method, path) in key_routes(&ids[0]) {
            let r = call(&e.app, token, method, &path).await;
            r.assert_error(403, "FORBIDDEN");
        }
    }
    assert_eq!(key_ids(&e.app, &e.tenant).await, ids);
    assert_eq!(e.app.get(&key, "/public-api/tenant").await.status, 200);
}

#[tokio::test]
async fn an_entra_admin_creates_lists_rotates_and_revokes_keys() {
    let e = Entra::spawn().await;
    let app = &e.app;
    let admin = e.admin_token();

    // Create: the secret is shown once and works as a bearer.
    let r = app.post(&admin, "/public-api/api-keys", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let old_secret = r.body["data"]["secret"].as_str().unwrap().to_owned();
    assert!(old_secret.starts_with("neo_sk_live_"), "{old_secret}");
    let old_id = r.body["data"]["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["data"]["key"]["env"], "live");
    assert_eq!(r.body["data"]["key"]["created_by"], "ada@acme.example");
    assert!(old_secret.ends_with(r.body["data"]["key"]["hint"].as_str().unwrap()));
    let r = app.get(&old_secret, "/public-api/tenant").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["name"], "acme");

    // List: the key is there, its secret is not.
    let r = app.get(&admin, "/public-api/api-keys").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let listed = r.body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{:?}", r.body);
    assert_eq!(listed[0]["id"], old_id.as_str());
    assert!(listed[0].get("secret").is_none(), "{:?}", r.body);
    assert!(!r.body.to_string().contains(&old_secret), "{:?}", r.body);

    // Rotate: a new secret; the old key keeps working for 24 h.
    let r = app
        .post_empty(&admin, &format!("/public-api/api-keys/{old_id}/rotate"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let new_secret = r.body["data"]["secret"].as_str().unwrap().to_owned();
    let new_id = r.body["data"]["key"]["id"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("neo_sk_live_"), "{new_secret}");
    assert_ne!(new_secret, old_secret);
    assert_ne!(new_id, old_id);
    assert!(!r.body.to_string().contains(&old_secret), "{:?}", r.body);
    assert_eq!(app.get(&old_secret, "/public-api/tenant").await.status, 200);
    assert_eq!(app.get(&new_secret, "/public-api/tenant").await.status, 200);

    let r = app.get(&admin, "/public-api/api-keys").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body.to_string();
    assert!(
        !text.contains(&old_secret) && !text.contains(&new_secret),
        "{text}"
    );
    let listed = r.body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{:?}", r.body);
    let old = listed.iter().find(|k| k["id"] == old_id.as_str()).unwrap();
    assert_eq!(old["rotated_to"], new_id.as_str());
    assert_eq!(old["expires_at"], "2026-11-29T21:07:35Z");
    assert!(listed.iter().any(|k| k["id"] == new_id.as_str()));

    // Just before the grace period ends both work; just after, only the new one.
    app.clock
        .advance(SignedDuration::from_hours(24) - SignedDuration::from_secs(1));
    assert_eq!(app.get(&old_secret, "/public-api/tenant").await.status, 200);
    app.clock.advance(SignedDuration::from_secs(2));
    app.get(&old_secret, "/public-api/tenant")
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(app.get(&new_secret, "/public-api/tenant").await.status, 200);

    // Revoke: effective at once, without moving the clock.
    let admin = e.admin_token();
    let r = app
        .delete(&admin, &format!("/public-api/api-keys/{new_id}"))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    app.get(&new_secret, "/public-api/tenant")
        .await
        .assert_error(401, "unauthorized");
    let r = app.get(&admin, "/public-api/api-keys").await;
    let text = r.body.to_string();
    assert!(
        !text.contains(&old_secret) && !text.contains(&new_secret),
        "{text}"
    );
    let revoked = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == new_id.as_str())
        .unwrap()
        .clone();
    assert!(revoked["revoked_at"].is_string(), "{revoked:?}");
}

/// Issue 14: rotating a key that expires within the grace period used to yield a key that never
/// expires. Rotation never extends a key's lifetime: the new key ends when the old one would
/// have (never stays never); the old one at the earlier of its expiry and now + 24 h.
#[tokio::test]
async fn rotation_never_extends_a_keys_lifetime() {
    let e = Entra::spawn().await;
    let app = &e.app;
    let e = &e;
    let rotate = |id: String| async move {
        let r = app
            .post_empty(
                &e.admin_token(),
                &format!("/public-api/api-keys/{id}/rotate"),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r
    };
    let create = |expires_at: Value| async move {
        let r = app
            .post(
                &e.admin_token(),
                "/public-api/api-keys",
                json!({ "expires_at": expires_at }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["data"]["key"]["id"].as_str().unwrap().to_owned()
    };
    // T0 = 2026-11-28T21:07:35Z.
    let soon = create(json!("2026-11-28T23:07:35Z")).await; // in 2 h
    let later = create(json!("2026-11-30T21:07:35Z")).await; // in 48 h
    let never = create(Value::Null).await;

    let r = rotate(soon.clone()).await;
    assert_eq!(r.body["data"]["key"]["expires_at"], "2026-11-28T23:07:35Z");
    let soon_secret = r.body["data"]["secret"].as_str().unwrap().to_owned();
    let r = rotate(later.clone()).await;
    assert_eq!(r.body["data"]["key"]["expires_at"], "2026-11-30T21:07:35Z");
    let r = rotate(never.clone()).await;
    assert!(
        r.body["data"]["key"]["expires_at"].is_null(),
        "{:?}",
        r.body
    );

    let r = app.get(&e.admin_token(), "/public-api/api-keys").await;
    let expiry = |id: &str| {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()["expires_at"]
            .clone()
    };
    assert_eq!(expiry(&soon), "2026-11-28T23:07:35Z");
    assert_eq!(expiry(&later), "2026-11-29T21:07:35Z");
    assert_eq!(expiry(&never), "2026-11-29T21:07:35Z");

    // The key rotated from one that expired in 2 h stops working in 2 h.
    assert_eq!(
        app.get(&soon_secret, "/public-api/tenant").await.status,
        200
    );
    app.clock.advance(SignedDuration::from_hours(2));
    app.get(&soon_secret, "/public-api/tenant")
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn an_admin_of_another_tenant_gets_404_for_this_tenants_keys() {
    let e = Entra::spawn().await;
    let app = &e.app;
    let globex = app.store.ensure_tenant("globex", app.now()).await.unwrap();
    app.store
        .set_tenant_entra_tid(&globex.id, Some(OTHER_TID))
        .await
        .unwrap();
    let intruder = sign(
        key_a(),
        KID,
        &e.claims_with(json!({"tid": OTHER_TID, "roles": [ADMIN_ROLE], "preferred_username": "mallory@globex.example"})),
    );
    let r = app.get(&intruder, "/public-api/tenant").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["name"], "globex");

    let r = app
        .post(&e.admin_token(), "/public-api/api-keys", json!({}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["data"]["secret"].as_str().unwrap().to_owned();
    let id = r.body["data"]["key"]["id"].as_str().unwrap().to_owned();

    for (method, path) in [
        ("POST", format!("/public-api/api-keys/{id}/rotate")),
        ("DELETE", format!("/public-api/api-keys/{id}")),
    ] {
        call(app, &intruder, method, &path)
            .await
            .assert_error(404, "not_found");
    }
    let r = app.get(&intruder, "/public-api/api-keys").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!([]), "{:?}", r.body);

    // The key was neither rotated nor revoked.
    let r = app.get(&secret, "/public-api/tenant").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["name"], "acme");
    let k = app.store.api_key(&id).await.unwrap().unwrap();
    assert!(k.revoked_at.is_none() && k.rotated_to.is_none(), "{k:?}");
    assert_eq!(key_ids(app, &e.tenant).await, vec![id]);
}

#[tokio::test]
async fn a_keys_last_use_is_recorded_at_most_once_a_minute() {
    let e = Entra::spawn().await;
    let app = &e.app;
    let key = app.key("acme").await;
    let last_used = || async {
        let r = app.get(&e.admin_token(), "/public-api/api-keys").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["data"][0]["last_used_at"].clone()
    };
    // The write runs off the request path: poll until it shows (or the deadline passes).
    let settled = |want: &'static str| {
        let last_used = &last_used;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let v = last_used().await;
                if v == want || std::time::Instant::now() > deadline {
                    return v;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(last_used().await, Value::Null, "never used yet");
    assert_eq!(app.get(&key, "/public-api/tenant").await.status, 200);
    assert_eq!(settled(T0).await, T0);
    // Used again within the minute: not written again.
    app.clock.advance(SignedDuration::from_secs(59));
    assert_eq!(app.get(&key, "/public-api/tenant").await.status, 200);
    assert_eq!(last_used().await, T0);
    // A minute after the recorded use: recorded (and the use at +59 s never was).
    app.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(app.get(&key, "/public-api/tenant").await.status, 200);
    assert_eq!(
        settled("2026-11-28T21:08:35Z").await,
        "2026-11-28T21:08:35Z"
    );
}
