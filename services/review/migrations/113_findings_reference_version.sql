-- A finding that read an imported reference list (the serious-dishonesty list, the CAC filing
-- registry) names the list's version (the SHA-256 of the imported file); NULL for the rules that
-- read only the application's facts.
ALTER TABLE pre_check_findings ADD COLUMN reference_version text;
