//! Sign-in and sign-out: an API key becomes a server-side session (see `session`).

#[allow(unused_imports)]
use super::*;

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginTpl {
    pub(super) csrf: String,
    pub(super) error: Option<String>,
    pub(super) notice: Option<String>,
}

pub(super) async fn home(u: DashUser) -> Response {
    let _ = u;
    axum::response::Redirect::to("/backfills").into_response()
}

pub(super) fn login_form(
    client: ClientInfo,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let csrf = session::random_token();
    let mut r = page(
        status,
        &LoginTpl {
            csrf: csrf.clone(),
            error,
            notice,
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(client, LOGIN_COOKIE, &csrf, 3600),
    );
    r
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    pub(super) signed_out: Option<String>,
}

pub(super) async fn login_page(client: ClientInfo, Query(q): Query<LoginQuery>) -> Response {
    let notice = q.signed_out.map(|_| "You are signed out.".to_owned());
    login_form(client, StatusCode::OK, None, notice)
}

pub(super) async fn login(
    State(app): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Every attempt counts against the client's address, before the key is looked at.
    let addr = client
        .addr
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let d = app.sign_in_limiter.check(&addr, app.clock.now());
    if !d.allowed {
        return session::too_many_requests("to sign in from your address", d.retry_after);
    }
    let form = FormData::parse(&body);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !form
        .get("csrf")
        .is_some_and(|t| session::tokens_match(t, expected))
    {
        return login_form(
            client,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Please try again.".into()),
            None,
        );
    }
    let token = form.get("api_key").unwrap_or("").trim();
    if token.is_empty() {
        return login_form(
            client,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter an API key.".into()),
            None,
        );
    }
    let now = app.clock.now();
    match crate::auth::verify_api_key(app.store.as_ref(), token, now).await {
        Ok((key, tenant)) => {
            crate::auth::note_key_use(&app.store, &key, now);
            let sid = app.sessions.create(&key.id, &tenant.id, now);
            let mut r = redirect(&headers, "/backfills");
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(client, SESSION_COOKIE, &sid, session::SESSION_TTL.as_secs()),
            );
            h.append(header::SET_COOKIE, set_cookie(client, LOGIN_COOKIE, "", 0));
            r
        }
        Err(e) => login_form(
            client,
            StatusCode::UNAUTHORIZED,
            Some(format!("Sign-in refused: {}.", e.message)),
            None,
        ),
    }
}

pub(super) async fn logout(
    State(app): State<AppState>,
    u: DashUser,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    app.sessions.remove(&u.session_id);
    let mut r = redirect(&headers, "/login?signed_out=1");
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(client, SESSION_COOKIE, "", 0),
    );
    r
}
