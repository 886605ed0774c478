-- 0003: API tokens for the HTTP gateway (web/). Only a SHA-256 hash of each token is stored:
-- tokens are 256-bit random strings, so a fast hash is enough (nothing to brute-force), and
-- the hash is what a request is looked up by. A revoked token stays, for the audit trail.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    role        text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_by  text NOT NULL CHECK (char_length(created_by) BETWEEN 1 AND 128),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
