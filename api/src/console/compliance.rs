//! Compliance: the organisation's audit history with its filters (actor,
//! app, key, type or family, time range), each entry readable with the
//! fields it changed before and after; the export (JSON Lines or CSV) and
//! how to verify it offline; the signed checkpoints; and "as of": an app
//! or a key as it was at a chosen instant (the API's `?as_of=`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{page, Checked, Frame, PageError, Section, Visitor};
use crate::authorize::{AppReader, OrgMember};
use crate::error::ApiError;
use crate::extract::Path;
use crate::page::{Page, Paging};
use crate::routes::{apps, as_of::AsOf, audit, keys};
use crate::state::AppState;

/// The filter form, as a browser sends it (instants as
/// `datetime-local`, in UTC).
#[derive(Deserialize, Default, Clone)]
pub struct FilterForm {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    key: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn instant(text: &str, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .map(|n| Some(n.and_utc()))
        .map_err(|_| {
            ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
                pointer: format!("/{field}"),
                detail: "must be a date and time (YYYY-MM-DDTHH:MM, UTC)".into(),
            }]))
        })
}

fn id(text: &str, field: &str) -> Result<Option<Uuid>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        t => Uuid::try_parse(t).map(Some).map_err(|_| {
            ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
                pointer: format!("/{field}"),
                detail: "must be an id (a UUID)".into(),
            }]))
        }),
    }
}

impl FilterForm {
    /// The API's filter.
    fn filter(&self) -> Result<audit::AuditFilter, ApiError> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(audit::AuditFilter {
            actor: text(&self.actor),
            app: id(&self.app, "app")?,
            key: id(&self.key, "key")?,
            event_type: text(&self.kind),
            from: instant(&self.from, "from")?,
            to: instant(&self.to, "to")?,
            order: None,
        })
    }

    /// The filters as a query string, for the next page and the export.
    pub fn query(&self) -> String {
        serde_urlencoded::to_string([
            ("actor", &self.actor),
            ("app", &self.app),
            ("key", &self.key),
            ("type", &self.kind),
            ("from", &self.from),
            ("to", &self.to),
        ])
        .unwrap_or_default()
    }
}

/// One field an entry changed.
pub struct Change {
    /// The field.
    pub field: String,
    /// Its value before, as JSON.
    pub before: String,
    /// Its value after.
    pub after: String,
}

/// `{field: {before, after}}` as rows.
fn changes(v: &Option<serde_json::Value>) -> Vec<Change> {
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "–".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    v.as_ref()
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .map(|(field, c)| Change {
                    field: field.clone(),
                    before: show(c.get("before")),
                    after: show(c.get("after")),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An entry with its changes as rows.
pub struct Row {
    /// The entry.
    pub entry: audit::AuditEntry,
    /// What it changed.
    pub changes: Vec<Change>,
}

#[derive(Template)]
#[template(path = "console/compliance/history.html")]
struct HistoryPage {
    frame: Frame,
    org: Uuid,
    form: FilterForm,
    rows: Vec<Row>,
    next: Option<String>,
    problems: super::view::Problems,
}

/// The history, filtered, a page at a time.
pub async fn history(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Query(form): Query<FilterForm>,
    Checked(paging): Checked<Paging<i64>>,
) -> Result<Response, PageError> {
    let org = member.org;
    let frame = visitor
        .frame(&state, "Audit history", Section::Compliance, Some(org))
        .await?;
    let (rows, next, problems) = match form.filter() {
        Ok(filter) => {
            let axum::Json(p): axum::Json<Page<audit::AuditEntry>> = audit::org_audit(
                State(state.clone()),
                member,
                visitor.min,
                Query(filter),
                paging,
            )
            .await?;
            let rows = p
                .items
                .into_iter()
                .map(|entry| Row {
                    changes: changes(&entry.changes),
                    entry,
                })
                .collect();
            (rows, p.next_cursor, super::view::Problems::default())
        }
        Err(e) => (Vec::new(), None, e.into()),
    };
    page(&HistoryPage {
        frame,
        org,
        form,
        rows,
        next,
        problems,
    })
}

/// What the export asks for: the filters and the format.
#[derive(Deserialize)]
pub struct ExportForm {
    #[serde(flatten)]
    filters: FilterForm,
    #[serde(default)]
    format: String,
}

/// The export, streamed as a download.
pub async fn export(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Query(f): Query<ExportForm>,
) -> Result<Response, PageError> {
    let mut headers = HeaderMap::new();
    if f.format == "csv" {
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
    }
    let filter = f.filters.filter()?;
    Ok(audit::org_export(State(state), member, visitor.min, headers, Query(filter)).await?)
}

#[derive(Template)]
#[template(path = "console/compliance/checkpoints.html")]
struct CheckpointsPage {
    frame: Frame,
    org: Uuid,
    checkpoints: Page<audit::CheckpointView>,
    key: audit::PublicKeyView,
}

/// The signed checkpoints, the public key, and how to verify an export.
pub async fn checkpoints(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Checked(paging): Checked<Paging<i64>>,
) -> Result<Response, PageError> {
    let org = member.org;
    let axum::Json(checkpoints) = audit::checkpoints(State(state.clone()), paging).await?;
    let axum::Json(key) = audit::public_key(State(state.clone())).await;
    let frame = visitor
        .frame(&state, "Checkpoints", Section::Compliance, Some(org))
        .await?;
    page(&CheckpointsPage {
        frame,
        org,
        checkpoints,
        key,
    })
}

/// What the "as of" form sends.
#[derive(Deserialize, Default)]
pub struct AsOfForm {
    #[serde(default)]
    app: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    at: String,
}

#[derive(Template)]
#[template(path = "console/compliance/as_of.html")]
struct AsOfPage {
    frame: Frame,
    org: Uuid,
    form: AsOfForm,
    at: Option<DateTime<Utc>>,
    app: Option<apps::AppView>,
    key: Option<keys::KeyView>,
    problems: super::view::Problems,
}

/// An app or a key as it was at an instant.
pub async fn as_of(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Query(form): Query<AsOfForm>,
) -> Result<Response, PageError> {
    let org = member.org;
    let looked = async {
        let at = instant(&form.at, "at")?;
        let Some(at) = at else {
            return Ok((None, None, None));
        };
        let app = match id(&form.app, "app")? {
            Some(app) => {
                let reader = AppReader::check(&state, app, visitor.session).await?;
                if reader.org != org {
                    return Err(ApiError::NotFound);
                }
                let q = Query(AsOf { as_of: Some(at) });
                Some(
                    apps::get_app(State(state.clone()), Path(app), reader, q)
                        .await?
                        .0,
                )
            }
            None => None,
        };
        let key = match id(&form.key, "key")? {
            Some(key) => {
                let q = Query(AsOf { as_of: Some(at) });
                Some(
                    keys::get_key(
                        State(state.clone()),
                        Path(key),
                        visitor.min,
                        visitor.session,
                        q,
                    )
                    .await?
                    .0,
                )
            }
            None => None,
        };
        Ok::<_, ApiError>((Some(at), app, key))
    }
    .await;
    let (at, app, key, problems) = match looked {
        Ok((at, app, key)) => (at, app, key, super::view::Problems::default()),
        Err(ApiError::NotFound) => {
            return Err(PageError(ApiError::NotFound));
        }
        Err(e) => (None, None, None, e.into()),
    };
    let frame = visitor
        .frame(&state, "As of", Section::Compliance, Some(org))
        .await?;
    page(&AsOfPage {
        frame,
        org,
        form,
        at,
        app,
        key,
        problems,
    })
}
