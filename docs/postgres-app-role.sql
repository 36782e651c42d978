-- What `giftrecon db grant-app-role giftrecon_app` does, for DBAs who prefer SQL.
-- Run as the role that owns the tables (the one `giftrecon migrate` runs as), in giftrecon's
-- database, after every migration. giftrecon_app must not be a superuser nor a member of the
-- owning role: then it cannot disable the triggers that keep audit_log append-only.

GRANT CONNECT ON DATABASE giftrecon TO giftrecon_app;
-- Bulk imports copy their rows into temporary tables (PUBLIC may have lost this right).
GRANT TEMPORARY ON DATABASE giftrecon TO giftrecon_app;
GRANT USAGE ON SCHEMA public TO giftrecon_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO giftrecon_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO giftrecon_app;

-- The audit trail: read and append, nothing else.
REVOKE ALL ON public.audit_log FROM giftrecon_app;
GRANT SELECT, INSERT ON public.audit_log TO giftrecon_app;

-- The row every append locks: updated, never removed.
REVOKE ALL ON public.audit_chain_head FROM giftrecon_app;
GRANT SELECT, UPDATE ON public.audit_chain_head TO giftrecon_app;

-- Migrations are the owner's business; the app only checks they are all applied.
REVOKE ALL ON public._sqlx_migrations FROM giftrecon_app;
GRANT SELECT ON public._sqlx_migrations TO giftrecon_app;
