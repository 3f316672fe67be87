-- Up Migration
-- Access control (issue 4): users with IAM-style inline policies, their access keys (secret
-- sealed under the key ring, never in the clear), the audit trail, single-use tokens already
-- redeemed, and control-plane secrets (the token-signing key, sealed).
CREATE TABLE iam_users (
  name text PRIMARY KEY,
  arn text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  policies jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE iam_access_keys (
  access_key_id text PRIMARY KEY,
  user_name text NOT NULL REFERENCES iam_users (name) ON DELETE CASCADE,
  secret_sealed text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_events (
  seq bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  principal text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  source_address text NOT NULL,
  result text NOT NULL,
  error_code text,
  request_id text NOT NULL
);

CREATE TABLE redeemed_tokens (
  jti text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

CREATE TABLE control_plane_secrets (
  name text PRIMARY KEY,
  sealed text NOT NULL
);

-- Down Migration
DROP TABLE control_plane_secrets;
DROP TABLE redeemed_tokens;
DROP TABLE audit_events;
DROP TABLE iam_access_keys;
DROP TABLE iam_users;
