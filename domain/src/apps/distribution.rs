//! Visibility, distribution requests to staff, and the private-install allowlist.

#[allow(unused_imports)]
use super::*;

/// `SetVisibility`: narrowing to private is immediate; broader
/// distribution is a request to staff.
pub fn set_visibility(
    org: &Org,
    app: &App,
    actor: Uuid,
    request_id: Uuid,
    to: Visibility,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    if to == Visibility::Private {
        let mut events = Vec::new();
        if let Some((request_id, _)) = app.distribution_request {
            events.push(AppEvent::DistributionDecided(DistributionDecided {
                request_id,
                approved: false,
                reason: Some("withdrawn: visibility set to private".into()),
            }));
        }
        if app.visibility != Visibility::Private {
            events.push(AppEvent::VisibilityChanged(VisibilityChanged {
                visibility: to.as_str().into(),
            }));
        }
        return Ok(events);
    }
    if app.distribution_request.is_some() {
        return Err(AppError::DistributionPending);
    }
    Ok(vec![AppEvent::DistributionRequested(
        DistributionRequested {
            request_id,
            visibility: to.as_str().into(),
        },
    )])
}

/// `DecideDistribution` (staff): approve or reject (with a reason).
pub fn decide_distribution(app: &App, cmd: &DecideRequest) -> Result<Vec<AppEvent>, AppError> {
    let (request_id, approve, reason) = (cmd.request_id, cmd.approve, cmd.reason.as_deref());
    live(app)?;
    let Some((open, to)) = app.distribution_request.filter(|(id, _)| *id == request_id) else {
        return Err(AppError::NoDistributionRequest);
    };
    let reason = match (approve, reason) {
        (false, r) => Some(required_reason(r.unwrap_or_default())?),
        (true, Some(r)) if !r.trim().is_empty() => Some(required_reason(r)?),
        (true, _) => None,
    };
    let mut events = vec![AppEvent::DistributionDecided(DistributionDecided {
        request_id: open,
        approved: approve,
        reason,
    })];
    if approve {
        events.push(AppEvent::VisibilityChanged(VisibilityChanged {
            visibility: to.as_str().into(),
        }));
    }
    Ok(events)
}

/// `SetAllowlist`: the workspaces that may install the app while private.
pub fn set_allowlist(
    org: &Org,
    app: &App,
    actor: Uuid,
    org_ids: Vec<Uuid>,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let mut checks = Checks::default();
    checks.check(
        org_ids.len() <= 1000,
        "/workspaces",
        "at most 1000 workspaces",
    );
    checks.finish()?;
    let set: BTreeSet<Uuid> = org_ids.into_iter().collect();
    Ok(vec![AppEvent::AllowlistSet(AllowlistSet {
        org_ids: set.into_iter().collect(),
    })])
}

/// A staff decision on a request (distribution or product access):
/// approve, or reject with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideRequest {
    /// The request decided.
    pub request_id: Uuid,
    /// Approve (else reject).
    pub approve: bool,
    /// Why; required to reject.
    pub reason: Option<String>,
}
