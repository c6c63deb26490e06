//! `verify`: recomputes the hash chain over the whole log, checks stream
//! versions, and checks the chain against every signed checkpoint (those in
//! the log and those kept outside it), so a history rewritten by whoever
//! can write the database, every hash recomputed, or cut short, is found.

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::Pool;
use ed25519_dalek::VerifyingKey;
use event_schemas::audit::CheckpointSigned;
use event_schemas::GENESIS_HASH;
use event_store::postgres::read_all_with;
use event_store::StoreError;
use serde::Serialize;

/// Events read per page while verifying.
const PAGE: usize = 10_000;

/// The first place the log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log does not verify at position {position}: {reason}")]
pub struct BadPosition {
    /// The first bad global position.
    pub position: u64,
    /// What is wrong there.
    pub reason: String,
}

/// Why verification could not finish or failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log is broken at a position.
    #[error(transparent)]
    Bad(#[from] BadPosition),
    /// The database failed.
    #[error("reading the log")]
    Store(#[from] StoreError),
    /// No connection.
    #[error("connection pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A query failed.
    #[error("database")]
    Postgres(#[from] tokio_postgres::Error),
}

/// What to check the chain against.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// The audit public keys (the current one, and earlier ones after a
    /// rotation); without one, checkpoints cannot be trusted and are not
    /// checked. Each checkpoint is checked with the key it names.
    pub public_keys: Vec<VerifyingKey>,
    /// Checkpoints kept outside the database (the server's witness file,
    /// copies of `GET /v1/audit/checkpoints`, export manifests).
    pub witnesses: Vec<CheckpointSigned>,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// The head position.
    pub head: u64,
    /// Signed checkpoints the chain matched (none without a public key).
    pub checkpoints: u64,
    /// The newest checkpoint's position, if any was checked.
    pub newest_checkpoint: Option<u64>,
}

fn bad(position: u64, reason: String) -> VerifyError {
    VerifyError::Bad(BadPosition { position, reason })
}

/// Every checkpoint to check against, by the position it signs, each
/// signature checked with the key.
async fn checkpoints(
    client: &deadpool_postgres::Client,
    anchors: &Anchors,
) -> Result<BTreeMap<u64, CheckpointSigned>, VerifyError> {
    if anchors.public_keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut all: Vec<(Option<u64>, CheckpointSigned)> = anchors
        .witnesses
        .iter()
        .map(|c| (None, c.clone()))
        .collect();
    for row in client
        .query(
            "SELECT global_position, data::text FROM events \
             WHERE event_type = 'audit.checkpoint_signed' ORDER BY global_position",
            &[],
        )
        .await?
    {
        let at = row.get::<_, i64>(0) as u64;
        let data: String = row.get(1);
        let c = serde_json::from_str(&data).map_err(|e| {
            bad(
                at,
                format!("the checkpoint recorded here does not decode: {e}"),
            )
        })?;
        all.push((Some(at), c));
    }
    let mut by_position: BTreeMap<u64, CheckpointSigned> = BTreeMap::new();
    for (at, c) in all {
        let whose = at.map_or("a witnessed checkpoint".to_owned(), |p| {
            format!("the checkpoint recorded at {p}")
        });
        let key = anchors
            .public_keys
            .iter()
            .find(|k| event_schemas::audit::key_id(k) == c.key_id)
            .unwrap_or(&anchors.public_keys[0]);
        c.verify(key)
            .map_err(|e| bad(at.unwrap_or(c.position), format!("{whose}: {e}")))?;
        if let Some(held) = by_position.get(&c.position) {
            if held.hash != c.hash {
                return Err(bad(
                    c.position,
                    "two checkpoints signed by the key disagree about this position".into(),
                ));
            }
        }
        by_position.insert(c.position, c);
    }
    Ok(by_position)
}

/// Recomputes the hash chain over the whole log and checks that positions
/// are gap-free, every `prev_hash` links to the previous event, every stored
/// hash matches its recomputation, stream versions run 1, 2, 3..., the head
/// row agrees with the last event, and the chain passes through every
/// checkpoint signed by the audit key, the newest included.
pub async fn verify(
    pool: &Pool,
    anchors: &Anchors,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let client = pool.get().await?;
    let signed = checkpoints(&client, anchors).await?;
    let mut prev = GENESIS_HASH;
    let mut position = 0u64;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut matched = 0u64;
    loop {
        let page = match read_all_with(&client, position, PAGE).await {
            Ok(p) => p,
            Err(StoreError::Corrupt { position, reason }) => return Err(bad(position, reason)),
            Err(e) => return Err(e.into()),
        };
        if page.is_empty() {
            break;
        }
        for e in &page {
            let p = e.global_position;
            if p != position + 1 {
                return Err(bad(
                    position + 1,
                    format!("missing; the next event is at {p}"),
                ));
            }
            if e.prev_hash != prev {
                return Err(bad(
                    p,
                    "prev_hash does not link to the previous event".into(),
                ));
            }
            if e.computed_hash() != e.hash {
                return Err(bad(
                    p,
                    "the stored hash does not match the event's contents".into(),
                ));
            }
            if let Some(c) = signed.get(&p) {
                if hex::encode(e.hash) != c.hash {
                    return Err(bad(
                        p,
                        format!(
                            "the chain differs from the checkpoint signed at {}: \
                             the history up to here was rewritten",
                            c.signed_at.to_rfc3339()
                        ),
                    ));
                }
                matched += 1;
            }
            let v = versions.entry(e.stream_id.clone()).or_insert(0);
            if e.stream_version != *v + 1 {
                return Err(bad(
                    p,
                    format!(
                        "stream {} jumps from version {} to {}",
                        e.stream_id, v, e.stream_version
                    ),
                ));
            }
            *v = e.stream_version;
            prev = e.hash;
            position = p;
        }
        progress(position);
    }
    if let Some((&beyond, c)) = signed.range(position + 1..).next_back() {
        return Err(bad(
            position + 1,
            format!(
                "the log ends at {position}, but a checkpoint signed at {} covers position {beyond}: \
                 its tail was cut off",
                c.signed_at.to_rfc3339()
            ),
        ));
    }
    let head = client
        .query_one("SELECT position, hash FROM log_head WHERE id", &[])
        .await?;
    let head_position = head.get::<_, i64>(0) as u64;
    let head_hash: &[u8] = head.get(1);
    if head_position != position {
        return Err(bad(
            position.min(head_position) + 1,
            format!("the head says {head_position} but the log ends at {position}"),
        ));
    }
    if head_hash != prev {
        return Err(bad(
            position,
            "the head's hash does not match the last event".into(),
        ));
    }
    Ok(VerifyReport {
        events: position,
        streams: versions.len() as u64,
        head: head_position,
        checkpoints: matched,
        newest_checkpoint: signed.keys().next_back().copied(),
    })
}
