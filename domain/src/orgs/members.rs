//! Invitations and members.

#[allow(unused_imports)]
use super::*;

/// `Invite`: a single-use invitation that expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The new invitation's id.
    pub invitation_id: Uuid,
    /// Keyed hash of the invitee's normalised email (who may accept).
    pub email_index: String,
    /// The invitee's email, sealed under the invitation's own key.
    pub email: Sealed,
    /// Their role on acceptance.
    pub role: Role,
    /// When the command is decided.
    pub now: DateTime<Utc>,
    /// How long it can be accepted (the deployment's setting).
    pub ttl: Duration,
}

/// Decides [`Invite`] by `actor` (`members.manage`; owners only invite owners).
pub fn invite(org: &Org, actor: Uuid, cmd: &Invite) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = org.authorize(actor, Permission::ManageMembers)?;
    if cmd.role == Role::Owner && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    Ok(vec![OrgEvent::InvitationCreated(InvitationCreated {
        invitation_id: cmd.invitation_id,
        email_index: cmd.email_index.clone(),
        email: cmd.email.clone(),
        role: cmd.role.as_str().to_owned(),
        expires_at: cmd.now + cmd.ttl,
    })])
}

/// `AcceptInvitation`, by a signed-in user with a proof that the
/// invitation is theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptInvitation {
    /// The invitation.
    pub invitation_id: Uuid,
    /// Why the invitation is the accepting user's.
    pub proof: InviteeProof,
    /// When the command is decided.
    pub now: DateTime<Utc>,
}

/// What shows that an invitation belongs to the user accepting it. An
/// address the account has not proven is never a proof: anyone can sign
/// up with any address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteeProof {
    /// The keyed hash of the account's **proven** address: it must be the
    /// invitee's.
    VerifiedEmail(String),
    /// The single-use token mailed to the invitee (checked before the
    /// command): whoever holds it received the invitation.
    MailedToken,
}

/// Decides [`AcceptInvitation`] by `user`.
pub fn accept_invitation(
    org: &Org,
    user: Uuid,
    cmd: &AcceptInvitation,
) -> Result<Vec<OrgEvent>, OrgError> {
    let (invitation_id, now) = (cmd.invitation_id, cmd.now);
    let invitation = org
        .invitations
        .get(&invitation_id)
        .ok_or(OrgError::NoSuchInvitation)?;
    match &cmd.proof {
        InviteeProof::MailedToken => {}
        InviteeProof::VerifiedEmail(index) if *index == invitation.email_index => {}
        // Not theirs: as good as absent.
        InviteeProof::VerifiedEmail(_) => return Err(OrgError::NoSuchInvitation),
    }
    if invitation.status != InvitationStatus::Pending {
        return Err(OrgError::InvitationNotPending);
    }
    if now >= invitation.expires_at {
        return Err(OrgError::InvitationExpired);
    }
    if org.members.contains_key(&user) {
        return Err(OrgError::AlreadyMember);
    }
    Ok(vec![
        OrgEvent::InvitationAccepted(InvitationAccepted {
            invitation_id,
            user_id: user,
        }),
        OrgEvent::MemberAdded(MemberAdded {
            user_id: user,
            role: invitation.role.as_str().to_owned(),
            invitation_id: Some(invitation_id),
        }),
    ])
}

/// `RevokeInvitation`.
pub fn revoke_invitation(
    org: &Org,
    actor: Uuid,
    invitation_id: Uuid,
) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = org.authorize(actor, Permission::ManageMembers)?;
    let invitation = org
        .invitations
        .get(&invitation_id)
        .ok_or(OrgError::NoSuchInvitation)?;
    if invitation.role == Role::Owner && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    if invitation.status != InvitationStatus::Pending {
        return Err(OrgError::InvitationNotPending);
    }
    Ok(vec![OrgEvent::InvitationRevoked(InvitationRevoked {
        invitation_id,
    })])
}

/// `ChangeRole`.
pub fn change_role(
    org: &Org,
    actor: Uuid,
    member: Uuid,
    to: Role,
) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = org.authorize(actor, Permission::ManageMembers)?;
    let from = *org.members.get(&member).ok_or(OrgError::NoSuchMember)?;
    if from == to {
        return Ok(Vec::new());
    }
    if (from == Role::Owner || to == Role::Owner) && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    if from == Role::Owner && org.owners() == 1 {
        return Err(OrgError::LastOwner);
    }
    Ok(vec![OrgEvent::MemberRoleChanged(MemberRoleChanged {
        user_id: member,
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
    })])
}

/// `RemoveMember` (or leave, when `member == actor`).
pub fn remove_member(org: &Org, actor: Uuid, member: Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = if actor == member {
        org.role_of(actor)?
    } else {
        org.authorize(actor, Permission::ManageMembers)?
    };
    let role = *org.members.get(&member).ok_or(OrgError::NoSuchMember)?;
    if role == Role::Owner && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    if role == Role::Owner && org.owners() == 1 {
        return Err(OrgError::LastOwner);
    }
    Ok(vec![OrgEvent::MemberRemoved(MemberRemoved {
        user_id: member,
    })])
}
