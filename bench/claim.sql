-- pgbench script for bench/run.sh: claim the best available item, SKIP LOCKED.
UPDATE items
   SET state = 'leased', holder = 'pg-' || :client_id, token = nextval('fence'),
       lease_expires_at = now() + interval '600 seconds', attempts = attempts + 1,
       version = version + 1, updated_at = now()
 WHERE id = (SELECT id FROM items
              WHERE state = 'available'
              ORDER BY priority DESC, id
              LIMIT 1
                FOR UPDATE SKIP LOCKED)
RETURNING id, token, version, holder, lease_expires_at, priority, attempts, data;
