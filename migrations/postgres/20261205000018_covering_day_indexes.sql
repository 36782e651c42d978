-- A reconciliation run counts a day's orders by currency and GL state, and keeps for the
-- classifier only those that do not agree exactly with their one vendor record. With the
-- columns it compares carried in these two indexes, the database can answer that from the
-- indexes (index-only scans once the visibility map is set) instead of reading a row of either
-- table for every order that agrees. Both keep their old keys, so every other use is unchanged.
DROP INDEX orders_day;
CREATE INDEX orders_day ON orders (vendor_id, created_at, id) INCLUDE (currency, gl_state, amount_minor);
DROP INDEX vendor_records_order;
CREATE INDEX vendor_records_order ON vendor_records (order_id) INCLUDE (currency, amount_minor, status);
