//! The history pages: `GET /v1/orgs/{org}/audit` for an organisation's
//! owners, managers and compliance reviewers, `GET /v1/staff/audit` for
//! platform staff over everything. Keyset-paged by log position, newest or
//! oldest first; each filter narrows an indexed column.

#[allow(unused_imports)]
use super::*;

use projections::audit::read::{EntryFilter, EventTypes};

/// The filters of an audit page (and of an export).
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only events by this actor (a user's or key's id).
    #[param(min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]+$")]
    pub actor: Option<String>,
    /// Only events concerning this app.
    pub app: Option<Uuid>,
    /// Only events concerning this API key.
    pub key: Option<Uuid>,
    /// An event type (`api_key.rotated`) or a family (`api_key.*`).
    #[serde(rename = "type")]
    #[param(rename = "type", pattern = r"^[a-z_]+\.([a-z_]+|\*)$")]
    pub event_type: Option<String>,
    /// Events recorded at or after this instant (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Events recorded before this instant.
    pub to: Option<DateTime<Utc>>,
    /// `newest` (default) or `oldest` first.
    pub order: Option<String>,
}

/// A validated filter and who reads the entries it selects.
pub struct Conditions {
    /// What the audit read model is asked for.
    pub filter: EntryFilter,
    /// Who reads: an organisation sees platform staff only as
    /// `Gatehouse staff`; staff see everything.
    pub viewer: Viewer,
}

fn invalid(pointer: &str, detail: &str) -> ApiError {
    domain::Invalid(vec![domain::FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }])
    .into()
}

/// Validates `filter` and turns it into conditions, within `org` when given.
pub fn conditions(filter: &AuditFilter, org: Option<Uuid>) -> Result<Conditions, ApiError> {
    let ascending = match filter.order.as_deref() {
        None | Some("newest") => false,
        Some("oldest") => true,
        Some(_) => return Err(invalid("/order", "must be newest or oldest")),
    };
    if let Some(actor) = &filter.actor {
        // PostgreSQL refuses a NUL in text; no id holds a control character.
        if actor.is_empty() || actor.len() > 64 || actor.chars().any(char::is_control) {
            return Err(invalid("/actor", "must be an actor's id"));
        }
    }
    let event_types = match &filter.event_type {
        None => None,
        Some(t) => {
            let family_ok =
                |f: &str| !f.is_empty() && f.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_');
            match t.split_once('.') {
                Some((family, "*")) if family_ok(family) => {
                    Some(EventTypes::Family(family.to_owned()))
                }
                Some((family, verb)) if family_ok(family) && family_ok(verb) => {
                    Some(EventTypes::Exact(t.clone()))
                }
                _ => {
                    return Err(invalid(
                        "/type",
                        "must be an event type (api_key.rotated) or a family (api_key.*)",
                    ))
                }
            }
        }
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from >= to {
            return Err(invalid("/to", "must be after from"));
        }
    }
    Ok(Conditions {
        filter: EntryFilter {
            org,
            actor: filter.actor.clone(),
            app: filter.app,
            key: filter.key,
            event_types,
            from: filter.from,
            to: filter.to,
            ascending,
        },
        viewer: Viewer::Organisation,
    })
}

/// One page of entries matching `c`, after the audit read model reached
/// the caller's `Gatehouse-Min-Position`.
async fn page(
    state: &AppState,
    min: MinPosition,
    c: Conditions,
    paging: &Paging<i64>,
) -> Result<Page<AuditEntry>, ApiError> {
    min.wait(state, &["audit"]).await?;
    let client = state.read_models.client().await?;
    let rows =
        projections::audit::read::entries(&client, &c.filter, paging.after, paging.fetch()).await?;
    let entries = render(state, &client, &rows, c.viewer).await?;
    Ok(Page::new(entries, paging, |e| e.position))
}

/// The organisation's history: every event touching it, its apps, keys
/// and webhooks. For owners, managers and compliance reviewers.
#[utoipa::path(get, path = "/v1/orgs/{org}/audit", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), AuditFilter, PageQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn org_audit(
    State(state): State<AppState>,
    member: OrgMember,
    min: MinPosition,
    Query(filter): Query<AuditFilter>,
    paging: Paging<i64>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    member.require(Permission::ViewAudit)?;
    let c = conditions(&filter, Some(member.org))?;
    Ok(Json(page(&state, min, c, &paging).await?))
}

/// The platform's whole history, for staff; `org` narrows it to one
/// organisation.
#[utoipa::path(get, path = "/v1/staff/audit", tag = "audit",
    params(("org" = Option<Uuid>, Query, description = "Only this organisation"), AuditFilter, PageQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn staff_audit(
    State(state): State<AppState>,
    _staff: Staff,
    min: MinPosition,
    Query(filter): Query<AuditFilter>,
    Query(scope): Query<StaffScope>,
    paging: Paging<i64>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let mut c = conditions(&filter, scope.org)?;
    c.viewer = Viewer::Staff;
    Ok(Json(page(&state, min, c, &paging).await?))
}

/// Staff's narrowing of the platform's history.
#[derive(Debug, Default, Deserialize)]
pub struct StaffScope {
    /// Only this organisation.
    pub org: Option<Uuid>,
}
