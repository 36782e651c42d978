-- Daily close: GL accounts per vendor, clearing journal entries with maker-checker, their posted
-- exports, and closed (locked) days.
--
-- An entry is per (vendor, business day, currency) and moves draft → submitted → approved →
-- posted; every move is a conditional UPDATE on the state, so two people racing cannot both win.
-- content_hash is the SHA-256 of the entry's content; submitted_hash is the content submitted, so
-- an entry changed after submission cannot be approved. Posted exports are stored as written,
-- so a closed day's files reproduce byte for byte.

-- A vendor without a row uses the default accounts (1190 / 2010 / 1999).
CREATE TABLE vendor_gl_accounts (
    vendor_id      TEXT PRIMARY KEY NOT NULL REFERENCES vendors (id),
    clearing_code  TEXT NOT NULL,
    clearing_name  TEXT NOT NULL,
    payable_code   TEXT NOT NULL,
    payable_name   TEXT NOT NULL,
    suspense_code  TEXT NOT NULL,
    suspense_name  TEXT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE journal_entries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id      TEXT NOT NULL REFERENCES vendors (id),
    business_day   DATE NOT NULL,
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    state          TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'approved', 'posted')),
    memo           TEXT NOT NULL,
    content_hash   TEXT NOT NULL,
    -- the totals the entry was proposed from
    internal_count BIGINT NOT NULL,
    internal_minor BIGINT NOT NULL,
    vendor_count   BIGINT NOT NULL,
    vendor_minor   BIGINT NOT NULL,
    prepared_by    TEXT NOT NULL,
    prepared_at    TIMESTAMPTZ NOT NULL,
    submitted_by   TEXT,
    submitted_at   TIMESTAMPTZ,
    submitted_hash TEXT,
    approved_by    TEXT,
    approved_at    TIMESTAMPTZ,
    posted_by      TEXT,
    posted_at      TIMESTAMPTZ,
    CONSTRAINT journal_entries_day_currency_unique UNIQUE (vendor_id, business_day, currency)
);

CREATE TABLE journal_lines (
    entry_id      BIGINT NOT NULL REFERENCES journal_entries (id) ON DELETE CASCADE,
    line_no       BIGINT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('debit', 'credit')),
    account_code  TEXT NOT NULL,
    account_name  TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    description   TEXT NOT NULL,
    PRIMARY KEY (entry_id, line_no)
);

-- The files written when an entry was posted, exactly as written.
CREATE TABLE journal_exports (
    entry_id    BIGINT NOT NULL REFERENCES journal_entries (id),
    format      TEXT NOT NULL CHECK (format IN ('generic', 'qbo', 'xero')),
    content     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (entry_id, format)
);

-- A (vendor, day) whose entries are all posted: nothing may change it any more.
CREATE TABLE closed_days (
    vendor_id    TEXT NOT NULL REFERENCES vendors (id),
    business_day DATE NOT NULL,
    closed_by    TEXT NOT NULL,
    closed_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (vendor_id, business_day)
);

CREATE FUNCTION journal_exports_written_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal_exports are written once';
END;
$$;

CREATE TRIGGER journal_exports_no_update_or_delete BEFORE UPDATE OR DELETE ON journal_exports
    FOR EACH ROW EXECUTE FUNCTION journal_exports_written_once();
