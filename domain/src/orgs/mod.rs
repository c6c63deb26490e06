//! Organisations: creation, developer terms, invitations and members.
//!
//! State is folded from the organisation's events ([`Org::apply`]); each
//! command is a function of that state, the caller and `now`, returning the
//! events to append or the rule it breaks.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use event_schemas::org::{
    InvitationAccepted, InvitationCreated, InvitationRevoked, MemberAdded, MemberRemoved,
    MemberRoleChanged, OrgCreated, OrgEvent, PlanSet, ProductionRequested, ProductionStepCompleted,
    ProductionStepRejected, SandboxGranted, SandboxPromoted, SandboxRequested, TeamCreated,
    TeamMemberAdded, TeamMemberRemoved, TermsAccepted, TermsEvent, TermsPublished,
};
use event_schemas::sealed::Sealed;
use uuid::Uuid;

use crate::roles::{allows, Permission, Role};
use crate::validate::{Checks, Invalid};

mod environments;
mod errors;
mod lifecycle;
mod members;
mod plans;
mod state;
mod teams;
mod terms;

pub use environments::*;
pub use errors::*;
pub use lifecycle::*;
pub use members::*;
pub use plans::*;
pub use state::*;
pub use teams::*;
pub use terms::*;

#[cfg(test)]
mod tests;
