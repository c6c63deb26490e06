//! Teams inside an organisation.

#[allow(unused_imports)]
use super::*;

/// `CreateTeam`.
pub fn create_team(
    org: &Org,
    actor: Uuid,
    team_id: Uuid,
    name: &str,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::ManageTeams)?;
    let name = name.trim();
    let mut checks = Checks::default();
    checks.display_name("/name", name, 100);
    checks.finish()?;
    if org
        .teams
        .values()
        .any(|t| t.name.eq_ignore_ascii_case(name))
    {
        return Err(OrgError::TeamNameTaken);
    }
    Ok(vec![OrgEvent::TeamCreated(TeamCreated {
        team_id,
        name: name.to_owned(),
    })])
}

/// `AddTeamMember` (or change their team role): only organisation members.
pub fn add_team_member(
    org: &Org,
    actor: Uuid,
    team_id: Uuid,
    user: Uuid,
    team_role: &str,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::ManageTeams)?;
    let team = org.teams.get(&team_id).ok_or(OrgError::NoSuchTeam)?;
    let mut checks = Checks::default();
    checks.check(
        TEAM_ROLES.contains(&team_role),
        "/team_role",
        "must be admin or member",
    );
    checks.finish()?;
    if !org.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember);
    }
    if team.members.get(&user).map(String::as_str) == Some(team_role) {
        return Ok(Vec::new());
    }
    Ok(vec![OrgEvent::TeamMemberAdded(TeamMemberAdded {
        team_id,
        user_id: user,
        team_role: team_role.to_owned(),
    })])
}

/// `RemoveTeamMember`.
pub fn remove_team_member(
    org: &Org,
    actor: Uuid,
    team_id: Uuid,
    user: Uuid,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::ManageTeams)?;
    let team = org.teams.get(&team_id).ok_or(OrgError::NoSuchTeam)?;
    if !team.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember);
    }
    Ok(vec![OrgEvent::TeamMemberRemoved(TeamMemberRemoved {
        team_id,
        user_id: user,
    })])
}
