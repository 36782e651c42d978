-- Foundation schema: vendors, their webhook secrets, and users.
-- Conventions for every later migration: money is BIGINT minor units beside a CHAR(3) ISO 4217
-- code (never REAL); timestamps are UTC (TEXT in RFC 3339 here, TIMESTAMPTZ on PostgreSQL).

CREATE TABLE vendors (
    id             TEXT PRIMARY KEY NOT NULL,
    kind           TEXT NOT NULL,
    base_url       TEXT,
    -- JSON object: vendor status (lowercase) -> GL state. Seeded from the kind's defaults.
    status_mapping TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE vendor_webhook_secrets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_id  TEXT NOT NULL REFERENCES vendors (id),
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
CREATE INDEX vendor_webhook_secrets_vendor ON vendor_webhook_secrets (vendor_id);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL,
    -- lowercase username: one account per name whatever its case
    username_key  TEXT NOT NULL,
    role          TEXT NOT NULL
        CHECK (role IN ('admin', 'finance_preparer', 'finance_approver', 'support')),
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CONSTRAINT users_username_key_unique UNIQUE (username_key)
);
