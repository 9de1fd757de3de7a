-- The outbox of token revocations: written in the revoking transaction, so a Redis that missed the
-- tombstone (unreachable at the time, or restored from an older snapshot) is corrected by whichever
-- replica reaches it first, before that replica serves tokens from the cache again.
CREATE TABLE token_invalidations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id   bigint NOT NULL REFERENCES api_tokens ON DELETE CASCADE,
    digest     bytea NOT NULL CHECK (length(digest) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz           -- when the tombstone reached Redis; NULL while pending
);
-- the periodic sweep reads only the pending rows
CREATE INDEX token_invalidations_pending_idx ON token_invalidations (id) WHERE applied_at IS NULL;
-- a replay after a Redis restart also reapplies the recent ones
CREATE INDEX token_invalidations_created_idx ON token_invalidations (created_at);
