//! API keys: always bound to an app, issued, rotated with an overlap,
//! revoked, or imported from a platform that issued them. One aggregate per
//! key (`api_key-<id>`), decided against the app and its organisation.
//!
//! Who may do what: owners and managers everything; developers issue,
//! rotate and revoke test keys only; every other role reads metadata and
//! never material. Live keys need the organisation in production.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use event_schemas::key::*;
use uuid::Uuid;

use crate::apps::{App, AppError, Mode};
use crate::orgs::{Org, OrgError};
use crate::roles::Permission;
use crate::validate::{Checks, Invalid};

pub mod format;

mod commands;
mod names;
mod state;

pub use commands::*;
pub use names::name_warnings;
pub use state::*;

#[cfg(test)]
pub(crate) mod tests;
