//! Time travel: `?as_of=<time>` on an app, a key and an organisation's
//! overview answers what they were at that instant, folded from the log
//! up to it (never from a read model, which only knows the present). The
//! same aggregates the command service decides with do the folding.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::apps::App;
use domain::keys::Key;
use domain::orgs::Org;
use event_schemas::key::{UsageEvent, UsageRecorded};
use event_schemas::RecordedEvent;
use serde::Deserialize;
use uuid::Uuid;

use crate::command::Aggregate;
use crate::error::ApiError;
use crate::state::AppState;

/// Events read per query while folding.
const PAGE: usize = 1000;

/// `?as_of=`: read the resource as it was at this instant.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOf {
    /// An instant (RFC 3339): the answer is folded from the log up to it.
    pub as_of: Option<DateTime<Utc>>,
}

/// A stream folded up to an instant.
pub struct Folded<A> {
    /// The state then.
    pub state: A,
    /// The stream's version then.
    pub version: u64,
    /// Its first event (who created it, and when).
    pub first: RecordedEvent,
}

/// Folds `stream` with `A` over the events recorded at or before `as_of`;
/// `None` when the stream did not exist yet.
pub async fn fold<A: Aggregate>(
    state: &AppState,
    stream: &str,
    as_of: DateTime<Utc>,
) -> Result<Option<Folded<A>>, ApiError> {
    let mut folded: Option<Folded<A>> = None;
    let mut from = 1;
    loop {
        let events = state.store.read_stream(stream, from, PAGE).await?;
        let n = events.len();
        for e in events {
            if e.recorded_at > as_of {
                return Ok(folded);
            }
            let f = folded.get_or_insert_with(|| Folded {
                state: A::default(),
                version: 0,
                first: e.clone(),
            });
            if let Some(event) = A::decode(&e).map_err(ApiError::internal)? {
                f.state.apply(&event).map_err(ApiError::internal)?;
            }
            f.version = e.stream_version;
            from = e.stream_version + 1;
        }
        if n < PAGE {
            return Ok(folded);
        }
    }
}

/// Calls a key counted and its last use, folded from its usage stream up
/// to `as_of`.
pub async fn key_usage(
    state: &AppState,
    key: Uuid,
    as_of: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>), ApiError> {
    let stream = event_schemas::key::usage_stream(key);
    let (mut calls, mut last) = (0i64, None);
    let mut from = 1;
    loop {
        let events = state.store.read_stream(&stream, from, PAGE).await?;
        let n = events.len();
        for e in &events {
            if e.recorded_at > as_of {
                return Ok((calls, last));
            }
            if let Some(UsageEvent::Recorded(u)) =
                UsageEvent::decode(e).map_err(ApiError::internal)?
            {
                calls += u.calls as i64;
                last = last.max(Some(u.last_at));
            }
            from = e.stream_version + 1;
        }
        if n < PAGE {
            return Ok((calls, last));
        }
    }
}

/// An organisation folded from its events up to an instant: its own
/// stream, its apps', keys' and webhook endpoints', and its usage.
#[derive(Default)]
pub struct OrgThen {
    /// The organisation.
    pub org: Org,
    /// Its apps, with the position of the last event touching each.
    pub apps: BTreeMap<Uuid, (App, u64)>,
    /// Its keys.
    pub keys: BTreeMap<Uuid, Key>,
    /// Its webhook endpoints: whether each still exists.
    pub endpoints: BTreeMap<Uuid, bool>,
    /// Its usage aggregates.
    pub usage: Vec<UsageRecorded>,
}

/// Folds everything of `org` recorded at or before `as_of`. The audit
/// trail's `(org_id, position)` index says which events are the org's;
/// the events themselves are read from the log and folded here.
pub async fn fold_org(
    state: &AppState,
    org: Uuid,
    as_of: DateTime<Utc>,
) -> Result<OrgThen, ApiError> {
    let mut then = OrgThen::default();
    let mut after = 0i64;
    let org_stream = crate::command::orgs::stream(org);
    loop {
        let client = state.read_models.client().await?;
        let events =
            projections::audit::read::org_events_until(&client, org, as_of, after, PAGE).await?;
        drop(client);
        let n = events.len();
        for e in events {
            after = e.global_position as i64;
            let id = e
                .stream_id
                .split_once('-')
                .and_then(|(_, id)| id.parse::<Uuid>().ok());
            match (e.category(), id) {
                ("org", _) if e.stream_id == org_stream => {
                    if let Some(ev) = <Org as Aggregate>::decode(&e).map_err(ApiError::internal)? {
                        Aggregate::apply(&mut then.org, &ev).map_err(ApiError::internal)?;
                    }
                }
                ("app", Some(id)) => {
                    if let Some(ev) = <App as Aggregate>::decode(&e).map_err(ApiError::internal)? {
                        let (app, last) = then.apps.entry(id).or_default();
                        Aggregate::apply(app, &ev).map_err(ApiError::internal)?;
                        *last = e.global_position;
                    }
                }
                ("api_key", Some(id)) => {
                    if let Some(ev) = <Key as Aggregate>::decode(&e).map_err(ApiError::internal)? {
                        Aggregate::apply(then.keys.entry(id).or_default(), &ev)
                            .map_err(ApiError::internal)?;
                    }
                }
                ("usage", _) => {
                    if let Some(UsageEvent::Recorded(u)) =
                        UsageEvent::decode(&e).map_err(ApiError::internal)?
                    {
                        then.usage.push(u);
                    }
                }
                ("webhook", Some(id)) => match e.event_type.as_str() {
                    "webhook.endpoint_created" => {
                        then.endpoints.insert(id, true);
                    }
                    "webhook.endpoint_deleted" => {
                        then.endpoints.insert(id, false);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if n < PAGE {
            return Ok(then);
        }
    }
}

/// The app as it was at `as_of`.
pub async fn app_then(
    state: &AppState,
    app: Uuid,
    as_of: DateTime<Utc>,
) -> Result<super::apps::AppView, ApiError> {
    let stream = event_schemas::app::app_stream(app);
    let f = fold::<App>(state, &stream, as_of)
        .await?
        .filter(|f| f.state.exists)
        .ok_or(ApiError::NotFound)?;
    Ok(super::apps::AppView::of(&f.state, f.version))
}

/// The key as it was at `as_of`; `None` when it did not exist yet.
pub async fn key_then(
    state: &AppState,
    key: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Option<(Uuid, super::keys::KeyView)>, ApiError> {
    let stream = event_schemas::key::key_stream(key);
    let Some(f) = fold::<Key>(state, &stream, as_of).await? else {
        return Ok(None);
    };
    let k = &f.state;
    if !k.exists {
        return Ok(None);
    }
    let (usage_count, last_used_at) = key_usage(state, key, as_of).await?;
    let metadata: event_schemas::Metadata =
        serde_json::from_str(f.first.metadata.get()).map_err(ApiError::internal)?;
    Ok(Some((
        k.app_id,
        super::keys::KeyView {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            mode: k.mode.map(|m| m.as_str().to_owned()).unwrap_or_default(),
            kind: k.kind.map(|m| m.as_str().to_owned()).unwrap_or_default(),
            scopes: k.scopes.clone(),
            usage_count,
            last_used_at,
            expires_at: k.expires_at,
            status: k.status(as_of).as_str().to_owned(),
            created_by: metadata.actor.id.unwrap_or_default(),
            created_at: f.first.recorded_at,
        },
    )))
}
