//! Per-request context (request id and start instant) carried in a task-local, so that every
//! response, success or error, including those built outside handlers, can name its request.

use std::time::Instant;

use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct RequestCtx {
    pub id: Uuid,
    pub start: Instant,
}

tokio::task_local! {
    static CTX: RequestCtx;
}

/// Runs `fut` with `ctx` as the current request.
pub async fn scope<F: std::future::Future>(ctx: RequestCtx, fut: F) -> F::Output {
    CTX.scope(ctx, fut).await
}

/// The current request's id; a fresh one outside a request (never panics).
pub fn request_id() -> Uuid {
    CTX.try_with(|c| c.id).unwrap_or_else(|_| Uuid::new_v4())
}

/// Milliseconds since the current request started.
pub fn elapsed_ms() -> f64 {
    CTX.try_with(|c| c.start.elapsed().as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}
