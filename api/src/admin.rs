//! `gatehouse admin`: operator commands that run against the database
//! directly, such as making the first platform staff member.

use event_schemas::user::{AccountEvent, StaffGranted};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::launcher::{self, LaunchOptions};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{AppendError, EventStore, EventStoreExt};

use crate::config::{AdminArgs, AdminCommand};
use crate::server::ServerError;
use crate::vault::Vault;

/// Runs an admin command.
pub async fn run(args: AdminArgs) -> Result<(), ServerError> {
    let opened = launcher::open(
        args.db.database_url.as_deref(),
        &args.db.data_dir,
        LaunchOptions::default(),
    )
    .await?;
    let store = PgStore::connect(
        opened.config.clone(),
        PgStoreOptions {
            pool_size: 2,
            ..PgStoreOptions::default()
        },
    )
    .await?;
    let vault = Vault::load(args.kek.as_deref(), &args.db.data_dir)?;
    let outcome = match args.command {
        AdminCommand::CreateStaff { email } => create_staff(&store, &vault, &email)
            .await
            .map(|done| println!("{done}")),
        AdminCommand::PurgeWebhookPayloads {
            retention_days,
            as_of,
        } => purge_webhook_payloads(&store, retention_days, as_of).await,
    };
    drop(store);
    drop(opened);
    outcome
}

/// Purges webhook payloads older than `retention_days` before `as_of`
/// (default now); prints what it recorded.
pub async fn purge_webhook_payloads(
    store: &PgStore,
    retention_days: u32,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ServerError> {
    {
        let mut client = store
            .pool()
            .get()
            .await
            .map_err(event_store::StoreError::from)?;
        crate::server::migrate_all(&mut client).await?;
    }
    let purged = crate::routes::webhooks::retention::purge(
        store,
        store.pool(),
        None,
        as_of.unwrap_or_else(chrono::Utc::now),
        chrono::Duration::days(retention_days.into()),
    )
    .await
    .map_err(|e| ServerError::Refused(format!("purging webhook payloads: {e}")))?;
    match purged {
        Some(p) => println!(
            "purged {} payloads published before {} ({} day keys destroyed)",
            p.messages, p.before, p.keys
        ),
        None => println!("no webhook payload is past its retention"),
    }
    Ok(())
}

/// Grants platform staff to the account holding `email`; says what it did.
pub async fn create_staff(
    store: &PgStore,
    vault: &Vault,
    email: &str,
) -> Result<String, ServerError> {
    let normalised = domain::validate::email(email)
        .ok_or_else(|| ServerError::Refused(format!("{email:?} is not an email address")))?;
    let index = vault.email_index(&normalised);
    let claim = store.read_stream(&format!("email-{index}"), 1, 1).await?;
    let user_id = claim
        .first()
        .and_then(|e| AccountEvent::decode(e).ok().flatten())
        .and_then(|e| match e {
            AccountEvent::EmailClaimed(c) => Some(c.user_id),
            _ => None,
        })
        .ok_or_else(|| {
            ServerError::Refused(format!(
                "no account with email {normalised}; sign up first (POST /v1/users), then run this again"
            ))
        })?;
    let event = AccountEvent::StaffGranted(StaffGranted { user_id });
    match store
        .append(
            &format!("staff-{user_id}"),
            ExpectedVersion::NoStream,
            vec![NewEvent::from_domain(&event, Metadata::by(Actor::system()))],
        )
        .await
    {
        Ok(_) => Ok(format!("{normalised} ({user_id}) is now platform staff")),
        Err(AppendError::Conflict { .. }) => Ok(format!(
            "{normalised} ({user_id}) is already platform staff"
        )),
        Err(e) => Err(ServerError::Refused(format!(
            "cannot record the grant: {e}"
        ))),
    }
}
