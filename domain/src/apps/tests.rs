//! The app aggregate's rules, decided on state built from events.

use super::*;
use event_schemas::org::OrgEvent;
use serde_json::json;

const ORG: Uuid = Uuid::from_u128(1);
const OWNER: Uuid = Uuid::from_u128(10);
const DEV: Uuid = Uuid::from_u128(11);
const AUDITOR: Uuid = Uuid::from_u128(12);
const TEAM_ADMIN: Uuid = Uuid::from_u128(13);
const STRANGER: Uuid = Uuid::from_u128(14);
const TEAM: Uuid = Uuid::from_u128(20);
const APP: Uuid = Uuid::from_u128(30);
const V1: Uuid = Uuid::from_u128(40);
const REQ: Uuid = Uuid::from_u128(60);
const PRODUCT: Uuid = Uuid::from_u128(70);

/// An organisation of `owner`'s, built from its events: terms accepted
/// (unless `terms` is false), sandbox granted, the members and teams given.
fn org_from(id: Uuid, owner: Uuid, terms: bool, extra: Vec<OrgEvent>) -> Org {
    use event_schemas::org::{SandboxGranted, SandboxRequested};
    let mut events = crate::testing::founded(id, owner, terms);
    events.push(OrgEvent::SandboxRequested(SandboxRequested {
        user_id: owner,
    }));
    events.push(OrgEvent::SandboxGranted(SandboxGranted {
        sandbox_tenant_id: Uuid::from_u128(99),
        granted_by: None,
    }));
    events.extend(extra);
    crate::testing::given(events)
}

fn acme_events() -> Vec<OrgEvent> {
    use event_schemas::org::{MemberAdded, TeamCreated, TeamMemberAdded};
    let member = |user_id, role: &str| {
        OrgEvent::MemberAdded(MemberAdded {
            user_id,
            role: role.into(),
            invitation_id: None,
        })
    };
    let in_team = |user_id, team_role: &str| {
        OrgEvent::TeamMemberAdded(TeamMemberAdded {
            team_id: TEAM,
            user_id,
            team_role: team_role.into(),
        })
    };
    vec![
        member(DEV, "developer"),
        member(AUDITOR, "compliance"),
        member(TEAM_ADMIN, "developer"),
        OrgEvent::TeamCreated(TeamCreated {
            team_id: TEAM,
            name: "Mobile".into(),
        }),
        in_team(TEAM_ADMIN, "admin"),
        in_team(DEV, "member"),
    ]
}

fn acme() -> Org {
    org_from(ORG, OWNER, true, acme_events())
}

/// Acme before anyone accepted the developer terms.
fn acme_without_terms() -> Org {
    org_from(ORG, OWNER, false, acme_events())
}

fn details(slug: &str) -> Details {
    Details {
        name: Some("Payroll Sync".into()),
        slug: Some(slug.into()),
        origins: Some(vec!["https://app.example.com".into()]),
        callback_urls: Some(vec!["https://app.example.com/cb".into()]),
        ..Details::default()
    }
}

/// Decides with the app as it is, asserts the exact events decided, then
/// applies them, as the log would.
macro_rules! then {
    ($app:ident, $decision:expr, $expected:expr $(,)?) => {{
        let events = crate::testing::when($decision).then($expected);
        crate::testing::and_then(&mut $app, &events);
    }};
}

fn an_app(team: Option<Uuid>) -> App {
    App::from_events(
        &create(
            &acme(),
            OWNER,
            CreateApp {
                app_id: APP,
                team_id: team,
                details: details("payroll"),
            },
        )
        .unwrap(),
    )
    .unwrap()
}

fn pointers(e: AppError) -> Vec<String> {
    match e {
        AppError::Invalid(Invalid(fields)) => fields.into_iter().map(|f| f.pointer).collect(),
        other => panic!("expected invalid fields, got {other:?}"),
    }
}

fn good_manifest() -> Value {
    json!({"name": "Payroll Sync", "scopes": ["payroll.read"]})
}

fn product(approval: ApprovalMode) -> Product {
    Product {
        id: PRODUCT,
        exists: true,
        name: "Payroll API".into(),
        scopes: vec!["payroll.read".into()],
        approval,
    }
}

#[test]
fn an_app_is_created_by_managers_or_the_admin_of_its_team() {
    let o = acme();
    assert_eq!(
        create(
            &o,
            DEV,
            CreateApp {
                app_id: APP,
                team_id: None,
                details: details("x-app")
            }
        ),
        Err(AppError::Org(OrgError::Forbidden(Permission::ManageApps)))
    );
    assert_eq!(
        create(
            &o,
            TEAM_ADMIN,
            CreateApp {
                app_id: APP,
                team_id: None,
                details: details("x-app")
            }
        ),
        Err(AppError::Org(OrgError::Forbidden(Permission::ManageApps))),
        "a team admin creates apps of their team only"
    );
    let events = create(
        &o,
        TEAM_ADMIN,
        CreateApp {
            app_id: APP,
            team_id: Some(TEAM),
            details: details("x-app"),
        },
    )
    .unwrap();
    let app = App::from_events(&events).unwrap();
    assert_eq!(app.team_id, Some(TEAM));
    assert_eq!(
        app.sandbox_tenant_id,
        Some(Uuid::from_u128(99)),
        "linked to the sandbox"
    );
    assert_eq!(app.status(), Status::Active);
    assert_eq!(
        create(
            &o,
            STRANGER,
            CreateApp {
                app_id: APP,
                team_id: None,
                details: details("x-app")
            }
        ),
        Err(AppError::Org(OrgError::NotFound))
    );
}

#[test]
fn creating_an_app_needs_the_developer_terms() {
    let o = acme_without_terms();
    assert_eq!(
        create(
            &o,
            OWNER,
            CreateApp {
                app_id: APP,
                team_id: None,
                details: details("x-app")
            }
        ),
        Err(AppError::Org(OrgError::TermsNotAccepted))
    );
}

#[test]
fn urls_and_origins_are_checked_field_by_field() {
    let o = acme();
    let bad = Details {
        name: Some("  ".into()),
        slug: Some("Not A Slug".into()),
        origins: Some(vec![
            "https://ok.example.com".into(),
            "https://example.com/path".into(),
            "ftp://example.com".into(),
        ]),
        callback_urls: Some(vec![
            "http://example.com/cb".into(),
            "https://user:pw@example.com/cb".into(),
            "https://example.com/cb#frag".into(),
            "not a url".into(),
        ]),
        ..Details::default()
    };
    let got = pointers(
        create(
            &o,
            OWNER,
            CreateApp {
                app_id: APP,
                team_id: None,
                details: bad,
            },
        )
        .unwrap_err(),
    );
    assert_eq!(
        got,
        vec![
            "/name",
            "/slug",
            "/origins/1",
            "/origins/2",
            "/callback_urls/0",
            "/callback_urls/1",
            "/callback_urls/2",
            "/callback_urls/3"
        ]
    );
    let missing = pointers(
        create(
            &o,
            OWNER,
            CreateApp {
                app_id: APP,
                team_id: None,
                details: Details::default(),
            },
        )
        .unwrap_err(),
    );
    assert_eq!(missing, vec!["/name", "/slug"]);
}

#[test]
fn plain_http_is_for_localhost_in_test_mode_only() {
    let local = Details {
        callback_urls: Some(vec!["http://localhost:3000/cb".into()]),
        origins: Some(vec!["http://127.0.0.1:3000".into()]),
        ..details("local-app")
    };
    assert!(create(
        &acme(),
        OWNER,
        CreateApp {
            app_id: APP,
            team_id: None,
            details: local.clone()
        }
    )
    .is_ok());
    let mut live = acme();
    live.production = Some(crate::orgs::ProductionReview {
        steps: std::array::from_fn(|_| crate::orgs::StepState::Completed),
        granted: true,
    });
    assert_eq!(
        pointers(
            create(
                &live,
                OWNER,
                CreateApp {
                    app_id: APP,
                    team_id: None,
                    details: local
                }
            )
            .unwrap_err()
        ),
        vec!["/origins/0", "/callback_urls/0"]
    );
}

#[test]
fn members_view_managers_change_and_nothing_changes_without_a_difference() {
    let o = acme();
    let mut app = an_app(None);
    assert_eq!(app.access_of(&o, AUDITOR), Ok(AppAccess::View));
    assert_eq!(app.access_of(&o, STRANGER), Err(AppError::NotFound));
    assert_eq!(
        update(
            &o,
            &app,
            AUDITOR,
            Details {
                description: Some("x".into()),
                ..Details::default()
            }
        ),
        Err(AppError::ViewOnly)
    );
    assert_eq!(update(&o, &app, OWNER, details("payroll")), Ok(vec![]));
    let mut attributes = BTreeMap::new();
    attributes.insert("tier".to_owned(), Some("gold".to_owned()));
    then!(
        app,
        update(
            &o,
            &app,
            OWNER,
            Details {
                attributes: attributes.clone(),
                ..Details::default()
            }
        ),
        [AppEvent::Updated(AppUpdated {
            attributes: attributes.clone(),
            ..AppUpdated::default()
        })],
    );
    assert_eq!(app.attributes["tier"], "gold");
    attributes.insert("tier".to_owned(), None);
    then!(
        app,
        update(
            &o,
            &app,
            OWNER,
            Details {
                attributes: attributes.clone(),
                ..Details::default()
            }
        ),
        [AppEvent::Updated(AppUpdated {
            attributes,
            ..AppUpdated::default()
        })],
    );
    assert!(app.attributes.is_empty(), "null removes an attribute");
}

#[test]
fn an_app_or_team_admin_role_never_gives_more_than_the_org_role() {
    let o = acme();
    let mut app = an_app(Some(TEAM));
    // A developer who is the owning team's admin still only views the app.
    assert_eq!(app.access_of(&o, TEAM_ADMIN), Ok(AppAccess::View));
    assert_eq!(app.access_of(&o, DEV), Ok(AppAccess::View));
    assert_eq!(app.access_of(&o, OWNER), Ok(AppAccess::Manage));
    for who in [DEV, AUDITOR] {
        then!(
            app,
            set_member(&o, &app, OWNER, who, AppRole::Admin),
            [AppEvent::MemberSet(AppMemberSet {
                user_id: who,
                role: "admin".into(),
            })],
        );
        assert_eq!(
            app.access_of(&o, who),
            Ok(AppAccess::View),
            "an app admin role lifts nobody above the permission table"
        );
    }
}

#[test]
fn app_members_come_from_the_organisation() {
    let o = acme();
    let mut app = an_app(Some(TEAM));
    then!(
        app,
        set_member(&o, &app, OWNER, DEV, AppRole::Admin),
        [AppEvent::MemberSet(AppMemberSet {
            user_id: DEV,
            role: "admin".into(),
        })],
    );
    assert_eq!(
        set_member(&o, &app, OWNER, STRANGER, AppRole::Admin),
        Err(AppError::Org(OrgError::NoSuchMember)),
        "app members come from the organisation"
    );
    then!(
        app,
        remove_member(&o, &app, OWNER, DEV),
        [AppEvent::MemberRemoved(AppMemberRemoved { user_id: DEV })],
    );
    assert!(!app.members.contains_key(&DEV));
}

#[test]
fn a_deleted_app_is_gone_and_a_suspended_one_frozen_until_reinstated() {
    let o = acme();
    let mut app = an_app(None);
    then!(
        app,
        suspend(&app, "abuse report"),
        [AppEvent::Suspended(AppStatusChanged {
            reason: "abuse report".into(),
        })],
    );
    assert_eq!(app.status(), Status::Suspended);
    assert_eq!(suspend(&app, "again"), Err(AppError::Suspended));
    assert_eq!(
        create_version(
            &o,
            &app,
            OWNER,
            &CreateVersion {
                version_id: V1,
                label: "1.0.0".into(),
                manifest: good_manifest()
            }
        ),
        Err(AppError::Suspended)
    );
    assert!(matches!(reinstate(&app, " "), Err(AppError::Invalid(_))));
    then!(
        app,
        reinstate(&app, "resolved"),
        [AppEvent::Reinstated(AppStatusChanged {
            reason: "resolved".into(),
        })],
    );
    assert_eq!(app.status(), Status::Active);
    assert_eq!(reinstate(&app, "again"), Err(AppError::NotSuspended));
    then!(
        app,
        delete(&o, &app, OWNER, None),
        [AppEvent::Deleted(AppDeleted { reason: None })],
    );
    assert_eq!(app.status(), Status::Deleted);
    assert_eq!(app.access_of(&o, OWNER), Err(AppError::NotFound));
    assert_eq!(suspend(&app, "late"), Err(AppError::Deleted));
}

#[test]
fn broader_distribution_waits_for_staff_and_private_is_immediate() {
    let o = acme();
    let mut app = an_app(None);
    then!(
        app,
        set_visibility(&o, &app, OWNER, REQ, Visibility::Public),
        [AppEvent::DistributionRequested(DistributionRequested {
            request_id: REQ,
            visibility: "public".into(),
        })],
    );
    assert_eq!(
        app.visibility,
        Visibility::Private,
        "not before staff approve"
    );
    assert_eq!(
        set_visibility(&o, &app, OWNER, Uuid::from_u128(61), Visibility::Unlisted),
        Err(AppError::DistributionPending)
    );
    assert!(
        matches!(
            decide_distribution(
                &app,
                &DecideRequest {
                    request_id: REQ,
                    approve: false,
                    reason: None
                }
            ),
            Err(AppError::Invalid(_))
        ),
        "a rejection needs a reason"
    );
    then!(
        app,
        decide_distribution(
            &app,
            &DecideRequest {
                request_id: REQ,
                approve: true,
                reason: None
            }
        ),
        [
            AppEvent::DistributionDecided(DistributionDecided {
                request_id: REQ,
                approved: true,
                reason: None,
            }),
            AppEvent::VisibilityChanged(VisibilityChanged {
                visibility: "public".into(),
            }),
        ],
    );
    assert_eq!(app.visibility, Visibility::Public);
    assert_eq!(
        decide_distribution(
            &app,
            &DecideRequest {
                request_id: REQ,
                approve: true,
                reason: None
            }
        ),
        Err(AppError::NoDistributionRequest),
        "approve twice refused"
    );
    then!(
        app,
        set_visibility(&o, &app, OWNER, REQ, Visibility::Private),
        [AppEvent::VisibilityChanged(VisibilityChanged {
            visibility: "private".into(),
        })],
    );
    assert_eq!(app.visibility, Visibility::Private);
}

#[test]
fn only_a_valid_draft_is_published_and_published_versions_never_change() {
    let o = acme();
    let mut app = an_app(None);
    then!(
        app,
        create_version(
            &o,
            &app,
            OWNER,
            &CreateVersion {
                version_id: V1,
                label: "1.0.0".into(),
                manifest: json!({"scopes": ["Bad"]})
            }
        ),
        [AppEvent::VersionCreated(VersionCreated {
            version_id: V1,
            label: "1.0.0".into(),
            manifest: json!({"scopes": ["Bad"]}),
        })],
    );
    let got = pointers(publish(&o, &app, OWNER, V1).unwrap_err());
    assert!(got.contains(&"/manifest/scopes/0".to_owned()), "{got:?}");
    assert_eq!(
        create_version(
            &o,
            &app,
            OWNER,
            &CreateVersion {
                version_id: Uuid::from_u128(41),
                label: "1.0.0".into(),
                manifest: json!({})
            }
        ),
        Err(AppError::VersionLabelTaken)
    );
    then!(
        app,
        update_manifest(&o, &app, OWNER, V1, good_manifest()),
        [AppEvent::ManifestUpdated(ManifestUpdated {
            version_id: V1,
            manifest: good_manifest(),
        })],
    );
    let no_terms = acme_without_terms();
    assert_eq!(
        publish(&no_terms, &app, OWNER, V1),
        Err(AppError::Org(OrgError::TermsNotAccepted))
    );
    assert_eq!(publish(&o, &app, DEV, V1), Err(AppError::ViewOnly));
    then!(
        app,
        publish(&o, &app, OWNER, V1),
        [AppEvent::VersionPublished(VersionPublished {
            version_id: V1
        })],
    );
    assert_eq!(
        update_manifest(&o, &app, OWNER, V1, json!({"name": "x", "scopes": []})),
        Err(AppError::VersionPublished)
    );
    assert_eq!(
        publish(&o, &app, OWNER, V1),
        Err(AppError::VersionPublished)
    );
    assert_eq!(
        publish(&o, &app, OWNER, Uuid::from_u128(42)),
        Err(AppError::NoSuchVersion)
    );
}

#[test]
fn product_access_follows_the_approval_mode() {
    let o = acme();
    let mut app = an_app(None);
    let auto = product(ApprovalMode::Auto);
    then!(
        app,
        request_access(
            &o,
            &app,
            OWNER,
            &auto,
            RequestProduct {
                request_id: REQ,
                mode: Mode::Test
            }
        ),
        [
            AppEvent::AccessRequested(AccessRequested {
                request_id: REQ,
                product_id: PRODUCT,
                mode: "test".into(),
            }),
            AppEvent::AccessApproved(AccessApproved {
                request_id: REQ,
                scopes: vec!["payroll.read".into()],
                automatic: true,
            }),
        ],
    );
    assert_eq!(
        app.approved_scopes(Mode::Test).len(),
        1,
        "auto: approved at once"
    );
    assert_eq!(
        request_access(
            &o,
            &app,
            OWNER,
            &auto,
            RequestProduct {
                request_id: Uuid::from_u128(61),
                mode: Mode::Test
            }
        ),
        Err(AppError::AccessAlreadyRequested)
    );

    let mut app = an_app(None);
    let conditional = product(ApprovalMode::Conditional {
        test: Decision::Auto,
        live: Decision::Manual,
    });
    then!(
        app,
        request_access(
            &o,
            &app,
            OWNER,
            &conditional,
            RequestProduct {
                request_id: REQ,
                mode: Mode::Live
            }
        ),
        [AppEvent::AccessRequested(AccessRequested {
            request_id: REQ,
            product_id: PRODUCT,
            mode: "live".into(),
        })],
    );
    assert_eq!(app.status(), Status::Pending, "waiting, nothing approved");
    assert!(
        app.approved_scopes(Mode::Live).is_empty(),
        "no scopes until approved"
    );
    assert!(matches!(
        decide_access(
            &app,
            &conditional,
            &DecideRequest {
                request_id: REQ,
                approve: false,
                reason: Some("".into())
            }
        ),
        Err(AppError::Invalid(_))
    ));
    then!(
        app,
        decide_access(
            &app,
            &conditional,
            &DecideRequest {
                request_id: REQ,
                approve: true,
                reason: None
            }
        ),
        [AppEvent::AccessApproved(AccessApproved {
            request_id: REQ,
            scopes: vec!["payroll.read".into()],
            automatic: false,
        })],
    );
    assert_eq!(app.status(), Status::Active);
    assert_eq!(
        app.approved_scopes(Mode::Live)
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["payroll.read"]
    );
    assert!(app.approved_scopes(Mode::Test).is_empty(), "per mode");
    assert_eq!(
        decide_access(
            &app,
            &conditional,
            &DecideRequest {
                request_id: REQ,
                approve: true,
                reason: None
            }
        ),
        Err(AppError::AccessDecided),
        "approve twice refused"
    );
    let r2 = Uuid::from_u128(62);
    then!(
        app,
        request_access(
            &o,
            &app,
            OWNER,
            &conditional,
            RequestProduct {
                request_id: r2,
                mode: Mode::Test
            }
        ),
        [
            AppEvent::AccessRequested(AccessRequested {
                request_id: r2,
                product_id: PRODUCT,
                mode: "test".into(),
            }),
            AppEvent::AccessApproved(AccessApproved {
                request_id: r2,
                scopes: vec!["payroll.read".into()],
                automatic: true,
            }),
        ],
    );
    assert_eq!(
        app.access[&r2].state,
        AccessState::Approved(vec!["payroll.read".into()])
    );
    assert_eq!(
        request_access(
            &o,
            &app,
            DEV,
            &auto,
            RequestProduct {
                request_id: Uuid::from_u128(63),
                mode: Mode::Test
            }
        ),
        Err(AppError::ViewOnly)
    );
}
