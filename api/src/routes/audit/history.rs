//! The history pages: `GET /v1/orgs/{org}/audit` for an organisation's
//! owners, managers and compliance reviewers, `GET /v1/staff/audit` for
//! platform staff over everything. Keyset-paged by log position, newest or
//! oldest first; each filter narrows an indexed column.

#[allow(unused_imports)]
use super::*;

use tokio_postgres::types::ToSql;

/// The filters of an audit page (and of an export).
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only events by this actor (a user's or key's id).
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

/// A filter's conditions as SQL over `a` (`rm.audit_entries`), with their
/// parameters.
pub struct Conditions {
    /// `a.x = $1 AND ...`, or `TRUE`.
    pub sql: String,
    /// The parameters, in order.
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
    /// Oldest first.
    pub ascending: bool,
    /// Who reads: an organisation sees platform staff only as
    /// `Gatehouse staff`; staff see everything.
    pub viewer: Viewer,
}

impl Conditions {
    fn push(&mut self, expr: &str, value: Box<dyn ToSql + Sync + Send>) {
        self.params.push(value);
        if !self.sql.is_empty() {
            self.sql.push_str(" AND ");
        }
        self.sql
            .push_str(&expr.replace('?', &format!("${}", self.params.len())));
    }

    /// The parameters as the driver takes them.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect()
    }

    /// Adds `a.position` beyond `after` in the page order.
    pub fn after(&mut self, after: Option<i64>) {
        if let Some(p) = after {
            let op = if self.ascending { ">" } else { "<" };
            self.push(&format!("a.position {op} ?"), Box::new(p));
        }
    }

    /// Adds `a.position <= upto`.
    pub fn upto(&mut self, upto: i64) {
        self.push("a.position <= ?", Box::new(upto));
    }

    /// The WHERE clause.
    pub fn clause(&self) -> &str {
        if self.sql.is_empty() {
            "TRUE"
        } else {
            &self.sql
        }
    }
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
    let mut c = Conditions {
        viewer: Viewer::Organisation,
        sql: String::new(),
        params: Vec::new(),
        ascending,
    };
    if let Some(org) = org {
        c.push("a.org_id = ?", Box::new(org));
    }
    if let Some(actor) = &filter.actor {
        if actor.is_empty() || actor.len() > 64 {
            return Err(invalid("/actor", "must be an actor's id"));
        }
        c.push("a.actor_id = ?", Box::new(actor.clone()));
    }
    if let Some(app) = filter.app {
        c.push("a.app_id = ?", Box::new(app));
    }
    if let Some(key) = filter.key {
        c.push("a.key_id = ?", Box::new(key));
    }
    if let Some(t) = &filter.event_type {
        let family_ok =
            |f: &str| !f.is_empty() && f.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_');
        match t.split_once('.') {
            Some((family, "*")) if family_ok(family) => {
                c.push("a.event_type LIKE ?", Box::new(format!("{family}.%")));
            }
            Some((family, verb)) if family_ok(family) && family_ok(verb) => {
                c.push("a.event_type = ?", Box::new(t.clone()));
            }
            _ => {
                return Err(invalid(
                    "/type",
                    "must be an event type (api_key.rotated) or a family (api_key.*)",
                ))
            }
        }
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from >= to {
            return Err(invalid("/to", "must be after from"));
        }
    }
    if let Some(from) = filter.from {
        c.push("a.occurred_at >= ?", Box::new(from));
    }
    if let Some(to) = filter.to {
        c.push("a.occurred_at < ?", Box::new(to));
    }
    Ok(c)
}

/// One page of entries matching `c`, after the audit read model reached
/// the caller's `Gatehouse-Min-Position`.
async fn page(
    state: &AppState,
    min: MinPosition,
    mut c: Conditions,
    paging: &Paging<i64>,
) -> Result<Page<AuditEntry>, ApiError> {
    min.wait(state, &["audit"]).await?;
    c.after(paging.after);
    let order = if c.ascending { "ASC" } else { "DESC" };
    let limit = paging.fetch();
    let sql = format!(
        "SELECT {COLUMNS} FROM rm.audit_entries a JOIN events e ON e.global_position = a.position \
         WHERE {} ORDER BY a.position {order} LIMIT {limit}",
        c.clause()
    );
    let client = state.pool.get().await?;
    let rows = client.query(&sql, &c.refs()).await?;
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
