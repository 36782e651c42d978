-- Orders placed through giftrecon, their idempotency records, history, and the durable outbox.

ALTER TABLE vendors ADD COLUMN api_key TEXT;

-- Bearer tokens for the JSON API. The name is the owner that idempotency keys are scoped to.
CREATE TABLE api_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    CONSTRAINT api_tokens_name_unique UNIQUE (name),
    CONSTRAINT api_tokens_hash_unique UNIQUE (token_hash)
);

-- The brands each vendor sells; orders for any other brand are refused before anything is stored.
CREATE TABLE brands (
    vendor_id  TEXT NOT NULL REFERENCES vendors (id),
    brand_id   TEXT NOT NULL,
    name       TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (vendor_id, brand_id)
);

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    owner            TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    vendor_id        TEXT NOT NULL REFERENCES vendors (id),
    -- the key sent to the vendor: made before the first attempt, identical on every retry
    vendor_key       TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    brand_id         TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL CHECK (length(currency) = 3),
    -- queued | placed | needs_attention | external
    submission       TEXT NOT NULL,
    gl_state         TEXT NOT NULL CHECK (gl_state IN ('pending', 'fulfilled', 'refunded', 'failed')),
    vendor_order_id  TEXT,
    vendor_status    TEXT,
    attention_reason TEXT,
    source           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT orders_owner_key_unique UNIQUE (owner, idempotency_key),
    CONSTRAINT orders_vendor_key_unique UNIQUE (vendor_id, vendor_key)
);
CREATE INDEX orders_vendor_order_id ON orders (vendor_id, vendor_order_id);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_idempotency_key ON orders (idempotency_key);

-- IETF idempotency-key records: the first response, replayed for the same key and body.
CREATE TABLE idempotency_keys (
    owner           TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    -- in_progress | completed
    state           TEXT NOT NULL,
    locked_until    TIMESTAMPTZ,
    response_status INTEGER,
    response_body   TEXT,
    order_id        TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, idem_key)
);

-- Everything that happened to an order, oldest first.
CREATE TABLE order_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    actor      TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX order_events_order ON order_events (order_id, id);

-- Durable jobs that call vendors. A worker leases a job, calls the vendor outside any
-- transaction, then records the outcome.
CREATE TABLE outbox_jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT NOT NULL,
    order_id     TEXT NOT NULL REFERENCES orders (id),
    -- pending | done | dead
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       TIMESTAMPTZ NOT NULL,
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (state, run_at);
CREATE INDEX outbox_jobs_order ON outbox_jobs (order_id);
