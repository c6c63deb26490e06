//! `verify --export FILE`: checks an audit export offline, with the public
//! key alone. Every entry's hash is recomputed from the event it carries;
//! consecutive positions must link; the manifest's signature, count, first
//! and last positions, last hash and SHA-256 of the file before it must all
//! hold; and its checkpoint must be signed and cover the last entry. A
//! single changed byte anywhere fails one of these.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use event_schemas::audit::{SignedManifest, EXPORT_FORMAT};
use event_schemas::RecordedEvent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why an export does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is wrong.
    #[error("line {line}: {reason}")]
    Bad {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What a verified export holds.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// `platform` or `org:<id>`.
    pub scope: String,
    /// Entries.
    pub entries: u64,
    /// The first entry's position.
    pub first_position: Option<u64>,
    /// The last entry's position.
    pub last_position: Option<u64>,
    /// The position the export's checkpoint signs.
    pub checkpoint: u64,
    /// `jsonl` or `csv`.
    pub format: &'static str,
}

/// The fields of a JSON Lines entry that verification reads.
#[derive(Deserialize)]
struct JsonEntry {
    position: u64,
    action: String,
    hash: String,
    prev_hash: String,
    event: RecordedEvent,
}

/// One entry's chain fields and event, whatever the format.
struct Entry {
    position: u64,
    action: String,
    hash: String,
    prev_hash: String,
    event: RecordedEvent,
}

fn bad(line: usize, reason: impl Into<String>) -> ExportError {
    ExportError::Bad {
        line,
        reason: reason.into(),
    }
}

/// Splits `bytes` into lines, each with its end.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|b| *b == b'\n').collect()
}

fn csv_fields(line: &[u8], n: usize) -> Result<Vec<String>, ExportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let record = reader
        .records()
        .next()
        .ok_or_else(|| bad(n, "an empty CSV line"))?
        .map_err(|e| bad(n, format!("not CSV: {e}")))?;
    Ok(record.iter().map(str::to_owned).collect())
}

fn entry(line: &[u8], n: usize, csv: bool) -> Result<Entry, ExportError> {
    if !csv {
        let text = std::str::from_utf8(line).map_err(|_| bad(n, "not UTF-8"))?;
        let e: JsonEntry =
            serde_json::from_str(text).map_err(|e| bad(n, format!("not an entry: {e}")))?;
        return Ok(Entry {
            position: e.position,
            action: e.action,
            hash: e.hash,
            prev_hash: e.prev_hash,
            event: e.event,
        });
    }
    let f = csv_fields(line, n)?;
    if f.len() != 15 {
        return Err(bad(n, format!("{} columns, not 15", f.len())));
    }
    Ok(Entry {
        position: f[0]
            .parse()
            .map_err(|_| bad(n, "position is not a number"))?,
        action: f[2].clone(),
        hash: f[12].clone(),
        prev_hash: f[13].clone(),
        event: serde_json::from_str(&f[14]).map_err(|e| bad(n, format!("event: {e}")))?,
    })
}

/// Verifies the export at `path` with `key`.
pub fn verify_export(path: &Path, key: &VerifyingKey) -> Result<ExportReport, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let all = lines(&bytes);
    let Some((manifest_line, body)) = all.split_last() else {
        return Err(bad(1, "the file is empty: no manifest"));
    };
    let n_manifest = all.len();
    let csv = body
        .first()
        .is_some_and(|l| l.starts_with(b"position,occurred_at,"));
    let manifest: SignedManifest = if csv {
        let f = csv_fields(manifest_line, n_manifest)?;
        if f.len() != 2 || f[0] != "manifest" {
            return Err(bad(
                n_manifest,
                "the last line is not the manifest: the export is cut short",
            ));
        }
        serde_json::from_str(&f[1])
    } else {
        serde_json::from_slice(manifest_line)
    }
    .map_err(|_| {
        bad(
            n_manifest,
            "the last line is not the manifest: the export is cut short",
        )
    })?;
    manifest
        .verify(key)
        .map_err(|e| bad(n_manifest, format!("the manifest: {e}")))?;
    let m = &manifest.manifest;
    if m.format != EXPORT_FORMAT {
        return Err(bad(n_manifest, format!("unknown format {}", m.format)));
    }
    let mut digest = Sha256::new();
    for l in body {
        digest.update(l);
    }
    if hex::encode(digest.finalize()) != m.sha256 {
        return Err(bad(
            n_manifest,
            "the file before the manifest is not what was signed (SHA-256 differs)",
        ));
    }

    let mut count = 0u64;
    let (mut first, mut last): (Option<u64>, Option<(u64, String)>) = (None, None);
    let skip = usize::from(csv);
    for (i, line) in body.iter().enumerate().skip(skip) {
        let n = i + 1;
        let e = entry(line, n, csv)?;
        let ev = &e.event;
        if ev.computed_hash() != ev.hash {
            return Err(bad(n, "the event's hash does not match its contents"));
        }
        if e.hash != hex::encode(ev.hash) || e.prev_hash != hex::encode(ev.prev_hash) {
            return Err(bad(n, "the entry's chain fields differ from its event's"));
        }
        if e.position != ev.global_position || e.action != ev.event_type {
            return Err(bad(
                n,
                "the entry's position or action differ from its event's",
            ));
        }
        if let Some((p, h)) = &last {
            if e.position <= *p {
                return Err(bad(n, "positions do not increase"));
            }
            if e.position == p + 1 && e.prev_hash != *h {
                return Err(bad(n, "does not link to the entry before it"));
            }
        }
        first.get_or_insert(e.position);
        last = Some((e.position, e.hash));
        count += 1;
    }
    let last_position = last.as_ref().map(|(p, _)| *p);
    if count != m.count || first != m.first_position || last_position != m.last_position {
        return Err(bad(
            n_manifest,
            format!(
                "the manifest lists {} entries from {:?} to {:?}; the file holds {count} from {first:?} to {last_position:?}",
                m.count, m.first_position, m.last_position
            ),
        ));
    }
    if last.as_ref().map(|(_, h)| h) != m.last_hash.as_ref() {
        return Err(bad(n_manifest, "the last hash differs from the manifest's"));
    }
    let checkpoint = m.checkpoint.position;
    if let Some((p, h)) = &last {
        if *p > checkpoint {
            return Err(bad(
                n_manifest,
                "entries lie beyond the export's checkpoint",
            ));
        }
        if *p == checkpoint && *h != m.checkpoint.hash {
            return Err(bad(
                n_manifest,
                "the last entry differs from the checkpoint at its position",
            ));
        }
    }
    Ok(ExportReport {
        scope: m.scope.clone(),
        entries: count,
        first_position: first,
        last_position,
        checkpoint,
        format: if csv { "csv" } else { "jsonl" },
    })
}
