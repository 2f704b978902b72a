//! Test support: a fresh PostgreSQL database per test.
//!
//! Tests on PostgreSQL need a real server. `ASSAY_TEST_POSTGRES` names one (an admin URL such as
//! `postgres://postgres:assay@127.0.0.1:5432/postgres`); `make test` and `.ci/run` install and start one on loopback
//! and set it. Without it the PostgreSQL tests fail, on purpose: a skipped backend would read as a passing one.

use sqlx::postgres::PgPoolOptions;

/// The environment variable naming the admin URL of the test server.
pub const POSTGRES_ENV: &str = "ASSAY_TEST_POSTGRES";

/// Create an empty database on the test server and return its URL.
///
/// # Panics
/// When `ASSAY_TEST_POSTGRES` is unset or the server refuses: tests should fail loudly then.
pub async fn fresh_postgres_database() -> String {
    let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_ENV} is not set: PostgreSQL tests need a server (run `make test`, which starts one, or set \
             {POSTGRES_ENV}=postgres://USER:PASSWORD@127.0.0.1:5432/postgres)"
        )
    });
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL test server at {admin}: {e}"));
    let name = format!("assay_test_{}", uuid::Uuid::new_v4().simple());
    // A database name cannot be a bound parameter; this one is generated above from hex digits only.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    pool.close().await;
    let (base, _) = admin
        .rsplit_once('/')
        .expect("a PostgreSQL URL has a database path");
    format!("{base}/{name}")
}
