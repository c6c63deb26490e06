//! What keeps the console's pages to the person who opened them: the
//! session cookie, the cross-site request checks, and the headers every
//! page carries.
//!
//! The console's session is the API's session, carried in a `__Host-`
//! cookie (HttpOnly, Secure, SameSite=Strict) instead of a bearer header.
//! [`layer`] turns the cookie into the `Authorization` header the API's
//! extractors read, on console routes only: the JSON API never accepts the
//! cookie, and a console route never accepts a bearer header a script could
//! have set. It does the same for the position this browser last wrote
//! (its own cookie), so every page waits for the read models to show the
//! visitor's own change (`Gatehouse-Min-Position`).
//!
//! A request that changes something must come from a console page: the
//! browser's `Sec-Fetch-Site` says `same-origin` or, from a browser that
//! does not send it, `Origin` names this host; and a signed-in visitor's
//! form carries the session's form token ([`form_token`]), checked by
//! [`super::view::Form`].

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::{MIN_POSITION_HEADER, POSITION_HEADER};

/// The session cookie: the API's session token.
pub const SESSION_COOKIE: &str = "__Host-gatehouse-session";
/// The log position of this browser's last command.
pub const AT_COOKIE: &str = "__Host-gatehouse-at";

/// Marks a redirect to the sign-in page for a page that needs a session;
/// the layer turns it into `/sign-in?next=<the page>` (GET only).
pub const SIGN_IN_FIRST: &str = "x-gatehouse-sign-in-first";

/// The Content-Security-Policy of every console response: nothing inline,
/// nothing from another origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The form token of the session whose token is `session_token`: a digest
/// of it under a label of its own, so it is stable for the session, unknown
/// to another site, and tells nothing of the token (whose stored digest has
/// no label).
pub fn form_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse console form token\0");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// The value of cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session token the layer took from the cookie, as the API's
/// extractors will read it.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A `Set-Cookie` value for a console cookie (`None` clears it).
pub fn set_cookie(name: &str, value: Option<&str>) -> HeaderValue {
    let v = match value {
        Some(v) => format!("{name}={v}; Path=/; Secure; HttpOnly; SameSite=Strict"),
        None => format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    HeaderValue::from_str(&v).expect("cookie names and tokens are visible ASCII")
}

/// Whether a state-changing request comes from one of this origin's pages.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = host.to_str().unwrap_or_default();
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// The console's layer: refuses cross-site writes, carries the cookies to
/// the API's headers, and sets the headers of every response.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !same_origin(req.headers()) {
        return super::view::refused(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "This form was not sent from a Gatehouse page. Open the page again and resend it.",
        );
    }
    let headers = req.headers_mut();
    let token = cookie(headers, SESSION_COOKIE).map(str::to_owned);
    let at = cookie(headers, AT_COOKIE).and_then(|v| v.parse::<u64>().ok());
    headers.remove(header::AUTHORIZATION);
    headers.remove(MIN_POSITION_HEADER);
    if let Some(token) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
        headers.insert(header::AUTHORIZATION, token);
    }
    if let Some(at) = at {
        headers.insert(MIN_POSITION_HEADER, HeaderValue::from(at));
    }
    let htmx = req.headers().contains_key("hx-request");
    // For htmx, the page to come back to is the one the browser shows,
    // not the fragment it polls.
    let wanted = if htmx {
        req.headers()
            .get("hx-current-url")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| u.find("://").map(|i| &u[i + 3..]))
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
    } else {
        (*req.method() == Method::GET)
            .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
            .flatten()
    };
    let mut res = next.run(req).await;
    let mut redirected_htmx = false;
    let h = res.headers_mut();
    if h.remove(SIGN_IN_FIRST).is_some() {
        if let Some(wanted) = wanted {
            let query = serde_urlencoded::to_string([("next", wanted)]).unwrap_or_default();
            if let Ok(v) = HeaderValue::from_str(&format!("/sign-in?{query}")) {
                h.insert(header::LOCATION, v);
            }
        }
        if htmx {
            // htmx would follow a redirect and swap the sign-in page into
            // the fragment; on HX-Redirect it moves the whole window.
            if let Some(to) = h.remove(header::LOCATION) {
                h.insert("hx-redirect", to);
            }
            redirected_htmx = true;
        }
    }

    // A command's position becomes the browser's: the next page waits
    // for it.
    if let Some(position) = h.remove(POSITION_HEADER) {
        if let Ok(p) = position.to_str() {
            h.append(header::SET_COOKIE, set_cookie(AT_COOKIE, Some(p)));
        }
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Links carry single-use tokens (`/verify-email?token=`): no page
    // tells another site where it came from.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Pages are one person's and may show a secret once: never stored.
    // Assets set their own caching.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if redirected_htmx {
        *res.status_mut() = StatusCode::OK;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_this_origins_pages_may_write() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a"),
            ("host", "a")
        ])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[(
            "cookie",
            "a=1; __Host-gatehouse-session=tok; __Host-gatehouse-at=42",
        )]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, AT_COOKIE), Some("42"));
        assert_eq!(cookie(&h, "gatehouse-session"), None);
    }

    #[test]
    fn the_form_token_is_not_the_stored_digest() {
        let t = "gsess_abc";
        assert_ne!(form_token(t), crate::extract::token_hash(t));
        assert_eq!(form_token(t), form_token(t));
        assert_ne!(form_token(t), form_token("gsess_abd"));
    }
}
