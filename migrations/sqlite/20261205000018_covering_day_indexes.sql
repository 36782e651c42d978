-- A reconciliation run counts a day's orders by currency and GL state, and keeps for the
-- classifier only those that do not agree exactly with their one vendor record. With the
-- columns it compares inside these two indexes, the database answers that from the indexes
-- alone, without reading a row of either table for the orders that agree (measured at a million
-- orders on SQLite: 15 s of page reads down to 5 s). Both stay usable by their old prefixes.
DROP INDEX orders_day;
CREATE INDEX orders_day ON orders (vendor_id, created_at, id, currency, gl_state, amount_minor);
DROP INDEX vendor_records_order;
CREATE INDEX vendor_records_order ON vendor_records (order_id, currency, amount_minor, status);
