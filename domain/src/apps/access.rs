//! Access to API products: requests and staff decisions.

#[allow(unused_imports)]
use super::*;

/// `RequestProduct`: auto products are approved at once; manual ones wait
/// for staff; conditional ones follow their rule for the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestProduct {
    /// The new request's id.
    pub request_id: Uuid,
    /// The credential mode the access is for.
    pub mode: Mode,
}

/// Decides [`RequestProduct`] for `product` by `actor`, a manager of the app.
pub fn request_access(
    org: &Org,
    app: &App,
    actor: Uuid,
    product: &Product,
    cmd: RequestProduct,
) -> Result<Vec<AppEvent>, AppError> {
    let RequestProduct { request_id, mode } = cmd;
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let mode = mode.as_str();
    if !product.exists {
        return Err(AppError::NoSuchProduct);
    }
    let open = app.access.values().any(|a| {
        a.product_id == product.id && a.mode == mode && !matches!(a.state, AccessState::Rejected(_))
    });
    if open {
        return Err(AppError::AccessAlreadyRequested);
    }
    let mut events = vec![AppEvent::AccessRequested(AccessRequested {
        request_id,
        product_id: product.id,
        mode: mode.to_owned(),
    })];
    if product.decides(mode) == Decision::Auto {
        events.push(AppEvent::AccessApproved(AccessApproved {
            request_id,
            scopes: product.scopes.clone(),
            automatic: true,
        }));
    }
    Ok(events)
}

/// `DecideAccess` (staff): approve with the product's current scopes, or
/// reject with a reason. A decided request stays decided.
pub fn decide_access(
    app: &App,
    product: &Product,
    cmd: &DecideRequest,
) -> Result<Vec<AppEvent>, AppError> {
    let (request_id, approve, reason) = (cmd.request_id, cmd.approve, cmd.reason.as_deref());
    live(app)?;
    let request = app
        .access
        .get(&request_id)
        .ok_or(AppError::NoSuchAccessRequest)?;
    if request.state != AccessState::Pending {
        return Err(AppError::AccessDecided);
    }
    if approve {
        Ok(vec![AppEvent::AccessApproved(AccessApproved {
            request_id,
            scopes: product.scopes.clone(),
            automatic: false,
        })])
    } else {
        let reason = required_reason(reason.unwrap_or_default())?;
        Ok(vec![AppEvent::AccessRejected(AccessRejected {
            request_id,
            reason,
        })])
    }
}
