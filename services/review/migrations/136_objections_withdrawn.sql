-- An objection whose application the enterprise withdrew while the list was public: the withdrawal
-- took the entry off the list, so there is nothing left to decide. Closed as 'withdrawn' (in the
-- portal's name, with the version that left the entry out) so it no longer keeps the list from
-- becoming final; it used to stay open until the administrator dismissed it (upholding it was
-- refused: the entry was gone).
ALTER TABLE notice_objections DROP CONSTRAINT IF EXISTS notice_objections_status_check;
ALTER TABLE notice_objections ADD CONSTRAINT notice_objections_status_check
    CHECK (status IN ('open', 'upheld', 'dismissed', 'withdrawn'));
