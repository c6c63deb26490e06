//! One audit entry as a person reads it, rendered from the audit read model
//! and the log: names resolved, personal data opened with its subject's key
//! (`[erased]` when that key is gone), the chain fields from the event.

#[allow(unused_imports)]
use super::*;

use std::collections::{HashMap, HashSet};

use deadpool_postgres::GenericClient;
use projections::audit::read::EntryRow;

use crate::audit::client::ClientContext;
use crate::vault::{reveal, SubjectKey, ERASED};

/// Names and subjects' keys looked up while rendering, kept across the
/// chunks of an export so each is read (and each key opened) once.
#[derive(Default)]
pub struct Lookups {
    names: HashMap<Uuid, Option<String>>,
    keys: HashMap<Uuid, SubjectKey>,
    /// Subjects whose key was looked up (found or erased).
    looked_up: HashSet<Uuid>,
}

impl Lookups {
    /// Past this many names, the cache starts over: an export's memory
    /// stays bounded whatever its length.
    const MAX: usize = 100_000;
}

/// Who acted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditActor {
    /// `user`, `api_key`, `staff` or `system`.
    pub kind: String,
    /// The user's or key's id; absent for the system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The user's name (`[erased]` after erasure), the key's name, or
    /// `Gatehouse` for the system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Something the event touched.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditTarget {
    /// `org`, `app`, `api_key`, `user`, `webhook_endpoint`, `product`...
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id.
    pub id: Uuid,
    /// Its name at the time, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The request that caused the event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditContext {
    /// The request id (`x-request-id`), to join with server logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's address; `[erased]` after the actor's erasure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's user agent; `[erased]` after the actor's erasure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// One event of the history, readable by a person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// The event's global position (the cursor order).
    pub position: i64,
    /// What happened: the event type, `family.verb_past`.
    pub action: String,
    /// When it was recorded.
    pub occurred_at: DateTime<Utc>,
    /// Who did it.
    pub actor: AuditActor,
    /// What it touched, the event's own subject first.
    pub targets: Vec<AuditTarget>,
    /// For an update, each changed field: `{"field": {"before": .., "after": ..}}`.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<serde_json::Value>,
    /// The request behind it.
    pub context: AuditContext,
    /// The organisation, when the event belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// The event's place in the hash chain, hex.
    pub hash: String,
}

/// Who reads the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// An organisation's members: platform staff who acted are shown as
    /// `Gatehouse staff`, with no id, name, address or user agent (their
    /// personal data is not the organisation's).
    Organisation,
    /// Platform staff: everything.
    Staff,
}

/// The name an organisation sees for platform staff.
pub const STAFF_NAME: &str = "Gatehouse staff";

/// Renders entries as the audit read model holds them: one query for the
/// names, one for the keys of the users among them.
pub async fn render(
    state: &AppState,
    client: &impl GenericClient,
    rows: &[EntryRow],
    viewer: Viewer,
) -> Result<Vec<AuditEntry>, ApiError> {
    render_with(state, client, rows, viewer, &mut Lookups::default()).await
}

/// [`render`], with names and keys looked up before (an export's).
pub async fn render_with(
    state: &AppState,
    client: &impl GenericClient,
    rows: &[EntryRow],
    viewer: Viewer,
    lookups: &mut Lookups,
) -> Result<Vec<AuditEntry>, ApiError> {
    let mut ids: Vec<Uuid> = Vec::new();
    let mut users: Vec<Uuid> = Vec::new();
    let mut targets: Vec<Vec<AuditTarget>> = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(id) = r.actor_id.as_deref().and_then(|s| s.parse::<Uuid>().ok()) {
            ids.push(id);
            if matches!(r.actor_kind.as_str(), "user" | "staff") {
                users.push(id);
            }
        }
        let t: Vec<AuditTarget> =
            Deserialize::deserialize(&r.targets).map_err(ApiError::internal)?;
        for target in &t {
            if target.kind == "user" {
                ids.push(target.id);
                users.push(target.id);
            }
        }
        targets.push(t);
    }
    ids.sort_unstable();
    ids.dedup();
    users.sort_unstable();
    users.dedup();
    if lookups.names.len() > Lookups::MAX || lookups.looked_up.len() > Lookups::MAX {
        *lookups = Lookups::default();
    }
    ids.retain(|id| !lookups.names.contains_key(id));
    if !ids.is_empty() {
        let mut found = projections::audit::read::entity_names(client, &ids).await?;
        for id in ids {
            lookups.names.insert(id, found.remove(&id).flatten());
        }
    }
    users.retain(|id| !lookups.looked_up.contains(id));
    if !users.is_empty() {
        let found = state
            .vault
            .subject_keys(client, &users)
            .await
            .map_err(ApiError::internal)?;
        lookups.keys.extend(found);
        lookups.looked_up.extend(users);
    }
    let (names, keys) = (&lookups.names, &lookups.keys);
    // A user's name is sealed under their key; without it, erased.
    let user_name = |id: Uuid| -> Result<String, ApiError> {
        match names.get(&id).cloned().flatten() {
            Some(sealed) => Ok(reveal(keys.get(&id), &sealed)?),
            None if keys.contains_key(&id) => Ok(String::new()),
            None => Ok(ERASED.into()),
        }
    };

    let mut out = Vec::with_capacity(rows.len());
    for (r, mut targets) in rows.iter().zip(targets) {
        let actor_kind = r.actor_kind.clone();
        let actor_id = r.actor_id.clone();
        let actor_uuid = actor_id.as_deref().and_then(|s| s.parse::<Uuid>().ok());
        let actor_name = match (actor_kind.as_str(), actor_uuid) {
            ("user" | "staff", Some(id)) => Some(user_name(id)?),
            ("api_key", Some(id)) => names.get(&id).cloned().flatten(),
            ("system", _) => Some("Gatehouse".to_owned()),
            _ => None,
        };
        for t in &mut targets {
            if t.kind == "user" {
                t.name = Some(user_name(t.id)?);
            }
        }
        let (ip, user_agent) = match &r.context_sealed {
            None => (None, None),
            Some(sealed) => {
                let opened = reveal(actor_uuid.and_then(|id| keys.get(&id)), sealed)?;
                match serde_json::from_str::<ClientContext>(&opened) {
                    Ok(c) => (c.ip, c.user_agent),
                    Err(_) if opened == ERASED => {
                        (Some(ERASED.to_owned()), Some(ERASED.to_owned()))
                    }
                    Err(e) => return Err(ApiError::internal(e)),
                }
            }
        };
        let hidden = viewer == Viewer::Organisation && actor_kind == "staff";
        let (actor_id, actor_name, ip, user_agent) = if hidden {
            (None, Some(STAFF_NAME.to_owned()), None, None)
        } else {
            (actor_id, actor_name, ip, user_agent)
        };
        out.push(AuditEntry {
            position: r.position,
            action: r.event_type.clone(),
            occurred_at: r.occurred_at,
            actor: AuditActor {
                kind: actor_kind,
                id: actor_id,
                name: actor_name,
            },
            targets,
            changes: r.changes.clone(),
            context: AuditContext {
                request_id: r.request_id.clone(),
                ip,
                user_agent,
            },
            org_id: r.org_id,
            hash: hex::encode(&r.hash),
        });
    }
    Ok(out)
}
