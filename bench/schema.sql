-- The PostgreSQL side of bench/run.sh: an items table equivalent to a Leasehold pool.
-- psql -v items=N fills it with N available items, priorities 0..9 as in the Redis pools.
CREATE SEQUENCE fence;
CREATE TABLE items (
  id               text PRIMARY KEY,
  priority         integer NOT NULL DEFAULT 0,
  state            text NOT NULL DEFAULT 'available',
  holder           text,
  token            bigint,
  lease_expires_at timestamptz,
  attempts         integer NOT NULL DEFAULT 0,
  version          bigint NOT NULL DEFAULT 1,
  data             jsonb NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO items (id, priority) SELECT 'i' || g, g % 10 FROM generate_series(1, :items) g;
CREATE INDEX items_claim ON items (state, priority DESC, id);
VACUUM ANALYZE items;
