-- Exactly one SMS per notice (issue 14):
-- * lease_token: the fencing token of the sender that holds the row's lease. A sender calls a
--   provider only after a statement that checks its token and a lease not yet expired (and extends
--   it) succeeded; a sender whose lease ran out while another replica took the row over sends nothing.
-- * unsure_providers: the providers that may have this message although we never recorded their
--   accept (we were calling them when we crashed, or their answer was lost). They are asked
--   (OutId / SessionContext) before the message goes to any provider again. NULL: unknown (rows
--   `sending` before this migration): every provider is asked.
ALTER TABLE sms_messages
    ADD COLUMN lease_token      uuid,
    ADD COLUMN unsure_providers text[] DEFAULT '{}';
UPDATE sms_messages SET unsure_providers = NULL WHERE status = 'sending';
