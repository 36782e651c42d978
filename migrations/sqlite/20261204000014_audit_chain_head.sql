-- Appending to the audit trail happens inside the transaction of the action it records. Every
-- append first updates this one row: that makes the appender the database's writer (SQLite) or
-- the holder of the row's lock (PostgreSQL) until it commits, so appends are serialized and each
-- new row's prev_hash is the hash of the row committed just before it. It holds no audit data.
CREATE TABLE audit_chain_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    appends BIGINT NOT NULL
);
INSERT INTO audit_chain_head (id, appends) SELECT 1, COUNT(*) FROM audit_log;

-- Refused sign-ins past the rate limit are recorded once per client or user and window: finding
-- the last such row (by action and time) must not scan the trail.
CREATE INDEX audit_log_action_at ON audit_log (action, at);
