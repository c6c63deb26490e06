//! Invitations: invite, list the pending ones, revoke, accept.
//!
//! An invitation is mailed to the invitee with its own single-use token.
//! It is accepted with that token (by whoever holds it, signed in to any
//! account), or by a signed-in account whose **proven** address is the
//! invitee's. An address an account merely typed at sign-up proves
//! nothing.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/orgs/{org}/invitations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The invitee's email.
    pub email: String,
    /// Their role on acceptance.
    pub role: String,
}

/// An invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Id. The invitee accepts with the link mailed to them
    /// (`POST /v1/invitations/accept`), or, once their account has proven
    /// the address, with `POST /v1/invitations/{id}/accept`.
    pub id: Uuid,
    /// Role on acceptance.
    pub role: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Invite someone by email; single-use, expires after the deployment's
/// invitation lifetime (7 days by default).
#[utoipa::path(post, path = "/v1/orgs/{org}/invitations", tag = "organizations",
    request_body = InviteRequest,
    responses((status = 201, body = InvitationView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn invite(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<InviteRequest>,
) -> Result<Committed<InvitationView>, ApiError> {
    let email = domain::validate::email(&body.email).ok_or_else(|| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: "/email".into(),
            detail: "must be an email address such as ada@example.com".into(),
        }]))
    })?;
    let role = parse_role(&body.role)?;
    let invitation_id = meta.ids().entity("invitation");
    let email_index = state.vault.email_index(&email);
    // Authorise before creating the invitation's key.
    let (current, _, _) = load(&state, org).await?;
    current.authorize(session.user_id, Permission::ManageMembers)?;
    let client = state.pool.get().await?;
    let key = state
        .vault
        .ensure_subject_key(&client, invitation_id)
        .await
        .map_err(ApiError::internal)?;
    drop(client);
    let sealed = key.seal(&email);
    let now = crate::command::now();
    let cmd = orgs::Invite {
        invitation_id,
        email_index,
        email: sealed,
        role,
        now,
        ttl: state.invitation_ttl,
    };
    let (after, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::invite(o, session.user_id, &cmd)
    })
    .await?;
    let recorded = after
        .invitations
        .get(&invitation_id)
        .ok_or_else(|| ApiError::Internal("an invitation just made is not in its org".into()))?;
    let org_name = projections::orgs::read::org_name(&state.read_models.client().await?, org)
        .await?
        .unwrap_or_else(|| "an organisation".to_owned());
    mail_invitation(
        &state,
        invitation_id,
        &cmd.email_index,
        &email,
        &org_name,
        recorded.role.as_str(),
        recorded.expires_at,
    )
    .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(InvitationView {
            id: invitation_id,
            role: recorded.role.as_str().to_owned(),
            expires_at: recorded.expires_at,
        }),
    })
}

/// Issues the invitation's token and mails its link to the invitee.
async fn mail_invitation(
    state: &AppState,
    invitation: Uuid,
    email_index: &str,
    email: &str,
    org_name: &str,
    role: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), ApiError> {
    use crate::accounts::tokens::{self, Purpose};
    let client = state.pool.get().await?;
    let token = tokens::issue(
        &client,
        Purpose::Invitation,
        invitation,
        email_index,
        expires_at,
    )
    .await?;
    let link = state.link(&format!("/invitations/accept?token={}", token.reveal()));
    let days = (expires_at - crate::command::now()).num_days().max(1);
    let letter = crate::mail::Letter::invitation(email, org_name, role, &link, days);
    crate::mail::outbox::post(state, &client, "invitation", email_index, &letter).await?;
    Ok(())
}

/// A pending invitation, as the Members page lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingInvitationView {
    /// Id.
    pub id: Uuid,
    /// The invitee's email; `[erased]` once shredded.
    pub email: String,
    /// Role on acceptance.
    pub role: String,
    /// Who invited them (absent when staff or the system did).
    pub invited_by: Option<Uuid>,
    /// When it was sent (the time the log recorded it).
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Pending invitations that have not expired, oldest first (owners and
/// managers: `members.manage`).
#[utoipa::path(get, path = "/v1/orgs/{org}/invitations", tag = "organizations",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<PendingInvitationView>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_invitations(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<PendingInvitationView>>, ApiError> {
    member.require(Permission::ManageMembers)?;
    let client = state.read_models.client().await?;
    let rows = projections::orgs::read::pending_invitations(&client, org, paging.keyset()).await?;
    // The email stays sealed until the keys are read below.
    let page = paging.page(rows, |i| PendingInvitationView {
        id: i.invitation_id,
        email: i.email_sealed,
        role: i.role,
        invited_by: i.invited_by,
        created_at: i.created_at,
        expires_at: i.expires_at,
    });
    let ids: Vec<Uuid> = page.items.iter().map(|i| i.id).collect();
    let keys = state
        .vault
        .subject_keys(&client, &ids)
        .await
        .map_err(ApiError::internal)?;
    let items = page
        .items
        .into_iter()
        .map(|mut i| {
            i.email = crate::vault::reveal(keys.get(&i.id), &i.email)?;
            Ok(i)
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Revoke a pending invitation.
#[utoipa::path(post, path = "/v1/orgs/{org}/invitations/{invitation}/revoke", tag = "organizations",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    Path((org, invitation)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::revoke_invitation(o, session.user_id, invitation)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// Accept an invitation addressed to the caller's **proven** address
/// (`GET /v1/me` shows `email_verified`); without one, use the mailed link
/// (`POST /v1/invitations/accept`).
#[utoipa::path(post, path = "/v1/invitations/{invitation}/accept", tag = "organizations",
    params(("invitation" = Uuid, Path, description = "Invitation id")),
    responses((status = 200, body = MemberView), (status = 401, body = Problem),
        (status = 403, description = "The caller's address is not proven yet (`email-unverified`)", body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    Path(invitation): Path<Uuid>,
    min: MinPosition,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<MemberView>, ApiError> {
    min.wait(&state, &["orgs"]).await?;
    let account = crate::accounts::directory::account(&*state.store, session.user_id).await?;
    if !account.email_verified {
        return Err(ApiError::Forbidden {
            code: "email-unverified",
            detail: "prove your address first (the link mailed at sign-up), or accept with the \
                     link mailed with the invitation"
                .into(),
            permission: None,
        });
    }
    accept(
        &state,
        &meta,
        session,
        invitation,
        orgs::InviteeProof::VerifiedEmail(account.email_index),
    )
    .await
}

/// Accept an invitation with the token from the mailed link, signed in to
/// any account.
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "organizations",
    request_body = crate::routes::accounts::verification::TokenRequest,
    params(("gatehouse-min-position" = Option<u64>, Header, description = "Wait until read models reach this position")),
    responses((status = 200, body = MemberView), (status = 401, body = Problem),
        (status = 404, description = "The invitation no longer exists", body = Problem),
        (status = 409, body = Problem),
        (status = 410, description = "The link is unknown, used or expired", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn accept_invitation_with_token(
    State(state): State<AppState>,
    min: MinPosition,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<crate::routes::accounts::verification::TokenRequest>,
) -> Result<Committed<MemberView>, ApiError> {
    use crate::accounts::tokens::{self, Purpose};
    min.wait(&state, &["orgs"]).await?;
    let client = state.pool.get().await?;
    let spent = tokens::spend(&client, Purpose::Invitation, &body.token)
        .await?
        .ok_or_else(crate::routes::accounts::verification::dead_link)?;
    drop(client);
    let accepted = accept(
        &state,
        &meta,
        session,
        spent.subject,
        orgs::InviteeProof::MailedToken,
    )
    .await;
    if let Err(e) = &accepted {
        // Refused by the organisation (already a member, say): the link
        // stays for the account it was meant for. Gone for good: it stays
        // spent.
        if !matches!(
            e,
            ApiError::Gone { .. } | ApiError::NotFound | ApiError::Conflict { .. }
        ) {
            tokens::unspend(&state.pool.get().await?, &spent).await?;
        }
    }
    accepted
}

async fn accept(
    state: &AppState,
    meta: &RequestMeta,
    session: Session,
    invitation: Uuid,
    proof: orgs::InviteeProof,
) -> Result<Committed<MemberView>, ApiError> {
    let client = state.read_models.client().await?;
    let org = projections::orgs::read::invitation_org(&client, invitation)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    let cmd = orgs::AcceptInvitation {
        invitation_id: invitation,
        proof,
        now: crate::command::now(),
    };
    let (_, position) = execute(state, org, meta, meta.in_org(session.actor(), org), |o| {
        orgs::accept_invitation(o, session.user_id, &cmd)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(member_after(state, org, session.user_id, session.user_id, position).await?),
    })
}
