-- Working the queues. A write-off needs a second person: the request (reason, who, when) stays on
-- the item until a finance approver who is not the requester accepts it; new data for the item
-- withdraws it. Items are assigned to people, and "mine" / "unassigned" are filters.
ALTER TABLE discrepancies ADD COLUMN write_off_reason TEXT;
ALTER TABLE discrepancies ADD COLUMN write_off_by TEXT;
ALTER TABLE discrepancies ADD COLUMN write_off_at TEXT;
CREATE INDEX discrepancies_assignee ON discrepancies (assignee, state);
CREATE INDEX discrepancies_opened ON discrepancies (state, opened_at);
