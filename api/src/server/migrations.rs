//! The API's schema migrations (and the delivery schema's), applied in
//! order at start and by `gatehouse admin migrate`.

use event_store::postgres::{migrate, Migration};

use super::error::ServerError;

/// The API's own migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_subject_keys.sql",
        sql: include_str!("../../migrations/0001_subject_keys.sql"),
    },
    Migration {
        name: "0002_idempotency_keys.sql",
        sql: include_str!("../../migrations/0002_idempotency_keys.sql"),
    },
    Migration {
        name: "0003_idempotency_owner.sql",
        sql: include_str!("../../migrations/0003_idempotency_owner.sql"),
    },
    Migration {
        name: "0004_webhook_retention_keys.sql",
        sql: include_str!("../../migrations/0004_webhook_retention_keys.sql"),
    },
    Migration {
        name: "0005_vault_root.sql",
        sql: include_str!("../../migrations/0005_vault_root.sql"),
    },
    Migration {
        name: "0006_accounts.sql",
        sql: include_str!("../../migrations/0006_accounts.sql"),
    },
    Migration {
        name: "0007_mail_notices.sql",
        sql: include_str!("../../migrations/0007_mail_notices.sql"),
    },
    Migration {
        name: "0008_signing_keys_and_salts.sql",
        sql: include_str!("../../migrations/0008_signing_keys_and_salts.sql"),
    },
];

/// Applies the API's and the delivery schema's migrations.
pub async fn migrate_all(client: &mut deadpool_postgres::Client) -> Result<(), ServerError> {
    migrate(client, "api", MIGRATIONS).await?;
    migrate(client, "delivery", delivery::MIGRATIONS).await?;
    Ok(())
}
