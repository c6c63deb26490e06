//! Schema migrations: SQL files in the repository, applied in order at start,
//! once, under a transaction-scoped advisory lock so that concurrent starts do
//! not race.

use deadpool_postgres::Client;

use crate::StoreError;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// File name; the order of application and the key it is recorded under.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Applies the migrations of `set` that have not been applied yet.
pub async fn migrate(
    client: &mut Client,
    set: &'static str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7242351); \
         CREATE TABLE IF NOT EXISTS schema_migrations ( \
             migration_set TEXT NOT NULL, name TEXT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
             PRIMARY KEY (migration_set, name))",
    )
    .await?;
    let applied: Vec<String> = tx
        .query(
            "SELECT name FROM schema_migrations WHERE migration_set = $1",
            &[&set],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for m in migrations {
        if applied.iter().any(|a| a == m.name) {
            continue;
        }
        tx.batch_execute(m.sql)
            .await
            .map_err(|source| StoreError::Migration {
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (migration_set, name) VALUES ($1, $2)",
            &[&set, &m.name],
        )
        .await?;
        tracing::info!(set, migration = m.name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}
