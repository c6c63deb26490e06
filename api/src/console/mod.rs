//! The console: the portal the seeds describe, server-rendered HTML at `/`
//! beside the JSON API at `/v1` (DESIGN.md, "The console").
//!
//! It is a second face over the same core. Each handler calls the JSON
//! API's handler for the same action, which is the command service and the
//! read layer behind it, and renders what it answers: nothing is decided or
//! queried here, so the console and the API cannot disagree. Templates
//! (askama, compiled in) are in `api/templates/console/`, named after their
//! page; assets in `api/static/`.
//!
//! # Layout
//! - [`security`]: the session cookie, cross-site checks, every response's
//!   headers.
//! - [`scope`]: an app in an address belongs to the organisation in it.
//! - [`view`]: the frame of every page, errors as pages or on their fields,
//!   forms and their token.
//! - [`assets`]: the stylesheet, htmx and `console.js`.
//! - [`access`]: sign up, verify, sign in and out, reset, the account-access
//!   page and its next step.
//! - [`orgs`]: create an organisation, its lane, the developer terms.
//! - [`people`]: members, invitations (and their mailed link), teams.
//! - [`portal`]: the developer portal: dashboard, an app's General,
//!   Versions, Security, Webhooks and Products.
//! - [`compliance`]: the audit history and its filters, exports,
//!   checkpoints, "as of".
//! - [`staff`]: platform staff's queue, reports and operations.
//! - [`developers`]: Settings > Developers: Overview, Apps, API Keys,
//!   Webhooks, Usage, Docs.
//! - [`docs`]: the public documentation under `/docs`.

pub mod access;
pub mod assets;
pub mod compliance;
pub mod developers;
pub mod docs;
pub mod orgs;
pub mod people;
pub mod portal;
pub mod scope;
pub mod security;
pub mod staff;
pub mod view;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The console's routes, with its layer.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/", get(access::home))
        .route("/sign-in", get(access::sign_in_page).post(access::sign_in))
        .route("/sign-up", get(access::sign_up_page).post(access::sign_up))
        .route("/sign-out", post(access::sign_out))
        .route(
            "/verify-email",
            get(access::verify_email_page).post(access::verify_email),
        )
        .route(
            "/reset-password",
            get(access::reset_page).post(access::reset),
        )
        .route("/access", get(access::access))
        .route("/orgs/new", get(orgs::new_page).post(orgs::create))
        .route("/orgs/switch", get(orgs::switch))
        .route("/orgs/{org}", get(orgs::show))
        .route("/orgs/{org}/requests", post(orgs::request))
        .route(
            "/orgs/{org}/terms",
            get(orgs::terms).post(orgs::accept_terms),
        )
        .route("/orgs/{org}/people", get(people::show))
        .route("/orgs/{org}/people/invitations", post(people::invite))
        .route(
            "/orgs/{org}/people/invitations/{invitation}/revoke",
            post(people::revoke_invitation),
        )
        .route("/orgs/{org}/people/{user}/role", post(people::change_role))
        .route("/orgs/{org}/people/{user}/remove", post(people::remove))
        .route("/orgs/{org}/teams", post(people::create_team))
        .route(
            "/invitations/accept",
            get(people::invitation_page).post(people::accept),
        )
        .route("/orgs/{org}/portal", get(portal::dashboard))
        .route("/orgs/{org}/portal/apps", post(portal::create))
        .route(
            "/orgs/{org}/portal/apps/{app}",
            get(portal::general).post(portal::save_general),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/delete",
            get(portal::delete_page).post(portal::delete),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/versions",
            get(portal::versions::list).post(portal::versions::create),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/versions/{version}",
            get(portal::versions::show).post(portal::versions::act),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/security",
            get(portal::security::show),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/security/clients",
            post(portal::security::create_client),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/security/clients/{client}/rotate",
            post(portal::security::rotate_client),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/security/clients/{client}/revoke",
            post(portal::security::revoke_client),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/security/members",
            post(portal::security::set_member),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/webhooks",
            get(portal::delivery::show),
        )
        .route(
            "/orgs/{org}/portal/apps/{app}/products",
            get(portal::products::show).post(portal::products::subscribe),
        )
        .route("/install", get(portal::install_page).post(portal::install))
        .route("/orgs/{org}/installations", get(portal::installations))
        .route(
            "/orgs/{org}/installations/{app}/uninstall",
            post(portal::uninstall),
        )
        .route("/orgs/{org}/settings", get(developers::settings))
        .route("/orgs/{org}/settings/developers", get(developers::overview))
        .route(
            "/orgs/{org}/settings/developers/apps",
            get(developers::apps::apps_tab).post(developers::apps::create_app),
        )
        .route(
            "/orgs/{org}/settings/developers/apps/{app}",
            post(developers::apps::update_app),
        )
        .route(
            "/orgs/{org}/settings/developers/keys",
            get(developers::keys::keys_tab),
        )
        .route(
            "/orgs/{org}/settings/developers/apps/{app}/keys",
            post(developers::keys::issue_key),
        )
        .route(
            "/orgs/{org}/settings/developers/apps/{app}/keys/{key}/rotate",
            post(developers::keys::rotate_key),
        )
        .route(
            "/orgs/{org}/settings/developers/apps/{app}/keys/{key}/revoke",
            get(developers::keys::revoke_page).post(developers::keys::revoke_key),
        )
        .route(
            "/orgs/{org}/settings/developers/webhooks",
            get(developers::webhooks::tab),
        )
        .route(
            "/orgs/{org}/settings/developers/apps/{app}/webhooks",
            post(developers::webhooks::create),
        )
        .route(
            "/orgs/{org}/settings/developers/webhooks/{id}",
            get(developers::webhooks::endpoint),
        )
        .route(
            "/orgs/{org}/settings/developers/webhooks/{id}/deliveries",
            get(developers::webhooks::deliveries),
        )
        .route(
            "/orgs/{org}/settings/developers/webhooks/{id}/replay",
            post(developers::webhooks::replay),
        )
        .route(
            "/orgs/{org}/settings/developers/usage",
            get(developers::usage::tab),
        )
        .route(
            "/orgs/{org}/settings/developers/docs",
            get(developers::docs),
        )
        .route("/orgs/{org}/audit", get(compliance::history))
        .route("/orgs/{org}/audit/export", get(compliance::export))
        .route(
            "/orgs/{org}/audit/checkpoints",
            get(compliance::checkpoints),
        )
        .route("/orgs/{org}/audit/as-of", get(compliance::as_of))
        .route("/staff", get(staff::queue))
        .route("/staff/lane", post(staff::decide_lane))
        .route("/staff/approvals", post(staff::decide_products))
        .route("/staff/distribution", post(staff::decide_distribution))
        .route("/staff/reports", get(staff::reports::show))
        .route("/staff/reports/apps.jsonl", get(staff::reports::export))
        .route("/staff/operations", get(staff::operations::show))
        .route(
            "/staff/operations/suspend",
            post(staff::operations::suspend),
        )
        .route("/staff/operations/rotate", post(staff::operations::rotate))
        .route("/staff/operations/plan", post(staff::operations::set_plan))
        .route(
            "/staff/operations/terms",
            post(staff::operations::publish_terms),
        )
        .route("/staff/operations/erase", post(staff::operations::erase))
        .route("/staff/rotations/{job}", get(staff::operations::rotation))
        .route("/docs", get(docs::overview))
        .route("/docs/auth", get(docs::auth))
        .route("/docs/agents", get(docs::agents))
        .route("/docs/api", get(docs::api));
    for (path, _, _) in assets::ASSETS {
        r = r.route(path, get(move || async move { assets::serve(path) }));
    }
    // A route layer: it runs after routing, so it sees the route's
    // template; inside the security layer, which has set the session.
    r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        scope::guard,
    ))
    .layer(axum::middleware::from_fn(security::layer))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::audit::context::capture,
    ))
    .with_state(state)
}
