//! When a failed delivery is tried again: a schedule of delays (by default
//! immediately, then about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h),
//! each with ±20 % jitter so that retries of many messages do not arrive
//! together, and a receiver's `Retry-After` on 429 and 503 honoured.

use std::time::Duration;

use rand::Rng;

/// The retry delays after the first attempt, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

/// The default: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// A schedule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retry schedule {0:?}: expected delays like 0s,5s,5m,2h (units ms, s, m, h)")]
pub struct BadSchedule(pub String);

impl std::str::FromStr for Schedule {
    type Err = BadSchedule;

    fn from_str(s: &str) -> Result<Self, BadSchedule> {
        let bad = || BadSchedule(s.into());
        let delays = s
            .split(',')
            .map(|part| {
                let part = part.trim();
                let split = part.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
                let (n, unit) = part.split_at(split);
                let n: u64 = n.parse().map_err(|_| bad())?;
                let ms = match unit {
                    "ms" => 1,
                    "s" => 1_000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    _ => return Err(bad()),
                };
                n.checked_mul(ms).map(Duration::from_millis).ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > 20 {
            return Err(bad());
        }
        Ok(Schedule(delays))
    }
}

impl Default for Schedule {
    fn default() -> Self {
        DEFAULT.parse().expect("the default schedule parses")
    }
}

impl Schedule {
    /// Attempts a message gets in all: the first and one per delay.
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// The delay before the next attempt after `attempts` failed ones, or
    /// `None` when the message is exhausted. `retry_after` (from a 429 or
    /// 503) replaces the scheduled delay when longer, up to the longest
    /// delay of the schedule.
    pub fn next(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let base = *self.0.get(attempts.checked_sub(1)? as usize)?;
        let jittered = if base.is_zero() {
            base
        } else {
            base.mul_f64(rng.gen_range(0.8..1.2))
        };
        let longest = self.0.iter().max().copied().unwrap_or_default();
        Some(match retry_after {
            Some(ra) if ra > jittered => ra.min(longest.max(jittered)),
            _ => jittered,
        })
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    #[test]
    fn the_default_retries_immediately_then_backs_off_with_jitter() {
        let s = Schedule::default();
        assert_eq!(s.attempts(), 9);
        let mut rng = rand::thread_rng();
        assert_eq!(s.next(1, None, &mut rng), Some(Duration::ZERO));
        for _ in 0..100 {
            let d = s.next(2, None, &mut rng).unwrap();
            assert!((4_000..6_000).contains(&d.as_millis()), "{d:?}");
        }
        assert!(s.next(8, None, &mut rng).unwrap() > Duration::from_secs(7 * 3600));
        assert_eq!(
            s.next(9, None, &mut rng),
            None,
            "exhausted after 9 attempts"
        );
    }

    #[test]
    fn retry_after_lengthens_a_delay_up_to_the_longest() {
        let s: Schedule = "0s,1s,10s".parse().unwrap();
        let mut rng = StepRng::new(0, 0);
        assert_eq!(
            s.next(2, Some(Duration::from_secs(5)), &mut rng),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            s.next(2, Some(Duration::from_secs(3600)), &mut rng),
            Some(Duration::from_secs(10))
        );
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 02 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn schedules_parse_with_units_and_bad_ones_are_refused() {
        assert_eq!(
            "0ms,50ms,2s".parse::<Schedule>().unwrap().0,
            [0, 50, 2000].map(Duration::from_millis)
        );
        for bad in ["", "5", "5x", "s", "1s,,2s"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }
}
