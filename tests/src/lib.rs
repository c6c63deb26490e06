//! Support for Gatehouse's black-box tests: one private PostgreSQL cluster per
//! test run (started with the same launcher as `gatehouse serve`), a fresh
//! database per test, and servers on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod browser;
pub mod console;
pub mod keys;
pub mod mail;
pub mod process;
pub mod server;
pub mod webhooks;

use std::sync::OnceLock;

use event_store::launcher::{LaunchOptions, LocalPostgres};
use tokio_postgres::NoTls;

static CLUSTER: OnceLock<LocalPostgres> = OnceLock::new();

/// The test run's cluster, started on first use and stopped (by the
/// launcher's watchdog) when the test process exits.
pub fn cluster() -> &'static LocalPostgres {
    CLUSTER.get_or_init(|| {
        let dir = std::env::var_os("GATEHOUSE_TEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/gatehouse-it")
            });
        LocalPostgres::start(
            &dir,
            &LaunchOptions {
                durable: false,
                max_connections: 400,
            },
        )
        .expect("the test cluster starts (PostgreSQL server binaries must be installed)")
    })
}

/// A database of its own for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Connection settings.
    pub config: tokio_postgres::Config,
    /// A libpq connection string, for child processes.
    pub conninfo: String,
}

/// Creates a fresh, empty database.
pub async fn fresh_db() -> TestDb {
    let pg = cluster();
    let (client, conn) = pg.config("postgres").connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY"
        ))
        .await
        .unwrap();
    TestDb {
        config: pg.config(&name),
        conninfo: pg.conninfo(&name),
        name,
    }
}

impl TestDb {
    /// A plain client on this database, for assertions and tampering.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = self.config.connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// What `gatehouse-replay stats` reports of the log: the head and the
    /// count of each event type. Equal before and after a refused command
    /// means it appended nothing.
    pub async fn log_stats(&self) -> (i64, Vec<(String, i64)>) {
        let pool = event_store::postgres::pool(&self.config, 1);
        let stats = replay_tools::stats(&pool).await.unwrap();
        let by_type = stats
            .by_type
            .into_iter()
            .map(|c| (c.name, c.events))
            .collect();
        (stats.head, by_type)
    }
}

impl TestDb {
    /// [`TestDb::log_stats`] without `usage.recorded`: usage of earlier
    /// verifications is flushed on the clock's minutes, whenever they fall,
    /// so a test that verified keys compares everything else.
    pub async fn log_stats_but_usage(&self) -> Vec<(String, i64)> {
        let (_, by_type) = self.log_stats().await;
        by_type
            .into_iter()
            .filter(|(t, _)| t != "usage.recorded")
            .collect()
    }
}

/// Makes the account holding `email` platform staff, as
/// `gatehouse admin create-staff` does (the account must have proven its
/// address: `TestServer::verify_email`).
pub async fn make_staff(db: &TestDb, email: &str) {
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    let vault = api::vault::Vault::new([7u8; 32]);
    api::admin::create_staff(&store, &vault, email)
        .await
        .unwrap();
}

/// Every place in the database (`schema.table.column`) where one of
/// `needles` occurs: text as text, JSON as its text, and BYTEA decoded to
/// its bytes (a hex rendering would hide a plaintext).
pub async fn search_every_table(db: &TestDb, needles: &[String]) -> Vec<String> {
    let client = db.client().await;
    let columns = client
        .query(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type \
             FROM information_schema.columns c \
             JOIN information_schema.tables t USING (table_schema, table_name) \
             WHERE t.table_type = 'BASE TABLE' \
               AND c.table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap();
    let mut found = Vec::new();
    for c in columns {
        let (schema, table, column, kind): (String, String, String, String) =
            (c.get(0), c.get(1), c.get(2), c.get(3));
        let place = format!("{schema}.{table}.{column}");
        let quoted = format!("\"{schema}\".\"{table}\"");
        let values: Vec<Vec<u8>> = if kind == "bytea" {
            client
                .query(
                    &format!("SELECT \"{column}\" FROM {quoted} WHERE \"{column}\" IS NOT NULL"),
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, Vec<u8>>(0))
                .collect()
        } else {
            client
                .query(
                    &format!(
                        "SELECT \"{column}\"::text FROM {quoted} WHERE \"{column}\" IS NOT NULL"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0).into_bytes())
                .collect()
        };
        for needle in needles {
            let n = needle.as_bytes();
            if values.iter().any(|v| v.windows(n.len()).any(|w| w == n)) {
                found.push(format!("{needle:?} in {place}"));
            }
        }
    }
    found
}
