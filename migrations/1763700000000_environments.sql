-- Up Migration
-- The control plane's state: one row per environment. `spec`, `generation`, `tags`,
-- `last_update_request` and `deletion_requested_at` are written by the environment service;
-- `observation` and `deleted_at` only by the reconciler (single writer per field).
CREATE TABLE environments (
  name text PRIMARY KEY,
  id text NOT NULL UNIQUE,
  arn text NOT NULL,
  seq bigserial NOT NULL,
  created_at timestamptz NOT NULL,
  spec jsonb NOT NULL,
  generation integer NOT NULL,
  tags jsonb NOT NULL DEFAULT '{}'::jsonb,
  last_update_request jsonb NOT NULL,
  port_block integer NOT NULL UNIQUE,
  observation jsonb NOT NULL,
  secrets text,
  deletion_requested_at timestamptz,
  deleted_at timestamptz
);
CREATE INDEX environments_seq ON environments (seq);

-- Down Migration
DROP TABLE environments;
