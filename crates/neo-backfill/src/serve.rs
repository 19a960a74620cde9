//! `serve` and `worker`: the long-running commands, and the [`Service`] the demo runs too.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use jiff::SignedDuration;
use neo_api::auth::EntraConfig;
use neo_api::{ApiConfig, AppState};
use neo_domain::clock::Clock;
use neo_store::Store;

use crate::args::{redact_url, ServeArgs, WorkerArgs};

pub async fn serve(a: ServeArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let entra = match (
        a.entra_jwks_url,
        a.entra_issuers.is_empty(),
        a.entra_audiences.is_empty(),
    ) {
        (None, true, true) => None,
        (Some(jwks_url), false, false) => Some(EntraConfig {
            issuers: a.entra_issuers,
            audiences: a.entra_audiences,
            jwks_url,
            admin_role: a.entra_admin_role,
        }),
        _ => bail!("Entra ID needs all of --entra-jwks-url, --entra-issuers and --entra-audiences"),
    };
    if a.rate_limit_window_secs <= 0 {
        bail!("--rate-limit-window-secs must be positive");
    }
    if a.header_read_timeout_secs == 0 || a.body_read_timeout_secs == 0 {
        bail!("--header-read-timeout-secs and --body-read-timeout-secs must be positive");
    }
    let header_read_timeout = std::time::Duration::from_secs(a.header_read_timeout_secs);
    // The address answers from the start: liveness 200, readiness 503 `not_ready` while the
    // database is migrated (which can take a while after an upgrade), so that an orchestrator
    // neither restarts a migrating process nor sends it traffic.
    let listener = Arc::new(
        tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("binding {}", a.listen))?,
    );
    tracing::info!(addr = %listener.local_addr()?, "starting: opening and migrating the database");
    let (starting_tx, starting_rx) = tokio::sync::oneshot::channel::<()>();
    let starting = tokio::spawn(neo_api::server::serve(
        listener.clone(),
        neo_api::routes::meta::starting_router(),
        header_read_timeout,
        async {
            let _ = starting_rx.await;
        },
    ));
    let store = a.key.open(&a.db).await;
    let _ = starting_tx.send(());
    starting.await??;
    let store = store?;
    let metrics = match a.metrics_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr} (--metrics-listen)"))?;
            tracing::info!(addr = %l.local_addr()?, "metrics listening");
            Some(l)
        }
        None => None,
    };
    let cfg = ApiConfig {
        rate_limit: a.rate_limit,
        rate_window: SignedDuration::from_secs(a.rate_limit_window_secs),
        verify_soft_limit: a.verify_soft_limit,
        max_body_bytes: a.max_body_bytes,
        entra,
        egress_allow_private: a.orchestrator.allow_private(),
        psa_policy: a.orchestrator.psa_policy(),
        header_read_timeout,
        body_read_timeout: std::time::Duration::from_secs(a.body_read_timeout_secs),
        behind_proxy: a.behind_proxy,
        metrics_on_api: metrics.is_none(),
    };
    let service = Service::start_on(store, clock, cfg, a.orchestrator.config()?, listener).await?;
    if let Some(l) = metrics {
        let app = neo_api::metrics_router(service.state.metrics.clone())
            .fallback(|| async { axum::http::StatusCode::NOT_FOUND });
        tokio::spawn(neo_api::server::serve(
            l,
            app,
            header_read_timeout,
            std::future::pending(),
        ));
    }
    tracing::info!(addr = %service.addr, database = %redact_url(&a.db.database_url), "listening");
    service.run_until(shutdown_signal()).await
}

/// The HTTP API and the orchestrator on one store: what `serve` and `demo` run.
pub struct Service {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    listener: Arc<tokio::net::TcpListener>,
    orchestrator: neo_orchestrator::Orchestrator,
}

impl Service {
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: ApiConfig,
        orch_cfg: neo_orchestrator::OrchestratorConfig,
        listen: SocketAddr,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        Self::start_on(store, clock, cfg, orch_cfg, Arc::new(listener)).await
    }

    /// [`Service::start`] on a listener already bound (`serve` answers probes on it while it
    /// migrates).
    pub async fn start_on(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: ApiConfig,
        orch_cfg: neo_orchestrator::OrchestratorConfig,
        listener: Arc<tokio::net::TcpListener>,
    ) -> anyhow::Result<Self> {
        let source = Arc::new(neo_psa::source::PsaSource::new(
            store.clone(),
            cfg.psa_policy.clone(),
            neo_egress::Egress::new(neo_egress::EgressPolicy::new(orch_cfg.egress_allow_private)),
        ));
        let state = AppState::new(store.clone(), clock.clone(), cfg).await?;
        let orchestrator =
            neo_orchestrator::Orchestrator::with_source(store, clock, orch_cfg, source);
        Ok(Self {
            addr: listener.local_addr()?,
            state,
            listener,
            orchestrator,
        })
    }

    /// Serves until `stop` resolves, then stops the orchestrator gracefully.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let orch_task = tokio::spawn(self.orchestrator.run(self.state.wake.clone(), stop_rx));
        // Idempotency keys replay for 24 h; older ones are deleted hourly.
        let purge = tokio::spawn(
            neo_api::routes::backfills::purge_idempotency_keys_periodically(
                self.state.clone(),
                std::time::Duration::from_secs(3600),
            ),
        );
        let header_read_timeout = self.state.cfg.header_read_timeout;
        let app = neo_api::router(self.state);
        let served = neo_api::server::serve(self.listener, app, header_read_timeout, stop).await;
        purge.abort();
        served?;
        let _ = stop_tx.send(true);
        let _ = orch_task.await;
        tracing::info!("stopped");
        Ok(())
    }
}

pub async fn worker(a: WorkerArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let store = a.key.open(&a.db).await?;
    let source = Arc::new(neo_psa::source::PsaSource::new(
        store.clone(),
        a.orchestrator.psa_policy(),
        a.orchestrator.egress(),
    ));
    let orchestrator =
        neo_orchestrator::Orchestrator::with_source(store, clock, a.orchestrator.config()?, source);
    tracing::info!(worker = orchestrator.worker_id(), database = %redact_url(&a.db.database_url), "worker started");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(orchestrator.run(Arc::new(tokio::sync::Notify::new()), stop_rx));
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
