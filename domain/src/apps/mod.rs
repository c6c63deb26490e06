//! Apps: details, status, visibility and distribution, app team members,
//! versions with manifests, install links and installs, and access to API
//! products. One aggregate per app (`app-<id>`), decided against the owning
//! organisation's state for who may do what.
//!
//! Who may act on an app: a member whose org role has `apps.manage`, an
//! admin of the owning team, or an app admin manages it; every other member
//! of the organisation may view it; anyone else does not know it exists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use event_schemas::app::*;
use serde_json::Value;
use uuid::Uuid;

use crate::manifest;
use crate::orgs::{Org, OrgError};
use crate::products::Product;
use crate::roles::Permission;
use crate::validate::{Checks, FieldError, Invalid};

pub mod installs;

pub use installs::{
    create_install_link, install, install_legacy, uninstall, CreateInstallLink, Install,
    Installation, Link, Uninstall,
};

mod access;
mod details;
mod distribution;
mod errors;
mod lifecycle;
mod members;
mod state;
mod versions;

pub use access::*;
pub use details::*;
pub use distribution::*;
pub use errors::*;
pub use lifecycle::*;
pub use members::*;
pub use state::*;
pub use versions::*;

#[cfg(test)]
mod tests;
