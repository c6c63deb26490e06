//! The endpoint's rules, decided on state built from events.

use super::*;
use crate::keys::tests::{app, now, org, APP, AUDITOR, DEV, FINANCE, ORG, OWNER};
use crate::testing::{and_then, given, when};

const ENDPOINT: Uuid = Uuid::from_u128(80);

fn secret(n: u8) -> SealedSecret {
    SealedSecret {
        sealed: format!("sealed-{n}"),
        kek_id: "kek".into(),
        public_key: None,
    }
}

fn settings() -> EndpointSettings {
    EndpointSettings {
        url: "https://hooks.example.com/in".into(),
        event_types: vec!["app.*".into(), "api_key.revoked".into()],
        description: "billing".into(),
        rate_limit: None,
    }
}

fn cmd(mode: Mode) -> CreateEndpoint {
    CreateEndpoint {
        endpoint_id: ENDPOINT,
        mode,
        scheme: Scheme::Hmac,
        settings: settings(),
        secret: secret(1),
    }
}

fn created(mode: Mode) -> WebhookEvent {
    WebhookEvent::Created(EndpointCreated {
        endpoint_id: ENDPOINT,
        app_id: APP,
        org_id: ORG,
        mode: mode.as_str().into(),
        signature: "v1".into(),
        settings: settings(),
        secret: secret(1),
    })
}

fn endpoint() -> Endpoint {
    given([created(Mode::Test)])
}

fn invalid(e: WebhookError, pointer: &str) -> bool {
    matches!(e, WebhookError::Invalid(Invalid(errs)) if errs.iter().any(|f| f.pointer == pointer))
}

#[test]
fn owners_managers_and_developers_create_endpoints_others_do_not() {
    when(create(&org(false), &app(), OWNER, cmd(Mode::Test))).then([created(Mode::Test)]);
    when(create(&org(false), &app(), DEV, cmd(Mode::Test))).then([created(Mode::Test)]);
    for who in [AUDITOR, FINANCE] {
        when(create(&org(false), &app(), who, cmd(Mode::Test)))
            .then_err(OrgError::Forbidden(Permission::ManageWebhooks).into());
    }
    when(create(
        &org(false),
        &app(),
        Uuid::from_u128(77),
        cmd(Mode::Test),
    ))
    .then_err(AppError::NotFound.into());
}

#[test]
fn live_endpoints_wait_for_production() {
    when(create(&org(false), &app(), OWNER, cmd(Mode::Live)))
        .then_err(WebhookError::NotInProduction);
    when(create(&org(true), &app(), OWNER, cmd(Mode::Live))).then([created(Mode::Live)]);
}

#[test]
fn settings_are_checked_field_by_field() {
    let with = |f: fn(&mut EndpointSettings)| {
        let mut c = cmd(Mode::Test);
        f(&mut c.settings);
        create(&org(false), &app(), OWNER, c).unwrap_err()
    };
    for url in [
        "ftp://x.example.com",
        "https://user:pw@x.example.com",
        "not a url",
        "/relative",
    ] {
        let mut c = cmd(Mode::Test);
        c.settings.url = url.into();
        let e = create(&org(false), &app(), OWNER, c).unwrap_err();
        assert!(invalid(e, "/url"), "{url}");
    }
    assert!(invalid(
        with(|s| s.event_types = vec!["app.*".into(), "App Created".into()]),
        "/event_types/1"
    ));
    assert!(invalid(
        with(|s| s.event_types = vec!["app.*".into(), "app.*".into()]),
        "/event_types/1"
    ));
    assert!(invalid(with(|s| s.rate_limit = Some(0)), "/rate_limit"));
    assert!(invalid(
        with(|s| s.description = "a\u{7}".into()),
        "/description"
    ));
}

#[test]
fn filters_take_exact_types_families_and_everything() {
    assert!(filter_matches("app.*", "app.created"));
    assert!(!filter_matches("app.*", "app_version.published"));
    assert!(filter_matches("api_key.revoked", "api_key.revoked"));
    assert!(!filter_matches("api_key.revoked", "api_key.rotated"));
    assert!(filter_matches("*", "invoice.paid"));
    assert!(subscribed(&[], "anything.at_all"));
    assert!(is_type_name("invoice.paid") && !is_type_name("invoice") && !is_type_name("a..b"));
}

#[test]
fn disable_enable_and_delete_follow_the_endpoint() {
    let mut e = endpoint();
    let disabled = when(disable(&org(false), &app(), &e, DEV)).then([WebhookEvent::Disabled(
        EndpointDisabled {
            reason: "manual".into(),
            failing_since: None,
        },
    )]);
    and_then(&mut e, &disabled);
    assert_eq!(e.status, EndpointStatus::Disabled);
    when(disable(&org(false), &app(), &e, DEV)).then([]);
    let enabled = when(enable(&org(false), &app(), &e, DEV))
        .then([WebhookEvent::Enabled(EndpointEnabled {})]);
    and_then(&mut e, &enabled);
    when(enable(&org(false), &app(), &e, DEV)).then([]);
    let deleted = when(delete(&org(false), &app(), &e, OWNER))
        .then([WebhookEvent::Deleted(EndpointDeleted {})]);
    and_then(&mut e, &deleted);
    when(update(&org(false), &app(), &e, OWNER, settings())).then_err(WebhookError::NotFound);
    assert!(!readable(&org(false), &app(), &e, OWNER));
}

#[test]
fn an_update_with_the_same_settings_changes_nothing() {
    let e = endpoint();
    when(update(&org(false), &app(), &e, OWNER, settings())).then([]);
    let mut changed = settings();
    changed.rate_limit = Some(5);
    when(update(&org(false), &app(), &e, OWNER, changed.clone()))
        .then([WebhookEvent::Updated(EndpointUpdated { settings: changed })]);
}

#[test]
fn a_rotated_secret_signs_beside_the_previous_until_the_overlap_ends() {
    let mut e = endpoint();
    let until = now() + Duration::hours(1);
    let rotated = when(rotate_secret(
        &org(false),
        &app(),
        &e,
        OWNER,
        secret(2),
        until,
        now(),
    ))
    .then([WebhookEvent::SecretRotated(SecretRotated {
        secret: secret(2),
        previous_expires_at: until,
    })]);
    and_then(&mut e, &rotated);
    assert_eq!(e.signing_secrets(now()), vec![&secret(2), &secret(1)]);
    assert_eq!(e.signing_secrets(until), vec![&secret(2)]);
    let too_long = rotate_secret(
        &org(false),
        &app(),
        &e,
        OWNER,
        secret(3),
        now() + Duration::days(8),
        now(),
    )
    .unwrap_err();
    assert!(invalid(too_long, "/overlap_secs"));
}

#[test]
fn a_replay_names_messages_or_a_window_not_both() {
    let e = endpoint();
    let r = |ids: Vec<Uuid>, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>| {
        replay(
            &org(false),
            &app(),
            &e,
            OWNER,
            ReplayRequested {
                replay_id: Uuid::from_u128(90),
                message_ids: ids,
                since,
                until,
            },
        )
    };
    assert!(r(vec![Uuid::from_u128(1)], None, None).is_ok());
    assert!(r(vec![], Some(now()), None).is_ok());
    assert!(invalid(r(vec![], None, None).unwrap_err(), "/message_ids"));
    assert!(invalid(
        r(vec![Uuid::from_u128(1)], Some(now()), None).unwrap_err(),
        "/message_ids"
    ));
    assert!(invalid(
        r(vec![], Some(now()), Some(now())).unwrap_err(),
        "/since"
    ));
}
