//! The Functions library: every `lua/*.lua` file, with the helpers it needs, assembled
//! into one Redis Functions library (`lua/lib/library.lua` says how) and called with
//! `FCALL`.
//!
//! The library's name carries a hash of its source (`leasehold_<version>`, its functions
//! `lh_<version>_<op>`), so replicas of two versions call their own side by side. A
//! replica loads it at start (on every primary of a Cluster) and again whenever a call
//! finds its function missing (after a `FUNCTION FLUSH`, a restart without persistence, a
//! failover to a replica that lacks it), then calls once more; a function still missing
//! then is a 503, like any fault of Redis's. Old libraries stay until
//! `leasehold functions prune` removes them.

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::{FromRedisValue, RedisError, RedisResult, ToRedisArgs};
use sha2::{Digest, Sha256};

/// Declares every operation once: its name (that of its file in `lua/`, of its field here
/// and of the store method that runs it), grouped with the helpers its block of the
/// library defines and the helper each of its calls begins with.
macro_rules! library {
    ($($begin:literal [$($lib:literal),*] { $($name:ident),* $(,)? })*) => {
        /// The library's source after its first two lines (which name it and set VERSION).
        pub const BODY: &str = concat!(
            include_str!("../../lua/lib/library.lua"),
            $(
                "do\n",
                $(include_str!(concat!("../../lua/lib/", $lib, ".lua")),)*
                $(
                    "local function ", stringify!($name), "()\n",
                    include_str!(concat!("../../lua/", stringify!($name), ".lua")),
                    "\nend\nregister('", stringify!($name), "', ", stringify!($name), ", ",
                    $begin, ")\n",
                )*
                "end\n",
            )*
        );

        /// One field per operation, named after its file in `lua/`.
        pub struct Scripts {
            library: Arc<Library>,
            $($(pub $name: Function,)*)*
        }

        impl Scripts {
            pub fn new() -> Self {
                let library = Arc::new(Library::new(BODY));
                Scripts {
                    $($($name: Function::new(stringify!($name), &library),)*)*
                    library,
                }
            }

            /// Every operation's function with its name (its file in `lua/`).
            pub fn named(&self) -> Vec<(&'static str, &Function)> {
                vec![$($((stringify!($name), &self.$name),)*)*]
            }
        }
    };
}

library! {
    "pool_begin" ["idempotency", "pool"] {
        put_pool, get_pool, delete_pool, add_items, get_item, list_items, put_item,
        delete_item, claim_next, claim_item, renew, release, complete, assign, requeue,
        list_leases, list_events, sweep_pool,
    }
    "tenant_begin" ["tenant"] { reserve_pool, list_pools, unlist_pool }
    "idem_begin" ["idempotency"] { counter_next }
    "nil" [] { rate_limit }
}

impl Scripts {
    /// The library every function belongs to.
    pub fn library(&self) -> &Library {
        &self.library
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

/// The library as `FUNCTION LOAD` takes it, named after its version.
#[derive(Debug)]
pub struct Library {
    /// `leasehold_<version>`.
    name: String,
    version: String,
    source: String,
}

impl Library {
    /// A library of `body` (usually [`BODY`]), named after a hash of it.
    pub fn new(body: &str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let version = hex::encode(&digest[..6]);
        let name = format!("leasehold_{version}");
        let source = format!("#!lua name={name}\nlocal VERSION = '{version}'\n{body}");
        Library {
            name,
            version,
            source,
        }
    }

    /// `leasehold_<version>`, as `FUNCTION LIST` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hash of the body its name carries.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The whole source, as loaded.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `FUNCTION LOAD`: loads the library (on every primary, through a Cluster
    /// connection). A server that has it already refuses before compiling anything, which
    /// counts as loaded: the name is the hash of the source, so the one it has is this one
    /// (and many calls that find it missing at once cost one compilation each server).
    pub async fn load<C: ConnectionLike>(&self, conn: &mut C) -> RedisResult<()> {
        loaded(self.load_command().query_async(conn).await)
    }

    /// The same, on a blocking connection (for tests and tools).
    pub fn load_blocking<C: redis::ConnectionLike>(&self, conn: &mut C) -> RedisResult<()> {
        loaded(self.load_command().query(conn))
    }

    fn load_command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("FUNCTION");
        cmd.arg("LOAD").arg(&self.source);
        cmd
    }
}

/// One operation of the library.
#[derive(Debug, Clone)]
pub struct Function {
    name: &'static str,
    /// `lh_<version>_<name>`, as FCALL names it.
    fcall: String,
    library: Arc<Library>,
}

impl Function {
    fn new(name: &'static str, library: &Arc<Library>) -> Self {
        Function {
            name,
            fcall: format!("lh_{}_{name}", library.version),
            library: library.clone(),
        }
    }

    /// The operation's name (its file in `lua/`), for metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The name FCALL calls it by.
    pub fn fcall_name(&self) -> &str {
        &self.fcall
    }

    /// A call of it, to give keys and arguments to.
    pub fn prepare_invoke(&self) -> Invocation<'_> {
        Invocation {
            function: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    /// A call of it with its first key.
    pub fn key<T: ToRedisArgs>(&self, key: T) -> Invocation<'_> {
        let mut invocation = self.prepare_invoke();
        invocation.key(key);
        invocation
    }
}

/// A call of a function being put together: its keys, then its arguments.
pub struct Invocation<'a> {
    function: &'a Function,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Invocation<'_> {
    pub fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    fn command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(&self.function.fcall)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }

    /// `FCALL`; when Redis does not have the function, loads the library and calls again.
    pub async fn invoke_async<T: FromRedisValue, C: ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> RedisResult<T> {
        let cmd = self.command();
        match cmd.query_async(conn).await {
            Err(e) if is_missing_function(&e) => {
                self.function.library.load(conn).await?;
                cmd.query_async(conn).await
            }
            answer => answer,
        }
    }
}

impl Invocation<'_> {
    /// The same, on a blocking connection (for tests and tools).
    pub fn invoke<T: FromRedisValue, C: redis::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> RedisResult<T> {
        let cmd = self.command();
        match cmd.query(conn) {
            Err(e) if is_missing_function(&e) => {
                self.function.library.load_blocking(conn)?;
                cmd.query(conn)
            }
            answer => answer,
        }
    }
}

/// Removes (with `dry_run`, only lists) every `leasehold_*` library on this server but
/// `keep`; answers their names.
pub async fn prune<C: ConnectionLike>(
    conn: &mut C,
    keep: &str,
    dry_run: bool,
) -> RedisResult<Vec<String>> {
    let listed: redis::Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("leasehold_*")
        .query_async(conn)
        .await?;
    let mut names = Vec::new();
    library_names(&listed, &mut names);
    names.retain(|name| name.starts_with("leasehold_") && name != keep);
    names.sort();
    if !dry_run {
        for name in &names {
            redis::cmd("FUNCTION")
                .arg("DELETE")
                .arg(name)
                .query_async::<()>(conn)
                .await?;
        }
    }
    Ok(names)
}

/// The values of `library_name` in a `FUNCTION LIST` reply (RESP2 lists of pairs, or maps).
fn library_names(value: &redis::Value, names: &mut Vec<String>) {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match value {
        redis::Value::Array(items) => {
            for pair in items.windows(2) {
                if text(&pair[0]).as_deref() == Some("library_name")
                    && let Some(name) = text(&pair[1])
                {
                    names.push(name);
                }
            }
            for item in items {
                if matches!(item, redis::Value::Array(_) | redis::Value::Map(_)) {
                    library_names(item, names);
                }
            }
        }
        redis::Value::Map(pairs) => {
            for (k, v) in pairs {
                if text(k).as_deref() == Some("library_name")
                    && let Some(name) = text(v)
                {
                    names.push(name);
                } else {
                    library_names(v, names);
                }
            }
        }
        _ => {}
    }
}

/// A `FUNCTION LOAD`'s answer: refused because the server has a library of that name
/// counts as loaded.
fn loaded(answer: RedisResult<redis::Value>) -> RedisResult<()> {
    match answer {
        Err(e) if e.detail().is_some_and(|d| d.contains("already exists")) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Whether Redis answered that it has no function of that name (`ERR Function not found`).
pub fn is_missing_function(e: &RedisError) -> bool {
    e.code() == Some("ERR")
        && e.detail()
            .is_some_and(|d| d.starts_with("Function not found"))
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
