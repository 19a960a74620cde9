//! Test harness: the real application on a real TCP port, over a real SQLite file in a
//! temporary directory, driven by a manual clock, called with reqwest.

use std::sync::Arc;

use axum::routing::get;
use jiff::Timestamp;
use neo_api::{ApiConfig, AppState};
use neo_domain::clock::ManualClock;
use neo_store::testing::Backend;
use neo_store::Store;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const T0: &str = "2026-11-28T21:07:35Z";

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    /// The throw-away database (SQLite or PostgreSQL, per `NEO_TEST_BACKEND`).
    pub db: neo_store::testing::TestStore,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self) -> &str {
        self.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the error envelope with a request id.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.code(), code, "code of {:?}", self.body);
        assert!(self.body["error"]["message"].is_string(), "{:?}", self.body);
        let rid = self.body["meta"]["request_id"]
            .as_str()
            .expect("request_id");
        uuid::Uuid::parse_str(rid).expect("request_id is a uuid");
    }
}

async fn panics() -> &'static str {
    panic!("boom (test route)")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut ApiConfig)) -> Self {
        let db = neo_store::testing::suite_store().await;
        let store = db.store.clone();
        let clock = ManualClock::new(T0.parse().unwrap());
        let mut cfg = ApiConfig {
            // The tests' webhook receivers are on loopback: opt in (the SSRF tests opt out).
            egress_allow_private: true,
            ..Default::default()
        };
        f(&mut cfg);
        let header_read_timeout = cfg.header_read_timeout;
        let state = AppState::new(store.clone(), Arc::new(clock.clone()), cfg)
            .await
            .unwrap();
        let extra = axum::Router::new().route("/public-api/__test/panic", get(panics));
        let app = neo_api::router_with(state, extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            neo_api::server::serve(listener, app, header_read_timeout, std::future::pending())
                .await
                .unwrap()
        });
        TestApp {
            base: format!("http://{addr}"),
            store,
            clock,
            client: reqwest::Client::new(),
            db,
        }
    }

    pub fn now(&self) -> Timestamp {
        neo_domain::clock::Clock::now(&self.clock)
    }

    /// Creates the tenant if new and returns a fresh API key for it.
    pub async fn key(&self, tenant: &str) -> String {
        let t = self.store.ensure_tenant(tenant, self.now()).await.unwrap();
        let minted = neo_api::auth::mint_key(&t.id, "test", "test", None, self.now());
        self.store.insert_api_key(minted.row).await.unwrap();
        minted.plaintext
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, key: &str, path: &str) -> Resp {
        self.send(self.client.get(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Resp {
        self.send(
            self.client
                .post(self.url(path))
                .bearer_auth(key)
                .json(&body),
        )
        .await
    }

    pub async fn post_empty(&self, key: &str, path: &str) -> Resp {
        self.send(self.client.post(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> Resp {
        self.send(self.client.put(self.url(path)).bearer_auth(key).json(&body))
            .await
    }

    /// A psa-sim with `tickets` tickets, connected as the tenant's ConnectWise integration.
    pub async fn connectwise_sim(&self, key: &str, tickets: usize) -> psa_sim::SimHandle {
        let sim = psa_sim::spawn(psa_sim::SimConfig {
            tickets,
            ..Default::default()
        })
        .await
        .unwrap();
        let c = sim.config().clone();
        self.connect_connectwise(
            key,
            json!({"site_url": sim.base_url, "company_id": c.cw_company,
                   "public_key": c.cw_public_key, "private_key": c.cw_private_key, "client_id": c.cw_client_id}),
        )
        .await;
        sim
    }

    /// Connects the tenant's ConnectWise integration with these settings (asserting 200).
    pub async fn connect_connectwise(&self, key: &str, settings: Value) {
        let r = self
            .put(key, "/public-api/integrations/connectwise", settings)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Resp {
        self.send(
            self.client
                .patch(self.url(path))
                .bearer_auth(key)
                .json(&body),
        )
        .await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Resp {
        self.send(self.client.delete(self.url(path)).bearer_auth(key))
            .await
    }

    /// Creates an enabled simulated workflow and returns its id.
    pub async fn workflow(&self, key: &str, name: &str) -> i64 {
        self.workflow_with(key, json!({"name": name, "executor": {"type": "simulated", "failure_rate": 0.0, "seed": 1}}))
            .await
    }

    pub async fn workflow_with(&self, key: &str, body: Value) -> i64 {
        let r = self.post(key, "/public-api/agents", body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["data"]["id"].as_i64().unwrap()
    }

    /// Creates a RUNNING backfill over `ids` and returns its id.
    pub async fn backfill(&self, key: &str, workflow: i64, ids: &[&str]) -> String {
        self.backfill_from(
            key,
            json!({"target_workflow_id": workflow, "filter_spec": {"entity_ids": ids}}),
        )
        .await
    }

    /// Creates a backfill from a whole create body (asserting 201) and returns its id.
    pub async fn backfill_from(&self, key: &str, body: Value) -> String {
        let r = self.post(key, "/public-api/backfills", body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["data"]["backfill"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Test fixture: settles items of a backfill directly in the database and ends it in
    /// `state`, as the orchestrator would, keeping counters consistent with the items.
    /// `outcomes` maps entity ids to `succeeded`, `failed` or `skipped`.
    pub async fn settle(&self, backfill_id: &str, outcomes: &[(&str, &str)], state: &str) {
        let mut statements: Vec<(&str, Vec<&str>)> = outcomes
            .iter()
            .map(|(entity, status)| {
                ("UPDATE backfill_items SET status = $1, attempts = 1, error = CASE WHEN $1 = 'failed' THEN 'executor said no' END WHERE backfill_id = $2 AND entity_id = $3",
                 vec![*status, backfill_id, *entity])
            })
            .collect();
        statements.push((
            "UPDATE backfills SET state = $1, completed_at = 0, \
             pending_count = (SELECT COUNT(*) FROM backfill_items WHERE backfill_id = backfills.id AND status = 'pending'), \
             succeeded_count = (SELECT COUNT(*) FROM backfill_items WHERE backfill_id = backfills.id AND status = 'succeeded'), \
             failed_count = (SELECT COUNT(*) FROM backfill_items WHERE backfill_id = backfills.id AND status = 'failed'), \
             skipped_count = (SELECT COUNT(*) FROM backfill_items WHERE backfill_id = backfills.id AND status = 'skipped') \
             WHERE id = $2",
            vec![state, backfill_id],
        ));
        // The same statements on either backend (`$n` is numbered on both; SQLite spells it `?n`).
        match self.db.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.db.url).await.unwrap();
                for (sql, binds) in statements {
                    let sql = sql.replace('$', "?");
                    let mut q = sqlx::query(&sql);
                    for b in binds {
                        q = q.bind(b);
                    }
                    q.execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
                for (sql, binds) in statements {
                    let mut q = sqlx::query(sql);
                    for b in binds {
                        q = q.bind(b);
                    }
                    q.execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
        }
    }
}
