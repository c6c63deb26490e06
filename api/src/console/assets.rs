//! The console's static files, compiled into the binary: the stylesheet,
//! htmx (vendored from its npm package, 0BSD, `static/vendor/`) and
//! `console.js` (copy to clipboard, nothing else). Their names carry a
//! version, so they may be cached for a year.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `(path, content type, bytes)` of every asset.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/assets/console-1.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/console.css"),
    ),
    (
        "/assets/console-1.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/console.js"),
    ),
    (
        "/assets/htmx-2.0.11.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/vendor/htmx-2.0.11.min.js"),
    ),
];

/// The asset at `path`.
pub fn serve(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => {
            let mut res = (*bytes).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
