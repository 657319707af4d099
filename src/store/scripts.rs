//! The script registry: every `lua/*.lua` file, with the preludes it needs, hashed once.
//!
//! `redis::Script::invoke_async` sends `EVALSHA` and, on `NOSCRIPT` (after a Redis restart
//! or failover), loads the script and retries once.

use redis::Script;

/// A script's source: its file in `lua/`, after the helpers it needs (`pool`: the
/// idempotency prelude and the pool library; `idempotency`: the prelude alone; `tenant`:
/// the tenant's pool index; `bare`: nothing).
macro_rules! source {
    (pool, $name:ident) => {
        concat!(
            include_str!("../../lua/lib/idempotency.lua"),
            include_str!("../../lua/lib/pool.lua"),
            include_str!(concat!("../../lua/", stringify!($name), ".lua"))
        )
    };
    (tenant, $name:ident) => {
        concat!(
            include_str!("../../lua/lib/tenant.lua"),
            include_str!(concat!("../../lua/", stringify!($name), ".lua"))
        )
    };
    (idempotency, $name:ident) => {
        concat!(
            include_str!("../../lua/lib/idempotency.lua"),
            include_str!(concat!("../../lua/", stringify!($name), ".lua"))
        )
    };
    (bare, $name:ident) => {
        include_str!(concat!("../../lua/", stringify!($name), ".lua"))
    };
}

/// Declares every script once: its name (that of its file in `lua/`, of its field here and
/// of the store method that runs it) and the helpers it is built with.
macro_rules! scripts {
    ($($name:ident: $helpers:ident;)*) => {
        /// One field per script, named after its file in `lua/`.
        pub struct Scripts {
            $(pub $name: Script,)*
        }

        impl Scripts {
            pub fn new() -> Self {
                Scripts {
                    $($name: Script::new(source!($helpers, $name)),)*
                }
            }

            /// Every script with its name (its file in `lua/`).
            pub fn named(&self) -> Vec<(&'static str, &Script)> {
                vec![$((stringify!($name), &self.$name)),*]
            }

            /// The name of one of these scripts, for metrics.
            pub fn name_of(&self, script: &Script) -> &'static str {
                $(if std::ptr::eq(script, &self.$name) {
                    return stringify!($name);
                })*
                "other"
            }
        }
    };
}

scripts! {
    put_pool: pool;
    get_pool: pool;
    delete_pool: pool;
    add_items: pool;
    get_item: pool;
    list_items: pool;
    put_item: pool;
    delete_item: pool;
    claim_next: pool;
    claim_item: pool;
    renew: pool;
    release: pool;
    complete: pool;
    assign: pool;
    requeue: pool;
    list_leases: pool;
    list_events: pool;
    counter_next: idempotency;
    sweep_pool: pool;
    reserve_pool: tenant;
    list_pools: tenant;
    unlist_pool: tenant;
    rate_limit: bare;
}

impl Scripts {
    pub fn all(&self) -> Vec<&Script> {
        self.named().into_iter().map(|(_, script)| script).collect()
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use leasehold_wire::numbers::{DrawCount, DurationMs, MAX_SAFE_INTEGER, PageLimit, Priority};

    /// The number a script library assigns to `local <name> = <number>`.
    fn lua_constant(source: &str, name: &str) -> i128 {
        let line = format!("local {name} = ");
        source
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `local {name} = <number>` in the scripts"))
    }

    /// The scripts check their arguments again with their own copies of the limits that
    /// the API's types enforce: the two must agree, or a value the API takes would fail
    /// inside Redis (a 500), or one it refuses would pass there.
    #[test]
    fn the_scripts_limits_are_the_apis() {
        let prelude = include_str!("../../lua/lib/idempotency.lua");
        assert_eq!(lua_constant(prelude, "MAX_MS"), i128::from(DurationMs::MAX));
        assert_eq!(lua_constant(prelude, "PRIORITY"), i128::from(Priority::MAX));
        assert_eq!(
            -lua_constant(prelude, "PRIORITY"),
            i128::from(Priority::MIN)
        );
        assert_eq!(lua_constant(prelude, "TOKEN"), i128::from(MAX_SAFE_INTEGER));
        let pool = include_str!("../../lua/lib/pool.lua");
        assert_eq!(
            lua_constant(pool, "DEFAULT_MAX_EVENTS"),
            i128::from(super::super::DEFAULT_MAX_EVENTS)
        );
        assert_eq!(
            lua_constant(pool, "DEFAULT_KEEP_DONE_MS"),
            i128::from(leasehold_wire::numbers::DEFAULT_KEEP_DONE_MS)
        );
        assert_eq!(
            lua_constant(pool, "DEFAULT_KEEP_DEAD_MS"),
            i128::from(leasehold_wire::numbers::DEFAULT_KEEP_DEAD_MS)
        );
        let page = format!(", 1, {})", PageLimit::MAX);
        for listing in [
            include_str!("../../lua/list_items.lua"),
            include_str!("../../lua/list_leases.lua"),
            include_str!("../../lua/list_events.lua"),
        ] {
            assert!(
                listing.contains(&page),
                "a listing takes pages of 1 to {}",
                PageLimit::MAX
            );
        }
        let draw = format!("int_arg(3, 1, {})", DrawCount::MAX);
        assert!(include_str!("../../lua/counter_next.lua").contains(&draw));
    }
}
