-- Reconciliation: vendor files, the history of vendor records, runs and discrepancies.
--
-- A vendor record belongs to the business day of occurred_at (the vendor's created_at, else when
-- giftrecon first saw it); an order to the day of its created_at. A run classifies one vendor's
-- day; its counts and totals are kept so reports of a day reproduce exactly. A discrepancy is
-- keyed by (vendor, day, key) and keeps its lifecycle across runs: a resolved one reopens only
-- when its data (fingerprint) changes.

ALTER TABLE vendor_records ADD COLUMN occurred_at TEXT;
UPDATE vendor_records SET occurred_at = COALESCE(created_at, first_seen_at);
-- Only records no order claims yet: the ones linking and the vendor-only scan look at.
CREATE INDEX vendor_records_unlinked ON vendor_records (vendor_id, occurred_at)
    WHERE order_id IS NULL;
CREATE INDEX orders_day ON orders (vendor_id, created_at, id);

-- Column names of a vendor's files, for vendors whose files do not use the generic names:
-- a JSON object {field: column}.
ALTER TABLE vendors ADD COLUMN file_columns TEXT;

-- Earlier versions of vendor records: when a record changes, its previous values land here.
CREATE TABLE vendor_record_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_id       TEXT NOT NULL,
    vendor_order_id TEXT NOT NULL,
    vendor_key      TEXT,
    reference_id    TEXT,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    source          TEXT NOT NULL,
    updated_at      TEXT,
    last_seen_at    TEXT NOT NULL,
    replaced_at     TEXT NOT NULL
);
CREATE INDEX vendor_record_history_record ON vendor_record_history (vendor_id, vendor_order_id, id);

CREATE TRIGGER vendor_records_keep_history AFTER UPDATE ON vendor_records
WHEN old.amount_minor IS NOT new.amount_minor OR old.currency IS NOT new.currency
  OR old.status IS NOT new.status OR old.vendor_key IS NOT new.vendor_key
  OR old.reference_id IS NOT new.reference_id
BEGIN
    INSERT INTO vendor_record_history (vendor_id, vendor_order_id, vendor_key, reference_id,
        amount_minor, currency, status, source, updated_at, last_seen_at, replaced_at)
    VALUES (old.vendor_id, old.vendor_order_id, old.vendor_key, old.reference_id,
        old.amount_minor, old.currency, old.status, old.source, old.updated_at, old.last_seen_at,
        new.last_seen_at);
END;

-- Every file imported (vendor files and internal order files).
CREATE TABLE imports (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- vendor_file | orders
    kind       TEXT NOT NULL CHECK (kind IN ('vendor_file', 'orders')),
    vendor_id  TEXT NOT NULL REFERENCES vendors (id),
    file_name  TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    rows_read  BIGINT NOT NULL,
    inserted   BIGINT NOT NULL,
    updated    BIGINT NOT NULL,
    unchanged  BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX imports_recent ON imports (created_at);

CREATE TABLE reconciliation_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_id     TEXT NOT NULL REFERENCES vendors (id),
    business_day  TEXT NOT NULL,
    time_zone     TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    orders        BIGINT NOT NULL,
    records       BIGINT NOT NULL,
    -- {"matched": n, ...} and {"USD": {"internal_count": n, "internal_minor": n, ...}}
    counts        TEXT NOT NULL,
    totals        TEXT NOT NULL,
    actor         TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL
);
CREATE INDEX reconciliation_runs_day ON reconciliation_runs (vendor_id, business_day, id);

CREATE TABLE discrepancies (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_id           TEXT NOT NULL REFERENCES vendors (id),
    business_day        TEXT NOT NULL,
    -- the vendor key the outcome is filed under, else the vendor order id
    item_key            TEXT NOT NULL,
    class               TEXT NOT NULL CHECK (class IN ('amount_mismatch', 'currency_mismatch',
                            'status_mismatch', 'unmapped_status', 'vendor_only', 'internal_only',
                            'duplicate')),
    -- open | resolved | cleared (the data came to tie out without anyone acting)
    state               TEXT NOT NULL CHECK (state IN ('open', 'resolved', 'cleared')),
    order_id            TEXT REFERENCES orders (id),
    internal_minor      BIGINT,
    internal_currency   TEXT,
    internal_gl_state   TEXT,
    vendor_order_ids    TEXT,
    vendor_records      BIGINT NOT NULL,
    vendor_minor        BIGINT,
    vendor_currency     TEXT,
    vendor_status       TEXT,
    -- sha256 over the class and both sides' values: a change reopens a resolved item
    fingerprint         TEXT NOT NULL,
    resolution          TEXT,
    resolved_by         TEXT,
    resolved_at         TEXT,
    assignee            TEXT,
    first_run           BIGINT NOT NULL,
    last_run            BIGINT NOT NULL,
    opened_at           TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CONSTRAINT discrepancies_item_unique UNIQUE (vendor_id, business_day, item_key)
);
CREATE INDEX discrepancies_queue ON discrepancies (state, class, business_day);
CREATE INDEX discrepancies_day ON discrepancies (vendor_id, business_day);
CREATE INDEX discrepancies_order ON discrepancies (order_id);

-- What happened to a discrepancy, oldest first.
CREATE TABLE discrepancy_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    discrepancy_id BIGINT NOT NULL REFERENCES discrepancies (id),
    kind           TEXT NOT NULL,
    detail         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    at             TEXT NOT NULL
);
CREATE INDEX discrepancy_events_item ON discrepancy_events (discrepancy_id, id);

-- A closed (posted) day is never rewritten: what later data changes about it is filed here, on
-- the first open day after it, whose close then carries it. totals: signed deltas per currency.
CREATE TABLE reconciliation_adjustments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_id     TEXT NOT NULL REFERENCES vendors (id),
    closed_day    TEXT NOT NULL,
    open_day      TEXT NOT NULL,
    totals        TEXT NOT NULL,
    discrepancies BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX reconciliation_adjustments_open ON reconciliation_adjustments (vendor_id, open_day);
CREATE INDEX reconciliation_adjustments_closed ON reconciliation_adjustments (vendor_id, closed_day);
