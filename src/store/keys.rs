//! The key layout: the only place where a Redis key name is built.
//!
//! Every key of one pool carries the hash tag `{<tenant>/<pool>}` and every key of one
//! counter `{<tenant>/ctr/<name>}`, so each script touches one slot and runs unchanged on
//! Redis Cluster. Names are validated newtypes whose alphabet has no `{`, `}` or `/`, so
//! no input can forge another tag or another key's name.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `lh:{t/p}:pool` | hash | settings, the arrival counter, stats |
//! | `lh:{t/p}:items` | hash | item id → MessagePack record |
//! | `lh:{t/p}:avail` | zset | available ids by (priority, arrival) |
//! | `lh:{t/p}:leased` | zset | leased ids by lease expiry |
//! | `lh:{t/p}:delayed` | zset | delayed ids by the time they become available |
//! | `lh:{t/p}:done`, `:dead` | zset | finished ids by time |
//! | `lh:{t/p}:holders` | zset | `<holder>/<id>` of every lease, by lexicographic order |
//! | `lh:{t/p}:fence` | string | the last fencing token; kept when the pool is deleted |
//! | `lh:{t/p}:idem:<sha256>` | string | a stored answer for an `Idempotency-Key` |
//! | `lh:{t}:pools` | set | the tenant's pool names (an index for listing) |
//! | `lh:{t/ctr/c}:p:<period>` | string | a counter's last value in a period |
//! | `lh:{t/ctr/c}:idem:<sha256>` | string | a stored answer for an `Idempotency-Key` |

use sha2::{Digest, Sha256};

use crate::names::{CounterName, PoolName, Tenant};

/// The ten keys every pool script takes, in the order `lua/lib/pool.lua` expects.
pub fn pool_keys(tenant: &Tenant, pool: &PoolName, idempotency_key: Option<&str>) -> Vec<String> {
    let prefix = format!("lh:{{{tenant}/{pool}}}");
    let mut keys: Vec<String> = [
        "pool", "items", "avail", "leased", "delayed", "done", "dead", "holders", "fence",
    ]
    .iter()
    .map(|suffix| format!("{prefix}:{suffix}"))
    .collect();
    keys.push(idempotency(&prefix, idempotency_key));
    keys
}

/// Where a pool request's idempotent answer is kept (the last of `pool_keys`).
pub fn pool_idempotency(tenant: &Tenant, pool: &PoolName, key: &str) -> String {
    idempotency(&format!("lh:{{{tenant}/{pool}}}"), Some(key))
}

/// A pool's settings hash: it exists exactly as long as the pool does.
pub fn pool_settings(tenant: &Tenant, pool: &PoolName) -> String {
    format!("lh:{{{tenant}/{pool}}}:pool")
}

/// The set of a tenant's pool names.
pub fn tenant_pools(tenant: &Tenant) -> String {
    format!("lh:{{{tenant}}}:pools")
}

/// A counter's key for one period (`None`: a counter that never resets).
pub fn counter(tenant: &Tenant, name: &CounterName, period: Option<&str>) -> String {
    format!("lh:{{{tenant}/ctr/{name}}}:p:{}", period.unwrap_or("-"))
}

/// Where a counter request's idempotent answer is kept.
pub fn counter_idempotency(tenant: &Tenant, name: &CounterName, key: Option<&str>) -> String {
    idempotency(&format!("lh:{{{tenant}/ctr/{name}}}"), key)
}

/// Idempotency keys are hashed: whatever characters a client sends, the key name stays
/// within the tag's slot and a fixed length. Without a key, the script ignores this name.
fn idempotency(prefix: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("{prefix}:idem:{}", hex::encode(Sha256::digest(key))),
        None => format!("{prefix}:idem"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (Tenant, PoolName) {
        (
            Tenant::parse("tenant", "acme").expect("valid"),
            PoolName::parse("pool", "cases").expect("valid"),
        )
    }

    #[test]
    fn every_pool_key_shares_one_hash_tag() {
        let (tenant, pool) = names();
        let keys = pool_keys(&tenant, &pool, Some("retry-1"));
        assert_eq!(keys.len(), 10);
        for key in &keys {
            assert!(key.starts_with("lh:{acme/cases}:"), "{key}");
        }
        assert_ne!(keys[9], pool_keys(&tenant, &pool, Some("retry-2"))[9]);
        assert_eq!(keys[9], pool_idempotency(&tenant, &pool, "retry-1"));
        assert_eq!(keys[0], pool_settings(&tenant, &pool));
    }

    #[test]
    fn counters_and_pools_never_share_a_tag() {
        let (tenant, pool) = names();
        let counter_name = CounterName::parse("name", "cases").expect("valid");
        let counter_key = counter(&tenant, &counter_name, Some("2026-01-10"));
        assert_eq!(counter_key, "lh:{acme/ctr/cases}:p:2026-01-10");
        assert!(!pool_keys(&tenant, &pool, None).contains(&counter_key));
    }
}
