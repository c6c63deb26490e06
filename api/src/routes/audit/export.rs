//! Exports: an organisation's history (`GET /v1/orgs/{org}/audit/export`,
//! owners and compliance reviewers) or the platform's (`GET
//! /v1/staff/audit/export`), streamed as JSON Lines or, with `Accept:
//! text/csv`, CSV, in constant memory: one page of entries at a time.
//!
//! Each line is a readable entry plus its chain fields and the event as
//! stored (payload and metadata as their exact JSON text, personal data as
//! ciphertext), so every entry's hash can be recomputed offline. The last
//! line is a signed manifest: the count, the first and last positions, the
//! last hash, the SHA-256 of every byte before it, and a checkpoint signed
//! for this export, so `gatehouse-replay verify --export FILE` needs only
//! the public key. An export that fails midway ends without a manifest,
//! which verification refuses.

#[allow(unused_imports)]
use super::*;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use event_schemas::audit::{ExportManifest, EXPORT_FORMAT};
use event_schemas::RecordedEvent;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Entries read from the export's cursor at a time.
const CHUNK: i32 = 1000;

/// Columns of a CSV export, in order.
const CSV_HEADER: &str = "position,occurred_at,action,actor_kind,actor_id,actor_name,targets,changes,org_id,request_id,ip,user_agent,hash,prev_hash,event\n";

/// One line of a JSON Lines export.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    entry: &'a AuditEntry,
    prev_hash: String,
    event: &'a RecordedEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
}

fn format_of(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Jsonl
    }
}

/// A CSV field, quoted. A field a spreadsheet would read as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return: a user
/// named `=HYPERLINK(...)`, say) is prefixed with `'`, so it shows as text
/// and runs nothing. The columns a verifier reads (positions, hashes, the
/// action, the event's JSON) never start with one of those.
fn csv(field: &str) -> String {
    let guard = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        "'"
    } else {
        ""
    };
    format!("\"{guard}{}\"", field.replace('"', "\"\""))
}

fn csv_line(entry: &AuditEntry, event: &RecordedEvent) -> Result<String, serde_json::Error> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        entry.position.to_string(),
        entry.occurred_at.to_rfc3339(),
        entry.action.clone(),
        entry.actor.kind.clone(),
        opt(&entry.actor.id),
        opt(&entry.actor.name),
        serde_json::to_string(&entry.targets)?,
        entry
            .changes
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?
            .unwrap_or_default(),
        entry.org_id.map(|o| o.to_string()).unwrap_or_default(),
        opt(&entry.context.request_id),
        opt(&entry.context.ip),
        opt(&entry.context.user_agent),
        entry.hash.clone(),
        hex::encode(event.prev_hash),
        serde_json::to_string(event)?,
    ];
    let mut line = fields.iter().map(|f| csv(f)).collect::<Vec<_>>().join(",");
    line.push('\n');
    Ok(line)
}

/// Streams the entries matching `c` up to a checkpoint signed now.
async fn export(
    state: AppState,
    min: MinPosition,
    c: Conditions,
    scope: String,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    min.wait(&state, &["audit"]).await?;
    let checkpoint = crate::audit::signer::checkpoint(&state).await?;
    // Every entry up to the checkpoint must be in the read model.
    state
        .statuses
        .wait_for(&["audit"], checkpoint.position, state.read_wait)
        .await?;
    let format = format_of(headers);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        if let Err(e) = write(&state, c, scope, checkpoint, format, &tx).await {
            tracing::error!(error = %e, "an audit export failed midway");
            let _ = tx
                .send(Err(std::io::Error::other("the export failed midway")))
                .await;
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let (content_type, name) = match format {
        Format::Jsonl => ("application/x-ndjson", "audit.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv"),
    };
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .expect("a fixed file name is a valid header"),
    );
    Ok(res)
}

/// A chunk of entries rendered for the reader, with their events.
type Rendered = (Vec<AuditEntry>, Vec<RecordedEvent>);

/// Reads the entries matching `base` up to `upto` in one snapshot, a chunk
/// at a time, and sends each rendered; names and keys are looked up once
/// for the whole export.
async fn read_rendered(
    state: AppState,
    base: Conditions,
    upto: i64,
    out: mpsc::Sender<Result<Rendered, ApiError>>,
) {
    let run = async {
        let mut client = state.read_models.client().await?;
        let snapshot = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut cursor =
            projections::audit::read::ExportCursor::open(&snapshot, &base.filter, upto).await?;
        let mut lookups = Lookups::default();
        loop {
            let rows = cursor
                .next(&snapshot, CHUNK)
                .await
                .map_err(ApiError::internal)?;
            if rows.is_empty() {
                return Ok::<_, ApiError>(());
            }
            let (rows, events): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
            let entries = render_with(&state, &snapshot, &rows, base.viewer, &mut lookups).await?;
            if out.send(Ok((entries, events))).await.is_err() {
                return Ok(()); // the writer stopped
            }
        }
    };
    if let Err(e) = run.await {
        let _ = out.send(Err(e)).await;
    }
}

async fn write(
    state: &AppState,
    base: Conditions,
    scope: String,
    checkpoint: event_schemas::audit::CheckpointSigned,
    format: Format,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ApiError> {
    let mut digest = Sha256::new();
    let send = |bytes: Vec<u8>, digest: &mut Sha256| {
        digest.update(&bytes);
        tx.send(Ok(Bytes::from(bytes)))
    };
    if format == Format::Csv {
        send(CSV_HEADER.as_bytes().to_vec(), &mut digest)
            .await
            .map_err(|_| ApiError::Internal("the client went away".into()))?;
    }
    let upto = checkpoint.position as i64;
    let (mut count, mut first, mut last, mut last_hash) = (0u64, None, None, None);
    // Two stages on two cores: a task reads and renders chunks, this one
    // writes them out (JSON or CSV, the digest), a couple of chunks apart.
    let (chunks, mut rendered) = mpsc::channel::<Result<Rendered, ApiError>>(2);
    let reader = tokio::spawn(read_rendered(state.clone(), base, upto, chunks));
    while let Some(chunk) = rendered.recv().await {
        let (entries, events) = chunk?;
        let mut chunk = Vec::with_capacity(64 * 1024);
        for (entry, event) in entries.iter().zip(&events) {
            match format {
                Format::Jsonl => {
                    serde_json::to_writer(
                        &mut chunk,
                        &Line {
                            entry,
                            prev_hash: hex::encode(event.prev_hash),
                            event,
                        },
                    )
                    .map_err(ApiError::internal)?;
                    chunk.push(b'\n');
                }
                Format::Csv => chunk.extend(
                    csv_line(entry, event)
                        .map_err(ApiError::internal)?
                        .into_bytes(),
                ),
            }
            count += 1;
            first.get_or_insert(entry.position as u64);
            last = Some(entry.position as u64);
            last_hash = Some(entry.hash.clone());
        }
        if send(chunk, &mut digest).await.is_err() {
            reader.abort();
            return Ok(()); // the client went away
        }
    }
    reader.await.map_err(ApiError::internal)?;
    let manifest = state.audit_key.sign_manifest(ExportManifest {
        format: EXPORT_FORMAT.into(),
        scope,
        count,
        first_position: first,
        last_position: last,
        last_hash,
        sha256: hex::encode(digest.finalize()),
        exported_at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .unwrap_or_default(),
        checkpoint,
    });
    let json = serde_json::to_string(&manifest).map_err(ApiError::internal)?;
    let line = match format {
        Format::Jsonl => format!("{json}\n"),
        Format::Csv => format!("{},{}\n", csv("manifest"), csv(&json)),
    };
    let _ = tx.send(Ok(Bytes::from(line))).await;
    Ok(())
}

/// Exports the organisation's history (owners and compliance reviewers).
#[utoipa::path(get, path = "/v1/orgs/{org}/audit/export", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), AuditFilter),
    responses(
        (status = 200, description = "JSON Lines (or CSV with `Accept: text/csv`) ending with a signed manifest",
            content(("application/x-ndjson"), ("text/csv"))),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn org_export(
    State(state): State<AppState>,
    member: OrgMember,
    min: MinPosition,
    headers: HeaderMap,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, ApiError> {
    member.require(Permission::ExportAudit)?;
    let c = conditions(&filter, Some(member.org))?;
    export(state, min, c, format!("org:{}", member.org), &headers).await
}

/// Exports the platform's whole history (staff).
#[utoipa::path(get, path = "/v1/staff/audit/export", tag = "audit",
    params(("org" = Option<Uuid>, Query, description = "Only this organisation"), AuditFilter),
    responses(
        (status = 200, description = "JSON Lines (or CSV with `Accept: text/csv`) ending with a signed manifest",
            content(("application/x-ndjson"), ("text/csv"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn staff_export(
    State(state): State<AppState>,
    _staff: Staff,
    min: MinPosition,
    headers: HeaderMap,
    Query(filter): Query<AuditFilter>,
    Query(scope): Query<StaffScope>,
) -> Result<Response, ApiError> {
    let mut c = conditions(&filter, scope.org)?;
    c.viewer = Viewer::Staff;
    let name = match scope.org {
        Some(org) => format!("org:{org}"),
        None => "platform".to_owned(),
    };
    export(state, min, c, name, &headers).await
}

#[cfg(test)]
mod tests {
    use super::csv;

    #[test]
    fn a_field_a_spreadsheet_would_run_is_text() {
        assert_eq!(csv("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for formula in ["+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv(formula).starts_with("\"'"), "{formula}");
        }
        assert_eq!(csv("Ada"), "\"Ada\"");
        assert_eq!(csv("{\"a\":1}"), "\"{\"\"a\"\":1}\"");
    }
}
