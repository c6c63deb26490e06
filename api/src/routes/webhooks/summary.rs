//! The app's Webhooks page: every endpoint with its health, and what the
//! published version's manifest declares.

#[allow(unused_imports)]
use super::*;

/// One endpoint on the Webhooks page.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSummary {
    /// The endpoint.
    pub endpoint: EndpointView,
    /// Its health.
    pub health: HealthView,
}

/// The app's Webhooks page.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhooksSummary {
    /// The app.
    pub app_id: Uuid,
    /// Every endpoint with its health.
    pub endpoints: Vec<EndpointSummary>,
    /// The event categories the current published version's manifest
    /// declares (its `webhooks.categories`, as the manifest schema names
    /// them), empty without one.
    pub declared_events: Vec<String>,
    /// The data types it declares (`webhooks.data_types` or `data_types`).
    pub declared_data_types: Vec<String>,
}

fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Delivery health per endpoint, and what the published manifest declares.
#[utoipa::path(get, path = "/v1/apps/{app}/webhooks/summary", tag = "webhooks",
    params(("app" = Uuid, Path, description = "App id")),
    responses((status = 200, body = WebhooksSummary), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn summary(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    min: MinPosition,
    reader: AppReader,
) -> Result<Json<WebhooksSummary>, ApiError> {
    fed(&state, min).await?;
    let app = state
        .commands
        .load::<App>(&event_schemas::app::app_stream(app_id))
        .await?;
    let manifest = app
        .versions
        .values()
        .rfind(|v| v.published)
        .map(|v| v.manifest.clone())
        .unwrap_or_default();
    let hooks = manifest.get("webhooks");
    let pick = |name: &str| {
        let mut out = strings(hooks.and_then(|h| h.get(name)));
        out.extend(strings(manifest.get(name)));
        out
    };
    let client = state.pool.get().await?;
    let rows = delivery::read::all_app_endpoints(&client, reader.app).await?;
    let mut endpoints = Vec::with_capacity(rows.len());
    for r in rows {
        let endpoint = EndpointView::from_row(r);
        let health = health_of(&client, endpoint.id).await?;
        endpoints.push(EndpointSummary { endpoint, health });
    }
    Ok(Json(WebhooksSummary {
        app_id,
        endpoints,
        declared_events: pick("categories"),
        declared_data_types: pick("data_types"),
    }))
}
