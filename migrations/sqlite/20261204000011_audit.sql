-- The audit trail: who did what, when, with before/after values. Append-only: each row carries
-- a SHA-256 chained over the previous row's hash and its own fields, so `giftrecon audit verify`
-- finds any edited or removed row. prev_hash is unique: two writers racing for the same
-- predecessor cannot fork the chain (the loser retries on the new end).

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    CONSTRAINT audit_log_prev_hash_unique UNIQUE (prev_hash)
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
