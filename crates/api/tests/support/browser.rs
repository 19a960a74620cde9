//! A cookie-keeping dashboard client for the HTTP-level dashboard tests (`dashboard.rs`,
//! `dashboard_pages.rs`): sign in, get and post forms as a browser would, without following
//! redirects.
#![allow(dead_code)]

use reqwest::redirect::Policy;

use crate::helpers::TestApp;

/// A cookie-keeping client that does not follow redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub session: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .or_else(|| self.headers.get("hx-redirect"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            session: None,
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, cookies: &[String]) -> Page {
        let mut all: Vec<String> = cookies.to_vec();
        if let Some(s) = &self.session {
            all.push(format!("neo_session={s}"));
        }
        let req = if all.is_empty() {
            req
        } else {
            req.header("cookie", all.join("; "))
        };
        let r = req.send().await.unwrap();
        Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)), &[])
            .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)], htmx: bool) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if htmx {
            req = req.header("hx-request", "true");
        }
        self.send(req, &[]).await
    }

    /// Signs in with `key`; returns the session's CSRF token.
    pub async fn sign_in(&mut self, key: &str) -> String {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200);
        let token = login.csrf();
        let cookie = format!("neo_login_csrf={token}");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", token.as_str()), ("api_key", key)])
            .finish();
        let r = self
            .send(
                self.http
                    .post(format!("{}/login", self.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
                &[cookie],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location(), "/backfills");
        let set = r
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("neo_session="))
            .expect("a session cookie");
        self.session = Some(set["neo_session=".len()..set.find(';').unwrap()].to_owned());
        self.get("/backfills").await.csrf()
    }
}

/// A page's text with askama's escapes undone (`Monday&#x27;s` reads `Monday's`).
pub fn unescaped(body: &str) -> String {
    body.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}
