//! The script registry: every `lua/*.lua` file, with the preludes it needs, hashed once.
//!
//! `redis::Script::invoke_async` sends `EVALSHA` and, on `NOSCRIPT` (after a Redis restart
//! or failover), loads the script and retries once.

use redis::Script;

/// A script's source: its file in `lua/`, after the helpers it needs (`pool`: the
/// idempotency prelude and the pool library; `idempotency`: the prelude alone; `bare`:
/// nothing).
macro_rules! source {
    (pool, $name:ident) => {
        concat!(
            include_str!("../../lua/lib/idempotency.lua"),
            include_str!("../../lua/lib/pool.lua"),
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
