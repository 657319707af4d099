//! The script registry: every `lua/*.lua` file, with the preludes it needs, hashed once.
//!
//! `redis::Script::invoke_async` sends `EVALSHA` and, on `NOSCRIPT` (after a Redis restart
//! or failover), loads the script and retries once.

use redis::Script;

macro_rules! pool_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../../lua/lib/idempotency.lua"),
            include_str!("../../lua/lib/pool.lua"),
            include_str!(concat!("../../lua/", $file, ".lua"))
        ))
    };
}

/// One field per script, named after its file in `lua/`.
pub struct Scripts {
    pub put_pool: Script,
    pub get_pool: Script,
    pub delete_pool: Script,
    pub add_items: Script,
    pub get_item: Script,
    pub list_items: Script,
    pub put_item: Script,
    pub delete_item: Script,
    pub claim_next: Script,
    pub claim_item: Script,
    pub renew: Script,
    pub release: Script,
    pub complete: Script,
    pub assign: Script,
    pub requeue: Script,
    pub list_leases: Script,
    pub list_events: Script,
    pub counter_next: Script,
    pub rate_limit: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            put_pool: pool_script!("put_pool"),
            get_pool: pool_script!("get_pool"),
            delete_pool: pool_script!("delete_pool"),
            add_items: pool_script!("add_items"),
            get_item: pool_script!("get_item"),
            list_items: pool_script!("list_items"),
            put_item: pool_script!("put_item"),
            delete_item: pool_script!("delete_item"),
            claim_next: pool_script!("claim_next"),
            claim_item: pool_script!("claim_item"),
            renew: pool_script!("renew"),
            release: pool_script!("release"),
            complete: pool_script!("complete"),
            assign: pool_script!("assign"),
            requeue: pool_script!("requeue"),
            list_leases: pool_script!("list_leases"),
            list_events: pool_script!("list_events"),
            counter_next: Script::new(concat!(
                include_str!("../../lua/lib/idempotency.lua"),
                include_str!("../../lua/counter_next.lua")
            )),
            rate_limit: Script::new(include_str!("../../lua/rate_limit.lua")),
        }
    }

    /// Every script with its name (its file in `lua/`).
    pub fn named(&self) -> [(&'static str, &Script); 19] {
        [
            ("put_pool", &self.put_pool),
            ("get_pool", &self.get_pool),
            ("delete_pool", &self.delete_pool),
            ("add_items", &self.add_items),
            ("get_item", &self.get_item),
            ("list_items", &self.list_items),
            ("put_item", &self.put_item),
            ("delete_item", &self.delete_item),
            ("claim_next", &self.claim_next),
            ("claim_item", &self.claim_item),
            ("renew", &self.renew),
            ("release", &self.release),
            ("complete", &self.complete),
            ("assign", &self.assign),
            ("requeue", &self.requeue),
            ("list_leases", &self.list_leases),
            ("list_events", &self.list_events),
            ("counter_next", &self.counter_next),
            ("rate_limit", &self.rate_limit),
        ]
    }

    pub fn all(&self) -> [&Script; 19] {
        self.named().map(|(_, script)| script)
    }

    /// The name of one of these scripts, for metrics.
    pub fn name_of(&self, script: &Script) -> &'static str {
        self.named()
            .into_iter()
            .find(|(_, s)| std::ptr::eq(*s, script))
            .map_or("other", |(name, _)| name)
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
