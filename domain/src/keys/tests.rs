//! The key aggregate's rules, decided on state built from events.

use super::*;
use crate::testing::{and_then, founded, given, when};
use event_schemas::app::{AccessApproved, AccessRequested, AppCreated, AppEvent, AppStatusChanged};
use event_schemas::org::{
    MemberAdded, OrgEvent, ProductionRequested, SandboxGranted, SandboxPromoted, SandboxRequested,
};

pub(crate) const ORG: Uuid = Uuid::from_u128(1);
pub(crate) const OWNER: Uuid = Uuid::from_u128(10);
pub(crate) const DEV: Uuid = Uuid::from_u128(11);
pub(crate) const AUDITOR: Uuid = Uuid::from_u128(12);
pub(crate) const FINANCE: Uuid = Uuid::from_u128(13);
pub(crate) const APP: Uuid = Uuid::from_u128(30);
const KEY: Uuid = Uuid::from_u128(50);
const NEW_KEY: Uuid = Uuid::from_u128(51);

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid instant")
}

/// An organisation with an owner, a developer, a compliance reviewer and
/// finance; in production when `production`.
pub(crate) fn org(production: bool) -> Org {
    let member = |user_id, role: &str| {
        OrgEvent::MemberAdded(MemberAdded {
            user_id,
            role: role.into(),
            invitation_id: None,
        })
    };
    let mut events = founded(ORG, OWNER, true);
    events.extend([
        member(DEV, "developer"),
        member(AUDITOR, "compliance"),
        member(FINANCE, "finance"),
        OrgEvent::SandboxRequested(SandboxRequested { user_id: OWNER }),
        OrgEvent::SandboxGranted(SandboxGranted {
            sandbox_tenant_id: Uuid::from_u128(99),
            granted_by: None,
        }),
    ]);
    if production {
        events.push(OrgEvent::ProductionRequested(ProductionRequested {
            user_id: OWNER,
        }));
        events.push(OrgEvent::SandboxPromoted(SandboxPromoted {
            by: Uuid::from_u128(7),
        }));
    }
    given(events)
}

/// An app of the organisation with `payments:read` and `payments:write`
/// approved in test mode and `payments:read` in live mode.
pub(crate) fn app() -> App {
    let grant = |n: u128, mode: &str, scopes: &[&str]| {
        [
            AppEvent::AccessRequested(AccessRequested {
                request_id: Uuid::from_u128(n),
                product_id: Uuid::from_u128(70 + n),
                mode: mode.into(),
            }),
            AppEvent::AccessApproved(AccessApproved {
                request_id: Uuid::from_u128(n),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                automatic: true,
            }),
        ]
    };
    let mut events = vec![AppEvent::Created(AppCreated {
        app_id: APP,
        org_id: ORG,
        team_id: None,
        name: "Checkout".into(),
        slug: "checkout".into(),
        description: String::new(),
        origins: vec![],
        callback_urls: vec![],
        attributes: Default::default(),
        sandbox_tenant_id: None,
    })];
    events.extend(grant(60, "test", &["payments:read", "payments:write"]));
    events.extend(grant(61, "live", &["payments:read"]));
    given(events)
}

fn cmd(mode: Mode, kind: KeyKind, scopes: &[&str]) -> IssueKey {
    IssueKey {
        key_id: KEY,
        name: "CI".into(),
        mode,
        kind,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at: None,
        rate_limit: None,
        prefix: "gh_test_sk_abcdef".into(),
        hash: [1; 32],
        imported: false,
    }
}

fn issued(c: &IssueKey, rotated_from: Option<Uuid>) -> KeyEvent {
    KeyEvent::Issued(KeyIssued {
        key_id: c.key_id,
        app_id: APP,
        org_id: ORG,
        name: c.name.clone(),
        mode: c.mode.as_str().into(),
        kind: c.kind.as_str().into(),
        scopes: c.scopes.clone(),
        prefix: c.prefix.clone(),
        hash: format::hash_hex(&c.hash),
        expires_at: c.expires_at,
        rate_limit: c.rate_limit.map(|r| r.limit),
        rate_limit_window_secs: c.rate_limit.map(|r| r.window_secs),
        rotated_from,
        imported: c.imported,
    })
}

fn invalid(pointer: &str) -> impl Fn(KeyError) -> bool + '_ {
    move |e| matches!(e, KeyError::Invalid(Invalid(errs)) if errs.iter().any(|f| f.pointer == pointer))
}

#[test]
fn an_owner_issues_a_test_secret_key() {
    let c = cmd(Mode::Test, KeyKind::Secret, &[]);
    when(issue(&org(false), &app(), OWNER, c.clone(), now())).then([issued(&c, None)]);
}

#[test]
fn developers_issue_test_keys_only_and_others_none() {
    let test = cmd(Mode::Test, KeyKind::Secret, &[]);
    when(issue(&org(true), &app(), DEV, test.clone(), now())).then([issued(&test, None)]);
    let live = cmd(Mode::Live, KeyKind::Secret, &[]);
    when(issue(&org(true), &app(), DEV, live, now()))
        .then_err(OrgError::Forbidden(Permission::ManageLiveCredentials).into());
    for who in [AUDITOR, FINANCE] {
        when(issue(&org(true), &app(), who, test.clone(), now()))
            .then_err(OrgError::Forbidden(Permission::ManageTestCredentials).into());
    }
    when(issue(&org(true), &app(), Uuid::from_u128(77), test, now()))
        .then_err(AppError::NotFound.into());
}

#[test]
fn live_keys_wait_for_production() {
    let live = cmd(Mode::Live, KeyKind::Secret, &[]);
    when(issue(&org(false), &app(), OWNER, live.clone(), now()))
        .then_err(KeyError::NotInProduction);
    when(issue(&org(true), &app(), OWNER, live.clone(), now())).then([issued(&live, None)]);
}

#[test]
fn restricted_scopes_come_from_the_approved_products_of_that_mode() {
    let ok = cmd(Mode::Test, KeyKind::Restricted, &["payments:write"]);
    when(issue(&org(true), &app(), OWNER, ok.clone(), now())).then([issued(&ok, None)]);
    // Granted in test mode only.
    let live = cmd(
        Mode::Live,
        KeyKind::Restricted,
        &["payments:read", "payments:write"],
    );
    let refused = issue(&org(true), &app(), OWNER, live, now()).unwrap_err();
    assert!(invalid("/scopes/1")(refused.clone()), "{refused:?}");
    assert!(!invalid("/scopes/0")(refused));
    for bad in [
        cmd(Mode::Test, KeyKind::Restricted, &[]),
        cmd(Mode::Test, KeyKind::Secret, &["payments:read"]),
    ] {
        let e = issue(&org(true), &app(), OWNER, bad, now()).unwrap_err();
        assert!(invalid("/scopes")(e));
    }
}

#[test]
fn names_and_expiry_are_checked() {
    for name in ["", "a\u{7}b", &"n".repeat(101)] {
        let c = IssueKey {
            name: name.into(),
            ..cmd(Mode::Test, KeyKind::Secret, &[])
        };
        assert!(invalid("/name")(
            issue(&org(true), &app(), OWNER, c, now()).unwrap_err()
        ));
    }
    let past = IssueKey {
        expires_at: Some(now()),
        ..cmd(Mode::Test, KeyKind::Secret, &[])
    };
    assert!(invalid("/expires_at")(
        issue(&org(true), &app(), OWNER, past, now()).unwrap_err()
    ));
}

#[test]
fn a_suspended_app_takes_no_new_key_but_its_keys_can_be_revoked() {
    let mut suspended = app();
    and_then(
        &mut suspended,
        &[AppEvent::Suspended(AppStatusChanged {
            reason: "abuse".into(),
        })],
    );
    let c = cmd(Mode::Test, KeyKind::Secret, &[]);
    when(issue(&org(true), &suspended, OWNER, c.clone(), now()))
        .then_err(AppError::Suspended.into());
    let key: Key = given([issued(&c, None)]);
    when(revoke(&org(true), &suspended, &key, OWNER, None))
        .then([KeyEvent::Revoked(KeyRevoked { reason: None })]);
}

#[test]
fn a_rotation_keeps_the_old_keys_settings_and_overlaps() {
    let c = IssueKey {
        expires_at: Some(now() + Duration::days(90)),
        rate_limit: Some(RateLimit {
            limit: 5,
            window_secs: 1,
        }),
        ..cmd(Mode::Test, KeyKind::Restricted, &["payments:read"])
    };
    let key: Key = given([issued(&c, None)]);
    let stops_at = now() + default_grace();
    let r = RotateKey {
        new_key_id: NEW_KEY,
        prefix: "gh_test_rk_zzzzzz".into(),
        hash: [2; 32],
        stops_at,
    };
    let rotation = rotate(&org(true), &app(), &key, DEV, r.clone(), now()).expect("rotates");
    let replacement = IssueKey {
        key_id: NEW_KEY,
        prefix: r.prefix.clone(),
        hash: r.hash,
        ..c.clone()
    };
    assert_eq!(
        rotation,
        Rotation {
            old: vec![KeyEvent::Rotated(KeyRotated {
                replaced_by: NEW_KEY,
                stops_at
            })],
            new: vec![issued(&replacement, Some(KEY))],
        }
    );
    let mut old = key.clone();
    and_then(&mut old, &rotation.old);
    assert_eq!(old.status(now()), KeyStatus::Expiring);
    assert_eq!(
        old.status(stops_at - Duration::seconds(1)),
        KeyStatus::Expiring
    );
    assert_eq!(old.status(stops_at), KeyStatus::Expired);
    // Rotated once only; the replacement is what rotates next.
    let again = RotateKey {
        new_key_id: Uuid::from_u128(52),
        ..r.clone()
    };
    when(rotate(&org(true), &app(), &old, OWNER, again, now()).map(|r| r.old))
        .then_err(KeyError::AlreadyRotated);
}

#[test]
fn rotation_overlaps_are_bounded_and_developers_rotate_test_keys_only() {
    let key: Key = given([issued(&cmd(Mode::Live, KeyKind::Secret, &[]), None)]);
    let r = |stops_at| RotateKey {
        new_key_id: NEW_KEY,
        prefix: "p".into(),
        hash: [2; 32],
        stops_at,
    };
    let rotate_at = |who, at| rotate(&org(true), &app(), &key, who, r(at), now()).map(|r| r.old);
    when(rotate_at(DEV, now()))
        .then_err(OrgError::Forbidden(Permission::ManageLiveCredentials).into());
    assert!(invalid("/at")(
        rotate_at(OWNER, now() - Duration::seconds(1)).unwrap_err()
    ));
    assert!(invalid("/grace_period_secs")(
        rotate_at(OWNER, now() + max_grace() + Duration::seconds(1)).unwrap_err()
    ));
    // No overlap: the old key stops at once.
    when(rotate_at(OWNER, now())).then([KeyEvent::Rotated(KeyRotated {
        replaced_by: NEW_KEY,
        stops_at: now(),
    })]);
}

#[test]
fn revocation_is_irreversible_and_needs_the_modes_permission() {
    let key: Key = given([issued(&cmd(Mode::Test, KeyKind::Secret, &[]), None)]);
    when(revoke(&org(true), &app(), &key, AUDITOR, None))
        .then_err(OrgError::Forbidden(Permission::ManageTestCredentials).into());
    let events = when(revoke(
        &org(true),
        &app(),
        &key,
        DEV,
        Some("  leaked ".into()),
    ))
    .then([KeyEvent::Revoked(KeyRevoked {
        reason: Some("leaked".into()),
    })]);
    let mut revoked = key.clone();
    and_then(&mut revoked, &events);
    assert_eq!(revoked.status(now()), KeyStatus::Revoked);
    when(revoke(&org(true), &app(), &revoked, OWNER, None)).then_err(KeyError::Revoked);
    let r = RotateKey {
        new_key_id: NEW_KEY,
        prefix: "p".into(),
        hash: [2; 32],
        stops_at: now(),
    };
    when(rotate(&org(true), &app(), &revoked, OWNER, r, now()).map(|r| r.old))
        .then_err(KeyError::Revoked);
}

#[test]
fn an_expired_key_cannot_be_rotated_and_expires_to_the_instant() {
    let at = now() + Duration::seconds(10);
    let c = IssueKey {
        expires_at: Some(at),
        ..cmd(Mode::Test, KeyKind::Secret, &[])
    };
    let key: Key = given([issued(&c, None)]);
    assert_eq!(
        key.status(at - Duration::milliseconds(1)),
        KeyStatus::Active
    );
    assert_eq!(key.status(at), KeyStatus::Expired);
    let r = RotateKey {
        new_key_id: NEW_KEY,
        prefix: "p".into(),
        hash: [2; 32],
        stops_at: at,
    };
    when(rotate(&org(true), &app(), &key, OWNER, r, at).map(|r| r.old)).then_err(KeyError::Expired);
}

#[test]
fn a_key_of_another_app_or_a_deleted_app_is_not_found() {
    let key: Key = given([issued(&cmd(Mode::Test, KeyKind::Secret, &[]), None)]);
    let mut other = app();
    other.id = Uuid::from_u128(31);
    when(revoke(&org(true), &other, &key, OWNER, None)).then_err(KeyError::NotFound);
    let mut deleted = app();
    and_then(
        &mut deleted,
        &[AppEvent::Deleted(event_schemas::app::AppDeleted {
            reason: None,
        })],
    );
    when(revoke(&org(true), &deleted, &key, OWNER, None)).then_err(AppError::NotFound.into());
}

#[test]
fn an_import_keeps_the_platforms_hashes_and_obeys_the_issue_rules() {
    let imported = |n: u128, prefix: &str, hash: u8| IssueKey {
        key_id: Uuid::from_u128(n),
        prefix: prefix.into(),
        hash: [hash; 32],
        ..cmd(Mode::Test, KeyKind::Secret, &[])
    };
    let keys = vec![
        imported(80, "sk_test_4eC3", 1),
        imported(81, "sk_test_9xQ1", 2),
    ];
    let decided = import(&org(false), &app(), OWNER, keys.clone(), now()).expect("imports");
    let expected: Vec<Vec<KeyEvent>> = keys
        .iter()
        .map(|k| {
            vec![issued(
                &IssueKey {
                    imported: true,
                    ..k.clone()
                },
                None,
            )]
        })
        .collect();
    assert_eq!(decided, expected);
    let twice = vec![
        imported(80, "sk_test_4eC3", 1),
        imported(81, "sk_test_4eC3", 1),
    ];
    assert!(invalid("/keys/1/hash")(
        import(&org(false), &app(), OWNER, twice, now()).unwrap_err()
    ));
    let short = vec![imported(80, "sk", 1)];
    assert!(invalid("/keys/0/prefix")(
        import(&org(false), &app(), OWNER, short, now()).unwrap_err()
    ));
    // Families are bounded: nine formats in one import are refused.
    let many: Vec<IssueKey> = (0..9u8)
        .map(|n| imported(90 + u128::from(n), &format!("f{n}_test_x"), 10 + n))
        .collect();
    assert!(invalid("/keys")(
        import(&org(false), &app(), OWNER, many.clone(), now()).unwrap_err()
    ));
    assert!(import(&org(false), &app(), OWNER, many[..8].to_vec(), now()).is_ok());
    let live = vec![IssueKey {
        mode: Mode::Live,
        ..imported(80, "sk_live_4eC3", 1)
    }];
    when(import(&org(false), &app(), OWNER, live.clone(), now()).map(|v| v.concat()))
        .then_err(KeyError::NotInProduction);
    when(import(&org(true), &app(), DEV, live, now()).map(|v| v.concat()))
        .then_err(OrgError::Forbidden(Permission::ManageLiveCredentials).into());
    assert!(invalid("/keys")(
        import(&org(true), &app(), OWNER, vec![], now()).unwrap_err()
    ));
}

#[test]
fn a_leaked_test_key_is_revoked_and_a_live_one_flagged_unless_configured() {
    let report = || LeakReport {
        url: Some("https://github.com/x".into()),
        source: Some("content".into()),
    };
    let leaked = |revoked| {
        KeyEvent::LeakReported(KeyLeakReported {
            app_id: APP,
            url: Some("https://github.com/x".into()),
            source: Some("content".into()),
            revoked,
        })
    };
    let revoked = KeyEvent::Revoked(KeyRevoked {
        reason: Some("found in public by secret scanning".into()),
    });
    let test: Key = given([issued(&cmd(Mode::Test, KeyKind::Secret, &[]), None)]);
    when(report_leak(&test, report(), false)).then([leaked(true), revoked.clone()]);
    let live: Key = given([issued(&cmd(Mode::Live, KeyKind::Secret, &[]), None)]);
    when(report_leak(&live, report(), false)).then([leaked(false)]);
    when(report_leak(&live, report(), true)).then([leaked(true), revoked.clone()]);
    let mut gone = test.clone();
    and_then(&mut gone, &[revoked]);
    when(report_leak(&gone, report(), true)).then([leaked(false)]);
    when(report_leak(&Key::default(), report(), true)).then_err(KeyError::NotFound);
}

mod oauth_clients {
    //! OAuth clients follow the key rules.
    use super::*;
    use crate::oauth::{self, CreateOAuthClient, OAuthClient, SigningKeys};
    use event_schemas::oauth::*;

    const CLIENT: Uuid = Uuid::from_u128(90);

    fn create(mode: Mode, scopes: &[&str]) -> CreateOAuthClient {
        CreateOAuthClient {
            client_id: CLIENT,
            name: "backend".into(),
            mode,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            secret_hash: "aa".repeat(32),
        }
    }

    fn created(c: &CreateOAuthClient) -> OAuthClientEvent {
        OAuthClientEvent::Created(OAuthClientCreated {
            client_id: c.client_id,
            app_id: APP,
            org_id: ORG,
            name: c.name.clone(),
            mode: c.mode.as_str().into(),
            scopes: c.scopes.clone(),
            secret_hash: c.secret_hash.clone(),
        })
    }

    fn client(c: &CreateOAuthClient) -> OAuthClient {
        let mut client = OAuthClient::default();
        client.apply(&created(c)).expect("applies");
        client
    }

    #[test]
    fn a_client_is_created_by_the_rules_of_keys() {
        let c = create(Mode::Test, &["payments:read"]);
        when(oauth::create(&org(false), &app(), DEV, c.clone())).then([created(&c)]);
        let live = create(Mode::Live, &[]);
        when(oauth::create(&org(false), &app(), OWNER, live.clone()))
            .then_err(KeyError::NotInProduction);
        when(oauth::create(&org(true), &app(), DEV, live))
            .then_err(OrgError::Forbidden(Permission::ManageLiveCredentials).into());
        let outside =
            oauth::create(&org(true), &app(), OWNER, create(Mode::Test, &["admin"])).unwrap_err();
        assert!(invalid("/scopes/0")(outside));
    }

    #[test]
    fn a_rotated_secret_overlaps_and_a_revoked_client_accepts_none() {
        let c = create(Mode::Test, &[]);
        let mut state = client(&c);
        let stops = now() + Duration::hours(1);
        let events = when(oauth::rotate_secret(
            &org(true),
            &app(),
            &state,
            OWNER,
            "bb".repeat(32),
            stops,
            now(),
        ))
        .then([OAuthClientEvent::SecretRotated(OAuthSecretRotated {
            secret_hash: "bb".repeat(32),
            previous_stops_at: stops,
        })]);
        for e in &events {
            state.apply(e).expect("applies");
        }
        assert!(
            state.accepts(&"aa".repeat(32), now()),
            "the old secret overlaps"
        );
        assert!(state.accepts(&"bb".repeat(32), now()));
        assert!(
            !state.accepts(&"aa".repeat(32), stops),
            "until the overlap ends"
        );
        let events = when(oauth::revoke(&org(true), &app(), &state, OWNER)).then([
            OAuthClientEvent::Revoked(OAuthClientRevoked { reason: None }),
        ]);
        state.apply(&events[0]).expect("applies");
        assert!(!state.accepts(&"bb".repeat(32), now()));
        when(oauth::revoke(&org(true), &app(), &state, OWNER)).then_err(KeyError::Revoked);
    }

    #[test]
    fn a_new_signing_key_retires_the_old_one_after_the_longest_token() {
        let mut keys = SigningKeys::default();
        for e in oauth::add_signing_key(&keys, "k1".into(), "x1".into(), now()) {
            keys.apply(&e);
        }
        assert_eq!(keys.published(now()).count(), 1);
        let later = now() + Duration::days(1);
        for e in oauth::add_signing_key(&keys, "k2".into(), "x2".into(), later) {
            keys.apply(&e);
        }
        let kids = |at| keys.published(at).map(|k| k.0.clone()).collect::<Vec<_>>();
        assert_eq!(kids(later), ["k1", "k2"], "both verify during the overlap");
        assert_eq!(kids(later + oauth::max_token_ttl()), ["k2"]);
    }
}

#[test]
fn a_mass_rotation_sets_a_deadline_the_owners_rotation_keeps() {
    let job = Uuid::from_u128(95);
    let deadline = now() + Duration::hours(2);
    let key: Key = given([issued(&cmd(Mode::Test, KeyKind::Secret, &[]), None)]);
    let events = when::<_, KeyError>(Ok(require_rotation(&key, job, deadline, now()))).then([
        KeyEvent::RotationRequired(KeyRotationRequired {
            job_id: job,
            app_id: APP,
            stops_at: deadline,
        }),
    ]);
    let mut required = key.clone();
    and_then(&mut required, &events);
    assert_eq!(required.status(now()), KeyStatus::Expiring);
    assert_eq!(required.status(deadline), KeyStatus::Expired);
    assert!(
        require_rotation(&required, job, deadline, now()).is_empty(),
        "once per key"
    );
    // The owners' own rotation may not outlast the deadline.
    let r = RotateKey {
        new_key_id: NEW_KEY,
        prefix: "p".into(),
        hash: [2; 32],
        stops_at: now() + Duration::days(1),
    };
    let rotation = rotate(&org(true), &app(), &required, OWNER, r, now()).expect("rotates");
    assert_eq!(
        rotation.old,
        [KeyEvent::Rotated(KeyRotated {
            replaced_by: NEW_KEY,
            stops_at: deadline
        })]
    );
}
