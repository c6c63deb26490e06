//! The app's request body and views.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/orgs/{org}/apps` and `PATCH /v1/apps/{app}` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    /// Display name (required on create).
    pub name: Option<String>,
    /// URL name, unique in the organisation (required on create).
    pub slug: Option<String>,
    /// What the app does.
    pub description: Option<String>,
    /// Allowed browser origins: `https://host[:port]`.
    pub origins: Option<Vec<String>>,
    /// OAuth callback URLs: `https`, or `http://localhost` before production.
    pub callback_urls: Option<Vec<String>>,
    /// Custom attributes; on update, `null` removes one.
    #[serde(default)]
    pub attributes: BTreeMap<String, Option<String>>,
    /// The owning team (create only); the organisation when absent.
    pub team_id: Option<Uuid>,
}

impl AppRequest {
    pub(crate) fn details(self) -> Details {
        Details {
            name: self.name,
            slug: self.slug,
            description: self.description,
            origins: self.origins,
            callback_urls: self.callback_urls,
            attributes: self.attributes,
        }
    }
}

/// An app (the General page).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    /// Id.
    pub id: Uuid,
    /// Owning organisation.
    pub org_id: Uuid,
    /// Owning team, if any.
    pub team_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, String>,
    /// The organisation's sandbox tenant the app is linked to.
    pub sandbox_tenant_id: Option<Uuid>,
    /// `active`, `pending`, `suspended` or `deleted`.
    pub status: String,
    /// Why it is suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
    /// Workspaces that may install it while private.
    pub allowlist: Vec<Uuid>,
    /// A distribution request waiting for staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution_request: Option<DistributionRequestView>,
    /// Stream version, for `If-Match`.
    pub version: u64,
}

impl AppView {
    pub(crate) fn of(app: &App, version: u64) -> Self {
        AppView {
            id: app.id,
            org_id: app.org_id,
            team_id: app.team_id,
            name: app.name.clone(),
            slug: app.slug.clone(),
            description: app.description.clone(),
            origins: app.origins.clone(),
            callback_urls: app.callback_urls.clone(),
            attributes: app.attributes.clone(),
            sandbox_tenant_id: app.sandbox_tenant_id,
            status: app.status().as_str().to_owned(),
            suspended_reason: app.suspended.clone(),
            visibility: app.visibility.as_str().to_owned(),
            allowlist: app.allowlist.iter().copied().collect(),
            distribution_request: app
                .distribution_request
                .map(|(id, v)| DistributionRequestView {
                    id,
                    visibility: v.as_str().to_owned(),
                }),
            version,
        }
    }

    /// An app as the read model holds it.
    pub(crate) fn from_row(r: projections::apps::read::AppRow) -> Self {
        AppView {
            id: r.app_id,
            org_id: r.org_id,
            team_id: r.team_id,
            name: r.name,
            slug: r.slug,
            description: r.description,
            origins: r.origins,
            callback_urls: r.callback_urls,
            attributes: r.attributes,
            sandbox_tenant_id: r.sandbox_tenant_id,
            status: r.status,
            suspended_reason: r.suspended_reason,
            visibility: r.visibility,
            allowlist: r.allowlist,
            distribution_request: r
                .distribution_request
                .map(|(id, visibility)| DistributionRequestView { id, visibility }),
            version: r.version as u64,
        }
    }
}

/// A distribution request waiting for staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionRequestView {
    /// The request.
    pub id: Uuid,
    /// The visibility asked for.
    pub visibility: String,
}
