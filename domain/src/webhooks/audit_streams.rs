//! An organisation's audit log streams: endpoints of no app that receive
//! every entry of the organisation's audit history, so a SIEM's collector
//! is fed without anyone polling. They are webhook endpoints in every
//! other respect (stream `webhook-<id>`, signed, retried, logged,
//! disabled by failures), so only creation and the rules of who may touch
//! one are here. Managing them takes `audit.export`: a stream is an
//! export that never ends.

use super::*;

/// `CreateAuditStream`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateAuditStream {
    /// The new endpoint's id.
    pub endpoint_id: Uuid,
    /// Where entries go.
    pub url: String,
    /// Free text.
    pub description: String,
    /// The generated `whsec_` secret, sealed.
    pub secret: SealedSecret,
}

/// Creates a stream for `org`.
pub fn create(
    org: &Org,
    actor: Uuid,
    cmd: CreateAuditStream,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    org.authorize(actor, Permission::ManageAuditStreams)?;
    let mut checks = Checks::default();
    checks.check(
        valid_url(&cmd.url),
        "/url",
        "must be an absolute http or https URL with a host and no credentials, at most 2,048 \
         characters",
    );
    checks.check(
        cmd.description.chars().count() <= 500 && !cmd.description.chars().any(char::is_control),
        "/description",
        "at most 500 characters, no control characters",
    );
    checks.finish()?;
    Ok(vec![WebhookEvent::AuditStreamCreated(AuditStreamCreated {
        endpoint_id: cmd.endpoint_id,
        org_id: org.id,
        url: cmd.url,
        description: cmd.description,
        secret: cmd.secret,
    })])
}

/// The stream, if it is one of `org`'s, not deleted, and the actor may
/// manage it.
pub fn managed<'e>(
    org: &Org,
    stream: &'e Endpoint,
    actor: Uuid,
) -> Result<&'e Endpoint, WebhookError> {
    if !stream.exists
        || !stream.audit
        || stream.org_id != org.id
        || stream.status == EndpointStatus::Deleted
    {
        return Err(WebhookError::NotFound);
    }
    org.authorize(actor, Permission::ManageAuditStreams)?;
    Ok(stream)
}

/// Enables again a stream Gatehouse disabled (its collector answered 410
/// or failed for days); nothing if enabled. Entries recorded meanwhile
/// were kept for it and are sent then.
pub fn enable(
    org: &Org,
    stream: &Endpoint,
    actor: Uuid,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    let s = managed(org, stream, actor)?;
    if s.status == EndpointStatus::Enabled {
        return Ok(Vec::new());
    }
    Ok(vec![WebhookEvent::Enabled(EndpointEnabled {})])
}

/// Deletes, irreversibly: nothing more is sent.
pub fn delete(
    org: &Org,
    stream: &Endpoint,
    actor: Uuid,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    managed(org, stream, actor)?;
    Ok(vec![WebhookEvent::Deleted(EndpointDeleted {})])
}

/// A new secret; the previous one keeps signing beside it until
/// `previous_expires_at`, at most a week away.
pub fn rotate_secret(
    org: &Org,
    stream: &Endpoint,
    actor: Uuid,
    secret: SealedSecret,
    previous_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    managed(org, stream, actor)?;
    rotation(secret, previous_expires_at, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{org, AUDITOR, DEV, FINANCE, ORG, OWNER};
    use crate::testing::{given, when};

    const STREAM: Uuid = Uuid::from_u128(90);

    fn cmd(url: &str) -> CreateAuditStream {
        CreateAuditStream {
            endpoint_id: STREAM,
            url: url.into(),
            description: "siem".into(),
            secret: SealedSecret {
                sealed: "sealed".into(),
                kek_id: "kek".into(),
                public_key: None,
            },
        }
    }

    fn created() -> WebhookEvent {
        WebhookEvent::AuditStreamCreated(AuditStreamCreated {
            endpoint_id: STREAM,
            org_id: ORG,
            url: "https://siem.example.com/in".into(),
            description: "siem".into(),
            secret: cmd("").secret,
        })
    }

    #[test]
    fn only_owners_manage_audit_streams_compliance_changes_nothing() {
        when(create(
            &org(false),
            OWNER,
            cmd("https://siem.example.com/in"),
        ))
        .then([created()]);
        for who in [AUDITOR, DEV, FINANCE] {
            when(create(&org(false), who, cmd("https://siem.example.com/in")))
                .then_err(OrgError::Forbidden(Permission::ManageAuditStreams).into());
        }
    }

    #[test]
    fn a_bad_url_is_refused_by_pointer() {
        for url in ["ftp://siem", "https://user:pw@siem.example.com/", "siem"] {
            let e = create(&org(false), OWNER, cmd(url)).expect_err("refused");
            assert!(
                matches!(
                    e,
                    WebhookError::Invalid(Invalid(ref errs)) if errs.iter().any(|f| f.pointer == "/url")
                ),
                "{url}: {e:?}"
            );
        }
    }

    #[test]
    fn a_stream_is_an_endpoint_of_no_app_that_takes_audit_entries() {
        let s: Endpoint = given([created()]);
        assert!(s.audit && s.exists);
        assert_eq!(s.app_id, Uuid::nil());
        assert_eq!(
            s.settings.expect("settings").event_types,
            vec![AUDIT_ENTRY_TYPE.to_owned()]
        );
    }

    #[test]
    fn streams_are_deleted_for_good_and_enabled_only_when_disabled() {
        let s: Endpoint = given([created()]);
        when(enable(&org(false), &s, OWNER)).then([]);
        for who in [DEV, AUDITOR] {
            when(delete(&org(false), &s, who))
                .then_err(OrgError::Forbidden(Permission::ManageAuditStreams).into());
        }
        when(delete(&org(false), &s, OWNER)).then([WebhookEvent::Deleted(EndpointDeleted {})]);
        let gone: Endpoint = given([created(), WebhookEvent::Deleted(EndpointDeleted {})]);
        when(delete(&org(false), &gone, OWNER)).then_err(WebhookError::NotFound);
        let disabled: Endpoint = given([
            created(),
            WebhookEvent::Disabled(EndpointDisabled {
                reason: "gone".into(),
                failing_since: None,
            }),
        ]);
        when(enable(&org(false), &disabled, OWNER))
            .then([WebhookEvent::Enabled(EndpointEnabled {})]);
    }

    #[test]
    fn a_webhook_endpoint_is_not_an_audit_stream() {
        let webhook: Endpoint = given([WebhookEvent::Created(EndpointCreated {
            endpoint_id: STREAM,
            app_id: Uuid::from_u128(30),
            org_id: ORG,
            mode: "test".into(),
            signature: "v1".into(),
            settings: EndpointSettings::default(),
            secret: cmd("").secret,
        })]);
        when(delete(&org(false), &webhook, OWNER)).then_err(WebhookError::NotFound);
    }
}
