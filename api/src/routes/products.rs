//! API products and approval workflows: staff define products (scopes and
//! an approval mode), apps request them per credential mode, staff approve
//! or reject pending requests (one by one or in bulk), and the developer
//! sees the decision in the organisation's notifications.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::{self, AccessState, App, Mode};
use domain::products::{self, Product};
use event_schemas::app::{product_stream, ApprovalMode, ProductDefined, ProductEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::{by_member, execute, AppCommand, By};
use crate::authorize::{AppReader, WorkspaceReader};
use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Session, Staff};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/staff/products", post(define_product))
        .route("/v1/staff/products/{product}", put(update_product))
        .route("/v1/products", get(catalogue))
        .route("/v1/products/{product}", get(get_product))
        .route(
            "/v1/apps/{app}/products",
            post(request_product).get(list_app_products),
        )
        .route("/v1/staff/approvals", get(approval_queue))
        .route(
            "/v1/staff/apps/{app}/access/{request}/approve",
            post(approve),
        )
        .route("/v1/staff/apps/{app}/access/{request}/reject", post(reject))
        .route("/v1/staff/approvals/bulk", post(bulk_decide))
        .route("/v1/orgs/{org}/notifications", get(notifications))
}

/// A product definition (staff).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    /// Display name.
    pub name: String,
    /// What it offers.
    #[serde(default)]
    pub description: String,
    /// Scopes a credential with access carries.
    pub scopes: Vec<String>,
    /// `{"mode": "auto"}`, `{"mode": "manual"}`, or
    /// `{"mode": "conditional", "test": "auto", "live": "manual"}`.
    #[schema(value_type = Object)]
    pub approval: ApprovalMode,
}

/// A product in the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Scopes granted with access.
    pub scopes: Vec<String>,
    /// How requests are decided.
    #[schema(value_type = Object)]
    pub approval: ApprovalMode,
}

impl ProductView {
    fn of(d: &ProductDefined) -> Self {
        ProductView {
            id: d.product_id,
            name: d.name.clone(),
            description: d.description.clone(),
            scopes: d.scopes.clone(),
            approval: d.approval,
        }
    }

    fn from_row(r: projections::apps::read::ProductRow) -> Self {
        ProductView {
            id: r.product_id,
            name: r.name,
            description: r.description,
            scopes: r.scopes,
            approval: r.approval,
        }
    }
}

/// Loads a product from the log with its stream version.
async fn load_product(state: &AppState, id: Uuid) -> Result<(Product, u64), ApiError> {
    let loaded = state.commands.load::<Product>(&product_stream(id)).await?;
    Ok((loaded.state.clone(), loaded.version))
}

/// Define an API product (staff).
#[utoipa::path(post, path = "/v1/staff/products", tag = "products",
    request_body = ProductRequest,
    responses((status = 201, body = ProductView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn define_product(
    State(state): State<AppState>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<ProductRequest>,
) -> Result<Committed<ProductView>, ApiError> {
    let product_id = meta.ids().entity("product");
    let events = products::define(ProductDefined {
        product_id,
        name: body.name,
        description: body.description,
        scopes: body.scopes,
        approval: body.approval,
    })?;
    let ProductEvent::Defined(defined) = &events[0] else {
        return Err(ApiError::Internal("define returns a definition".into()));
    };
    let view = ProductView::of(defined);
    let metadata = meta.metadata(staff.actor());
    let (events, metadata) = (&events, &metadata);
    let executed = state
        .commands
        .execute::<Product, _>(
            &product_stream(product_id),
            &meta.ids(),
            move |loaded| async move {
                // A product already there is this request retried: nothing to do.
                let events = if loaded.version == 0 {
                    events.clone()
                } else {
                    Vec::new()
                };
                Ok(Plan::new(events, metadata.clone()))
            },
        )
        .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(view),
    })
}

/// Replace a product's definition (staff). Approved apps keep the scopes
/// they were granted; new approvals get the new ones.
#[utoipa::path(put, path = "/v1/staff/products/{product}", tag = "products",
    request_body = ProductRequest,
    responses((status = 200, body = ProductView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_product(
    State(state): State<AppState>,
    Path(product_id): Path<Uuid>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<ProductRequest>,
) -> Result<Committed<ProductView>, ApiError> {
    let definition = ProductDefined {
        product_id,
        name: body.name,
        description: body.description,
        scopes: body.scopes,
        approval: body.approval,
    };
    let metadata = meta.metadata(staff.actor());
    let (definition, metadata) = (&definition, &metadata);
    let executed = state
        .commands
        .execute::<Product, _>(
            &product_stream(product_id),
            &meta.ids(),
            move |loaded| async move {
                let events = products::update(&loaded.state, definition.clone())?
                    .ok_or(ApiError::NotFound)?;
                Ok(Plan::new(events, metadata.clone()))
            },
        )
        .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position: executed.position,
        // The definition the recorded event carries.
        body: Some(ProductView::of(definition)),
    })
}

/// The product catalogue, oldest first.
#[utoipa::path(get, path = "/v1/products", tag = "products",
    params(PageQuery),
    responses((status = 200, body = Page<ProductView>)),
    security(("bearer" = [])))]
pub async fn catalogue(
    State(state): State<AppState>,
    min: MinPosition,
    _session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<ProductView>>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::products(&client, paging.keyset()).await?;
    Ok(Json(paging.page(rows, ProductView::from_row)))
}

/// A product.
#[utoipa::path(get, path = "/v1/products/{product}", tag = "products",
    responses((status = 200, body = ProductView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_product(
    State(state): State<AppState>,
    Path(product): Path<Uuid>,
    min: MinPosition,
    _session: Session,
) -> Result<Json<ProductView>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let row = projections::apps::read::product(&client, product)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ProductView::from_row(row)))
}

/// `POST /v1/apps/{app}/products` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    /// The product.
    pub product_id: Uuid,
    /// `test` or `live`: the credential mode the access is for.
    pub mode: String,
}

/// An app's request for a product.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRequestView {
    /// The request.
    pub id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// `test` or `live`.
    pub mode: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    /// Scopes granted (approved only).
    pub scopes: Vec<String>,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AccessRequestView {
    fn of(app: &App, id: Uuid) -> Option<Self> {
        let a = app.access.get(&id)?;
        let (state, scopes, reason) = match &a.state {
            AccessState::Pending => ("pending", Vec::new(), None),
            AccessState::Approved(s) => ("approved", s.clone(), None),
            AccessState::Rejected(r) => ("rejected", Vec::new(), Some(r.clone())),
        };
        Some(AccessRequestView {
            id,
            app_id: app.id,
            product_id: a.product_id,
            mode: a.mode.clone(),
            state: state.into(),
            scopes,
            reason,
        })
    }

    fn from_row(r: projections::apps::read::AccessRequestRow) -> Self {
        AccessRequestView {
            id: r.request_id,
            app_id: r.app_id,
            product_id: r.product_id,
            mode: r.mode,
            state: r.state,
            scopes: r.scopes,
            reason: r.reason,
        }
    }
}

/// Request a product for an app: approved at once when its mode says
/// auto, otherwise queued for staff.
#[utoipa::path(post, path = "/v1/apps/{app}/products", tag = "products",
    request_body = AccessRequest,
    responses((status = 201, body = AccessRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_product(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AccessRequest>,
) -> Result<Committed<AccessRequestView>, ApiError> {
    let (product, _) = load_product(&state, body.product_id).await?;
    let mode = super::apps::wire(&body.mode, "/mode", Mode::parse, "test or live")?;
    let request_id = meta.ids().entity("access_request");
    let (app, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        let cmd = apps::RequestProduct { request_id, mode };
        apps::request_access(org, app, session.user_id, &product, cmd)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(AccessRequestView::of(&app, request_id).ok_or(ApiError::NotFound)?),
    })
}

/// An app's product requests and their state (subscribed products).
#[utoipa::path(get, path = "/v1/apps/{app}/products", tag = "products",
    params(PageQuery),
    responses((status = 200, body = Page<AccessRequestView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_app_products(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    _reader: AppReader,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<AccessRequestView>>, ApiError> {
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::app_access_requests(&client, app, paging.keyset()).await?;
    Ok(Json(paging.page(rows, AccessRequestView::from_row)))
}

/// Pending product requests, oldest first (staff): the approval queue.
#[utoipa::path(get, path = "/v1/staff/approvals", tag = "staff",
    params(PageQuery),
    responses((status = 200, body = Page<AccessRequestView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn approval_queue(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<AccessRequestView>>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::pending_access_requests(&client, paging.keyset()).await?;
    Ok(Json(paging.page(rows, AccessRequestView::from_row)))
}

/// A staff decision's reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why (required to reject).
    #[serde(default)]
    pub reason: Option<String>,
}

async fn decide(
    state: &AppState,
    app_id: Uuid,
    request_id: Uuid,
    approve: bool,
    reason: Option<&str>,
    meta: &RequestMeta,
    staff: &Staff,
) -> Result<(AccessRequestView, u64), ApiError> {
    let (app, _, _) = super::apps::load(state, app_id).await?;
    let product_id = app
        .access
        .get(&request_id)
        .map(|a| a.product_id)
        .ok_or(ApiError::NotFound)?;
    let (product, _) = load_product(state, product_id).await?;
    let (app, _, position) = execute(
        state,
        AppCommand {
            app: app_id,
            by: By::Staff,
            if_match: None,
            actor: staff.actor(),
        },
        meta,
        |_, app| {
            let cmd = apps::DecideRequest {
                request_id,
                approve,
                reason: reason.map(str::to_owned),
            };
            apps::decide_access(app, &product, &cmd)
        },
    )
    .await?;
    let view = AccessRequestView::of(&app, request_id).ok_or(ApiError::NotFound)?;
    Ok((view, position))
}

/// Approve a pending product request; the app's credentials carry the
/// product's scopes from now on.
#[utoipa::path(post, path = "/v1/staff/apps/{app}/access/{request}/approve", tag = "staff",
    request_body = DecisionRequest,
    responses((status = 200, body = AccessRequestView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Path((app, request)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<DecisionRequest>,
) -> Result<Committed<AccessRequestView>, ApiError> {
    let (view, position) = decide(
        &state,
        app,
        request,
        true,
        body.reason.as_deref(),
        &meta,
        &staff,
    )
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(view),
    })
}

/// Reject a pending product request with a reason the developer sees.
#[utoipa::path(post, path = "/v1/staff/apps/{app}/access/{request}/reject", tag = "staff",
    request_body = DecisionRequest,
    responses((status = 200, body = AccessRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Path((app, request)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<DecisionRequest>,
) -> Result<Committed<AccessRequestView>, ApiError> {
    let (view, position) = decide(
        &state,
        app,
        request,
        false,
        body.reason.as_deref(),
        &meta,
        &staff,
    )
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(view),
    })
}

/// One request in a bulk decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkItem {
    /// The app.
    pub app_id: Uuid,
    /// The request.
    pub request_id: Uuid,
}

/// `POST /v1/staff/approvals/bulk` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// `approve` or `reject`.
    pub decision: String,
    /// Why (required to reject).
    #[serde(default)]
    pub reason: Option<String>,
    /// Up to 100 requests.
    pub items: Vec<BulkItem>,
}

/// The outcome for one request of a bulk decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOutcome {
    /// The app.
    pub app_id: Uuid,
    /// The request.
    pub request_id: Uuid,
    /// HTTP status this request alone would have had.
    pub status: u16,
    /// The problem code when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The outcome of a bulk decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkView {
    /// One outcome per item, in order.
    pub results: Vec<BulkOutcome>,
}

/// Approve or reject several requests; each is decided on its own (one
/// refused does not stop the others) and reported.
#[utoipa::path(post, path = "/v1/staff/approvals/bulk", tag = "staff",
    request_body = BulkRequest,
    responses((status = 200, body = BulkView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn bulk_decide(
    State(state): State<AppState>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<BulkRequest>,
) -> Result<Committed<BulkView>, ApiError> {
    let mut checks = domain::validate::Checks::default();
    checks
        .check(
            body.decision == "approve" || body.decision == "reject",
            "/decision",
            "must be approve or reject",
        )
        .check(
            (1..=100).contains(&body.items.len()),
            "/items",
            "must hold 1 to 100 requests",
        );
    checks.finish()?;
    let approve = body.decision == "approve";
    let mut results = Vec::with_capacity(body.items.len());
    let mut position = 0;
    for item in &body.items {
        let outcome = decide(
            &state,
            item.app_id,
            item.request_id,
            approve,
            body.reason.as_deref(),
            &meta,
            &staff,
        )
        .await;
        let (status, code) = ApiError::outcome(&outcome);
        if let Ok((_, p)) = outcome {
            position = position.max(p);
        }
        results.push(BulkOutcome {
            app_id: item.app_id,
            request_id: item.request_id,
            status,
            code,
        });
    }
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(BulkView { results }),
    })
}

/// A notification for a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Log position of the decision (also the cursor).
    pub position: i64,
    /// The app concerned.
    pub app_id: Uuid,
    /// `product_access.approved`, `product_access.rejected`,
    /// `distribution.approved`, `distribution.rejected`, `key_leaked`
    /// (secret scanning found one of the app's keys in public),
    /// `client_secret_leaked` (or an OAuth client's secret), or
    /// `webhook_disabled` (an endpoint answered 410 or failed for days).
    pub kind: String,
    /// What to tell the developer.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Staff decisions on the organisation's apps and leaked keys, newest first.
#[utoipa::path(get, path = "/v1/orgs/{org}/notifications", tag = "products",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<NotificationView>), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn notifications(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    _reader: WorkspaceReader,
    paging: Paging<i64>,
) -> Result<Json<Page<NotificationView>>, ApiError> {
    let client = state.read_models.client().await?;
    let rows =
        projections::apps::read::notifications(&client, org, paging.after, paging.fetch()).await?;
    let items = rows
        .into_iter()
        .map(|n| NotificationView {
            position: n.position,
            app_id: n.app_id,
            kind: n.kind,
            message: n.message,
            at: n.at,
        })
        .collect();
    Ok(Json(Page::new(items, &paging, |n| n.position)))
}
