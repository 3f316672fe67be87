-- Up Migration
-- The autoscaler's decisions (desired workers and web servers, idle timers), written only by
-- the autoscaler (single writer per field); the reconciler reads them.
ALTER TABLE environments ADD COLUMN scaling jsonb;

-- Down Migration
ALTER TABLE environments DROP COLUMN scaling;
