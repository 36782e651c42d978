-- A vendor's own poll interval in seconds; NULL polls it on the server's schedule
-- ([poller] interval_secs). Set on the Vendors page or with `giftrecon vendor set --poll-interval`.
ALTER TABLE vendors ADD COLUMN poll_interval_secs BIGINT
    CHECK (poll_interval_secs IS NULL OR poll_interval_secs BETWEEN 10 AND 86400);
