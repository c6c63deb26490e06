//! Gatehouse's pure core: the rules of each aggregate, as functions of state
//! and command, with time passed in. No IO, no async, no SQL.
//!
//! # Layout
//! - [`accounts`]: sign-up and sign-in rules.
//! - [`orgs`]: organisations, developer terms, invitations, members.
//! - [`roles`]: roles and the one permission table.
//! - [`validate`]: field validation shared by every aggregate, with errors
//!   that name the field by JSON pointer.

pub mod accounts;
pub mod orgs;
pub mod roles;
pub mod validate;

pub use validate::{FieldError, Invalid};
