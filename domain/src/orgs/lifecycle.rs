//! Creating an organisation.

#[allow(unused_imports)]
use super::*;

/// `CreateOrg`: the creator becomes its first owner.
pub fn create(
    org_id: Uuid,
    slug: &str,
    name: &str,
    creator: Uuid,
) -> Result<Vec<OrgEvent>, OrgError> {
    let name = name.trim();
    let mut checks = Checks::default();
    checks.slug("/slug", slug).display_name("/name", name, 100);
    checks.finish()?;
    Ok(vec![
        OrgEvent::Created(OrgCreated {
            org_id,
            slug: slug.to_owned(),
            name: name.to_owned(),
            owner: creator,
        }),
        OrgEvent::MemberAdded(MemberAdded {
            user_id: creator,
            role: Role::Owner.as_str().to_owned(),
            invitation_id: None,
        }),
    ])
}
