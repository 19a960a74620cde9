//! The listener (with per-connection kill switches for `drop` faults), the outer middleware (request log, fault
//! injection, Autotask path-case normalisation) and the router assembly (ConnectWise, Autotask, Halo, admin).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{StatusCode, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;

use crate::config::Limits;
use crate::faults::Fault;
use crate::http_util::{json, set_header};
use crate::state::{lock, Counters, LoggedRequest, RequestSeq, SimState};
use crate::{admin, autotask, cw, halo};

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Which wire dialect a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Personality {
    ConnectWise,
    Autotask,
    Halo,
    Other,
}

impl Personality {
    pub(crate) fn of(path: &str) -> Personality {
        let lower = path.to_ascii_lowercase();
        if lower.starts_with("/atservicesrest/") || lower == "/atservicesrest" {
            Personality::Autotask
        } else if path.starts_with("/v4_6_release/") || path.starts_with("/login/") {
            Personality::ConnectWise
        } else if path.starts_with("/api/") || path.starts_with("/auth/") {
            Personality::Halo
        } else {
            Personality::Other
        }
    }
}

/// Closes one connection: once triggered, every read and write on it fails, so hyper drops it without answering.
#[derive(Clone, Debug, Default)]
pub(crate) struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    pub(crate) fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the router learns about a connection: the switch that drops it.
#[derive(Clone, Debug)]
pub(crate) struct ConnMeta {
    pub kill: KillSwitch,
}

impl Connected<IncomingStream<'_, SimListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections carry a [`KillSwitch`].
pub(crate) struct SimListener(pub TcpListener);

impl Listener for SimListener {
    type Io = KillableStream;
    type Addr = ConnMeta;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, _remote)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = KillSwitch::default();
                    return (
                        KillableStream {
                            inner: stream,
                            kill: kill.clone(),
                        },
                        ConnMeta { kill },
                    );
                }
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()?;
        Ok(ConnMeta {
            kill: KillSwitch::default(),
        })
    }
}

/// A [`TcpStream`] that fails all I/O once its kill switch is triggered.
pub(crate) struct KillableStream {
    inner: TcpStream,
    kill: KillSwitch,
}

fn killed_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by a simulator fault",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.killed() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.killed() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.killed() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.killed() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The whole application: the outer middleware around the router.
pub(crate) fn app(state: Arc<SimState>) -> Router {
    let router = Router::new()
        .merge(cw::routes(state.clone()))
        .merge(autotask::routes(state.clone()))
        .merge(halo::routes(state.clone()))
        .nest("/__sim", admin::routes())
        .fallback(not_found)
        .with_state(state.clone());
    // Wrapping the router (rather than `Router::layer`) runs the middleware before routing, so it can rewrite paths.
    Router::new().fallback_service(from_fn_with_state(state, outer).layer(router))
}

async fn not_found(req: Request) -> Response {
    json(
        StatusCode::NOT_FOUND,
        &json!({"error": "not found", "path": req.uri().path()}),
    )
}

/// Logs the request, applies faults, and normalises Autotask paths (which are case-insensitive) before routing.
async fn outer(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path == "/__sim" || path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    let personality = Personality::of(&path);
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": "request body too large or unreadable"}),
        );
    };

    let mut headers = std::collections::BTreeMap::<String, String>::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let method = parts.method.as_str().to_string();
    let entry = LoggedRequest {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: None,
        fault: None,
        received_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let cap = st.limits().request_log_cap;
    let seq = lock(&st.log).push(entry, cap);
    Counters::bump(&st.counters.requests);
    match personality {
        Personality::ConnectWise => Counters::bump(&st.counters.connectwise),
        Personality::Autotask => Counters::bump(&st.counters.autotask),
        Personality::Halo => Counters::bump(&st.counters.halo),
        Personality::Other => {}
    }

    let hit = {
        let mut guard = lock(&st.faults);
        let (set, rng) = &mut *guard;
        set.check(&method, &path, rng)
    };
    if let Some((id, fault)) = hit {
        Counters::bump(&st.counters.faults_fired);
        lock(&st.log).update(seq, |e| e.fault = Some(id));
        if let Some(ms) = fault.delay_ms.filter(|ms| *ms > 0) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if fault.drop {
            if let Some(ConnectInfo(meta)) = parts.extensions.get::<ConnectInfo<ConnMeta>>() {
                meta.kill.trigger();
            }
            // Never delivered: the connection fails on the first write.
            return json(
                StatusCode::BAD_GATEWAY,
                &json!({"error": "connection dropped"}),
            );
        }
        if let Some(status) = fault.status {
            let resp = fault_response(personality, status, &fault, &st.limits());
            lock(&st.log).update(seq, |e| e.status = Some(resp.status().as_u16()));
            return resp;
        }
    }

    if personality == Personality::Autotask {
        let lower = path.to_ascii_lowercase();
        if lower != path {
            let pq = match parts.uri.query() {
                Some(q) => format!("{lower}?{q}"),
                None => lower,
            };
            if let Ok(pq) = PathAndQuery::try_from(pq) {
                let mut uri_parts = parts.uri.clone().into_parts();
                uri_parts.path_and_query = Some(pq);
                if let Ok(uri) = Uri::from_parts(uri_parts) {
                    parts.uri = uri;
                }
            }
        }
    }

    parts.extensions.insert(RequestSeq(seq));
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = resp.status().as_u16();
    lock(&st.log).update(seq, |e| e.status = Some(status));
    resp
}

/// The response of a `status` fault, in the personality's error shape unless the fault carries a body.
fn fault_response(
    personality: Personality,
    status: u16,
    fault: &Fault,
    limits: &Limits,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match &fault.body {
        Some(body) => {
            let mut r = Response::new(Body::from(body.clone()));
            *r.status_mut() = code;
            set_header(&mut r, "content-type", "application/json; charset=utf-8");
            r
        }
        None => {
            let body = match (personality, status) {
                (Personality::ConnectWise, 429) => {
                    let secs = fault
                        .retry_after
                        .as_deref()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .unwrap_or(30);
                    cw::throttle_body(secs)
                }
                (Personality::ConnectWise, _) => json!({
                    "code": code.canonical_reason().unwrap_or("Error").replace(' ', ""),
                    "message": format!("Simulated fault (HTTP {status})."),
                    "errors": null,
                }),
                (Personality::Autotask, 429) => {
                    json!({"errors": ["Request threshold exceeded (simulated fault)."]})
                }
                (Personality::Autotask, _) => {
                    json!({"errors": [format!("Simulated fault (HTTP {status}).")]})
                }
                (Personality::Halo, 429) => halo::throttle_body(limits),
                (Personality::Halo, _) => {
                    json!({"message": format!("Simulated fault (HTTP {status}).")})
                }
                (Personality::Other, _) => json!({"error": "simulated fault", "status": status}),
            };
            json(code, &body)
        }
    };
    if let Some(ra) = &fault.retry_after {
        set_header(&mut resp, "retry-after", ra);
    }
    if personality == Personality::ConnectWise {
        set_header(&mut resp, "api-current-version", cw::API_VERSION);
    }
    resp
}
