//! The Webhooks tab: the selected app's destinations, a new one with its
//! event families and mode (its signing secret shown once, on the page
//! that created it), and each destination's delivery log, refreshed in
//! place by htmx, with a replay of any message.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{app_choice, tabs, workspace, Selected, Tab};
use crate::authorize::{AppReader, OrgMember};
use crate::command::RequestMeta;
use crate::console::view::{
    again, done, form_problems, page, shown_after, Checked, Form, Frame, PageError, Problems,
    Section, Visitor,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, Path};
use crate::page::{Paging, TimeKey};
use crate::routes::{plans, webhooks};
use crate::state::AppState;

/// The event families a destination can choose, from the catalogue of
/// platform events.
fn families() -> Vec<String> {
    let mut f: Vec<String> = delivery::catalog::CATALOG
        .iter()
        .filter_map(|t| t.name.split('.').next())
        .map(|f| format!("{f}.*"))
        .collect();
    f.sort();
    f.dedup();
    f
}

#[derive(Template)]
#[template(path = "console/developers/webhooks.html")]
struct WebhooksPage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    apps: Vec<plans::SelectedApp>,
    app: Option<plans::SelectedApp>,
    endpoints: crate::page::Page<webhooks::EndpointView>,
    families: Vec<String>,
    form: EndpointForm,
    problems: Problems,
}

/// What the new-destination form sends.
#[derive(Default, Clone)]
pub struct EndpointForm {
    url: String,
    mode: String,
    description: String,
    families: Vec<String>,
}

impl EndpointForm {
    fn of(pairs: Vec<(String, String)>) -> Self {
        let mut f = EndpointForm {
            mode: "test".into(),
            ..Default::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "url" => f.url = v,
                "mode" => f.mode = v,
                "description" => f.description = v,
                "families" => f.families.push(v),
                _ => {}
            }
        }
        f
    }

    /// Whether `family` is ticked.
    pub fn has(&self, family: &str) -> bool {
        self.families.iter().any(|f| f == family)
    }
}

async fn webhooks_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    selected: Option<Uuid>,
    form: EndpointForm,
    problems: Problems,
) -> Result<Response, PageError> {
    let (apps, app) = app_choice(state, visitor, org, selected).await?;
    let endpoints = match &app {
        Some(a) => {
            let paging: Paging<TimeKey> = Paging::first(crate::page::MAX_LIMIT);
            webhooks::list_endpoints(
                State(state.clone()),
                Path(a.id),
                visitor.min,
                AppReader::check(state, a.id, visitor.session).await?,
                paging,
            )
            .await?
            .0
        }
        None => crate::page::Page::empty(),
    };
    let frame = visitor
        .frame(state, "Webhooks", Section::Developers, Some(org))
        .await?;
    page(&WebhooksPage {
        frame,
        tabs: tabs(org, "/webhooks"),
        org,
        apps,
        app,
        endpoints,
        families: families(),
        form,
        problems,
    })
}

/// The Webhooks tab.
pub async fn tab(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    axum::extract::Query(q): axum::extract::Query<Selected>,
) -> Response {
    let org = member.org;
    let form = EndpointForm {
        mode: "test".into(),
        ..Default::default()
    };
    let render = webhooks_page(&state, &visitor, org, q.app, form, Problems::default()).await;
    workspace(&state, &visitor, org, "Webhooks", render).await
}

#[derive(Template)]
#[template(path = "console/developers/webhook_secret.html")]
struct SecretPage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    created: webhooks::EndpointWithSecret,
}

/// Creates a destination and shows its signing secret, this once.
pub async fn create(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = EndpointForm::of(pairs);
    let body = webhooks::CreateEndpointRequest {
        url: f.url.trim().to_owned(),
        event_types: f.families.clone(),
        mode: f.mode.clone(),
        description: f.description.clone(),
        rate_limit: None,
        signature: None,
    };
    match webhooks::create_endpoint(
        State(state.clone()),
        Path(app),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await
    {
        Ok(c) => {
            let shown = async {
                let frame = visitor
                    .frame(
                        &state,
                        "Copy the signing secret",
                        Section::Developers,
                        Some(org),
                    )
                    .await?;
                let created = c
                    .body
                    .ok_or(ApiError::Internal("a new endpoint has a body".into()))?;
                shown_after(
                    c.position,
                    &SecretPage {
                        frame,
                        tabs: tabs(org, "/webhooks"),
                        org,
                        created,
                    },
                )
            }
            .await;
            shown.unwrap_or_else(IntoResponse::into_response)
        }
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let render = webhooks_page(&state, &visitor, org, Some(app), f, problems).await;
                again(
                    status,
                    Ok(workspace(&state, &visitor, org, "Webhooks", render).await),
                )
            }
            Err(e) => e.into_response(),
        },
    }
}

#[derive(Template)]
#[template(path = "console/developers/webhook.html")]
struct EndpointPage {
    frame: Frame,
    tabs: Vec<Tab>,
    endpoint: webhooks::EndpointView,
    health: webhooks::HealthView,
    log: DeliveryLog,
}

/// The delivery log of a destination, on its page and alone (htmx swaps
/// it in place every few seconds).
#[derive(Template)]
#[template(path = "console/developers/_deliveries.html")]
struct DeliveryLog {
    org: Uuid,
    endpoint: Uuid,
    csrf: String,
    deliveries: crate::page::Page<webhooks::DeliveryView>,
}

async fn delivery_log(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    endpoint: Uuid,
    paging: Paging<i64>,
) -> Result<DeliveryLog, ApiError> {
    let axum::Json(deliveries) = webhooks::list_deliveries(
        State(state.clone()),
        Path(endpoint),
        visitor.min,
        visitor.session,
        axum::extract::Query(webhooks::DeliveryFilter::default()),
        paging,
    )
    .await?;
    Ok(DeliveryLog {
        org,
        endpoint,
        csrf: visitor.csrf.clone(),
        deliveries,
    })
}

/// A destination: its health, failure patterns and delivery log.
pub async fn endpoint(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Checked(paging): Checked<Paging<i64>>,
) -> Result<Response, PageError> {
    let axum::Json(view) =
        webhooks::get_endpoint(State(state.clone()), Path(id), visitor.session).await?;
    let axum::Json(health) =
        webhooks::health(State(state.clone()), Path(id), visitor.min, visitor.session).await?;
    let log = delivery_log(&state, &visitor, org, id, paging).await?;
    let frame = visitor
        .frame(
            &state,
            "Webhook destination",
            Section::Developers,
            Some(org),
        )
        .await?;
    page(&EndpointPage {
        frame,
        tabs: tabs(org, "/webhooks"),
        endpoint: view,
        health,
        log,
    })
}

/// The delivery log alone, for htmx.
pub async fn deliveries(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Checked(paging): Checked<Paging<i64>>,
) -> Result<Response, PageError> {
    page(&delivery_log(&state, &visitor, org, id, paging).await?)
}

/// What a replay form sends: the message to deliver again.
#[derive(Deserialize)]
pub struct ReplayForm {
    message: String,
}

/// Delivers a message again to this destination.
pub async fn replay(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Form(f): Form<ReplayForm>,
) -> Response {
    let body = webhooks::ReplayRequest {
        message_ids: vec![f.message],
        since: None,
        until: None,
    };
    match webhooks::replay(State(state), Path(id), meta, visitor.session, ApiJson(body)).await {
        Ok(c) => done(
            c.position,
            &format!("/orgs/{org}/settings/developers/webhooks/{id}"),
        ),
        Err(e) => PageError(e).into_response(),
    }
}
