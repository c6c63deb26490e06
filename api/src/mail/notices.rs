//! Notices by mail: every notification the product records for an app's
//! organisation (an approval decision, a key rotation required by staff, a
//! leaked key, a webhook endpoint disabled, a key about to expire) is
//! mailed to the members who manage its apps, at their **proven**
//! addresses only (an unproven address may be anyone's).
//!
//! The mailer follows the notifications read model from a checkpoint; a
//! batch's mail and the new checkpoint are written in one transaction, with
//! the checkpoint row locked, so each notice is queued once across nodes.
//! A deployment starts from the log's head when it first runs this: old
//! notices are not mailed.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use domain::roles::{allows, Permission, Role};
use tokio::sync::watch;
use uuid::Uuid;

use super::Letter;
use crate::error::ApiError;
use crate::state::AppState;

const BATCH: i64 = 100;

/// Mails new notices every `every` until `stop`.
pub async fn run(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match round(&state).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mailing notices failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Queues the mail of one batch of notices; returns how many notices.
pub async fn round(state: &AppState) -> Result<usize, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "SELECT position FROM mail_notice_checkpoint WHERE id = 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?
    else {
        return Ok(0); // another node is at it
    };
    let after: i64 = row.get(0);
    let notices = tx
        .query(
            "SELECT n.position, n.org_id, n.kind, n.message, a.name \
             FROM rm.notifications n LEFT JOIN rm.apps a USING (app_id) \
             WHERE n.position > $1 ORDER BY n.position LIMIT $2",
            &[&after, &BATCH],
        )
        .await?;
    let Some(last) = notices.last().map(|r| r.get::<_, i64>(0)) else {
        return Ok(0);
    };
    let mut queued = 0;
    for n in &notices {
        let (org, kind, message): (Uuid, String, String) = (n.get(1), n.get(2), n.get(3));
        let app: Option<String> = n.get(4);
        for (to, index, name) in recipients(state, &tx, org).await? {
            let letter = Letter::notice(
                &to,
                &name,
                &kind,
                app.as_deref().unwrap_or("an app"),
                &message,
                &state.link("/"),
            );
            super::enqueue(&tx, &state.vault, "notice", &index, &letter).await?;
            queued += 1;
        }
    }
    tx.execute(
        "UPDATE mail_notice_checkpoint SET position = $1 WHERE id = 1",
        &[&last],
    )
    .await?;
    tx.commit().await?;
    if queued > 0 {
        state.mail_wake.notify_one();
    }
    Ok(notices.len())
}

/// `(address, keyed hash, name)` of the members of `org` who manage its
/// apps and have proven their address.
async fn recipients(
    state: &AppState,
    client: &impl GenericClient,
    org: Uuid,
) -> Result<Vec<(String, String, String)>, ApiError> {
    let rows = client
        .query(
            "SELECT m.user_id, m.role, u.email_sealed, u.name_sealed, u.email_index \
             FROM rm.members m JOIN rm.users u USING (user_id) \
             WHERE m.org_id = $1 AND u.email_verified AND u.erased_at IS NULL",
            &[&org],
        )
        .await?;
    let managers: Vec<&tokio_postgres::Row> = rows
        .iter()
        .filter(|r| {
            r.get::<_, &str>(1)
                .parse::<Role>()
                .is_ok_and(|role| allows(role, Permission::ManageApps))
        })
        .collect();
    let ids: Vec<Uuid> = managers.iter().map(|r| r.get(0)).collect();
    let keys = state
        .vault
        .subject_keys(client, &ids)
        .await
        .map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for r in managers {
        let Some(key) = keys.get(&r.get::<_, Uuid>(0)) else {
            continue; // erased meanwhile
        };
        let (Ok(email), Ok(name)) = (key.open(r.get::<_, &str>(2)), key.open(r.get::<_, &str>(3)))
        else {
            tracing::error!(user = %r.get::<_, Uuid>(0), "a member's sealed address does not open");
            continue;
        };
        out.push((email, r.get(4), name));
    }
    Ok(out)
}
