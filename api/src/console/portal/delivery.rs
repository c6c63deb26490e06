//! Webhooks, as the portal shows them for one app: each destination's
//! delivery health and failure patterns, and the event categories and data
//! types the published version declares.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use super::{app_head, AppHead};
use crate::authorize::AppReader;
use crate::console::view::{page, Frame, PageError, Section, Visitor};
use crate::extract::Path;
use crate::routes::webhooks;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/portal/delivery.html")]
struct DeliveryPage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
    s: webhooks::WebhooksSummary,
}

/// The Webhooks page of an app.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    let head = app_head(&state, &visitor, org, app, "/webhooks").await?;
    let reader = AppReader::check(&state, app, visitor.session).await?;
    let axum::Json(s) =
        webhooks::summary(State(state.clone()), Path(app), visitor.min, reader).await?;
    let frame = visitor
        .frame(&state, "Webhooks", Section::Portal, Some(org))
        .await?;
    page(&DeliveryPage {
        frame,
        org,
        head,
        s,
    })
}
