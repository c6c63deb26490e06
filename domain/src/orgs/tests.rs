//! The organisation's rules, decided on state built from events.

use super::*;
use crate::testing::when;

const OWNER: Uuid = Uuid::from_u128(1);
const MANAGER: Uuid = Uuid::from_u128(2);
const DEV: Uuid = Uuid::from_u128(3);
const STRANGER: Uuid = Uuid::from_u128(9);
const ORG: Uuid = Uuid::from_u128(100);
const INV: Uuid = Uuid::from_u128(200);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
}

/// The organisation `events` fold into.
struct Given(Org);

#[track_caller]
fn given(events: &[OrgEvent]) -> Given {
    Given(Org::from_events(events).unwrap())
}

fn team() -> Vec<OrgEvent> {
    let mut events = create(ORG, "acme", "Acme", OWNER).expect("valid");
    for (user, role) in [(MANAGER, Role::Manager), (DEV, Role::Developer)] {
        events.push(OrgEvent::MemberAdded(MemberAdded {
            user_id: user,
            role: role.as_str().into(),
            invitation_id: None,
        }));
    }
    events
}

fn invited(role: Role) -> Vec<OrgEvent> {
    let mut events = team();
    events.push(OrgEvent::InvitationCreated(InvitationCreated {
        invitation_id: INV,
        email_index: "idx-new".into(),
        email: Sealed("x".into()),
        role: role.as_str().into(),
        expires_at: now() + default_invitation_ttl(),
    }));
    events
}

#[test]
fn creating_an_org_makes_the_creator_its_owner() {
    let events = create(ORG, "acme-labs", " Acme Labs ", OWNER).unwrap();
    let org = Org::from_events(&events).unwrap();
    assert_eq!(org.role_of(OWNER), Ok(Role::Owner));
    assert!(matches!(&events[0], OrgEvent::Created(c) if c.name == "Acme Labs"));
}

#[test]
fn bad_slugs_and_names_are_refused_by_pointer() {
    for slug in ["ab", "Acme", "-acme", "acme-", "ac me", &"a".repeat(41)] {
        let Err(OrgError::Invalid(Invalid(errors))) = create(ORG, slug, "Acme", OWNER) else {
            panic!("{slug:?} accepted")
        };
        assert_eq!(errors[0].pointer, "/slug");
    }
    assert!(matches!(
        create(ORG, "acme", "  ", OWNER),
        Err(OrgError::Invalid(_))
    ));
}

#[test]
fn outsiders_get_not_found_and_members_without_permission_get_forbidden() {
    let org = given(&team()).0;
    assert_eq!(
        org.authorize(STRANGER, Permission::ViewOrg),
        Err(OrgError::NotFound)
    );
    assert_eq!(
        org.authorize(DEV, Permission::ManageMembers),
        Err(OrgError::Forbidden(Permission::ManageMembers))
    );
    assert_eq!(Org::default().role_of(OWNER), Err(OrgError::NotFound));
}

#[test]
fn accepting_the_current_terms_once_records_it_and_again_changes_nothing() {
    let g = given(&team());
    let events = when(accept_terms(&g.0, MANAGER, INITIAL_TERMS)).then([OrgEvent::TermsAccepted(
        TermsAccepted {
            version: INITIAL_TERMS.into(),
            user_id: MANAGER,
        },
    )]);
    let mut all = team();
    all.extend(events);
    let g = given(&all);
    when(accept_terms(&g.0, OWNER, INITIAL_TERMS)).then([]);
}

#[test]
fn accepting_unknown_terms_or_without_permission_is_refused() {
    let org = given(&team()).0;
    assert!(matches!(
        accept_terms(&org, OWNER, "1999-01"),
        Err(OrgError::Invalid(_))
    ));
    assert_eq!(
        accept_terms(&org, DEV, INITIAL_TERMS),
        Err(OrgError::Forbidden(Permission::AcceptTerms))
    );
}

#[test]
fn only_owners_invite_owners() {
    let org = given(&team()).0;
    let cmd = |role| Invite {
        invitation_id: INV,
        email_index: "i".into(),
        email: Sealed("x".into()),
        role,
        now: now(),
        ttl: default_invitation_ttl(),
    };
    when(invite(&org, MANAGER, &cmd(Role::Owner))).then_err(OrgError::OnlyOwnersManageOwners);
    when(invite(&org, OWNER, &cmd(Role::Owner))).then([OrgEvent::InvitationCreated(
        InvitationCreated {
            invitation_id: INV,
            email_index: "i".into(),
            email: Sealed("x".into()),
            role: "owner".into(),
            expires_at: now() + default_invitation_ttl(),
        },
    )]);
    when(invite(&org, DEV, &cmd(Role::Developer)))
        .then_err(OrgError::Forbidden(Permission::ManageMembers));
}

#[test]
fn an_invitation_is_single_use() {
    let g = given(&invited(Role::Developer));
    let events = when(accept_invitation(
        &g.0,
        STRANGER,
        &AcceptInvitation {
            invitation_id: INV,
            proof: InviteeProof::VerifiedEmail("idx-new".into()),
            now: now(),
        },
    ))
    .then([
        OrgEvent::InvitationAccepted(InvitationAccepted {
            invitation_id: INV,
            user_id: STRANGER,
        }),
        OrgEvent::MemberAdded(MemberAdded {
            user_id: STRANGER,
            role: "developer".into(),
            invitation_id: Some(INV),
        }),
    ]);
    let mut all = invited(Role::Developer);
    all.extend(events);
    let org = Org::from_events(&all).unwrap();
    assert_eq!(org.role_of(STRANGER), Ok(Role::Developer));
    let other = Uuid::from_u128(10);
    assert_eq!(
        accept_invitation(
            &org,
            other,
            &AcceptInvitation {
                invitation_id: INV,
                proof: InviteeProof::VerifiedEmail("idx-new".into()),
                now: now()
            }
        ),
        Err(OrgError::InvitationNotPending)
    );
}

#[test]
fn an_invitation_is_accepted_with_its_mailed_token_by_any_account() {
    let org = given(&invited(Role::Developer)).0;
    let events = accept_invitation(
        &org,
        STRANGER,
        &AcceptInvitation {
            invitation_id: INV,
            proof: InviteeProof::MailedToken,
            now: now(),
        },
    )
    .unwrap();
    assert!(matches!(events[1], OrgEvent::MemberAdded(_)));
}

#[test]
fn an_expired_revoked_or_someone_elses_invitation_is_refused() {
    let org = given(&invited(Role::Developer)).0;
    let later = now() + default_invitation_ttl();
    assert_eq!(
        accept_invitation(
            &org,
            STRANGER,
            &AcceptInvitation {
                invitation_id: INV,
                proof: InviteeProof::VerifiedEmail("idx-new".into()),
                now: later
            }
        ),
        Err(OrgError::InvitationExpired)
    );
    assert_eq!(
        accept_invitation(
            &org,
            STRANGER,
            &AcceptInvitation {
                invitation_id: INV,
                proof: InviteeProof::VerifiedEmail("idx-other".into()),
                now: now()
            }
        ),
        Err(OrgError::NoSuchInvitation)
    );
    let mut all = invited(Role::Developer);
    all.extend(revoke_invitation(&org, MANAGER, INV).unwrap());
    let org = Org::from_events(&all).unwrap();
    assert_eq!(
        accept_invitation(
            &org,
            STRANGER,
            &AcceptInvitation {
                invitation_id: INV,
                proof: InviteeProof::VerifiedEmail("idx-new".into()),
                now: now()
            }
        ),
        Err(OrgError::InvitationNotPending)
    );
    assert_eq!(
        revoke_invitation(&org, MANAGER, INV),
        Err(OrgError::InvitationNotPending)
    );
}

#[test]
fn the_last_owner_can_neither_leave_nor_be_demoted() {
    let org = given(&team()).0;
    assert_eq!(remove_member(&org, OWNER, OWNER), Err(OrgError::LastOwner));
    assert_eq!(
        change_role(&org, OWNER, OWNER, Role::Manager),
        Err(OrgError::LastOwner)
    );
    let mut all = team();
    all.extend(change_role(&org, OWNER, MANAGER, Role::Owner).unwrap());
    let org = Org::from_events(&all).unwrap();
    assert_eq!(remove_member(&org, OWNER, OWNER).map(|e| e.len()), Ok(1));
}

#[test]
fn managers_cannot_touch_owners_and_developers_cannot_manage_members() {
    let org = given(&team()).0;
    assert_eq!(
        change_role(&org, MANAGER, OWNER, Role::Developer),
        Err(OrgError::OnlyOwnersManageOwners)
    );
    assert_eq!(
        change_role(&org, MANAGER, DEV, Role::Owner),
        Err(OrgError::OnlyOwnersManageOwners)
    );
    assert_eq!(
        remove_member(&org, MANAGER, OWNER),
        Err(OrgError::OnlyOwnersManageOwners)
    );
    assert_eq!(
        remove_member(&org, DEV, MANAGER),
        Err(OrgError::Forbidden(Permission::ManageMembers))
    );
    assert_eq!(
        remove_member(&org, DEV, DEV).map(|e| e.len()),
        Ok(1),
        "anyone may leave"
    );
    assert_eq!(
        change_role(&org, MANAGER, STRANGER, Role::Developer),
        Err(OrgError::NoSuchMember)
    );
}

fn with(mut events: Vec<OrgEvent>, more: Vec<OrgEvent>) -> Vec<OrgEvent> {
    events.extend(more);
    events
}

const STAFF: Uuid = Uuid::from_u128(77);
const TENANT: Uuid = Uuid::from_u128(88);

#[test]
fn sandbox_is_refused_until_the_terms_are_accepted_and_names_the_next_step() {
    let org = given(&team()).0;
    assert_eq!(org.next_step(), "accept_developer_terms");
    let err = request_sandbox(&org, OWNER, None).unwrap_err();
    assert_eq!(err, OrgError::TermsNotAccepted);
    assert!(err.to_string().contains("accept_developer_terms"));
}

#[test]
fn the_lane_runs_from_terms_to_production_granted() {
    let mut log = with(
        team(),
        accept_terms(&Org::from_events(&team()).unwrap(), OWNER, INITIAL_TERMS).unwrap(),
    );
    let org = Org::from_events(&log).unwrap();
    assert_eq!(org.next_step(), "request_sandbox");
    assert_eq!(
        request_sandbox(&org, DEV, None),
        Err(OrgError::Forbidden(Permission::RequestEnvironments))
    );
    log = with(log, request_sandbox(&org, MANAGER, None).unwrap());
    let org = Org::from_events(&log).unwrap();
    assert_eq!(org.next_step(), "await_sandbox_grant");
    assert_eq!(
        request_sandbox(&org, OWNER, None),
        Err(OrgError::SandboxAlreadyRequested)
    );
    assert_eq!(
        request_production(&org, OWNER),
        Err(OrgError::SandboxRequired)
    );
    log = with(log, grant_sandbox(&org, STAFF, TENANT).unwrap());
    let org = Org::from_events(&log).unwrap();
    assert_eq!(org.sandbox, Sandbox::Granted(TENANT));
    assert_eq!(org.next_step(), "issue_first_key");
    let done = LaneProgress {
        first_key: true,
        usage: true,
        webhook: true,
    };
    assert_eq!(org.next_step_with(done), "request_production");
    assert_eq!(
        decide_step(&org, STAFF, ReviewStep::ConsentReview, None),
        Err(OrgError::NoProductionReview)
    );
    log = with(log, request_production(&org, OWNER).unwrap());
    let mut org = Org::from_events(&log).unwrap();
    assert_eq!(org.next_step(), "consent_review");
    let rejected = decide_step(
        &org,
        STAFF,
        ReviewStep::BillingSetup,
        Some("no card on file"),
    )
    .unwrap();
    log = with(log, rejected);
    org = Org::from_events(&log).unwrap();
    assert_eq!(
        org.production.as_ref().unwrap().steps[1],
        StepState::Rejected("no card on file".into())
    );
    for (i, step) in ReviewStep::ALL.into_iter().enumerate() {
        assert!(!org.in_production());
        let events = decide_step(&org, STAFF, step, None).unwrap();
        assert_eq!(
            events.len(),
            if i == 3 { 2 } else { 1 },
            "the last step promotes"
        );
        log = with(log, events);
        org = Org::from_events(&log).unwrap();
    }
    assert!(org.in_production());
    assert_eq!(org.next_step(), "production_granted");
    assert!(matches!(log.last(), Some(OrgEvent::SandboxPromoted(_))));
}

#[test]
fn an_automatic_sandbox_grant_comes_in_the_same_append() {
    let log = with(
        team(),
        accept_terms(&Org::from_events(&team()).unwrap(), OWNER, INITIAL_TERMS).unwrap(),
    );
    let events = request_sandbox(&Org::from_events(&log).unwrap(), OWNER, Some(TENANT)).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        Org::from_events(&with(log, events)).unwrap().sandbox,
        Sandbox::Granted(TENANT)
    );
}

#[test]
fn review_decisions_need_a_known_step_and_a_reason_to_reject() {
    let mut log = with(
        team(),
        accept_terms(&Org::from_events(&team()).unwrap(), OWNER, INITIAL_TERMS).unwrap(),
    );
    log = with(
        log.clone(),
        request_sandbox(&Org::from_events(&log).unwrap(), OWNER, Some(TENANT)).unwrap(),
    );
    log = with(
        log.clone(),
        request_production(&Org::from_events(&log).unwrap(), OWNER).unwrap(),
    );
    let org = Org::from_events(&log).unwrap();
    assert_eq!(
        ReviewStep::parse("vibes_check"),
        None,
        "unknown steps do not parse"
    );
    assert!(matches!(
        decide_step(&org, STAFF, ReviewStep::AuditReady, Some("  ")),
        Err(OrgError::Invalid(_))
    ));
    assert_eq!(
        request_production(&org, OWNER),
        Err(OrgError::ProductionAlreadyRequested)
    );
}

fn plan(modules: &[&str], state: &str) -> SetPlan {
    SetPlan {
        plan: "pro".into(),
        modules: modules.iter().map(|m| m.to_string()).collect(),
        monthly_call_limit: 100_000,
        subscription_state: state.into(),
        billing_window_start: now(),
        billing_window_end: now() + Duration::days(30),
    }
}

#[test]
fn the_platform_api_module_opens_the_workspace_unless_canceled() {
    let org = given(&team()).0;
    assert!(!org.has_module(PLATFORM_API), "no plan, no module");
    let with_api = with(
        team(),
        set_plan(&org, STAFF, plan(&[PLATFORM_API], "active")).unwrap(),
    );
    assert!(Org::from_events(&with_api)
        .unwrap()
        .has_module(PLATFORM_API));
    let canceled = with(
        team(),
        set_plan(&org, STAFF, plan(&[PLATFORM_API], "canceled")).unwrap(),
    );
    assert!(!Org::from_events(&canceled)
        .unwrap()
        .has_module(PLATFORM_API));
    let without = with(
        team(),
        set_plan(&org, STAFF, plan(&["billing"], "active")).unwrap(),
    );
    assert!(!Org::from_events(&without).unwrap().has_module(PLATFORM_API));
}

#[test]
fn the_workspace_opens_with_platform_api_unless_the_plan_is_canceled() {
    let modules = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let api = modules(&[PLATFORM_API]);
    for state in ["trialing", "active", "past_due"] {
        assert!(plan_unlocks_workspace(&api, Some(state)), "{state}");
    }
    assert!(!plan_unlocks_workspace(&api, Some("canceled")));
    assert!(
        plan_unlocks_workspace(&api, None),
        "a read model row without a state yet is not canceled"
    );
    assert!(!plan_unlocks_workspace(
        &modules(&["billing"]),
        Some("active")
    ));
    assert!(!plan_unlocks_workspace(&[], None), "no plan, no workspace");
    // The aggregate asks the same rule.
    let org = given(&team()).0;
    assert!(!org.unlocks_workspace(), "no plan");
    for (state, unlocked) in [("active", true), ("canceled", false)] {
        let events = with(
            team(),
            set_plan(&org, STAFF, plan(&[PLATFORM_API], state)).unwrap(),
        );
        let org = Org::from_events(&events).unwrap();
        assert_eq!(org.unlocks_workspace(), unlocked, "{state}");
        assert_eq!(org.has_module(PLATFORM_API), unlocked, "{state}");
    }
}

#[test]
fn a_bad_plan_names_each_bad_field() {
    let org = given(&team()).0;
    let mut bad = plan(&["Not OK"], "lapsed");
    bad.plan = String::new();
    bad.billing_window_end = bad.billing_window_start;
    let Err(OrgError::Invalid(Invalid(errors))) = set_plan(&org, STAFF, bad) else {
        panic!("a bad plan was accepted")
    };
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        vec![
            "/plan",
            "/modules/0",
            "/subscription_state",
            "/billing_window_end"
        ]
    );
}

const TEAM: Uuid = Uuid::from_u128(300);

#[test]
fn teams_hold_only_organisation_members_and_names_are_unique() {
    let org = given(&team()).0;
    assert_eq!(
        create_team(&org, DEV, TEAM, "Mobile"),
        Err(OrgError::Forbidden(Permission::ManageTeams))
    );
    let log = with(team(), create_team(&org, MANAGER, TEAM, "Mobile").unwrap());
    let org = Org::from_events(&log).unwrap();
    assert_eq!(
        create_team(&org, OWNER, Uuid::from_u128(301), " mobile "),
        Err(OrgError::TeamNameTaken)
    );
    assert_eq!(
        add_team_member(&org, OWNER, TEAM, STRANGER, "member"),
        Err(OrgError::NoSuchMember)
    );
    assert!(matches!(
        add_team_member(&org, OWNER, TEAM, DEV, "boss"),
        Err(OrgError::Invalid(_))
    ));
    let log = with(
        log,
        add_team_member(&org, OWNER, TEAM, DEV, "admin").unwrap(),
    );
    let org = Org::from_events(&log).unwrap();
    assert_eq!(
        org.teams[&TEAM].members.get(&DEV).map(String::as_str),
        Some("admin")
    );
    // Leaving the organisation leaves its teams too.
    let log = with(log, remove_member(&org, DEV, DEV).unwrap());
    assert!(Org::from_events(&log).unwrap().teams[&TEAM]
        .members
        .is_empty());
}

#[test]
fn new_terms_must_be_accepted_again_before_gated_actions() {
    let accepted = {
        let mut log = team();
        log.extend(accept_terms(&Org::from_events(&log).unwrap(), OWNER, INITIAL_TERMS).unwrap());
        log
    };
    let mut org = Org::from_events(&accepted).unwrap();
    assert!(org.terms_accepted());
    let mut terms = PlatformTerms::default();
    for e in publish_terms(&terms, STAFF, "2027-01").unwrap() {
        terms.apply(&e);
    }
    assert_eq!(terms.current(), "2027-01");
    org.terms_in_force = Some(terms.current().to_owned());
    assert!(!org.terms_accepted());
    assert_eq!(org.next_step(), "accept_developer_terms");
    assert_eq!(
        request_sandbox(&org, OWNER, None),
        Err(OrgError::TermsNotAccepted)
    );
    assert!(
        matches!(
            accept_terms(&org, OWNER, INITIAL_TERMS),
            Err(OrgError::Invalid(_))
        ),
        "the old version no longer counts"
    );
    let events = accept_terms(&org, OWNER, "2027-01").unwrap();
    for e in &events {
        org.apply(e).unwrap();
    }
    assert!(org.terms_accepted());
}

#[test]
fn a_terms_version_is_published_once() {
    let mut terms = PlatformTerms::default();
    assert_eq!(
        publish_terms(&terms, STAFF, INITIAL_TERMS),
        Err(OrgError::TermsVersionUsed)
    );
    assert!(matches!(
        publish_terms(&terms, STAFF, "no spaces"),
        Err(OrgError::Invalid(_))
    ));
    for e in publish_terms(&terms, STAFF, "2027-01").unwrap() {
        terms.apply(&e);
    }
    assert_eq!(
        publish_terms(&terms, STAFF, "2027-01"),
        Err(OrgError::TermsVersionUsed)
    );
}

#[test]
fn in_the_sandbox_the_lane_asks_for_a_first_key_then_usage_then_production() {
    use event_schemas::org::{SandboxGranted, SandboxRequested};
    let mut events = crate::testing::founded(ORG, OWNER, true);
    events.push(OrgEvent::SandboxRequested(SandboxRequested {
        user_id: OWNER,
    }));
    events.push(OrgEvent::SandboxGranted(SandboxGranted {
        sandbox_tenant_id: Uuid::from_u128(99),
        granted_by: None,
    }));
    let org: Org = crate::testing::given(events);
    let step = |first_key, usage, webhook| {
        org.next_step_with(LaneProgress {
            first_key,
            usage,
            webhook,
        })
    };
    assert_eq!(step(false, false, false), "issue_first_key");
    assert_eq!(step(true, false, false), "review_usage");
    assert_eq!(step(true, true, false), "connect_webhook");
    assert_eq!(step(true, true, true), "request_production");
}
