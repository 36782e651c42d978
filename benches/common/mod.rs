//! What every benchmark shares: settings from the environment and a fresh database per run.
#![allow(dead_code)] // each benchmark includes this file and uses part of it

use anyhow::Context;
use sqlx::Connection;

/// A setting from the environment, or its default.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Removes the benchmark's database when awaited.
pub type Cleanup = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A fresh, empty database of `backend` (sqlite or postgres) and how to remove it.
pub async fn database(backend: &str) -> anyhow::Result<(String, Cleanup)> {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            Ok((url, Box::pin(async move { drop(dir) })))
        }
        "postgres" => {
            let server = std::env::var("GIFTRECON_TEST_PG")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("giftrecon_bench_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                .await
                .context("PostgreSQL for the benchmark")?;
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await?;
            let url = format!("{server}/{name}");
            Ok((
                url,
                Box::pin(async move {
                    let _ = sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }),
            ))
        }
        other => anyhow::bail!("BENCH_DB: unknown database {other:?} (sqlite or postgres)"),
    }
}
