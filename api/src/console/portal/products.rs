//! Products (seed 002): the catalogue, subscribing the app to a product in
//! a mode, and each request's approval state, decision and reason.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::{app_head, AppHead};
use crate::authorize::AppReader;
use crate::command::RequestMeta;
use crate::console::view::{
    done, form_again, page, Form, Frame, PageError, Problems, Section, Visitor,
};
use crate::extract::{ApiJson, Path};
use crate::page::Paging;
use crate::routes::products;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/portal/products.html")]
struct ProductsPage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
    catalogue: crate::page::Page<products::ProductView>,
    requests: crate::page::Page<products::AccessRequestView>,
    problems: Problems,
}

impl ProductsPage {
    /// A product's name, by id.
    pub fn product_name(&self, id: &Uuid) -> String {
        self.catalogue
            .items
            .iter()
            .find(|p| p.id == *id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

async fn products_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    problems: Problems,
) -> Result<Response, PageError> {
    let head = app_head(state, visitor, org, app, "/products").await?;
    let all = || Paging::first(crate::page::MAX_LIMIT);
    let axum::Json(catalogue) =
        products::catalogue(State(state.clone()), visitor.min, visitor.session, all()).await?;
    let reader = AppReader::check(state, app, visitor.session).await?;
    let axum::Json(requests) =
        products::list_app_products(State(state.clone()), Path(app), reader, all()).await?;
    let frame = visitor
        .frame(state, "Products", Section::Portal, Some(org))
        .await?;
    page(&ProductsPage {
        frame,
        org,
        head,
        catalogue,
        requests,
        problems,
    })
}

/// The Products page of an app.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    products_page(&state, &visitor, org, app, Problems::default()).await
}

/// What the subscribe form sends.
#[derive(Deserialize)]
pub struct SubscribeForm {
    product: Uuid,
    mode: String,
}

/// Asks for a product's access in a mode (approved at once or reviewed,
/// as the product says).
pub async fn subscribe(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<SubscribeForm>,
) -> Response {
    let body = products::AccessRequest {
        product_id: f.product,
        mode: f.mode,
    };
    match products::request_product(
        State(state.clone()),
        Path(app),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await
    {
        Ok(c) => done(
            c.position,
            &format!("/orgs/{org}/portal/apps/{app}/products"),
        ),
        Err(e) => {
            form_again(e, |problems| {
                products_page(&state, &visitor, org, app, problems)
            })
            .await
        }
    }
}
