//! Golden fixtures: one stored payload per event type and schema version.
//! A stored event never changes; if one of these fails, the change needs a
//! new schema version and an upcaster, not an edited fixture.

use chrono::{DateTime, Utc};
use event_schemas::app::*;
use event_schemas::sealed::Sealed;
use event_schemas::user::{
    AccountEvent, EmailClaimed, EmailRegistered, PasswordChanged, PersonalDataErased, SessionEnded,
    SessionStarted, SessionsRevoked, StaffGranted, StaffRevoked, UserEmailReleased,
    UserEmailVerified, UserSignedUp,
};
use event_schemas::{DomainEvent, RecordedEvent, SchemaError, GENESIS_HASH};
use uuid::Uuid;

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

fn recorded(event_type: &str, data: &str) -> RecordedEvent {
    RecordedEvent {
        global_position: 1,
        stream_id: "x-1".into(),
        stream_version: 1,
        event_id: Uuid::nil(),
        event_type: event_type.into(),
        schema_version: 1,
        data: serde_json::value::RawValue::from_string(data.into()).expect("fixture is JSON"),
        metadata: serde_json::value::RawValue::from_string("{}".into()).expect("JSON"),
        recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        prev_hash: GENESIS_HASH,
        hash: GENESIS_HASH,
    }
}

/// Checks that `event` is written exactly as its fixture and reads back.
/// A new event type gets its fixture with `GOLDEN_BLESS=1`; an existing
/// fixture is never rewritten.
fn check_event<E: DomainEvent + std::fmt::Debug + PartialEq>(
    event: E,
    decode: fn(&RecordedEvent) -> Result<Option<E>, SchemaError>,
) {
    let name = format!("{}.v{}", event.event_type(), event.schema_version());
    let written = serde_json::to_string(&event).expect("serialises");
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    if !std::path::Path::new(&path).exists() && std::env::var_os("GOLDEN_BLESS").is_some() {
        std::fs::write(&path, format!("{written}\n")).expect("fixture written");
    }
    let golden = fixture(&name);
    assert_eq!(written, golden, "{name} is written as before");
    let decoded = decode(&recorded(event.event_type(), &golden)).expect("decodes");
    assert_eq!(decoded, Some(event), "{name} reads back");
}

fn check(event: AccountEvent) {
    check_event(event, AccountEvent::decode);
}

#[test]
fn account_events_keep_their_stored_shape() {
    let user_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let session_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    check(AccountEvent::UserSignedUp(UserSignedUp {
        user_id,
        email_index: "ab".repeat(32),
        email: Sealed("c2VhbGVkLWVtYWls".into()),
        name: Sealed("c2VhbGVkLW5hbWU=".into()),
    }));
    check(AccountEvent::EmailRegistered(EmailRegistered { user_id }));
    check(AccountEvent::EmailClaimed(EmailClaimed { user_id }));
    check(AccountEvent::UserEmailVerified(UserEmailVerified {
        user_id,
    }));
    check(AccountEvent::UserEmailReleased(UserEmailReleased {
        user_id,
        verified_by: session_id,
    }));
    check(AccountEvent::PasswordChanged(PasswordChanged {
        user_id,
        via: "reset".into(),
    }));
    check(AccountEvent::SessionsRevoked(SessionsRevoked {
        user_id,
        reason: "password_changed".into(),
        except: Some(session_id),
    }));
    check(AccountEvent::StaffRevoked(StaffRevoked { user_id }));
    check(AccountEvent::SessionStarted(SessionStarted {
        session_id,
        user_id,
        token_hash: "cd".repeat(32),
        expires_at: DateTime::<Utc>::UNIX_EPOCH,
    }));
    check(AccountEvent::SessionEnded(SessionEnded {
        session_id,
        reason: "signed_out".into(),
    }));
    check(AccountEvent::StaffGranted(StaffGranted { user_id }));
    check(AccountEvent::PersonalDataErased(PersonalDataErased {
        user_id,
    }));
}

#[test]
fn a_v1_sign_up_reads_without_its_password_hash() {
    let e = recorded("user.signed_up", &fixture("user.signed_up.v1"));
    assert!(
        e.data.get().contains("$argon2"),
        "the v1 fixture has a hash"
    );
    let Some(AccountEvent::UserSignedUp(u)) = AccountEvent::decode(&e).expect("decodes") else {
        panic!("a sign-up")
    };
    let written = serde_json::to_string(&u).expect("serialises");
    assert!(!written.contains("argon2"), "{written}");
}

#[test]
fn an_unknown_schema_version_is_refused_not_guessed() {
    let mut e = recorded("session.ended", &fixture("session.ended.v1"));
    e.schema_version = 2;
    assert!(AccountEvent::decode(&e).is_err());
}

#[test]
fn app_events_keep_their_stored_shape() {
    let id = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let at: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("a timestamp");
    let app = |e: AppEvent| check_event(e, AppEvent::decode);
    app(AppEvent::Created(AppCreated {
        app_id: id(1),
        org_id: id(2),
        team_id: Some(id(3)),
        name: "Payroll Sync".into(),
        slug: "payroll-sync".into(),
        description: "Syncs payroll".into(),
        origins: vec!["https://app.example.com".into()],
        callback_urls: vec!["https://app.example.com/cb".into()],
        attributes: [("tier".to_owned(), "gold".to_owned())].into(),
        sandbox_tenant_id: Some(id(4)),
    }));
    app(AppEvent::Updated(AppUpdated {
        name: Some("Payroll".into()),
        attributes: [("tier".to_owned(), None)].into(),
        ..AppUpdated::default()
    }));
    app(AppEvent::Deleted(AppDeleted {
        reason: Some("retired".into()),
    }));
    app(AppEvent::Suspended(AppStatusChanged {
        reason: "abuse".into(),
    }));
    app(AppEvent::Reinstated(AppStatusChanged {
        reason: "resolved".into(),
    }));
    app(AppEvent::MemberSet(AppMemberSet {
        user_id: id(5),
        role: "admin".into(),
    }));
    app(AppEvent::MemberRemoved(AppMemberRemoved { user_id: id(5) }));
    app(AppEvent::DistributionRequested(DistributionRequested {
        request_id: id(6),
        visibility: "public".into(),
    }));
    app(AppEvent::DistributionDecided(DistributionDecided {
        request_id: id(6),
        approved: false,
        reason: Some("not yet".into()),
    }));
    app(AppEvent::VisibilityChanged(VisibilityChanged {
        visibility: "unlisted".into(),
    }));
    app(AppEvent::AllowlistSet(AllowlistSet {
        org_ids: vec![id(7)],
    }));
    app(AppEvent::VersionCreated(VersionCreated {
        version_id: id(8),
        label: "1.0.0".into(),
        manifest: serde_json::json!({"name": "Payroll", "scopes": ["payroll.read"]}),
    }));
    app(AppEvent::ManifestUpdated(ManifestUpdated {
        version_id: id(8),
        manifest: serde_json::json!({"name": "Payroll", "scopes": []}),
    }));
    app(AppEvent::VersionPublished(VersionPublished {
        version_id: id(8),
    }));
    app(AppEvent::InstallLinkCreated(InstallLinkCreated {
        link_id: id(9),
        version_id: id(8),
        token_hash: "ef".repeat(32),
        single_use: true,
        expires_at: at,
    }));
    app(AppEvent::Installed(AppInstalled {
        org_id: id(7),
        version_id: id(8),
        link_id: id(9),
    }));
    app(AppEvent::Uninstalled(AppUninstalled { org_id: id(7) }));
    check_event(
        InstallLinkEvent::Issued(InstallLinkIssued {
            link_id: id(9),
            app_id: id(1),
            version_id: id(8),
            token_hash: "ef".repeat(32),
            single_use: true,
            expires_at: at,
        }),
        InstallLinkEvent::decode,
    );
    check_event(
        InstallLinkEvent::Used(InstallLinkUsed { org_id: id(7) }),
        InstallLinkEvent::decode,
    );
    check_event(
        InstallationEvent::Added(InstallationAdded {
            app_id: id(1),
            org_id: id(7),
            version_id: id(8),
            link_id: id(9),
        }),
        InstallationEvent::decode,
    );
    check_event(
        InstallationEvent::Removed(InstallationRemoved {
            app_id: id(1),
            org_id: id(7),
        }),
        InstallationEvent::decode,
    );
    app(AppEvent::AccessRequested(AccessRequested {
        request_id: id(10),
        product_id: id(11),
        mode: "live".into(),
    }));
    app(AppEvent::AccessApproved(AccessApproved {
        request_id: id(10),
        scopes: vec!["payroll.read".into()],
        automatic: false,
    }));
    app(AppEvent::AccessRejected(AccessRejected {
        request_id: id(10),
        reason: "no contract".into(),
    }));
    check_event(
        AppSlugEvent::Claimed(AppSlug { app_id: id(1) }),
        AppSlugEvent::decode,
    );
    check_event(
        AppSlugEvent::Released(AppSlug { app_id: id(1) }),
        AppSlugEvent::decode,
    );
    let product = ProductDefined {
        product_id: id(11),
        name: "Payroll API".into(),
        description: "Payroll data".into(),
        scopes: vec!["payroll.read".into()],
        approval: ApprovalMode::Conditional {
            test: Decision::Auto,
            live: Decision::Manual,
        },
    };
    check_event(ProductEvent::Defined(product.clone()), ProductEvent::decode);
    check_event(
        ProductEvent::Updated(ProductDefined {
            approval: ApprovalMode::Manual,
            ..product
        }),
        ProductEvent::decode,
    );
}

#[test]
fn org_events_keep_their_stored_shape() {
    use event_schemas::org::*;
    let id = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0100 + n);
    let at: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("a timestamp");
    let org = |e: OrgEvent| check_event(e, OrgEvent::decode);
    org(OrgEvent::Created(OrgCreated {
        org_id: id(1),
        slug: "acme".into(),
        name: "Acme".into(),
        owner: id(2),
    }));
    org(OrgEvent::SlugClaimed(OrgSlugClaimed { org_id: id(1) }));
    org(OrgEvent::MemberAdded(MemberAdded {
        user_id: id(3),
        role: "developer".into(),
        invitation_id: Some(id(4)),
    }));
    org(OrgEvent::MemberRoleChanged(MemberRoleChanged {
        user_id: id(3),
        from: "developer".into(),
        to: "manager".into(),
    }));
    org(OrgEvent::MemberRemoved(MemberRemoved { user_id: id(3) }));
    org(OrgEvent::InvitationCreated(InvitationCreated {
        invitation_id: id(4),
        email_index: "ab".repeat(32),
        email: Sealed("c2VhbGVk".into()),
        role: "developer".into(),
        expires_at: at,
    }));
    org(OrgEvent::InvitationAccepted(InvitationAccepted {
        invitation_id: id(4),
        user_id: id(3),
    }));
    org(OrgEvent::InvitationRevoked(InvitationRevoked {
        invitation_id: id(4),
    }));
    org(OrgEvent::TermsAccepted(TermsAccepted {
        version: "2026-01".into(),
        user_id: id(2),
    }));
    org(OrgEvent::SandboxRequested(SandboxRequested {
        user_id: id(2),
    }));
    org(OrgEvent::SandboxGranted(SandboxGranted {
        sandbox_tenant_id: id(5),
        granted_by: Some(id(6)),
    }));
    org(OrgEvent::ProductionRequested(ProductionRequested {
        user_id: id(2),
    }));
    org(OrgEvent::ProductionStepCompleted(ProductionStepCompleted {
        step: "consent_review".into(),
        by: id(6),
    }));
    org(OrgEvent::ProductionStepRejected(ProductionStepRejected {
        step: "billing_setup".into(),
        by: id(6),
        reason: "no card".into(),
    }));
    org(OrgEvent::SandboxPromoted(SandboxPromoted { by: id(6) }));
    org(OrgEvent::PlanSet(PlanSet {
        plan: "pro".into(),
        modules: vec!["platform.api".into()],
        monthly_call_limit: 250_000,
        subscription_state: "active".into(),
        billing_window_start: at,
        billing_window_end: at,
        by: id(6),
    }));
    org(OrgEvent::TeamCreated(TeamCreated {
        team_id: id(7),
        name: "Mobile".into(),
    }));
    org(OrgEvent::TeamMemberAdded(TeamMemberAdded {
        team_id: id(7),
        user_id: id(3),
        team_role: "admin".into(),
    }));
    org(OrgEvent::TeamMemberRemoved(TeamMemberRemoved {
        team_id: id(7),
        user_id: id(3),
    }));
    check_event(
        TermsEvent::Published(TermsPublished {
            version: "2027-01".into(),
            by: id(6),
        }),
        TermsEvent::decode,
    );
}

#[test]
fn key_and_usage_events_keep_their_stored_shape() {
    use event_schemas::key::*;
    let id = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let key = |e: KeyEvent| check_event(e, KeyEvent::decode);
    key(KeyEvent::Issued(KeyIssued {
        key_id: id(1),
        app_id: id(2),
        org_id: id(3),
        name: "CI".into(),
        mode: "test".into(),
        kind: "restricted".into(),
        scopes: vec!["payments:read".into()],
        prefix: "gh_test_rk_a1B2c3".into(),
        hash: "ab".repeat(32),
        expires_at: Some(at),
        rate_limit: Some(10),
        rate_limit_window_secs: Some(1),
        rotated_from: Some(id(4)),
        imported: true,
    }));
    key(KeyEvent::Rotated(KeyRotated {
        replaced_by: id(5),
        stops_at: at,
    }));
    key(KeyEvent::Revoked(KeyRevoked {
        reason: Some("leaked".into()),
    }));
    key(KeyEvent::LeakReported(KeyLeakReported {
        app_id: id(2),
        url: Some("https://github.com/octo/app/blob/main/.env".into()),
        source: Some("content".into()),
        revoked: true,
    }));
    key(KeyEvent::RotationRequired(KeyRotationRequired {
        job_id: id(6),
        app_id: id(2),
        stops_at: at,
    }));
    let job = |e: KeyRotationEvent| check_event(e, KeyRotationEvent::decode);
    job(KeyRotationEvent::Requested(KeyRotationRequested {
        job_id: id(6),
        org_id: Some(id(3)),
        app_id: None,
        mode: Some("live".into()),
        created_before: at,
        grace_period_secs: 86_400,
        reason: "a leaked CI log".into(),
    }));
    job(KeyRotationEvent::Completed(KeyRotationCompleted {
        keys: 12,
    }));
    let notice = |e: NoticeEvent| check_event(e, NoticeEvent::decode);
    notice(NoticeEvent::ThresholdCrossed(UsageThresholdCrossed {
        org_id: id(3),
        threshold: 80,
        used: 200_000,
        limit: 250_000,
        window_start: at,
        window_end: at,
    }));
    notice(NoticeEvent::ExpiryApproaching(KeyExpiryApproaching {
        key_id: id(1),
        app_id: id(2),
        org_id: id(3),
        expires_at: at,
    }));
    check_event(
        KeyHashEvent::Claimed(KeyHashClaimed { key_id: id(1) }),
        KeyHashEvent::decode,
    );
    check_event(
        UsageEvent::Recorded(UsageRecorded {
            key_id: id(1),
            app_id: id(2),
            org_id: id(3),
            from: at,
            to: at,
            source: "verify".into(),
            calls: 120,
            errors: 3,
            latency_min_ms: Some(1),
            latency_max_ms: Some(40),
            latency_sum_ms: Some(600),
            last_at: at,
        }),
        UsageEvent::decode,
    );
}

#[test]
fn oauth_events_keep_their_stored_shape() {
    use event_schemas::oauth::*;
    let id = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let client = |e: OAuthClientEvent| check_event(e, OAuthClientEvent::decode);
    client(OAuthClientEvent::Created(OAuthClientCreated {
        client_id: id(1),
        app_id: id(2),
        org_id: id(3),
        name: "backend".into(),
        mode: "test".into(),
        scopes: vec!["pay.read".into()],
        secret_hash: "ab".repeat(32),
    }));
    client(OAuthClientEvent::SecretRotated(OAuthSecretRotated {
        secret_hash: "cd".repeat(32),
        previous_stops_at: at,
    }));
    client(OAuthClientEvent::Revoked(OAuthClientRevoked {
        reason: None,
    }));
    client(OAuthClientEvent::LeakReported(OAuthClientLeakReported {
        app_id: id(2),
        url: Some("https://github.com/octo/app/blob/main/.env".into()),
        source: Some("content".into()),
        revoked: true,
    }));
    check_event(
        SigningKeyEvent::Added(SigningKeyAdded {
            kid: "k1".into(),
            algorithm: "EdDSA".into(),
            public_key: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
            previous_retires_at: Some(at),
        }),
        SigningKeyEvent::decode,
    );
}

#[test]
fn webhook_events_keep_their_stored_shape() {
    use event_schemas::webhook::*;
    let id = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let secret = SealedSecret {
        sealed: "c2VhbGVk".into(),
        kek_id: "0123456789abcdef".into(),
        public_key: Some("whpk_AAAA".into()),
    };
    let settings = EndpointSettings {
        url: "https://hooks.example.com/in".into(),
        event_types: vec!["app.*".into(), "api_key.revoked".into()],
        description: "billing".into(),
        rate_limit: Some(10),
    };
    let endpoint = |e: WebhookEvent| check_event(e, WebhookEvent::decode);
    endpoint(WebhookEvent::Created(EndpointCreated {
        endpoint_id: id(1),
        app_id: id(2),
        org_id: id(3),
        mode: "test".into(),
        signature: "v1a".into(),
        settings: settings.clone(),
        secret: secret.clone(),
    }));
    endpoint(WebhookEvent::AuditStreamCreated(AuditStreamCreated {
        endpoint_id: id(8),
        org_id: id(3),
        url: "https://siem.example.com/in".into(),
        description: "SIEM".into(),
        secret: SealedSecret {
            public_key: None,
            ..secret.clone()
        },
    }));
    endpoint(WebhookEvent::Updated(EndpointUpdated { settings }));
    endpoint(WebhookEvent::Disabled(EndpointDisabled {
        reason: "failing".into(),
        failing_since: Some(at),
    }));
    endpoint(WebhookEvent::Enabled(EndpointEnabled {}));
    endpoint(WebhookEvent::Deleted(EndpointDeleted {}));
    endpoint(WebhookEvent::SecretRotated(SecretRotated {
        secret: secret.clone(),
        previous_expires_at: at,
    }));
    endpoint(WebhookEvent::SecretsResealed(SecretsResealed {
        secret: secret.clone(),
        previous: Some(secret),
    }));
    endpoint(WebhookEvent::MessageExhausted(MessageExhausted {
        message_id: id(4),
        message_type: "app.updated".into(),
        attempts: 9,
        last_status: Some(500),
    }));
    endpoint(WebhookEvent::ReplayRequested(ReplayRequested {
        replay_id: id(5),
        message_ids: vec![id(4)],
        since: Some(at),
        until: Some(at),
    }));
    check_event(
        MessageEvent::Published(MessagePublished {
            message_id: id(6),
            app_id: id(2),
            org_id: id(3),
            message_type: "invoice.paid".into(),
            mode: Some("live".into()),
            retention_key: id(7),
            payload: "c2VhbGVk".into(),
        }),
        MessageEvent::decode,
    );
    check_event(
        RetentionEvent::Purged(PayloadsPurged {
            before: at,
            keys: 3,
            messages: 120,
        }),
        RetentionEvent::decode,
    );
}

#[test]
fn audit_events_keep_their_stored_shape() {
    use event_schemas::audit::{AuditEvent, CheckpointSigned};
    check_event(
        AuditEvent::CheckpointSigned(CheckpointSigned {
            position: 42,
            hash: "ab".repeat(32),
            signed_at: DateTime::<Utc>::UNIX_EPOCH,
            key_id: "0123456789abcdef".into(),
            signature: "c2lnbmF0dXJl".into(),
        }),
        AuditEvent::decode,
    );
}

#[test]
fn the_committed_json_schemas_match_the_code() {
    let findings = event_schemas::schemas::check(
        &event_schemas::schemas::all(),
        &event_schemas::schemas::committed_dir(),
    )
    .expect("the schema directory reads");
    let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(text.is_empty(), "{}", text.join("\n"));
}
