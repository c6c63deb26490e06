//! `state-at <stream> <time|position>`: an aggregate's state as it was,
//! folded from its stream with the domain's own `apply` up to an instant
//! or a global position. A stream no aggregate folds (a reservation, a
//! usage stream) is shown as its payloads merged in order.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use event_schemas::RecordedEvent;
use event_store::postgres::EVENT_COLUMNS;
use serde_json::{Map, Value};

use crate::VerifyError;

/// Where to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The last event recorded at or before this instant.
    Time(DateTime<Utc>),
    /// The last event at or before this global position.
    Position(u64),
}

impl std::str::FromStr for Point {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(p) = s.parse::<u64>() {
            return Ok(Point::Position(p));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Point::Time(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is neither a log position nor an RFC 3339 time"))
    }
}

/// A stream's state at a point.
#[derive(Debug)]
pub struct StateAt {
    /// Events folded.
    pub events: u64,
    /// The stream version reached.
    pub version: u64,
    /// The global position of the last event folded.
    pub position: u64,
    /// When that event was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
    /// The state, rendered (`Debug` of the aggregate, or merged JSON).
    pub state: String,
    /// Which aggregate folded it (`payloads merged` when none).
    pub aggregate: &'static str,
}

/// Why a fold failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error(transparent)]
    Read(#[from] VerifyError),
    /// An event does not decode or apply.
    #[error("event at position {position}: {reason}")]
    Event {
        /// Where.
        position: u64,
        /// Why.
        reason: String,
    },
}

macro_rules! fold_with {
    ($events:expr, $state:ty, $family:ty, $apply:expr) => {{
        let mut state = <$state>::default();
        for e in $events {
            let decoded = <$family>::decode(e).map_err(|err| StateError::Event {
                position: e.global_position,
                reason: err.to_string(),
            })?;
            if let Some(ev) = decoded {
                #[allow(clippy::redundant_closure_call)]
                ($apply)(&mut state, &ev).map_err(|reason: String| StateError::Event {
                    position: e.global_position,
                    reason,
                })?;
            }
        }
        format!("{state:#?}")
    }};
}

fn fold(category: &str, events: &[RecordedEvent]) -> Result<(&'static str, String), StateError> {
    use event_schemas::{app, key, oauth, org, webhook};
    Ok(match category {
        "org" => (
            "Org",
            fold_with!(
                events,
                domain::orgs::Org,
                org::OrgEvent,
                |s: &mut domain::orgs::Org, e| s.apply(e)
            ),
        ),
        "app" => (
            "App",
            fold_with!(
                events,
                domain::apps::App,
                app::AppEvent,
                |s: &mut domain::apps::App, e| s.apply(e)
            ),
        ),
        "api_key" => (
            "Key",
            fold_with!(
                events,
                domain::keys::Key,
                key::KeyEvent,
                |s: &mut domain::keys::Key, e| s.apply(e)
            ),
        ),
        "oauth_client" => (
            "OAuthClient",
            fold_with!(
                events,
                domain::oauth::OAuthClient,
                oauth::OAuthClientEvent,
                |s: &mut domain::oauth::OAuthClient, e| s.apply(e)
            ),
        ),
        "product" => (
            "Product",
            fold_with!(
                events,
                domain::products::Product,
                app::ProductEvent,
                |s: &mut domain::products::Product, e| {
                    s.apply(e);
                    Ok::<(), String>(())
                }
            ),
        ),
        "webhook" => (
            "Endpoint",
            fold_with!(
                events,
                domain::webhooks::Endpoint,
                webhook::WebhookEvent,
                |s: &mut domain::webhooks::Endpoint, e| s.apply(e)
            ),
        ),
        _ => {
            let mut merged = Map::new();
            for e in events {
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(e.data.get()) {
                    merged.extend(m);
                }
            }
            (
                "payloads merged",
                serde_json::to_string_pretty(&Value::Object(merged)).unwrap_or_default(),
            )
        }
    })
}

/// Folds `stream` up to `point`.
pub async fn state_at(pool: &Pool, stream: &str, point: Point) -> Result<StateAt, StateError> {
    let client = pool.get().await.map_err(VerifyError::from)?;
    let rows = client
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 \
                 AND ($2::int8 IS NULL OR global_position <= $2) \
                 AND ($3::timestamptz IS NULL OR recorded_at <= $3) ORDER BY stream_version"
            ),
            &[
                &stream,
                &match point {
                    Point::Position(p) => Some(p as i64),
                    Point::Time(_) => None,
                },
                &match point {
                    Point::Time(t) => Some(t),
                    Point::Position(_) => None,
                },
            ],
        )
        .await
        .map_err(VerifyError::from)?;
    let events = rows
        .iter()
        .map(event_store::postgres::decode_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(VerifyError::from)?;
    let category = event_schemas::envelope::category_of(stream);
    let (aggregate, state) = fold(category, &events)?;
    let last = events.last();
    Ok(StateAt {
        events: events.len() as u64,
        version: last.map_or(0, |e| e.stream_version),
        position: last.map_or(0, |e| e.global_position),
        recorded_at: last.map(|e| e.recorded_at),
        state,
        aggregate,
    })
}
