//! Roles and the one permission table every handler consults.

use std::fmt;
use std::str::FromStr;

/// A member's role in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, including owners and the organisation itself.
    Owner,
    /// The Developers workspace and the people, but not owners.
    Manager,
    /// Test-mode credentials and webhooks.
    Developer,
    /// Plan, billing and usage.
    Finance,
    /// Reads everything, including audit history and exports; changes
    /// nothing; never sees a secret.
    Compliance,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Manager,
        Role::Developer,
        Role::Finance,
        Role::Compliance,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Developer => "developer",
            Role::Finance => "finance",
            Role::Compliance => "compliance",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// Something a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the organisation, its overview and members.
    ViewOrg,
    /// Invite, re-role and remove members (owners only for owners).
    ManageMembers,
    /// Create teams and manage their members.
    ManageTeams,
    /// Accept the developer terms for the organisation.
    AcceptTerms,
    /// Request sandbox or production access.
    RequestEnvironments,
    /// See apps and their settings.
    ViewApps,
    /// Create, edit, delete apps.
    ManageApps,
    /// Issue, rotate, revoke live-mode credentials.
    ManageLiveCredentials,
    /// Issue, rotate, revoke test-mode credentials.
    ManageTestCredentials,
    /// Create and manage webhook endpoints.
    ManageWebhooks,
    /// See plan, billing and usage.
    ViewBilling,
    /// See the audit history.
    ViewAudit,
    /// Export the audit history, and see the streams to a SIEM.
    ExportAudit,
    /// Create, enable, rotate and delete audit streams (and so receive
    /// their signing secrets).
    ManageAuditStreams,
    /// See every member's email (each member sees their own: see
    /// [`sees_email_of`]).
    ViewMemberEmails,
}

impl Permission {
    /// Every permission, in table order.
    pub const ALL: [Permission; 15] = [
        Permission::ViewOrg,
        Permission::ManageMembers,
        Permission::ManageTeams,
        Permission::AcceptTerms,
        Permission::RequestEnvironments,
        Permission::ViewApps,
        Permission::ManageApps,
        Permission::ManageLiveCredentials,
        Permission::ManageTestCredentials,
        Permission::ManageWebhooks,
        Permission::ViewBilling,
        Permission::ViewAudit,
        Permission::ExportAudit,
        Permission::ManageAuditStreams,
        Permission::ViewMemberEmails,
    ];

    /// The name shown in a 403.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewOrg => "org.view",
            Permission::ManageMembers => "members.manage",
            Permission::ManageTeams => "teams.manage",
            Permission::AcceptTerms => "terms.accept",
            Permission::RequestEnvironments => "environments.request",
            Permission::ViewApps => "apps.view",
            Permission::ManageApps => "apps.manage",
            Permission::ManageLiveCredentials => "credentials.live.manage",
            Permission::ManageTestCredentials => "credentials.test.manage",
            Permission::ManageWebhooks => "webhooks.manage",
            Permission::ViewBilling => "billing.view",
            Permission::ViewAudit => "audit.view",
            Permission::ExportAudit => "audit.export",
            Permission::ManageAuditStreams => "audit.streams.manage",
            Permission::ViewMemberEmails => "members.emails.view",
        }
    }
}

/// The permission table: whether `role` may do `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match permission {
        ViewOrg | ViewApps => true,
        ManageMembers
        | ManageTeams
        | AcceptTerms
        | RequestEnvironments
        | ManageApps
        | ManageLiveCredentials => matches!(role, Owner | Manager),
        ManageTestCredentials | ManageWebhooks => matches!(role, Owner | Manager | Developer),
        ViewBilling => matches!(role, Owner | Manager | Finance | Compliance),
        ViewAudit => matches!(role, Owner | Manager | Compliance),
        ExportAudit => matches!(role, Owner | Compliance),
        // Compliance changes nothing and never receives a secret: a stream
        // carries a signing secret and sends the history out.
        ManageAuditStreams => matches!(role, Owner),
        // Compliance audits who has access, which needs the addresses.
        ViewMemberEmails => matches!(role, Owner | Manager | Compliance),
    }
}

/// Whether `viewer`, with `role` in the organisation, sees the email of
/// member `member`: with [`Permission::ViewMemberEmails`], or their own.
pub fn sees_email_of(role: Role, viewer: uuid::Uuid, member: uuid::Uuid) -> bool {
    allows(role, Permission::ViewMemberEmails) || viewer == member
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out: a changed cell fails here.
    #[test]
    fn the_permission_table() {
        // owner, manager, developer, finance, compliance
        let expected: [(Permission, [bool; 5]); 15] = [
            (Permission::ViewOrg, [true, true, true, true, true]),
            (Permission::ManageMembers, [true, true, false, false, false]),
            (Permission::ManageTeams, [true, true, false, false, false]),
            (Permission::AcceptTerms, [true, true, false, false, false]),
            (
                Permission::RequestEnvironments,
                [true, true, false, false, false],
            ),
            (Permission::ViewApps, [true, true, true, true, true]),
            (Permission::ManageApps, [true, true, false, false, false]),
            (
                Permission::ManageLiveCredentials,
                [true, true, false, false, false],
            ),
            (
                Permission::ManageTestCredentials,
                [true, true, true, false, false],
            ),
            (Permission::ManageWebhooks, [true, true, true, false, false]),
            (Permission::ViewBilling, [true, true, false, true, true]),
            (Permission::ViewAudit, [true, true, false, false, true]),
            (Permission::ExportAudit, [true, false, false, false, true]),
            (
                Permission::ManageAuditStreams,
                [true, false, false, false, false],
            ),
            (
                Permission::ViewMemberEmails,
                [true, true, false, false, true],
            ),
        ];
        for (permission, row) in expected {
            for (role, allowed) in Role::ALL.into_iter().zip(row) {
                assert_eq!(
                    allows(role, permission),
                    allowed,
                    "{role} / {}",
                    permission.as_str()
                );
            }
        }
    }

    #[test]
    fn compliance_changes_nothing() {
        let changes = [
            Permission::ManageMembers,
            Permission::ManageTeams,
            Permission::AcceptTerms,
            Permission::RequestEnvironments,
            Permission::ManageApps,
            Permission::ManageLiveCredentials,
            Permission::ManageTestCredentials,
            Permission::ManageWebhooks,
        ];
        assert!(changes.iter().all(|p| !allows(Role::Compliance, *p)));
    }

    #[test]
    fn roles_round_trip_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
