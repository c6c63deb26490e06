//! The plan staff set.

#[allow(unused_imports)]
use super::*;

/// A plan as staff set it.
#[derive(Debug, Clone)]
pub struct SetPlan {
    /// Plan name.
    pub plan: String,
    /// Modules.
    pub modules: Vec<String>,
    /// Platform calls per billing window.
    pub monthly_call_limit: u64,
    /// Subscription state.
    pub subscription_state: String,
    /// Billing window start.
    pub billing_window_start: DateTime<Utc>,
    /// Billing window end.
    pub billing_window_end: DateTime<Utc>,
}

/// `SetPlan` (staff).
pub fn set_plan(org: &Org, staff: Uuid, cmd: SetPlan) -> Result<Vec<OrgEvent>, OrgError> {
    if !org.exists {
        return Err(OrgError::NotFound);
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 50
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    };
    let mut checks = Checks::default();
    checks
        .check(
            name_ok(&cmd.plan),
            "/plan",
            "must be 1 to 50 of a-z, 0-9, '.', '_', '-'",
        )
        .check(
            cmd.modules.len() <= 50,
            "/modules",
            "must list at most 50 modules",
        );
    for (i, m) in cmd.modules.iter().enumerate() {
        checks.check(
            name_ok(m),
            &format!("/modules/{i}"),
            "must be 1 to 50 of a-z, 0-9, '.', '_', '-'",
        );
    }
    checks
        .check(
            SUBSCRIPTION_STATES.contains(&cmd.subscription_state.as_str()),
            "/subscription_state",
            "must be one of trialing, active, past_due, canceled",
        )
        .check(
            cmd.billing_window_end > cmd.billing_window_start,
            "/billing_window_end",
            "must be after billing_window_start",
        );
    checks.finish()?;
    let mut modules = cmd.modules;
    modules.sort();
    modules.dedup();
    Ok(vec![OrgEvent::PlanSet(PlanSet {
        plan: cmd.plan,
        modules,
        monthly_call_limit: cmd.monthly_call_limit,
        subscription_state: cmd.subscription_state,
        billing_window_start: cmd.billing_window_start,
        billing_window_end: cmd.billing_window_end,
        by: staff,
    })])
}
