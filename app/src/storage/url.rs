//! Which database to use, parsed from `DATABASE_URL` (or the configuration file).

use std::fmt;
use std::path::PathBuf;

/// The file used when nothing is configured: `giftrecon.db` in the working directory.
pub const DEFAULT_SQLITE_FILE: &str = "giftrecon.db";

/// A parsed database location. Its `Display` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite { path: PathBuf, raw: String },
    Postgres { raw: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatabaseUrlError {
    #[error("DATABASE_URL is empty")]
    Empty,
    #[error(
        "DATABASE_URL {shown:?} is not a database URL giftrecon understands: use sqlite://FILE or postgres://HOST/DATABASE"
    )]
    UnknownScheme { shown: String },
    #[error("DATABASE_URL {shown:?} names no SQLite file")]
    MissingSqlitePath { shown: String },
    #[error("DATABASE_URL {shown:?} is malformed: {reason}")]
    Malformed { shown: String, reason: String },
}

impl DatabaseUrl {
    /// The zero-configuration default.
    pub fn default_sqlite() -> Self {
        DatabaseUrl::Sqlite {
            path: PathBuf::from(DEFAULT_SQLITE_FILE),
            raw: format!("sqlite://{DEFAULT_SQLITE_FILE}"),
        }
    }

    pub fn parse(input: &str) -> Result<Self, DatabaseUrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(DatabaseUrlError::Empty);
        }
        let shown = redact(input);
        if let Some(rest) = input.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(DatabaseUrlError::MissingSqlitePath { shown });
            }
            if path == ":memory:" {
                return Err(DatabaseUrlError::Malformed {
                    shown,
                    reason: "an in-memory database would lose every order at exit; name a file"
                        .into(),
                });
            }
            return Ok(DatabaseUrl::Sqlite {
                path: PathBuf::from(path),
                raw: input.to_string(),
            });
        }
        if input.starts_with("postgres://") || input.starts_with("postgresql://") {
            let after = input.split_once("://").map(|(_, r)| r).unwrap_or_default();
            let host_part = after.rsplit_once('@').map(|(_, h)| h).unwrap_or(after);
            let host = host_part.split(['/', '?']).next().unwrap_or_default();
            if host.is_empty() && !input.contains("host=") {
                return Err(DatabaseUrlError::Malformed {
                    shown,
                    reason: "no host given".into(),
                });
            }
            if let Some(port) = host.rsplit_once(':').map(|(_, p)| p) {
                if !host.ends_with(']') && port.parse::<u16>().is_err() {
                    return Err(DatabaseUrlError::Malformed {
                        shown,
                        reason: format!("port {port:?} is not a number from 0 to 65535"),
                    });
                }
            }
            return Ok(DatabaseUrl::Postgres {
                raw: input.to_string(),
            });
        }
        Err(DatabaseUrlError::UnknownScheme { shown })
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite { .. } => Backend::Sqlite,
            DatabaseUrl::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The URL as given, including any password: for the driver only, never for output.
    pub fn expose(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite { raw, .. } | DatabaseUrl::Postgres { raw } => raw,
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite { path, .. } => write!(f, "SQLite file {}", path.display()),
            DatabaseUrl::Postgres { raw } => write!(f, "PostgreSQL {}", redact(raw)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The two supported database engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Replaces the password in `scheme://user:password@host` (and `password=` query parameters).
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                out = format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    if let Some(start) = out.find("password=") {
        let value_start = start + "password=".len();
        let end = out[value_start..]
            .find('&')
            .map(|i| value_start + i)
            .unwrap_or(out.len());
        out.replace_range(value_start..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_forms() {
        for (input, path) in [
            ("sqlite://giftrecon.db", "giftrecon.db"),
            ("sqlite:data/x.db", "data/x.db"),
            ("sqlite:///var/lib/g.db", "/var/lib/g.db"),
            ("sqlite://g.db?mode=rwc", "g.db"),
        ] {
            match DatabaseUrl::parse(input).unwrap() {
                DatabaseUrl::Sqlite { path: p, .. } => assert_eq!(p, PathBuf::from(path)),
                other => panic!("{input} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn postgres_forms() {
        for input in [
            "postgres://127.0.0.1/test",
            "postgresql://u:p@db:5432/x?sslmode=disable",
            "postgres://[::1]:5432/x",
        ] {
            assert_eq!(
                DatabaseUrl::parse(input).unwrap().backend(),
                Backend::Postgres
            );
        }
    }

    #[test]
    fn bad_urls_are_named_without_passwords() {
        let err = DatabaseUrl::parse("mysql://root:hunter2@h/db").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mysql://root:***@h/db"), "{msg}");
        assert!(!msg.contains("hunter2"));
        assert!(matches!(
            DatabaseUrl::parse("postgres://u:pw@h:notaport/db"),
            Err(DatabaseUrlError::Malformed { .. })
        ));
        assert_eq!(DatabaseUrl::parse(" "), Err(DatabaseUrlError::Empty));
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        assert!(DatabaseUrl::parse("postgres:///db").is_err());
        assert!(DatabaseUrl::parse("giftrecon.db").is_err());
    }

    #[test]
    fn display_hides_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db/giftrecon?password=x2").unwrap();
        let shown = url.to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("x2"),
            "{shown}"
        );
        assert!(format!("{url:?}").contains("***"));
    }
}
