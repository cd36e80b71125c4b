-- The audit log no one can rewrite: every decision and every refused attempt through the API,
-- hash-chained (services/review/audit/chain.py). Rows are appended by repository.append_audit
-- under a transaction-scoped advisory lock; hash = SHA-256(prev_hash || canonical content).
CREATE TABLE audit_chain (
    seq             bigserial   PRIMARY KEY,
    occurred_at     timestamptz NOT NULL,
    subject         text        NOT NULL,
    role            text        NOT NULL,
    action          text        NOT NULL,
    program         text,
    application_no  text,
    input           jsonb       NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    reason          text,
    request_id      text,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL UNIQUE
);
CREATE INDEX audit_chain_application ON audit_chain (application_no, seq);
CREATE INDEX audit_chain_subject ON audit_chain (subject, seq);
CREATE INDEX audit_chain_time ON audit_chain (occurred_at);

-- Refused by the database itself, whoever asks (an owner's or superuser's REVOKE does not bind them).
CREATE FUNCTION audit_chain_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'review.audit_chain is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_chain_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_chain FROM PUBLIC;
