-- Only orders the vendor has answered carry a vendor order id; imported and queued orders have
-- none, and every lookup by it asks for a value (`vendor_order_id = …`, which implies NOT NULL,
-- so both databases still pick this index). Leaving the empty ones out spares a large import an
-- index entry per order: on SQLite the index build after a million-order import, on PostgreSQL
-- an index insert per row.
DROP INDEX orders_vendor_order_id;
CREATE INDEX orders_vendor_order_id ON orders (vendor_id, vendor_order_id)
    WHERE vendor_order_id IS NOT NULL;
