//! Cursor pagination for every list: `?limit=&cursor=`, answered with
//! `{"items": [...], "next_cursor": "..."}`.
//!
//! Keyset, not offset: the cursor is the sort key of the last item returned
//! (base64url JSON, opaque to clients), so a page is one index range scan
//! however deep, and items inserted meanwhile neither repeat nor vanish.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// Items per page unless the client asks.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most items a page holds.
pub const MAX_LIMIT: i64 = 200;

/// The query parameters of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated page request, resuming after the sort key `K`.
#[derive(Debug)]
pub struct Paging<K> {
    /// Items per page.
    pub limit: i64,
    /// The sort key of the last item already seen.
    pub after: Option<K>,
}

impl<K> Paging<K> {
    /// The first page of at most `limit` items.
    pub fn first(limit: i64) -> Self {
        Paging { limit, after: None }
    }

    /// How many rows to fetch: one more than a page, to know if there is
    /// another.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

impl<K: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Paging<K> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<PageQuery>::from_request_parts(parts, state)
            .await
            .map_err(|e| bad_query(e.body_text()))?;
        let limit = match q.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| bad_query(format!("limit must be 1 to {MAX_LIMIT}")))?,
        };
        let after = match q.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                B64.decode(text)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .ok_or_else(|| bad_query("cursor is not one this list returned".to_owned()))?,
            ),
        };
        Ok(Paging { limit, after })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A list with nothing in it.
    pub fn empty() -> Self {
        Page {
            items: Vec::new(),
            next_cursor: None,
        }
    }

    /// A page from up to `paging.fetch()` items; `key` gives an item's sort
    /// key.
    pub fn new<K: Serialize>(items: Vec<T>, paging: &Paging<K>, key: impl Fn(&T) -> K) -> Self {
        Self::keyed(items.into_iter().map(|t| (key(&t), t)).collect(), paging)
    }

    /// A page from up to `paging.fetch()` items with their sort keys, for
    /// items that do not show their key.
    pub fn keyed<K: Serialize>(mut items: Vec<(K, T)>, paging: &Paging<K>) -> Self {
        let limit = usize::try_from(paging.limit).unwrap_or(usize::MAX);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .and_then(|(key, _)| serde_json::to_vec(key).ok())
                .map(|json| B64.encode(json))
        } else {
            None
        };
        Page {
            items: items.into_iter().map(|(_, t)| t).collect(),
            next_cursor,
        }
    }
}

fn bad_query(detail: String) -> ApiError {
    ApiError::BadBody {
        status: StatusCode::BAD_REQUEST,
        code: "invalid-query",
        detail,
    }
}

/// The sort key of most lists: a time and an id to break ties.
pub type TimeKey = projections::read_models::TimeKey;

impl Paging<TimeKey> {
    /// This page as the read layer's keyset (`projections::<model>::read`
    /// lists take it).
    pub fn keyset(&self) -> projections::read_models::Keyset {
        projections::read_models::Keyset {
            after: self.after,
            limit: self.fetch(),
        }
    }

    /// The page of `rows` a keyset list returned (each with its sort key),
    /// each row shown as `view` makes it.
    pub fn page<R, T>(&self, rows: Vec<(TimeKey, R)>, view: impl Fn(R) -> T) -> Page<T> {
        Page::keyed(rows.into_iter().map(|(k, r)| (k, view(r))).collect(), self)
    }
}
