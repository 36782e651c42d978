-- Orders a verified webhook only named (no status, no amount) and giftrecon does not know.
-- A worker reads each from the vendor, outside any transaction, and records it as a vendor
-- record (vendor-only: a backfill candidate). Leased like outbox_jobs; one pending job per order.
CREATE TABLE vendor_fetch_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_id       TEXT NOT NULL REFERENCES vendors (id),
    vendor_order_id TEXT NOT NULL,
    -- pending | done | dead
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    run_at          TEXT NOT NULL,
    locked_by       TEXT,
    locked_until    TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX vendor_fetch_jobs_one_pending
    ON vendor_fetch_jobs (vendor_id, vendor_order_id) WHERE state = 'pending';
CREATE INDEX vendor_fetch_jobs_due ON vendor_fetch_jobs (state, run_at);
