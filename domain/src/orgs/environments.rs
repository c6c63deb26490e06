//! Sandbox access and the production review.

#[allow(unused_imports)]
use super::*;

/// `RequestSandbox`: gated by the developer terms; granted at once when
/// `auto_grant` (configuration), otherwise queued for staff.
pub fn request_sandbox(
    org: &Org,
    actor: Uuid,
    auto_grant: Option<Uuid>,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::RequestEnvironments)?;
    if !org.terms_accepted() {
        return Err(OrgError::TermsNotAccepted);
    }
    if org.sandbox != Sandbox::None {
        return Err(OrgError::SandboxAlreadyRequested);
    }
    let mut events = vec![OrgEvent::SandboxRequested(SandboxRequested {
        user_id: actor,
    })];
    if let Some(tenant) = auto_grant {
        events.push(OrgEvent::SandboxGranted(SandboxGranted {
            sandbox_tenant_id: tenant,
            granted_by: None,
        }));
    }
    Ok(events)
}

/// `GrantSandbox` (staff; the caller checked the staff role).
pub fn grant_sandbox(org: &Org, staff: Uuid, tenant: Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    if !org.exists {
        return Err(OrgError::NotFound);
    }
    if org.sandbox != Sandbox::Requested {
        return Err(OrgError::NoSandboxRequest);
    }
    Ok(vec![OrgEvent::SandboxGranted(SandboxGranted {
        sandbox_tenant_id: tenant,
        granted_by: Some(staff),
    })])
}

/// `RequestProduction`: opens the review with its four steps.
pub fn request_production(org: &Org, actor: Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::RequestEnvironments)?;
    if !matches!(org.sandbox, Sandbox::Granted(_)) {
        return Err(OrgError::SandboxRequired);
    }
    if org.production.is_some() {
        return Err(OrgError::ProductionAlreadyRequested);
    }
    Ok(vec![OrgEvent::ProductionRequested(ProductionRequested {
        user_id: actor,
    })])
}

/// `CompleteStep` or, with a reason, `RejectStep` (staff). Completing the
/// last open step grants production (`sandbox.promoted`) in the same append.
pub fn decide_step(
    org: &Org,
    staff: Uuid,
    step: ReviewStep,
    rejection: Option<&str>,
) -> Result<Vec<OrgEvent>, OrgError> {
    if !org.exists {
        return Err(OrgError::NotFound);
    }
    let review = org
        .production
        .as_ref()
        .ok_or(OrgError::NoProductionReview)?;
    if review.granted {
        return Err(OrgError::ProductionAlreadyRequested);
    }
    let index = step.index();
    if let Some(reason) = rejection {
        let reason = reason.trim();
        let mut checks = Checks::default();
        checks
            .check(!reason.is_empty(), "/reason", "must say why")
            .check(
                reason.chars().count() <= 1000,
                "/reason",
                "must be at most 1000 characters",
            );
        checks.finish()?;
        return Ok(vec![OrgEvent::ProductionStepRejected(
            ProductionStepRejected {
                step: step.as_str().to_owned(),
                by: staff,
                reason: reason.to_owned(),
            },
        )]);
    }
    if review.steps[index] == StepState::Completed {
        return Ok(Vec::new());
    }
    let mut events = vec![OrgEvent::ProductionStepCompleted(ProductionStepCompleted {
        step: step.as_str().to_owned(),
        by: staff,
    })];
    let others_done = review
        .steps
        .iter()
        .enumerate()
        .all(|(i, s)| i == index || *s == StepState::Completed);
    if others_done {
        events.push(OrgEvent::SandboxPromoted(SandboxPromoted { by: staff }));
    }
    Ok(events)
}
