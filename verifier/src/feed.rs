//! Applying the log to the index: keys issued, rotated and revoked; apps
//! created, suspended, reinstated, deleted, granted products; plans set;
//! usage recorded by other nodes. Everything else is skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use domain::apps::Mode;
use domain::keys::format::{self, KeyHash};
use domain::keys::KeyKind;
use event_schemas::app::AppEvent;
use event_schemas::key::{KeyEvent, KeyIssued, UsageEvent, UsageRecorded};
use event_schemas::oauth::{OAuthClientEvent, SigningKeyEvent};
use event_schemas::org::{OrgEvent, PlanSet};
use event_schemas::{RecordedEvent, SchemaError};
use uuid::Uuid;

use crate::state::{Entry, Index, Inner, NEVER};

/// An event the index cannot take: the log and the code disagree.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// It does not decode.
    #[error("event at position {position} does not decode")]
    Schema {
        /// Where.
        position: u64,
        /// Why.
        #[source]
        source: SchemaError,
    },
    /// It decodes but refers to what does not exist or carries an unknown
    /// value.
    #[error("event at position {position}: {reason}")]
    Invalid {
        /// Where.
        position: u64,
        /// What.
        reason: String,
    },
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The app events that change what a key of the app verifies as (or the
/// browser origins its verdict names).
fn affects_keys(e: &AppEvent) -> bool {
    matches!(
        e,
        AppEvent::Created(_)
            | AppEvent::Updated(_)
            | AppEvent::Deleted(_)
            | AppEvent::Suspended(_)
            | AppEvent::Reinstated(_)
            | AppEvent::AccessRequested(_)
            | AppEvent::AccessApproved(_)
            | AppEvent::AccessRejected(_)
    )
}

fn stream_uuid(e: &RecordedEvent, category: &str) -> Result<Uuid, FeedError> {
    e.stream_id
        .strip_prefix(category)
        .and_then(|s| s.strip_prefix('-'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| FeedError::Invalid {
            position: e.global_position,
            reason: format!("expected a {category}-<uuid> stream, got {}", e.stream_id),
        })
}

impl Index {
    /// Applies a batch of the log, in order. Events at or before the
    /// index's position are skipped, so a batch may overlap what was
    /// loaded.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<(), FeedError> {
        let now = self.clock.now_ms();
        let mut inner = self.inner.write();
        for e in events {
            if e.global_position <= inner.position {
                continue;
            }
            inner.apply_event(e, now)?;
            inner.position = e.global_position;
        }
        let position = inner.position;
        drop(inner);
        self.applied.send_replace(position);
        Ok(())
    }

    /// Sets the position reached without events (a load's checkpoint).
    pub fn set_position(&self, position: u64) {
        self.inner.write().position = position;
        self.applied.send_replace(position);
    }

    /// Loads one key as the read model holds it.
    pub fn load_key(&self, key: LoadedKey) {
        self.inner.write().insert_key(key);
    }

    /// Loads one OAuth client as the read model holds it.
    pub fn load_client(
        &self,
        client_id: Uuid,
        app_id: Uuid,
        org_id: Uuid,
        mode: Mode,
        revoked: bool,
    ) {
        self.inner
            .write()
            .insert_client(client_id, app_id, org_id, mode, revoked);
    }

    /// Loads one signing key (in the order they were added).
    pub fn load_signing_key(
        &self,
        kid: &str,
        public: &str,
        retires_ms: Option<i64>,
    ) -> Result<(), String> {
        let mut inner = self.inner.write();
        inner.add_signing_key(kid, public, None)?;
        if let (Some(last), Some(at)) = (inner.signing.last_mut(), retires_ms) {
            last.2 = at;
        }
        Ok(())
    }

    /// Loads one app's status events (already in the read model's order).
    pub fn load_app(&self, app_id: Uuid, org_id: Uuid, events: &[AppEvent]) -> Result<(), String> {
        let mut inner = self.inner.write();
        let slot = inner.app_slot(app_id, org_id);
        for e in events {
            inner.apps[slot as usize].app.apply(e)?;
        }
        inner.refresh_app(slot);
        Ok(())
    }

    /// Loads an organisation's plan and the calls already counted in the
    /// window starting at `counted_window`.
    pub fn load_org(&self, org_id: Uuid, plan: Option<&PlanSet>, counted_window: i64, calls: u64) {
        let mut inner = self.inner.write();
        let slot = inner.org_slot(org_id) as usize;
        if let Some(p) = plan {
            inner.set_plan(slot, p);
        }
        let org = &inner.orgs[slot];
        org.counted_window.store(counted_window, Ordering::Relaxed);
        org.logged.store(calls, Ordering::Relaxed);
    }
}

/// A key as the read model holds it.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// Id.
    pub key_id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// SHA-256.
    pub hash: KeyHash,
    /// Mode.
    pub mode: Mode,
    /// Kind.
    pub kind: KeyKind,
    /// Scopes of a restricted key.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_ms: Option<i64>,
    /// End of a rotation's overlap.
    pub stops_ms: Option<i64>,
    /// Revoked.
    pub revoked: bool,
    /// Rate limit and its window in seconds.
    pub rate_limit: Option<(u32, u8)>,
    /// For a key imported from another platform (not in this deployment's
    /// format), its visible start: keys starting like it are looked up.
    pub imported_prefix: Option<String>,
}

impl LoadedKey {
    fn from_issued(e: &KeyIssued, position: u64) -> Result<Self, FeedError> {
        let invalid = |reason: String| FeedError::Invalid { position, reason };
        Ok(LoadedKey {
            key_id: e.key_id,
            app_id: e.app_id,
            org_id: e.org_id,
            hash: format::parse_hash(&e.hash)
                .ok_or_else(|| invalid("a key hash that is not 64 hex digits".into()))?,
            mode: Mode::parse(&e.mode)
                .ok_or_else(|| invalid(format!("unknown mode {:?}", e.mode)))?,
            kind: KeyKind::parse(&e.kind)
                .ok_or_else(|| invalid(format!("unknown kind {:?}", e.kind)))?,
            scopes: e.scopes.clone(),
            expires_ms: e.expires_at.map(ms),
            stops_ms: None,
            revoked: false,
            rate_limit: match (e.rate_limit, e.rate_limit_window_secs) {
                (Some(l), Some(w)) => Some((
                    l,
                    u8::try_from(w)
                        .map_err(|_| invalid("a rate limit window over 255 s".into()))?,
                )),
                _ => None,
            },
            imported_prefix: e.imported.then(|| e.prefix.clone()),
        })
    }
}

impl Inner {
    fn apply_event(&mut self, e: &RecordedEvent, now: i64) -> Result<(), FeedError> {
        let schema = |source| FeedError::Schema {
            position: e.global_position,
            source,
        };
        let invalid = |reason: String| FeedError::Invalid {
            position: e.global_position,
            reason,
        };
        if let Some(k) = KeyEvent::decode(e).map_err(schema)? {
            let key_id = stream_uuid(e, "api_key")?;
            match k {
                KeyEvent::Issued(i) => {
                    let key = LoadedKey::from_issued(&i, e.global_position)?;
                    self.insert_key(key);
                }
                KeyEvent::Rotated(r) => {
                    self.key_mut(key_id).map_err(invalid)?.stops_ms = ms(r.stops_at)
                }
                KeyEvent::Revoked(_) => self.key_mut(key_id).map_err(invalid)?.revoked = true,
                // A revocation, if any, is its own event.
                KeyEvent::LeakReported(_) => {}
                KeyEvent::RotationRequired(r) => {
                    let entry = self.key_mut(key_id).map_err(invalid)?;
                    entry.stops_ms = entry.stops_ms.min(ms(r.stops_at));
                }
            }
        } else if let Some(a) = AppEvent::decode(e).map_err(schema)? {
            if !affects_keys(&a) {
                return Ok(());
            }
            let app_id = stream_uuid(e, "app")?;
            let org_id = match &a {
                AppEvent::Created(c) => c.org_id,
                _ => match self.app_ids.get(&app_id) {
                    Some(&slot) => self.apps[slot as usize].app.org_id,
                    None => {
                        return Err(invalid(format!(
                            "an event of app {app_id} before its creation"
                        )))
                    }
                },
            };
            let slot = self.app_slot(app_id, org_id);
            self.apps[slot as usize].app.apply(&a).map_err(invalid)?;
            self.refresh_app(slot);
        } else if let Some(c) = OAuthClientEvent::decode(e).map_err(schema)? {
            let client_id = stream_uuid(e, "oauth_client")?;
            match c {
                OAuthClientEvent::Created(c) => {
                    let mode = Mode::parse(&c.mode)
                        .ok_or_else(|| invalid(format!("unknown mode {:?}", c.mode)))?;
                    self.insert_client(client_id, c.app_id, c.org_id, mode, false);
                }
                OAuthClientEvent::SecretRotated(_) | OAuthClientEvent::LeakReported(_) => {}
                OAuthClientEvent::Revoked(_) => {
                    self.clients
                        .get_mut(&client_id)
                        .ok_or_else(|| {
                            invalid(format!(
                                "an event of client {client_id} before its creation"
                            ))
                        })?
                        .revoked = true;
                }
            }
        } else if let Some(SigningKeyEvent::Added(k)) =
            SigningKeyEvent::decode(e).map_err(schema)?
        {
            self.add_signing_key(&k.kid, &k.public_key, k.previous_retires_at.map(ms))
                .map_err(invalid)?;
        } else if let Some(OrgEvent::PlanSet(p)) = OrgEvent::decode(e).map_err(schema)? {
            let org_id = stream_uuid(e, "org")?;
            let slot = self.org_slot(org_id) as usize;
            self.set_plan(slot, &p);
        } else if let Some(UsageEvent::Recorded(u)) = UsageEvent::decode(e).map_err(schema)? {
            if !self.own_usage.remove(&e.event_id) {
                self.count_logged(&u, now);
            }
        }
        Ok(())
    }

    pub(crate) fn insert_client(
        &mut self,
        client_id: Uuid,
        app_id: Uuid,
        org_id: Uuid,
        mode: Mode,
        revoked: bool,
    ) {
        let app = self.app_slot(app_id, org_id);
        self.clients.insert(
            client_id,
            crate::state::ClientEntry {
                app,
                mode,
                revoked,
                meter: Default::default(),
            },
        );
    }

    /// A new signing key; the one before stops at `previous_retires_ms`.
    pub(crate) fn add_signing_key(
        &mut self,
        kid: &str,
        public: &str,
        previous_retires_ms: Option<i64>,
    ) -> Result<(), String> {
        let key = crate::token::public_key(public)
            .ok_or_else(|| format!("signing key {kid}: not an Ed25519 public key"))?;
        if let (Some(last), Some(at)) = (self.signing.last_mut(), previous_retires_ms) {
            last.2 = at;
        }
        self.signing.push((kid.to_owned(), key, NEVER));
        Ok(())
    }

    fn key_mut(&mut self, key_id: Uuid) -> Result<&mut Entry, String> {
        let slot = *self
            .by_id
            .get(&key_id)
            .ok_or_else(|| format!("an event of key {key_id} before its issue"))?;
        Ok(&mut self.entries[slot as usize])
    }

    pub(crate) fn insert_key(&mut self, k: LoadedKey) {
        let app = self.app_slot(k.app_id, k.org_id);
        let scopes = self.intern(&k.scopes);
        if let Some(prefix) = &k.imported_prefix {
            let family = domain::keys::format::family_of(prefix);
            if !self.imported_families.contains(family) {
                self.imported_families.insert(family.into());
            }
        }
        let (rate_limit, rate_window_secs) = k.rate_limit.unwrap_or((0, 1));
        let entry = Entry {
            key_id: k.key_id,
            expires_ms: k.expires_ms.unwrap_or(NEVER),
            stops_ms: k.stops_ms.unwrap_or(NEVER),
            rate_state: AtomicU64::new(0),
            meter: Default::default(),
            app,
            scopes,
            rate_limit,
            rate_window_secs: rate_window_secs.max(1),
            mode: k.mode,
            kind: k.kind,
            revoked: k.revoked,
        };
        match self.by_id.get(&k.key_id) {
            // Issued twice (a replayed load): the newer wins in place.
            Some(&slot) => self.entries[slot as usize] = entry,
            None => {
                let slot = self.entries.len() as u32;
                self.entries.push(entry);
                self.by_id.insert(k.key_id, slot);
                self.keys.insert(k.hash, slot);
            }
        }
    }

    /// Recomputes what a secret key of the app carries.
    pub(crate) fn refresh_app(&mut self, slot: u32) {
        let entry = &mut self.apps[slot as usize];
        let scopes = |mode| -> Arc<[String]> {
            Arc::from(
                entry
                    .app
                    .approved_scopes(mode)
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
        };
        entry.scopes = [scopes(Mode::Test), scopes(Mode::Live)];
        if *entry.origins != *entry.app.origins {
            entry.origins = Arc::from(entry.app.origins.clone());
        }
    }

    fn set_plan(&mut self, slot: usize, p: &PlanSet) {
        let org = &mut self.orgs[slot];
        org.limit = Some(p.monthly_call_limit);
        org.window = (ms(p.billing_window_start), ms(p.billing_window_end));
    }

    /// Adds another node's (or an earlier run's) usage to its
    /// organisation's count, when it falls in the window being counted.
    fn count_logged(&mut self, u: &UsageRecorded, now: i64) {
        if u.source != "verify" {
            return;
        }
        let slot = self.org_slot(u.org_id) as usize;
        let org = &self.orgs[slot];
        let Some(current) = org.roll(now) else {
            return;
        };
        let window = domain::orgs::billing_window(org.window.0, org.window.1, ms(u.from));
        if window == Some(current) {
            org.logged.fetch_add(u.calls, Ordering::Relaxed);
        }
    }
}
