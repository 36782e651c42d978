//! PostgreSQL: the least a role needs to run `giftrecon serve`, so the audit trail stays
//! append-only even against the application's own credentials.
//!
//! The tables belong to the role that runs the migrations. The application role gets read and
//! write on the tables it works with, but on `audit_log` only SELECT and INSERT; as it is not
//! the table's owner (nor a superuser) it can neither disable the triggers that refuse UPDATE,
//! DELETE and TRUNCATE, nor alter or drop the table.

use super::Db;

/// Why a role cannot be set up as the application role.
#[derive(Debug, thiserror::Error)]
pub enum AppRoleError {
    #[error("application roles are a PostgreSQL feature; a SQLite file is protected by its file permissions")]
    NotPostgres,
    #[error("role name {0:?} must be 1-63 letters, digits or '_', not starting with a digit")]
    InvalidName(String),
    #[error("role {0:?} does not exist: create it first (CREATE ROLE {0} LOGIN PASSWORD '…')")]
    NoSuchRole(String),
    #[error("role {0:?} is a superuser: it could disable the audit trail's triggers; use a role without SUPERUSER")]
    Superuser(String),
    #[error(
        "the audit_log table does not exist: run `giftrecon migrate` (as the owning role) first"
    )]
    NotMigrated,
    #[error("role {role:?} owns the tables (or is a member of their owner {owner:?}): it could disable the audit trail's triggers; use a separate role for the application")]
    Owner { role: String, owner: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Grants `role` what the application needs in the current database and schema. Idempotent:
/// run again after each migration so new tables are covered. Returns the number of tables.
pub async fn grant_app_role(db: &Db, role: &str) -> Result<i64, AppRoleError> {
    let Db::Postgres(pool) = db else {
        return Err(AppRoleError::NotPostgres);
    };
    if !valid_name(role) {
        return Err(AppRoleError::InvalidName(role.to_string()));
    }
    let found: Option<(bool,)> = sqlx::query_as("SELECT rolsuper FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_optional(pool)
        .await?;
    match found {
        None => return Err(AppRoleError::NoSuchRole(role.to_string())),
        Some((true,)) => return Err(AppRoleError::Superuser(role.to_string())),
        Some((false,)) => {}
    }
    let owner: Option<(String, bool)> = sqlx::query_as(
        "SELECT tableowner::text, pg_has_role($1, tableowner, 'MEMBER') FROM pg_tables
          WHERE schemaname = current_schema() AND tablename = 'audit_log'",
    )
    .bind(role)
    .fetch_optional(pool)
    .await?;
    match owner {
        None => return Err(AppRoleError::NotMigrated),
        Some((owner, true)) => {
            return Err(AppRoleError::Owner {
                role: role.to_string(),
                owner,
            })
        }
        Some((_, false)) => {}
    }
    let (database, schema): (String, String) =
        sqlx::query_as("SELECT current_database()::text, current_schema()::text")
            .fetch_one(pool)
            .await?;
    let (r, d, s) = (quote(role), quote(&database), quote(&schema));
    let statements = [
        format!("GRANT CONNECT ON DATABASE {d} TO {r}"),
        // Bulk imports copy their rows into temporary tables; a hardened database may have
        // taken this from PUBLIC.
        format!("GRANT TEMPORARY ON DATABASE {d} TO {r}"),
        format!("GRANT USAGE ON SCHEMA {s} TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}"),
        // The trail: read and append, nothing else.
        format!("REVOKE ALL ON {s}.audit_log FROM {r}"),
        format!("GRANT SELECT, INSERT ON {s}.audit_log TO {r}"),
        // The row every append locks: it is updated, never removed.
        format!("REVOKE ALL ON {s}.audit_chain_head FROM {r}"),
        format!("GRANT SELECT, UPDATE ON {s}.audit_chain_head TO {r}"),
        // Migrations are the owner's business; the app only checks they are all applied.
        format!("REVOKE ALL ON {s}._sqlx_migrations FROM {r}"),
        format!("GRANT SELECT ON {s}._sqlx_migrations TO {r}"),
    ];
    let mut tx = pool.begin().await?;
    for statement in &statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for good in ["giftrecon_app", "App1", "_x"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "1app", "app-role", "a\"b", "app role", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
