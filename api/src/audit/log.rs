//! The log as the audit trail's readers read it: pages of the signed
//! checkpoints. (An export reads each entry's event with the entry, through
//! `projections::audit::read::ExportCursor`.)

use deadpool_postgres::GenericClient;
use event_schemas::audit::{CheckpointSigned, CHECKPOINT_STREAM};

use crate::error::ApiError;

/// A page of the signed checkpoints, newest first, recorded before the
/// position `before`: at most `limit`, each with its own global position.
pub async fn checkpoints(
    client: &impl GenericClient,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, CheckpointSigned)>, ApiError> {
    client
        .query(
            "SELECT global_position, data::text FROM events WHERE stream_id = $1 \
             AND ($2::int8 IS NULL OR global_position < $2) \
             ORDER BY stream_version DESC LIMIT $3",
            &[&CHECKPOINT_STREAM, &before, &limit],
        )
        .await?
        .iter()
        .map(|r| {
            let data: String = r.get(1);
            serde_json::from_str::<CheckpointSigned>(&data)
                .map(|c| (r.get(0), c))
                .map_err(ApiError::internal)
        })
        .collect()
}
