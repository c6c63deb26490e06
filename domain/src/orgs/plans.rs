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

/// Whether a plan with these modules, in this subscription state, unlocks
/// the Developers workspace: it includes [`PLATFORM_API`] and is not
/// canceled (a plan without a state yet counts as not canceled). The one
/// place this rule is written: the read side passes the read model's
/// columns, the write side an [`Org`]'s plan ([`Org::unlocks_workspace`]).
pub fn plan_unlocks_workspace(modules: &[String], subscription_state: Option<&str>) -> bool {
    subscription_state != Some("canceled") && modules.iter().any(|m| m == PLATFORM_API)
}

/// The billing window containing `at`: the plan's window, repeated back to
/// back with the same length (a plan set for one month keeps counting in
/// the months after it until staff set another). Instants as milliseconds
/// since the epoch; `None` for an empty window.
pub fn billing_window(start_ms: i64, end_ms: i64, at_ms: i64) -> Option<(i64, i64)> {
    let len = end_ms.checked_sub(start_ms).filter(|l| *l > 0)?;
    let k = (at_ms - start_ms).div_euclid(len);
    let from = start_ms + k * len;
    Some((from, from + len))
}

#[cfg(test)]
mod window_tests {
    use super::billing_window;

    #[test]
    fn windows_repeat_back_to_back() {
        assert_eq!(billing_window(100, 200, 100), Some((100, 200)));
        assert_eq!(billing_window(100, 200, 199), Some((100, 200)));
        assert_eq!(billing_window(100, 200, 200), Some((200, 300)));
        assert_eq!(billing_window(100, 200, 99), Some((0, 100)));
        assert_eq!(billing_window(100, 100, 150), None);
    }
}

/// The usage thresholds (percent of the limit) `used` has reached.
pub fn thresholds_reached(used: u64, limit: u64) -> Vec<u8> {
    [80u8, 100]
        .into_iter()
        .filter(|t| limit > 0 && u128::from(used) * 100 >= u128::from(limit) * u128::from(*t))
        .collect()
}

#[cfg(test)]
mod threshold_tests {
    use super::thresholds_reached;

    #[test]
    fn thresholds_are_reached_at_80_and_100_percent() {
        assert!(thresholds_reached(79, 100).is_empty());
        assert_eq!(thresholds_reached(80, 100), [80]);
        assert_eq!(thresholds_reached(100, 100), [80, 100]);
        assert_eq!(thresholds_reached(u64::MAX, u64::MAX), [80, 100]);
        assert!(
            thresholds_reached(5, 0).is_empty(),
            "no limit, no threshold"
        );
    }
}
