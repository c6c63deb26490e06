//! The app's team members (the Security page).

#[allow(unused_imports)]
use super::*;

/// `SetAppMember`: an organisation member becomes app admin or developer.
pub fn set_member(
    org: &Org,
    app: &App,
    actor: Uuid,
    user: Uuid,
    role: AppRole,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    if !org.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember.into());
    }
    Ok(vec![AppEvent::MemberSet(AppMemberSet {
        user_id: user,
        role: role.as_str().to_owned(),
    })])
}

/// `RemoveAppMember`.
pub fn remove_member(
    org: &Org,
    app: &App,
    actor: Uuid,
    user: Uuid,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    if !app.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember.into());
    }
    Ok(vec![AppEvent::MemberRemoved(AppMemberRemoved {
        user_id: user,
    })])
}
