//! The HTTP server loop, with the timeouts `axum::serve` lacks: a client has
//! `header_read_timeout` to send a request's headers (on a new connection and between requests
//! on a kept-alive one, so idle connections are closed too), and [`body_deadline`] gives it
//! `body_read_timeout` from the end of the headers to finish the body (a trickling client is
//! answered 408 `request_timeout`, see `extract::ApiJson`, and the connection is closed).
//! Every request carries its connection's TCP peer (`ConnectInfo<SocketAddr>`); [`ClientInfo`]
//! says who the client is and whether it came over HTTPS, trusting `X-Forwarded-*` headers
//! only with `behind_proxy`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish. The
/// listener may be shared (`Arc`): `serve` answers on it while it migrates, then hands it on.
pub async fn serve(
    listener: impl std::borrow::Borrow<tokio::net::TcpListener>,
    app: axum::Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.borrow().accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.as_mut() => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone().map_request(move |r: Request<Incoming>| {
            let mut r = r.map(Body::new);
            r.extensions_mut().insert(ConnectInfo(peer));
            r
        }));
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The client of a request as far as it can be trusted: with `behind_proxy` off (the default)
/// its address is the TCP peer and HTTPS is never assumed from a header; with it on (a
/// TLS-terminating proxy in front, which sets these headers) the address is the last
/// `X-Forwarded-For` entry (the one the proxy added) and `X-Forwarded-Proto: https` means HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// `None` only when the request did not come through [`serve`] (in-process tests).
    pub addr: Option<IpAddr>,
    pub https: bool,
}

impl ClientInfo {
    pub fn of(parts: &Parts, behind_proxy: bool) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if !behind_proxy {
            return Self {
                addr: peer,
                https: false,
            };
        }
        let header = |name: &str| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|v| !v.is_empty())
        };
        Self {
            addr: header("x-forwarded-for")
                .and_then(|v| v.parse().ok())
                .or(peer),
            https: header("x-forwarded-proto").is_some_and(|v| v.eq_ignore_ascii_case("https")),
        }
    }
}

impl FromRequestParts<crate::AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, app.cfg.behind_proxy))
    }
}

/// The error a request body yields when the client did not finish sending it in time.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body was not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether `e` (or what caused it) is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A body that fails with [`BodyTimeout`] once its deadline passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(f);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: the whole request body must arrive within `timeout` of the request's headers
/// (a total deadline, not an idle timeout, so one byte per second does not keep it alive).
pub async fn body_deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let req = req.map(|inner| {
        if inner.is_end_stream() {
            inner
        } else {
            Body::new(DeadlineBody {
                inner,
                deadline: Box::pin(tokio::time::sleep(timeout)),
            })
        }
    });
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body is never read: the connection cannot carry another request.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
