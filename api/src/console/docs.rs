//! The public documentation under `/docs`, open without an account: the
//! platform overview, auth and scopes (with each product's scopes, from
//! the read layer), agent workflows, and the API reference drawn from the
//! OpenAPI document the JSON API serves.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use utoipa::OpenApi;

use super::view::{page, Frame, PageError};
use crate::error::ApiError;
use crate::state::AppState;

/// The documentation's pages: path and title.
pub const PAGES: &[(&str, &str)] = &[
    ("/docs", "Platform overview"),
    ("/docs/auth", "Auth and scopes"),
    ("/docs/agents", "Agent workflows"),
    ("/docs/api", "API reference"),
];

/// A page's link in the documentation's navigation.
pub struct DocLink {
    /// Route.
    pub href: &'static str,
    /// Title.
    pub title: &'static str,
    /// Whether it is the page shown.
    pub current: bool,
}

fn nav(current: &str) -> Vec<DocLink> {
    PAGES
        .iter()
        .map(|(href, title)| DocLink {
            href,
            title,
            current: *href == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/docs/overview.html")]
struct OverviewPage {
    frame: Frame,
    nav: Vec<DocLink>,
}

/// `/docs`.
pub async fn overview() -> Result<Response, PageError> {
    page(&OverviewPage {
        frame: Frame::public("Platform overview"),
        nav: nav("/docs"),
    })
}

/// A product and the scopes its approval grants.
pub struct ProductScopes {
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/docs/auth.html")]
struct AuthPage {
    frame: Frame,
    nav: Vec<DocLink>,
    products: Vec<ProductScopes>,
}

/// `/docs/auth`.
pub async fn auth(State(state): State<AppState>) -> Result<Response, PageError> {
    let client = state.read_models.client().await.map_err(ApiError::from)?;
    let all = crate::page::Paging::<crate::page::TimeKey> {
        limit: crate::page::MAX_LIMIT,
        after: None,
    };
    let products = projections::apps::read::products(&client, all.keyset())
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|(_, p)| ProductScopes {
            name: p.name,
            scopes: p.scopes,
        })
        .collect();
    page(&AuthPage {
        frame: Frame::public("Auth and scopes"),
        nav: nav("/docs/auth"),
        products,
    })
}

#[derive(Template)]
#[template(path = "console/docs/agents.html")]
struct AgentsPage {
    frame: Frame,
    nav: Vec<DocLink>,
}

/// `/docs/agents`.
pub async fn agents() -> Result<Response, PageError> {
    page(&AgentsPage {
        frame: Frame::public("Agent workflows"),
        nav: nav("/docs/agents"),
    })
}

/// One operation of the API.
pub struct Operation {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Its path.
    pub path: String,
    /// What it does.
    pub summary: String,
}

/// The operations of one tag.
pub struct TagSection {
    /// The tag.
    pub tag: String,
    /// Its operations.
    pub operations: Vec<Operation>,
}

#[derive(Template)]
#[template(path = "console/docs/api.html")]
struct ApiPage {
    frame: Frame,
    nav: Vec<DocLink>,
    sections: Vec<TagSection>,
}

/// `/docs/api`: every operation of the OpenAPI document, by tag.
pub async fn api() -> Result<Response, PageError> {
    let doc = crate::routes::ApiDoc::openapi();
    let mut sections: Vec<TagSection> = Vec::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first().cloned())
                .unwrap_or_else(|| "other".into());
            let summary = op
                .summary
                .clone()
                .or_else(|| op.description.clone())
                .unwrap_or_default();
            let operation = Operation {
                method: method.into(),
                path: path.clone(),
                summary,
            };
            match sections.iter_mut().find(|s| s.tag == tag) {
                Some(s) => s.operations.push(operation),
                None => sections.push(TagSection {
                    tag,
                    operations: vec![operation],
                }),
            }
        }
    }
    sections.sort_by(|a, b| a.tag.cmp(&b.tag));
    page(&ApiPage {
        frame: Frame::public("API reference"),
        nav: nav("/docs/api"),
        sections,
    })
}
