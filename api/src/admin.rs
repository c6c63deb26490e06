//! `gatehouse admin`: operator commands that run against the database
//! directly, such as making the first platform staff member.

use event_schemas::user::{AccountEvent, SessionsRevoked, StaffGranted, StaffRevoked};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::launcher::{self, LaunchOptions};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{AppendError, EventStore, EventStoreExt, StreamAppend};

use crate::config::{AdminArgs, AdminCommand};
use crate::server::error::ServerError;
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
    let mut vault = Vault::load(
        args.kek.as_deref(),
        args.previous_kek.as_deref(),
        &args.db.data_dir,
    )?;
    {
        let mut client = store
            .pool()
            .get()
            .await
            .map_err(event_store::StoreError::from)?;
        crate::server::migrations::migrate_all(&mut client).await?;
        vault.attach_root(&client).await?;
    }
    let outcome = match args.command {
        AdminCommand::CreateStaff { email } => create_staff(&store, &vault, &email)
            .await
            .map(|done| println!("{done}")),
        AdminCommand::RevokeStaff { email } => revoke_staff(&store, &vault, &email)
            .await
            .map(|done| println!("{done}")),
        AdminCommand::RotateKek { new_kek } => {
            rotate_kek(
                &store,
                &vault,
                args.kek.is_some(),
                new_kek,
                &args.db.data_dir,
            )
            .await
        }
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
    let purged = crate::webhooks::retention::purge(
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

/// Rotates the KEK (see [`crate::vault::rotate`]); prints what it resealed.
pub async fn rotate_kek(
    store: &PgStore,
    old: &Vault,
    configured: bool,
    new_kek: Option<String>,
    data_dir: &std::path::Path,
) -> Result<(), ServerError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let new_text =
        match (new_kek, configured) {
            (Some(text), _) => text.trim().to_owned(),
            (None, false) => {
                let mut key = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                b64.encode(key)
            }
            (None, true) => return Err(ServerError::Refused(
                "GATEHOUSE_KEK is configured: pass the new key with --new-kek (32 random bytes, \
                 base64: openssl rand -base64 32)"
                    .into(),
            )),
        };
    let new: [u8; 32] = b64
        .decode(&new_text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::Refused("--new-kek must be 32 bytes, base64".into()))?;
    let next = old.successor(new);
    if !configured {
        // The new key is on disk before anything is sealed with it.
        let path = data_dir.join("kek");
        let previous = std::fs::read_to_string(&path)
            .map_err(|e| ServerError::Refused(format!("{}: {e}", path.display())))?;
        write_key(&data_dir.join("kek.previous"), &previous)?;
        write_key(&path, &new_text)?;
    }
    let done = crate::vault::rotate::rotate(store, old, &next)
        .await
        .map_err(|e| {
            ServerError::Refused(format!("rotating the KEK (run it again to finish): {e}"))
        })?;
    println!(
        "resealed {} subject keys, {} token signing keys and the secrets of {} webhook \
         endpoints under KEK {}",
        done.subject_keys, done.signing_keys, done.endpoints, done.kek_id
    );
    if configured {
        println!(
            "run every node with GATEHOUSE_KEK=<the new key> and GATEHOUSE_PREVIOUS_KEK=<the old \
             one> for a day, then drop GATEHOUSE_PREVIOUS_KEK"
        );
    } else {
        println!(
            "the new KEK is in {}/kek, the old one in kek.previous (restart the server; remove \
             kek.previous after a day)",
            data_dir.display()
        );
    }
    Ok(())
}

/// Writes a key file (mode 0600) by rename, so it is never half written.
fn write_key(path: &std::path::Path, text: &str) -> Result<(), ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.trim().as_bytes())
                .and_then(|()| f.sync_all())
        })
        .map_err(|e| ServerError::Refused(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| ServerError::Refused(format!("{}: {e}", path.display())))
}

/// The account holding `email`, which must have proven it.
async fn verified_account(
    store: &PgStore,
    vault: &Vault,
    email: &str,
) -> Result<(String, uuid::Uuid), ServerError> {
    use crate::accounts::directory;
    let normalised = domain::validate::email(email)
        .ok_or_else(|| ServerError::Refused(format!("{email:?} is not an email address")))?;
    let index = vault.email_index(&normalised);
    let refused = |e: crate::error::ApiError| ServerError::Refused(format!("reading the log: {e}"));
    let address = directory::address(store, &index).await.map_err(refused)?;
    let Some(user_id) = address.holder else {
        return Err(ServerError::Refused(format!(
            "no account has proven {normalised}: sign up (POST /v1/users) and open the link mailed \
             to the address, then run this again"
        )));
    };
    let account = directory::account(store, user_id).await.map_err(refused)?;
    if !account.email_verified || !account.can_sign_in() {
        return Err(ServerError::Refused(format!(
            "the account holding {normalised} has not proven it: open the link mailed to the \
             address (or ask for a new one with POST /v1/me/email-verification), then run this again"
        )));
    }
    Ok((normalised, user_id))
}

/// Whether `user` is staff now, and the version of their staff stream.
async fn staff_state(store: &PgStore, user_id: uuid::Uuid) -> Result<(bool, u64), ServerError> {
    let events = store
        .read_stream(&format!("staff-{user_id}"), 1, 100_000)
        .await?;
    let mut staff = false;
    for e in &events {
        match AccountEvent::decode(e) {
            Ok(Some(AccountEvent::StaffGranted(_))) => staff = true,
            Ok(Some(AccountEvent::StaffRevoked(_))) => staff = false,
            _ => {}
        }
    }
    Ok((staff, events.last().map_or(0, |e| e.stream_version)))
}

fn expected(version: u64) -> ExpectedVersion {
    match version {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v),
    }
}

/// Grants platform staff to the account holding `email`, which must have
/// proven the address; says what it did.
pub async fn create_staff(
    store: &PgStore,
    vault: &Vault,
    email: &str,
) -> Result<String, ServerError> {
    let (normalised, user_id) = verified_account(store, vault, email).await?;
    let (staff, version) = staff_state(store, user_id).await?;
    if staff {
        return Ok(format!(
            "{normalised} ({user_id}) is already platform staff"
        ));
    }
    let event = AccountEvent::StaffGranted(StaffGranted { user_id });
    match store
        .append(
            &format!("staff-{user_id}"),
            expected(version),
            vec![NewEvent::from_domain(&event, Metadata::by(Actor::system()))],
        )
        .await
    {
        Ok(_) => Ok(format!("{normalised} ({user_id}) is now platform staff")),
        Err(AppendError::Conflict { .. }) => Err(ServerError::Refused(
            "the staff grant changed meanwhile; run this again".into(),
        )),
        Err(e) => Err(ServerError::Refused(format!(
            "cannot record the grant: {e}"
        ))),
    }
}

/// Ends the staff grant of the account holding `email`, and every session
/// of that account; says what it did.
pub async fn revoke_staff(
    store: &PgStore,
    vault: &Vault,
    email: &str,
) -> Result<String, ServerError> {
    let normalised = domain::validate::email(email)
        .ok_or_else(|| ServerError::Refused(format!("{email:?} is not an email address")))?;
    let index = vault.email_index(&normalised);
    let address = crate::accounts::directory::address(store, &index)
        .await
        .map_err(|e| ServerError::Refused(format!("reading the log: {e}")))?;
    // Staff can only have been granted to the holder, but look at every
    // account that ever registered the address.
    let mut revoked = Vec::new();
    for user_id in address.holder.iter().chain(address.registered.iter()) {
        let (staff, version) = staff_state(store, *user_id).await?;
        if !staff || revoked.contains(user_id) {
            continue;
        }
        let metadata = Metadata::by(Actor::system());
        let user_stream = crate::accounts::directory::user_stream(*user_id);
        store
            .append_all(vec![
                StreamAppend::new(
                    format!("staff-{user_id}"),
                    expected(version),
                    vec![NewEvent::from_domain(
                        &AccountEvent::StaffRevoked(StaffRevoked { user_id: *user_id }),
                        metadata.clone(),
                    )],
                ),
                StreamAppend::new(
                    user_stream,
                    ExpectedVersion::Any,
                    vec![NewEvent::from_domain(
                        &AccountEvent::SessionsRevoked(SessionsRevoked {
                            user_id: *user_id,
                            reason: "staff_revoked".into(),
                            except: None,
                        }),
                        metadata,
                    )],
                ),
            ])
            .await
            .map_err(|e| ServerError::Refused(format!("cannot record the revocation: {e}")))?;
        revoked.push(*user_id);
    }
    Ok(match revoked.as_slice() {
        [] => format!("no account with {normalised} is platform staff"),
        ids => format!(
            "{normalised} ({}) is no longer platform staff; its sessions ended",
            ids.iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}
