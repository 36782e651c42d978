-- Foundation schema: vendors, their webhook secrets, and users.
-- Conventions for every later migration: money is BIGINT minor units beside a CHAR(3) ISO 4217
-- code (never REAL, DOUBLE or NUMERIC); timestamps are TIMESTAMPTZ in UTC.

CREATE TABLE vendors (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    base_url       TEXT,
    -- JSON object: vendor status (lowercase) -> GL state. Seeded from the kind's defaults.
    status_mapping TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE vendor_webhook_secrets (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id  TEXT NOT NULL REFERENCES vendors (id),
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);
CREATE INDEX vendor_webhook_secrets_vendor ON vendor_webhook_secrets (vendor_id);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL,
    -- lowercase username: one account per name whatever its case
    username_key  TEXT NOT NULL,
    role          TEXT NOT NULL
        CHECK (role IN ('admin', 'finance_preparer', 'finance_approver', 'support')),
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_username_key_unique UNIQUE (username_key)
);
