//! The `app.*`, `app_version.*`, `install_link.*`, `product.*` and
//! `product_access.*` families: apps and everything that hangs off one.
//!
//! Streams: `app-<app_id>` holds an app's whole life (details, status,
//! visibility, members, versions, install links, installs, product access),
//! so one expected version guards every rule that spans them (a single-use
//! link used once, a published version never edited). Slugs are reserved per
//! organisation in `app_slug-<org_id>-<slug>`; products live in
//! `product-<product_id>`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `app.created` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppCreated {
    /// The app.
    pub app_id: Uuid,
    /// The organisation owning it.
    pub org_id: Uuid,
    /// The team owning it inside the organisation, if a team does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    /// URL name, unique in the organisation.
    pub slug: String,
    /// What it does.
    pub description: String,
    /// Allowed browser origins (CORS).
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, String>,
    /// The organisation's sandbox tenant when the app was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_tenant_id: Option<Uuid>,
}

/// `app.updated` v1: the fields that changed, each with its new value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppUpdated {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New slug (the old one is released in the same commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
    /// New callback URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_urls: Option<Vec<String>>,
    /// Attributes set (a value) or removed (`null`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Option<String>>,
}

/// `app.slug_claimed` v1 and `app.slug_released` v1, in
/// `app_slug-<org_id>-<slug>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppSlug {
    /// The app holding (or giving up) the slug.
    pub app_id: Uuid,
}

/// `app.deleted` v1. Every credential of the app is bound to this event:
/// from it on, none verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppDeleted {
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `app.suspended` v1 (verification answers `app_suspended`) and
/// `app.reinstated` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppStatusChanged {
    /// Why.
    pub reason: String,
}

/// `app.member_set` v1: an app team member (Security page) and their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppMemberSet {
    /// The user, a member of the owning organisation.
    pub user_id: Uuid,
    /// `admin` or `developer`.
    pub role: String,
}

/// `app.member_removed` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppMemberRemoved {
    /// The user.
    pub user_id: Uuid,
}

/// `app.distribution_requested` v1: ask staff for broader visibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DistributionRequested {
    /// The request.
    pub request_id: Uuid,
    /// `unlisted` or `public`.
    pub visibility: String,
}

/// `app.distribution_decided` v1, by staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DistributionDecided {
    /// The request.
    pub request_id: Uuid,
    /// Approved or not.
    pub approved: bool,
    /// Why (required when rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `app.visibility_changed` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VisibilityChanged {
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
}

/// `app.allowlist_set` v1: the workspaces that may install a private app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AllowlistSet {
    /// Organisation ids.
    pub org_ids: Vec<Uuid>,
}

/// `app_version.created` v1: a draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionCreated {
    /// The version.
    pub version_id: Uuid,
    /// Its label, unique in the app (`1.2.0`).
    pub label: String,
    /// The manifest.
    pub manifest: Value,
}

/// `app_version.manifest_updated` v1: a draft's manifest replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestUpdated {
    /// The version.
    pub version_id: Uuid,
    /// The new manifest.
    pub manifest: Value,
}

/// `app_version.published` v1: immutable from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionPublished {
    /// The version.
    pub version_id: Uuid,
}

/// `install_link.created` v1. The token is shown once; only its SHA-256 is
/// kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallLinkCreated {
    /// The link.
    pub link_id: Uuid,
    /// The published version it installs.
    pub version_id: Uuid,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Usable once, or until it expires.
    pub single_use: bool,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// `app.installed` v1: into a workspace, through a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppInstalled {
    /// The installing workspace.
    pub org_id: Uuid,
    /// The version installed.
    pub version_id: Uuid,
    /// The link used.
    pub link_id: Uuid,
}

/// `app.uninstalled` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppUninstalled {
    /// The workspace.
    pub org_id: Uuid,
}

/// How a product's access requests are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approved at once.
    Auto,
    /// Staff decide.
    Manual,
}

/// A product's approval mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ApprovalMode {
    /// Every request approved at once.
    Auto,
    /// Every request decided by staff.
    Manual,
    /// Decided by the credential mode the access is for.
    Conditional {
        /// Test-mode requests.
        test: Decision,
        /// Live-mode requests.
        live: Decision,
    },
}

/// `product.defined` v1 and `product.updated` v1 (the whole definition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductDefined {
    /// The product.
    pub product_id: Uuid,
    /// Display name.
    pub name: String,
    /// What it offers.
    pub description: String,
    /// Scopes a credential with access carries.
    pub scopes: Vec<String>,
    /// How requests are decided.
    pub approval: ApprovalMode,
}

/// `product_access.requested` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessRequested {
    /// The request.
    pub request_id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// `test` or `live`.
    pub mode: String,
}

/// `product_access.approved` v1. The scopes are copied from the product at
/// approval, so the app's grant does not change under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessApproved {
    /// The request.
    pub request_id: Uuid,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Approved by the product's rule rather than by staff.
    pub automatic: bool,
}

/// `product_access.rejected` v1, by staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessRejected {
    /// The request.
    pub request_id: Uuid,
    /// Why.
    pub reason: String,
}

event_family! {
    /// Every event of an app's stream.
    pub enum AppEvent {
        /// `app.created`
        Created(AppCreated) = "app.created",
        /// `app.updated`
        Updated(AppUpdated) = "app.updated",
        /// `app.deleted`
        Deleted(AppDeleted) = "app.deleted",
        /// `app.suspended`
        Suspended(AppStatusChanged) = "app.suspended",
        /// `app.reinstated`
        Reinstated(AppStatusChanged) = "app.reinstated",
        /// `app.member_set`
        MemberSet(AppMemberSet) = "app.member_set",
        /// `app.member_removed`
        MemberRemoved(AppMemberRemoved) = "app.member_removed",
        /// `app.distribution_requested`
        DistributionRequested(DistributionRequested) = "app.distribution_requested",
        /// `app.distribution_decided`
        DistributionDecided(DistributionDecided) = "app.distribution_decided",
        /// `app.visibility_changed`
        VisibilityChanged(VisibilityChanged) = "app.visibility_changed",
        /// `app.allowlist_set`
        AllowlistSet(AllowlistSet) = "app.allowlist_set",
        /// `app_version.created`
        VersionCreated(VersionCreated) = "app_version.created",
        /// `app_version.manifest_updated`
        ManifestUpdated(ManifestUpdated) = "app_version.manifest_updated",
        /// `app_version.published`
        VersionPublished(VersionPublished) = "app_version.published",
        /// `install_link.created`
        InstallLinkCreated(InstallLinkCreated) = "install_link.created",
        /// `app.installed`
        Installed(AppInstalled) = "app.installed",
        /// `app.uninstalled`
        Uninstalled(AppUninstalled) = "app.uninstalled",
        /// `product_access.requested`
        AccessRequested(AccessRequested) = "product_access.requested",
        /// `product_access.approved`
        AccessApproved(AccessApproved) = "product_access.approved",
        /// `product_access.rejected`
        AccessRejected(AccessRejected) = "product_access.rejected",
    }
}

event_family! {
    /// Slug reservations, in `app_slug-<org_id>-<slug>`.
    pub enum AppSlugEvent {
        /// `app.slug_claimed`
        Claimed(AppSlug) = "app.slug_claimed",
        /// `app.slug_released`
        Released(AppSlug) = "app.slug_released",
    }
}

event_family! {
    /// A product's stream.
    pub enum ProductEvent {
        /// `product.defined`
        Defined(ProductDefined) = "product.defined",
        /// `product.updated`
        Updated(ProductDefined) = "product.updated",
    }
}

/// `install_link.issued` v1, first in `install_link-<link_id>`: a link
/// for a published version of an app. The token is shown once; only its
/// SHA-256 is kept. (Links of earlier releases are `install_link.created`
/// events in their app's stream.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallLinkIssued {
    /// The link.
    pub link_id: Uuid,
    /// The app it installs.
    pub app_id: Uuid,
    /// The published version it installs.
    pub version_id: Uuid,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Usable once, or until it expires.
    pub single_use: bool,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// `install_link.used` v1: a single-use link was spent (multi-use links
/// record nothing on their own stream, so it does not grow with installs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallLinkUsed {
    /// The workspace it installed into.
    pub org_id: Uuid,
}

event_family! {
    /// An install link's stream, `install_link-<link_id>`.
    pub enum InstallLinkEvent {
        /// `install_link.issued`
        Issued(InstallLinkIssued) = "install_link.issued",
        /// `install_link.used`
        Used(InstallLinkUsed) = "install_link.used",
    }
}

/// `installation.added` v1, in `installation-<app_id>-<org_id>`: the app
/// installed (or moved to another version) in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallationAdded {
    /// The app.
    pub app_id: Uuid,
    /// The installing workspace.
    pub org_id: Uuid,
    /// The version installed.
    pub version_id: Uuid,
    /// The link used.
    pub link_id: Uuid,
}

/// `installation.removed` v1: uninstalled from the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallationRemoved {
    /// The app.
    pub app_id: Uuid,
    /// The workspace.
    pub org_id: Uuid,
}

event_family! {
    /// One app in one workspace, `installation-<app_id>-<org_id>`.
    pub enum InstallationEvent {
        /// `installation.added`
        Added(InstallationAdded) = "installation.added",
        /// `installation.removed`
        Removed(InstallationRemoved) = "installation.removed",
    }
}

/// The stream of an install link.
pub fn install_link_stream(link_id: Uuid) -> String {
    format!("install_link-{link_id}")
}

/// The stream of an app's installation in one workspace.
pub fn installation_stream(app_id: Uuid, org_id: Uuid) -> String {
    format!("installation-{app_id}-{org_id}")
}

/// The stream of an app.
pub fn app_stream(app_id: Uuid) -> String {
    format!("app-{app_id}")
}

/// The stream reserving `slug` in an organisation.
pub fn app_slug_stream(org_id: Uuid, slug: &str) -> String {
    format!("app_slug-{org_id}-{slug}")
}

/// The stream of a product.
pub fn product_stream(product_id: Uuid) -> String {
    format!("product-{product_id}")
}
