//! Gatehouse's pure core: the rules of each aggregate, as functions of state
//! and command, with time passed in. No IO, no async, no SQL.
//!
//! # Layout
//! - [`accounts`]: sign-up and sign-in rules.
//! - [`apps`]: apps, versions, install links and installs, product access.
//! - [`keys`]: API keys: their format, issue, rotation and revocation.
//! - [`oauth`]: OAuth client credentials and token signing keys.
//! - [`manifest`]: app manifests against their JSON Schema.
//! - [`products`]: API products and their approval modes.
//! - [`orgs`]: organisations, developer terms, invitations, members.
//! - [`roles`]: roles and the one permission table.
//! - [`webhooks`]: webhook endpoints: validation, life and secret rotation.
//! - [`validate`]: field validation shared by every aggregate, with errors
//!   that name the field by JSON pointer.
//! - `testing` (tests only): the given/when/then harness.

pub mod accounts;
pub mod apps;
pub mod keys;
pub mod manifest;
pub mod oauth;
pub mod orgs;
pub mod products;
pub mod roles;
pub mod validate;
pub mod webhooks;

#[cfg(test)]
pub(crate) mod testing;

pub use validate::{FieldError, Invalid};
