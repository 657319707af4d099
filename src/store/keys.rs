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
//! | `lh:{t/p}:events` | stream | the pool's changes, capped; also the channel announcing items made available |
//! | `lh:{t/p}:answers` | hash | stored answers by `Idempotency-Key` (its SHA-256), with their expiry |
//! | `lh:{t/p}:answer_exp` | zset | those answers by expiry time |
//! | `lh:{t}:pool_names` | zset | the tenant's pool names, in order (an index for paged listing) |
//! | `lh:{t}:pool_pending` | hash | names reserved for a pool being created, with the time |
//! | `lh:{t}:pools` | set | the index as older versions kept it; moved into `pool_names` at first use |
//! | `lh:{t}:rate` | string | the tenant's rate limiter (GCRA arrival time, µs) |
//! | `lh:{t/ctr/c}:p:<period>` | string | a counter's last value in a period |
//! | `lh:{t/ctr/c}:answers`, `:answer_exp` | hash, zset | stored answers, as for a pool; they expire with the newest |
//! | `lh:{}:sweep` | string | set by the replica sweeping the pools, for one sweep interval |
//! | `lh:{}:ready` | string | written by `/readyz` to see that Redis takes writes; expires after 10 s |
//! | `lh:{…}:ack` | string | written before `WAIT` under `replicas:N`, so that a read waits for the replicas too; expires after a minute |

use sha2::{Digest, Sha256};

use crate::names::{CounterName, PoolName, Tenant};

/// The twelve keys every pool script takes, in the order `lua/lib/pool.lua` expects.
pub fn pool_keys(tenant: &Tenant, pool: &PoolName) -> Vec<String> {
    let prefix = format!("lh:{{{tenant}/{pool}}}");
    POOL_KEYS
        .iter()
        .map(|suffix| format!("{prefix}:{suffix}"))
        .collect()
}

/// The suffixes of a pool's keys, in the order of [`pool_keys`].
const POOL_KEYS: [&str; 12] = [
    "pool",
    "items",
    "avail",
    "leased",
    "delayed",
    "done",
    "dead",
    "holders",
    "fence",
    "events",
    "answers",
    "answer_exp",
];

/// A pool's stored answers (a hash by [`answer_field`]).
pub fn pool_answers(tenant: &Tenant, pool: &PoolName) -> String {
    format!("lh:{{{tenant}/{pool}}}:answers")
}

/// The field an `Idempotency-Key`'s answer is kept under: its SHA-256, so that whatever a
/// client sends, the field has a fixed length.
pub fn answer_field(idempotency_key: &str) -> String {
    hex::encode(Sha256::digest(idempotency_key))
}

/// A pool's settings hash: it exists exactly as long as the pool does.
pub fn pool_settings(tenant: &Tenant, pool: &PoolName) -> String {
    format!("lh:{{{tenant}/{pool}}}:pool")
}

/// A pool's event stream, and the pub/sub channel announcing its items made available.
pub fn pool_events(tenant: &Tenant, pool: &PoolName) -> String {
    format!("lh:{{{tenant}/{pool}}}:events")
}

/// The pattern matching every pool's channel, for the one subscription of a replica.
pub const POOL_EVENTS_PATTERN: &str = "lh:*:events";

/// The three keys of a tenant's pool index, in the order `lua/lib/tenant.lua` expects.
pub fn tenant_pools(tenant: &Tenant) -> [String; 3] {
    ["pool_names", "pool_pending", "pools"].map(|suffix| format!("lh:{{{tenant}}}:{suffix}"))
}

/// The tenant's rate limiter state (the theoretical arrival time of its next request).
pub fn rate_limit(tenant: &Tenant) -> String {
    format!("lh:{{{tenant}}}:rate")
}

/// A counter's key for one period (`None`: a counter that never resets).
pub fn counter(tenant: &Tenant, name: &CounterName, period: Option<&str>) -> String {
    format!("lh:{{{tenant}/ctr/{name}}}:p:{}", period.unwrap_or("-"))
}

/// A counter's stored answers and their expiry index.
pub fn counter_answers(tenant: &Tenant, name: &CounterName) -> [String; 2] {
    ["answers", "answer_exp"].map(|suffix| format!("lh:{{{tenant}/ctr/{name}}}:{suffix}"))
}

/// What `/readyz` writes to see that Redis takes writes. No tenant's: its tag is empty.
pub const READY_PROBE: &str = "lh:{}:ready";

/// Set by the replica whose turn it is to sweep every pool, for the sweep interval.
pub const SWEEP_TURN: &str = "lh:{}:sweep";

/// The key written before `WAIT` under `--durability replicas:N`, in the slot of `key` (a
/// key of this layout, which carries its tag right after `lh:`).
pub fn ack(key: &str) -> String {
    let tag = key
        .strip_prefix("lh:")
        .and_then(|rest| rest.find('}').map(|end| &rest[..=end]))
        .unwrap_or("{}");
    format!("lh:{tag}:ack")
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
        let keys = pool_keys(&tenant, &pool);
        assert_eq!(keys.len(), 12);
        for key in &keys {
            assert!(key.starts_with("lh:{acme/cases}:"), "{key}");
        }
        assert_eq!(keys[10], pool_answers(&tenant, &pool));
        assert_ne!(answer_field("retry-1"), answer_field("retry-2"));
        assert_eq!(answer_field("retry-1").len(), 64);
        assert_eq!(keys[0], pool_settings(&tenant, &pool));
        assert_eq!(keys[9], pool_events(&tenant, &pool));
        for key in &keys {
            assert_eq!(ack(key), "lh:{acme/cases}:ack");
        }
        for key in tenant_pools(&tenant) {
            assert_eq!(ack(&key), "lh:{acme}:ack");
        }
    }

    #[test]
    fn counters_and_pools_never_share_a_tag() {
        let (tenant, pool) = names();
        let counter_name = CounterName::parse("name", "cases").expect("valid");
        let counter_key = counter(&tenant, &counter_name, Some("2026-01-10"));
        assert_eq!(counter_key, "lh:{acme/ctr/cases}:p:2026-01-10");
        assert_eq!(ack(&counter_key), "lh:{acme/ctr/cases}:ack");
        assert!(!pool_keys(&tenant, &pool).contains(&counter_key));
    }

    mod properties {
        use super::*;
        use crate::names::arbitrary;
        use proptest::prelude::*;

        /// What a key belongs to, read back from the key alone.
        #[derive(Debug, Clone, PartialEq, Eq)]
        enum Owner {
            /// `lh:{t}:<suffix>` (`pools`, `rate`)
            Tenant { tenant: String, suffix: String },
            /// `lh:{t/p}:<suffix>`
            Pool {
                tenant: String,
                pool: String,
                suffix: String,
            },
            /// `lh:{t/ctr/c}:<suffix>`
            Counter {
                tenant: String,
                name: String,
                suffix: String,
            },
        }

        /// Reads a key back into its owner. Because this is a function of the key text,
        /// `decode(build(x)) == x` for every x proves that building keys is injective.
        fn decode(key: &str) -> Option<Owner> {
            let rest = key.strip_prefix("lh:{")?;
            let (tag, rest) = rest.split_once('}')?;
            let suffix = rest.strip_prefix(':')?.to_owned();
            match tag.split('/').collect::<Vec<_>>()[..] {
                [tenant] => Some(Owner::Tenant {
                    tenant: tenant.to_owned(),
                    suffix,
                }),
                [tenant, pool] => Some(Owner::Pool {
                    tenant: tenant.to_owned(),
                    pool: pool.to_owned(),
                    suffix,
                }),
                [tenant, "ctr", name] => Some(Owner::Counter {
                    tenant: tenant.to_owned(),
                    name: name.to_owned(),
                    suffix,
                }),
                _ => None,
            }
        }

        /// The hash tag Redis Cluster hashes (the cluster spec's `keyHashSlot`): the text
        /// between the first `{` and the first `}` after it, when that is not empty.
        fn cluster_hash_tag(key: &str) -> Option<&str> {
            let open = key.find('{')?;
            let close = key[open + 1..].find('}')? + open + 1;
            (close > open + 1).then(|| &key[open + 1..close])
        }

        /// A day as the counters label it, anywhere in jiff's range of dates, or none.
        fn period() -> impl Strategy<Value = Option<String>> {
            prop::option::of((-9999i16..=9999, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| {
                jiff::civil::Date::new(y, m, d)
                    .expect("a valid date")
                    .to_string()
            }))
        }

        /// Every key Leasehold builds for one tenant, pool and counter, with its owner.
        fn every_key(
            tenant: &Tenant,
            pool: &PoolName,
            counter_name: &CounterName,
            period: Option<&str>,
        ) -> Vec<(String, Owner)> {
            let t = tenant.as_str().to_owned();
            let in_pool = |suffix: &str| Owner::Pool {
                tenant: t.clone(),
                pool: pool.as_str().to_owned(),
                suffix: suffix.to_owned(),
            };
            let in_counter = |suffix: String| Owner::Counter {
                tenant: t.clone(),
                name: counter_name.as_str().to_owned(),
                suffix,
            };
            let mut keys: Vec<(String, Owner)> = pool_keys(tenant, pool)
                .into_iter()
                .zip(POOL_KEYS.iter().map(|s| in_pool(s)))
                .collect();
            keys.push((pool_settings(tenant, pool), in_pool("pool")));
            keys.push((pool_events(tenant, pool), in_pool("events")));
            keys.push((pool_answers(tenant, pool), in_pool("answers")));
            let [names, pending, legacy] = tenant_pools(tenant);
            for (key, suffix) in [
                (names, "pool_names"),
                (pending, "pool_pending"),
                (legacy, "pools"),
                (rate_limit(tenant), "rate"),
            ] {
                let owner = Owner::Tenant {
                    tenant: t.clone(),
                    suffix: suffix.to_owned(),
                };
                keys.push((key, owner));
            }
            keys.push((
                counter(tenant, counter_name, period),
                in_counter(format!("p:{}", period.unwrap_or("-"))),
            ));
            let [answers, answer_exp] = counter_answers(tenant, counter_name);
            keys.push((answers, in_counter("answers".to_owned())));
            keys.push((answer_exp, in_counter("answer_exp".to_owned())));
            keys
        }

        fn expected_tag(owner: &Owner) -> String {
            match owner {
                Owner::Tenant { tenant, .. } => tenant.clone(),
                Owner::Pool { tenant, pool, .. } => format!("{tenant}/{pool}"),
                Owner::Counter { tenant, name, .. } => format!("{tenant}/ctr/{name}"),
            }
        }

        /// The hostile strings that parse accepts as a name (pool, counter and tenant share
        /// one pattern).
        fn accepted() -> impl Strategy<Value = String> {
            arbitrary::hostile().prop_filter("accepted as a name", |value| {
                PoolName::parse("pool", value).is_ok()
            })
        }

        /// A tenant, a pool, a counter name and a period.
        type Names = (String, String, String, Option<String>);

        const WORDS: &[&str] = &["a", "b", "ctr", "pools", "p", "answers"];

        /// Names made of a few words, the layout's own (`ctr`, `pools`, `p`, `answers`)
        /// among them, joined by separators, the key layout's included: two draws are
        /// often equal or overlap, and parse must refuse the ones that could collide.
        fn colliding_name() -> impl Strategy<Value = String> {
            let separator = prop::sample::select(vec![".", "-", "/", ":", "{", "}"]);
            (
                prop::sample::select(WORDS),
                prop::collection::vec((separator, prop::sample::select(WORDS)), 0..3),
            )
                .prop_map(|(first, rest)| {
                    let mut name = first.to_owned();
                    for (separator, word) in rest {
                        name.push_str(separator);
                        name.push_str(word);
                    }
                    name
                })
        }

        /// Two sets of names: drawn independently, or cut from one run of words joined
        /// by `/` at two places (`a` + `b/c` against `a/b` + `c`, or the pool `ctr/c`
        /// against the counter `c`): the forgeries a `/` in a name would allow.
        fn two_owners() -> impl Strategy<Value = (Names, Names)> {
            let names = || {
                (
                    colliding_name(),
                    colliding_name(),
                    colliding_name(),
                    period(),
                )
            };
            let cuts = (
                prop::collection::vec(prop::sample::select(WORDS), 2..5),
                any::<[prop::sample::Index; 4]>(),
                period(),
                period(),
            )
                .prop_map(
                    |(words, [at_a, counter_a, at_b, counter_b], period_a, period_b)| {
                        let cut = |at: prop::sample::Index, counter: prop::sample::Index| {
                            let pool = 1 + at.index(words.len() - 1);
                            let counter = pool + counter.index(words.len() - pool);
                            (
                                words[..pool].join("/"),
                                words[pool..].join("/"),
                                words[counter..].join("/"),
                            )
                        };
                        let ((ta, pa, ca), (tb, pb, cb)) =
                            (cut(at_a, counter_a), cut(at_b, counter_b));
                        ((ta, pa, ca, period_a), (tb, pb, cb, period_b))
                    },
                );
            prop_oneof![(names(), names()), cuts]
        }

        proptest! {
            #[test]
            fn every_key_reads_back_as_exactly_what_built_it(
                tenant in accepted(),
                pool in accepted(),
                counter_name in accepted(),
                period in period(),
            ) {
                let tenant = Tenant::parse("tenant", &tenant).expect("filtered");
                let pool = PoolName::parse("pool", &pool).expect("filtered");
                let counter_name = CounterName::parse("name", &counter_name).expect("filtered");
                for (key, owner) in every_key(&tenant, &pool, &counter_name, period.as_deref()) {
                    prop_assert_eq!(decode(&key), Some(owner.clone()), "{}", key);
                    // Exactly the project's own tag: one `{`, one `}`, and the slot Redis
                    // Cluster computes is that tag's.
                    prop_assert_eq!(key.matches('{').count(), 1, "{}", key);
                    prop_assert_eq!(key.matches('}').count(), 1, "{}", key);
                    let tag = expected_tag(&owner);
                    prop_assert_eq!(cluster_hash_tag(&key), Some(tag.as_str()), "{}", key);
                }
            }

            #[test]
            fn two_different_owners_never_share_a_key(
                (a, b) in two_owners(),
            ) {
                let build = |(t, p, c, period): &Names| {
                    match (
                        Tenant::parse("tenant", t),
                        PoolName::parse("pool", p),
                        CounterName::parse("name", c),
                    ) {
                        (Ok(t), Ok(p), Ok(c)) => Some(every_key(&t, &p, &c, period.as_deref())),
                        _ => None,
                    }
                };
                let (Some(keys_a), Some(keys_b)) = (build(&a), build(&b)) else {
                    return Ok(());
                };
                for (key_a, owner_a) in &keys_a {
                    for (key_b, owner_b) in &keys_b {
                        if key_a == key_b {
                            prop_assert_eq!(owner_a, owner_b, "{} built for two owners", key_a);
                        } else {
                            prop_assert_ne!(owner_a, owner_b, "one owner, two keys");
                        }
                    }
                }
            }
        }
    }
}
