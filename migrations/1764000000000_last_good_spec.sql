-- Up Migration
-- The spec of the last generation that was applied, kept when an update's inputs are refused
-- (UPDATE_FAILED without changing anything): GetEnvironment shows it, as MWAA shows the
-- rolled-back configuration, and the next update starts from it. Written by the service only.
ALTER TABLE environments ADD COLUMN last_good_spec jsonb;

-- Down Migration
ALTER TABLE environments DROP COLUMN last_good_spec;
