-- Webhooks, vendor records and the poller.
--
-- A verified webhook is stored in webhook_inbox before it is acknowledged; (vendor_id, event_id)
-- is unique, so a repeat delivery changes nothing. Every order a vendor tells us about, by webhook,
-- poll or file, is upserted into vendor_records keyed by (vendor_id, vendor_order_id); matching to
-- orders is by vendor_key = orders.vendor_key, and records with no order are vendor-only
-- (backfill candidates for reconciliation).

CREATE TABLE webhook_inbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id   TEXT NOT NULL REFERENCES vendors (id),
    -- the vendor's event id; for an unparseable body, "sha256:<hex of the body>"
    event_id    TEXT NOT NULL,
    event_type  TEXT,
    -- JSON object of the headers that matter (signature, id, timestamp, content type)
    headers     TEXT NOT NULL,
    body        BYTEA NOT NULL,
    -- applied | ignored | sync_queued | rejected
    state       TEXT NOT NULL CHECK (state IN ('applied', 'ignored', 'sync_queued', 'rejected')),
    error       TEXT,
    order_id    TEXT REFERENCES orders (id),
    received_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT webhook_inbox_event_unique UNIQUE (vendor_id, event_id)
);
CREATE INDEX webhook_inbox_received ON webhook_inbox (vendor_id, received_at);

CREATE TABLE vendor_records (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id         TEXT NOT NULL REFERENCES vendors (id),
    vendor_order_id   TEXT NOT NULL,
    -- the idempotency key / external id the vendor echoes (our orders.vendor_key)
    vendor_key        TEXT,
    reference_id      TEXT,
    brand_id          TEXT,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    -- the vendor's status word, and the GL state it maps to (NULL: unmapped)
    status            TEXT NOT NULL,
    gl_state          TEXT CHECK (gl_state IN ('pending', 'fulfilled', 'refunded', 'failed')),
    -- the matched order, NULL while vendor-only
    order_id          TEXT REFERENCES orders (id),
    -- where the latest state came from: webhook | poll | file
    source            TEXT NOT NULL CHECK (source IN ('webhook', 'poll', 'file')),
    created_at        TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ,
    first_seen_at     TIMESTAMPTZ NOT NULL,
    last_seen_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT vendor_records_vendor_order_unique UNIQUE (vendor_id, vendor_order_id)
);
CREATE INDEX vendor_records_vendor_key ON vendor_records (vendor_id, vendor_key);
CREATE INDEX vendor_records_order ON vendor_records (order_id);

-- One poller per vendor at a time: the holder of an unexpired lease. fencing_token grows on every
-- acquisition; every page write checks it in the same transaction.
CREATE TABLE poller_leases (
    vendor_id     TEXT PRIMARY KEY REFERENCES vendors (id),
    holder        TEXT NOT NULL,
    fencing_token BIGINT NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    renewed_at    TIMESTAMPTZ NOT NULL
);

-- How far each vendor's reconciliation API has been read. A pass reads [pass_from, pass_to) page
-- by page; page_cursor is the next page, stored with the page before it. When the last page is
-- stored, synced_to takes pass_to and the pass fields are cleared.
CREATE TABLE poller_cursors (
    vendor_id   TEXT PRIMARY KEY REFERENCES vendors (id),
    synced_to   TIMESTAMPTZ,
    pass_from   TIMESTAMPTZ,
    pass_to     TIMESTAMPTZ,
    page_cursor TEXT,
    pages       BIGINT NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL
);
