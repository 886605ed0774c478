-- 0006: one cluster owns the database at a time. Its store node holds a session advisory lock
-- on a connection of its own (the lock is the ownership); this row says who holds it, for the
-- refusal other clusters log, and when the owner last renewed it (a lock found free while the
-- row was renewed moments ago belongs to an owner that is reconnecting: wait for it).
CREATE TABLE cluster_owner (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    holder      text NOT NULL CHECK (char_length(holder) BETWEEN 1 AND 255),
    acquired_at timestamptz NOT NULL DEFAULT now(),
    renewed_at  timestamptz NOT NULL DEFAULT now()
);
