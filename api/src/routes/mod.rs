//! The HTTP surface: one module per resource, the OpenAPI document, and the
//! layers every request passes through (request id, tracing, panic catching,
//! body limit, problem+json for every error).
//!
//! Handlers hold no SQL: they read through `state.read_models` and the
//! typed queries of `projections::<model>::read` (and `delivery::read`),
//! and write through the command service or the module that owns a table
//! beside the log. `no_sql` (a test) keeps it so.

pub mod accounts;
pub mod apps;
pub mod as_of;
pub mod audit;
pub mod contract;
pub mod environments;
pub mod erasure;
pub mod health;
pub mod keys;
pub mod oauth;
pub mod orgs;
pub mod plans;
pub mod products;
pub mod secret_scanning;
pub mod staff_apps;
pub mod staff_keys;
pub mod staff_usage;
pub mod teams;
pub mod usage;
pub mod versions;
pub mod webhooks;

#[cfg(test)]
mod no_sql;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::state::AppState;
use contract::ProblemResponses;

/// The OpenAPI document, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "The control plane behind a developer portal."),
    paths(
        health::healthz, health::readyz,
        accounts::users::sign_up, accounts::users::me, erasure::erase_personal_data,
        accounts::sessions::sign_in, accounts::sessions::sign_out,
        accounts::sessions::sign_out_everywhere,
        accounts::verification::verify_email, accounts::verification::resend,
        accounts::passwords::change_password, accounts::passwords::request_reset,
        accounts::passwords::confirm_reset,
        orgs::create_org, orgs::list_members, orgs::change_role, orgs::remove_member,
        orgs::invite, orgs::list_invitations, orgs::revoke_invitation, orgs::accept_invitation, orgs::accept_invitation_with_token, orgs::accept_terms,
        orgs::current_terms, orgs::publish_terms,
        environments::request_sandbox, environments::grant_sandbox,
        environments::request_production, environments::complete_step,
        environments::reject_step, environments::staff_queue, environments::onboarding,
        plans::set_plan, plans::overview,
        teams::create_team, teams::list_teams, teams::put_member, teams::remove_team_member,
        apps::create_app, apps::list_apps, apps::get_app, apps::update_app, apps::delete_app,
        apps::list_app_members, apps::set_app_member, apps::remove_app_member,
        apps::set_visibility, apps::set_allowlist, apps::dashboard, apps::security, apps::marketplace,
        staff_apps::suspend, staff_apps::reinstate, staff_apps::approve_distribution,
        staff_apps::reject_distribution, staff_apps::suspend_matching, staff_apps::export,
        staff_apps::inventory, staff_apps::inactive_apps, staff_apps::distribution_queue,
        versions::create_version, versions::list_versions, versions::get_version,
        versions::put_manifest, versions::validate, versions::publish,
        versions::create_install_link, versions::install, versions::install_with_body, versions::uninstall,
        versions::list_installations, versions::manifest_schema,
        products::define_product, products::update_product, products::catalogue,
        products::get_product, products::request_product, products::list_app_products,
        products::approval_queue, products::approve, products::reject, products::bulk_decide,
        products::notifications,
        keys::create_key, keys::import_keys, keys::list_keys, keys::get_key, keys::rotate_key, keys::revoke_key,
        keys::verify,
        secret_scanning::github,
        staff_keys::request_rotation, staff_keys::rotation_job, staff_usage::high_usage_apps,
        oauth::create_client, oauth::list_clients, oauth::rotate_client_secret, oauth::revoke_client,
        oauth::token, oauth::jwks, oauth::rotate_signing_key,
        usage::report_usage, usage::org_usage, usage::app_analytics,
        webhooks::create_endpoint, webhooks::list_endpoints, webhooks::get_endpoint,
        webhooks::update_endpoint, webhooks::disable_endpoint, webhooks::enable_endpoint,
        webhooks::delete_endpoint, webhooks::rotate_endpoint_secret, webhooks::publish_message,
        webhooks::event_types, webhooks::list_deliveries, webhooks::health, webhooks::replay, webhooks::recover,
        webhooks::summary,
        audit::org_audit, audit::staff_audit, audit::org_export, audit::staff_export,
        audit::checkpoints, audit::public_key,
        audit::create_stream, audit::list_streams, audit::get_stream, audit::delete_stream,
        audit::enable_stream, audit::rotate_stream_secret, audit::stream_deliveries,
    ),
    components(schemas(crate::error::Problem, crate::error::ProblemField)),
    modifiers(&BearerAuth, &ProblemResponses),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "gateway",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A gateway token (--gateway-token)"))
                    .build(),
            ),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The whole application.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(health::router())
        .merge(accounts::router())
        .merge(orgs::router())
        .merge(environments::router())
        .merge(plans::router())
        .merge(teams::router())
        .merge(apps::router())
        .merge(staff_apps::router())
        .merge(versions::router())
        .merge(products::router())
        .merge(keys::router())
        .merge(usage::router())
        .merge(oauth::router())
        .merge(staff_keys::router())
        .merge(staff_usage::router())
        .merge(secret_scanning::router())
        .merge(webhooks::router())
        .merge(audit::router())
        .route("/openapi.json", get(openapi))
        // Route layers run after routing: a request to no route stores no
        // Idempotency-Key, and the guard reads the id as the route decodes it.
        .route_layer(axum::middleware::from_fn_with_state(
            crate::idempotency::Idempotency {
                state: state.clone(),
                body_limit,
            },
            crate::idempotency::layer,
        ))
        // Outside the idempotency layer: an outsider's request claims no
        // key and nothing of it is stored.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::tenancy::guard,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Outermost of the stateful layers: the guard's authentication
        // already seals the request's context.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::context::capture,
        ))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(problem_for_every_error))
        // The console: its own errors (pages, not problem documents), its
        // own cookie session; the same core.
        .merge(crate::console::router(state))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                .make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let path = redacted_path(req.uri().path());
                tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(set_aside_client_request_id))
}

/// No route: a problem document, or, for a browser asking for a page
/// outside the JSON API, the console's own "page not found".
async fn not_found(req: Request) -> Response {
    let wants_page = !req.uri().path().starts_with("/v1/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    if wants_page {
        crate::console::view::refused(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no such page. Start again from the account-access page.",
        )
    } else {
        ApiError::NotFound.into_response()
    }
}

use crate::command::CLIENT_REQUEST_ID;

/// Every request gets a request id of Gatehouse's own (the one logged,
/// answered and recorded in the audit trail): a client's `X-Request-Id`
/// is set aside (visible ASCII, at most 100 characters) and recorded
/// apart, marked as the client's.
async fn set_aside_client_request_id(mut req: Request, next: axum::middleware::Next) -> Response {
    let headers = req.headers_mut();
    if let Some(sent) = headers.remove("x-request-id") {
        headers.remove(CLIENT_REQUEST_ID);
        let clean: String = sent
            .to_str()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(100)
            .collect();
        if let Ok(value) = axum::http::HeaderValue::from_str(&clean) {
            if !clean.is_empty() {
                headers.insert(CLIENT_REQUEST_ID, value);
            }
        }
    } else {
        headers.remove(CLIENT_REQUEST_ID);
    }
    next.run(req).await
}

/// Path segments that carry a secret: the segment after one of these
/// prefixes is replaced before the path is logged.
const SECRET_SEGMENTS_AFTER: &[&str] = &["/v1/install/"];

/// Prefixes of the secrets Gatehouse issues; a path segment starting with
/// one is redacted wherever it appears, so a secret pasted into another
/// route's path is not logged either.
const SECRET_PREFIXES: &[&str] = &[
    "gil_",
    accounts::sessions::SESSION_PREFIX,
    // Session tokens issued before they had a prefix of their own.
    "ghs_",
    "whsec_",
    "whsk_",
];

/// `path` as it may be logged: secret-bearing segments replaced by
/// `[redacted]`, and the query string never included (the caller passes
/// the path alone).
pub fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    let secret_route = SECRET_SEGMENTS_AFTER.iter().find(|p| path.starts_with(**p));
    let has_secret = secret_route.is_some() || path.split('/').any(is_secret_segment);
    if !has_secret {
        return path.into();
    }
    let mut out = String::with_capacity(path.len());
    let skip = secret_route.map_or(0, |p| {
        out.push_str(p);
        p.len()
    });
    for (i, seg) in path[skip..].split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let secret =
            (secret_route.is_some() && i == 0 && !seg.is_empty()) || is_secret_segment(seg);
        out.push_str(if secret { "[redacted]" } else { seg });
    }
    out.into()
}

/// Whether a path segment looks like a secret Gatehouse issues: a known
/// prefix, or an API key of any deployment prefix (`*_live_sk_*`...).
fn is_secret_segment(seg: &str) -> bool {
    const KEY_MARKERS: [&str; 5] = ["_live_sk_", "_live_rk_", "_test_sk_", "_test_rk_", "_cs_"];
    SECRET_PREFIXES.iter().any(|p| seg.starts_with(p))
        || KEY_MARKERS.iter().any(|m| seg.contains(m))
}

/// Turns any error response that is not yet a problem document (from a layer
/// or the framework) into one, so clients meet a single error format.
async fn problem_for_every_error(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // A problem already, or a handler's own JSON error format (the token
    // endpoint's RFC 6749 errors): left as it is.
    let is_answered = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/problem+json")
            || v.starts_with(b"application/json")
            || v.starts_with(b"text/html")
    });
    if is_answered {
        return res;
    }
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        s if s.is_server_error() => ApiError::Internal(format!("{s} from a layer").into()),
        s => ApiError::bad_body(s, s.canonical_reason().unwrap_or("bad request")),
    };
    err.into_response()
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn secret_segments_are_redacted_from_logged_paths() {
        assert_eq!(
            redacted_path("/v1/install/gil_abc_def"),
            "/v1/install/[redacted]"
        );
        assert_eq!(
            redacted_path("/v1/install/anything"),
            "/v1/install/[redacted]"
        );
        assert_eq!(redacted_path("/v1/install"), "/v1/install");
        for token in ["gsess_x", "ghs_x"] {
            assert_eq!(
                redacted_path(&format!("/v1/apps/{token}/members")),
                "/v1/apps/[redacted]/members"
            );
        }
        assert_eq!(
            redacted_path("/v1/apps/0190/members"),
            "/v1/apps/0190/members"
        );
    }
}
