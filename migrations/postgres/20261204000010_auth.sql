-- Browser sessions and failed sign-ins. Sessions live in the database so every replica honours
-- them; only a SHA-256 of the session token is stored, so a stolen database opens no session.

CREATE TABLE sessions (
    -- hex SHA-256 of the random 256-bit token in the cookie
    id           TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    -- the absolute timeout: created_at plus the configured maximum session length
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_user ON sessions (user_id);

-- One row per failed sign-in, counted per username and per client address for rate limiting.
-- Shared through the database so a client cannot spread its guesses over replicas.
CREATE TABLE login_failures (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username_key TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_user ON login_failures (username_key, at);
CREATE INDEX login_failures_addr ON login_failures (client_addr, at);
