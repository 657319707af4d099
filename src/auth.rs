//! API keys: generating them, the key file of hashes, and finding a key's tenant.
//!
//! The tenant always comes from the key, never from a path or body. Only SHA-256 hashes
//! of keys are stored (keys are long random strings, so a fast hash is enough), and a
//! presented key's hash is compared with every entry in constant time. The key file is
//! read again on SIGHUP, so keys are added and revoked without a restart; what a revoked
//! key keeps open (a live event stream) ends at the reload (`Auth::revoked`).
//!
//! A line may also set the tenant's own limits, in place of the server's defaults:
//! `acme:<sha256 hex> max_pools=100 max_items_per_pool=50000 max_pool_bytes=104857600`.
//! A limit given on two lines of one tenant must be the same on both.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::names::Tenant;
use leasehold_wire::answers::Quotas;

/// The tenant of requests without a key where anonymous access is allowed.
pub const ANONYMOUS_TENANT: &str = "dev";

/// One entry of the key file: a tenant and the SHA-256 of its key.
type Entry = (Tenant, [u8; 32]);

/// The limits a key file sets for one tenant; `None` keeps the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Overrides {
    max_pools: Option<u64>,
    max_items_per_pool: Option<u64>,
    max_pool_bytes: Option<u64>,
}

/// A key file as read: its keys, and the limits it sets per tenant.
#[derive(Debug, Default)]
struct Table {
    keys: Vec<Entry>,
    limits: std::collections::HashMap<Tenant, Overrides>,
}

/// Who may call, and as which tenant. Clones share one key table, so a reload through
/// any of them is seen by every request from then on.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Swapped whole on reload; a request takes the current table and reads it unlocked.
    keys: Arc<RwLock<Arc<Table>>>,
    /// Every tenant's limits unless the key file sets its own (`--max-*` flags).
    defaults: Quotas,
    /// Counts the reloads, so that what a key keeps open can check it at each one.
    reloads: Arc<tokio::sync::watch::Sender<u64>>,
    /// The key file the table came from, read again by `reload`.
    source: Option<PathBuf>,
    allow_anonymous: bool,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new key for `tenant`: the key itself, and the line that goes into the key file.
pub fn generate(tenant: &Tenant) -> (String, String) {
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let key = format!("lh_{secret}");
    let entry = format!("{tenant}:{}", hex::encode(hash(&key)));
    (key, entry)
}

impl Auth {
    /// Reads a key file: one `tenant:<sha256 hex>` a line; blank lines and `#` comments
    /// are skipped.
    pub fn from_file(path: &Path, allow_anonymous: bool) -> Result<Self, String> {
        let keys = read_key_file(path)?;
        Ok(Auth {
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            defaults: Quotas::default(),
            reloads: Arc::new(tokio::sync::watch::Sender::new(0)),
            source: Some(path.to_owned()),
            allow_anonymous,
        })
    }

    /// The limits of tenants the key file sets none for.
    pub fn with_default_quotas(mut self, defaults: Quotas) -> Self {
        self.defaults = defaults;
        self
    }

    /// Every tenant a key is in force for (and `dev`, where requests without a key are
    /// taken), each once.
    pub fn tenants(&self) -> Vec<Tenant> {
        let table = Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner));
        let mut tenants: Vec<Tenant> = table.keys.iter().map(|(t, _)| t.clone()).collect();
        if self.allow_anonymous
            && let Ok(dev) = Tenant::parse("tenant", ANONYMOUS_TENANT)
        {
            tenants.push(dev);
        }
        tenants.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        tenants.dedup();
        tenants
    }

    /// A tenant's limits: its own from the key file, else the defaults.
    pub fn quotas(&self, tenant: &Tenant) -> Quotas {
        let table = Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner));
        let own = table.limits.get(tenant).copied().unwrap_or_default();
        Quotas {
            max_pools_per_tenant: own.max_pools.unwrap_or(self.defaults.max_pools_per_tenant),
            max_items_per_pool: own
                .max_items_per_pool
                .unwrap_or(self.defaults.max_items_per_pool),
            max_pool_bytes: own.max_pool_bytes.unwrap_or(self.defaults.max_pool_bytes),
        }
    }

    /// Reads the key file again and, only if all of it parses, puts its keys in place of
    /// the current ones: a removed key is refused from the next request on, a new one
    /// accepted. A file that fails to parse leaves the current keys as they are.
    /// Returns how many keys are now in force.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.source else {
            return Err("no API key file to reload".to_owned());
        };
        let keys = read_key_file(path)?;
        let count = keys.keys.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        self.reloads.send_modify(|reloads| *reloads += 1);
        Ok(count)
    }

    /// Reloads the key file on every SIGHUP, logging the outcome, for as long as the
    /// process runs. Does nothing without a key file (SIGHUP then keeps its default
    /// meaning). Must be called within a Tokio runtime.
    pub fn reload_on_sighup(&self) {
        let Some(path) = self.source.clone() else {
            return;
        };
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(e) => {
                    tracing::error!(
                        "cannot listen for SIGHUP, so the API key file will not be reloaded: {e}"
                    );
                    return;
                }
            };
            let auth = self.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match auth.reload() {
                        Ok(count) => tracing::info!(
                            "SIGHUP: reloaded {count} API keys from {}",
                            path.display()
                        ),
                        Err(e) => tracing::error!(
                            "SIGHUP: API key file not reloaded, the previous keys stay in force: {e}"
                        ),
                    }
                }
            });
        }
        #[cfg(not(unix))]
        let _ = path;
    }

    /// Anyone may call, as the tenant `dev`.
    pub fn anonymous() -> Self {
        Auth {
            keys: Arc::default(),
            defaults: Quotas::default(),
            reloads: Arc::new(tokio::sync::watch::Sender::new(0)),
            source: None,
            allow_anonymous: true,
        }
    }

    /// The tenant of an `Authorization` header value. A key that is presented must be
    /// valid even where anonymous access is allowed.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Tenant, ApiError> {
        self.caller(authorization).map(|caller| caller.tenant)
    }

    /// Who an `Authorization` header value is: its tenant, and the key it presented.
    pub fn caller(&self, authorization: Option<&[u8]>) -> Result<Caller, ApiError> {
        let Some(value) = authorization else {
            return if self.allow_anonymous {
                Ok(Caller {
                    tenant: Tenant::parse("tenant", ANONYMOUS_TENANT)?,
                    key: None,
                })
            } else {
                Err(ApiError::Unauthorized)
            };
        };
        // `Bearer <key>`; the scheme is case-insensitive (RFC 9110, 11.1).
        let key = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, key)| key.trim())
            .ok_or(ApiError::Unauthorized)?;
        let presented = hash(key);
        let tenant = self.tenant_of(&presented).ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            tenant,
            key: Some(presented),
        })
    }

    /// Whether a caller's key is still in force (for a caller without a key: whether
    /// requests without one are still accepted).
    pub fn still_valid(&self, caller: &Caller) -> bool {
        match &caller.key {
            None => self.allow_anonymous,
            Some(key) => self.tenant_of(key).as_ref() == Some(&caller.tenant),
        }
    }

    /// Resolves when a reload of the key file has revoked the caller's key; never, as
    /// long as it stays.
    pub async fn revoked(&self, caller: &Caller) {
        let mut reloads = self.reloads.subscribe();
        while reloads.changed().await.is_ok() {
            if !self.still_valid(caller) {
                return;
            }
        }
        std::future::pending().await
    }

    /// The tenant whose key has this hash, compared with every entry in constant time.
    fn tenant_of(&self, presented: &[u8; 32]) -> Option<Tenant> {
        // Take the current table and let go of the lock before comparing.
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner));
        let mut found = None;
        for (tenant, digest) in keys.keys.iter() {
            if bool::from(digest.ct_eq(presented)) {
                found = Some(tenant);
            }
        }
        found.cloned()
    }
}

/// Who a request came from: its tenant, and the hash of the key it presented (none for
/// a request without a key where that is allowed).
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    key: Option<[u8; 32]>,
}

/// Parses a whole key file, or says which line is wrong.
fn read_key_file(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read API key file {}: {e}", path.display()))?;
    let mut table = Table::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("{}:{}: {why}", path.display(), n + 1);
        let mut words = line.split_whitespace();
        let (tenant, digest) = words
            .next()
            .and_then(|entry| entry.split_once(':'))
            .ok_or_else(|| bad("expected <tenant>:<sha256 hex>"))?;
        let tenant = Tenant::parse("tenant", tenant).map_err(|e| bad(&e.to_string()))?;
        let digest: [u8; 32] = hex::decode(digest)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| bad("the hash must be 64 hex digits"))?;
        let limits = table.limits.entry(tenant.clone()).or_default();
        for word in words {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| bad(&format!("expected <limit>=<number>, not {word:?}")))?;
            let slot = match name {
                "max_pools" => &mut limits.max_pools,
                "max_items_per_pool" => &mut limits.max_items_per_pool,
                "max_pool_bytes" => &mut limits.max_pool_bytes,
                _ => {
                    return Err(bad(&format!(
                        "unknown limit {name:?} (max_pools, max_items_per_pool, max_pool_bytes)"
                    )));
                }
            };
            let value: u64 = value
                .parse()
                .ok()
                .filter(|v| *v <= leasehold_wire::numbers::MAX_SAFE_INTEGER)
                .ok_or_else(|| {
                    bad(&format!(
                        "{name} must be a whole number up to 2^53 - 1, not {value:?}"
                    ))
                })?;
            if slot.is_some_and(|set| set != value) {
                return Err(bad(&format!(
                    "{name} is set differently on another line of tenant {tenant}"
                )));
            }
            *slot = Some(value);
        }
        table.keys.push((tenant, digest));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_authenticate_as_their_tenant() {
        let tenant = Tenant::parse("tenant", "acme").expect("valid");
        let (key, entry) = generate(&tenant);
        let dir = std::env::temp_dir().join(format!("lh-auth-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, format!("# keys\n{entry}\n")).expect("write");
        let auth = Auth::from_file(&dir, false).expect("load");
        let _ = std::fs::remove_file(&dir);
        let header = format!("Bearer {key}");
        assert_eq!(
            auth.authenticate(Some(header.as_bytes())).ok().as_ref(),
            Some(&tenant)
        );
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            let header = format!("{scheme} {key}");
            assert_eq!(
                auth.authenticate(Some(header.as_bytes())).ok().as_ref(),
                Some(&tenant),
                "{scheme}"
            );
        }
        assert!(auth.authenticate(Some(b"Bearer lh_wrong")).is_err());
        assert!(
            auth.authenticate(Some(format!("Bearerx {key}").as_bytes()))
                .is_err()
        );
        assert!(auth.authenticate(None).is_err());
        assert!(auth.authenticate(Some(key.as_bytes())).is_err());
    }

    fn key_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("lh-auth-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_reload_revokes_removed_keys_and_accepts_new_ones_in_every_clone() {
        let acme = Tenant::parse("tenant", "acme").expect("valid");
        let globex = Tenant::parse("tenant", "globex").expect("valid");
        let (old_key, old_entry) = generate(&acme);
        let (new_key, new_entry) = generate(&globex);
        let path = key_file(&format!("{old_entry}\n"));
        let auth = Auth::from_file(&path, false).expect("load");
        let serving = auth.clone();
        let old = format!("Bearer {old_key}");
        let new = format!("Bearer {new_key}");
        assert_eq!(serving.authenticate(Some(old.as_bytes())).ok(), Some(acme));
        assert!(serving.authenticate(Some(new.as_bytes())).is_err());

        std::fs::write(&path, format!("{new_entry}\n")).expect("rewrite");
        assert_eq!(auth.reload(), Ok(1));
        let _ = std::fs::remove_file(&path);
        assert!(serving.authenticate(Some(old.as_bytes())).is_err());
        assert_eq!(
            serving.authenticate(Some(new.as_bytes())).ok(),
            Some(globex)
        );
    }

    #[test]
    fn a_key_file_that_fails_to_parse_keeps_the_previous_keys() {
        let acme = Tenant::parse("tenant", "acme").expect("valid");
        let (key, entry) = generate(&acme);
        let path = key_file(&format!("{entry}\n"));
        let auth = Auth::from_file(&path, false).expect("load");
        let header = format!("Bearer {key}");
        for broken in [
            "acme:not-hex\n".to_owned(),
            format!("{entry}\nno colon here\n"),
            format!("{{bad}}:{}\n", "0".repeat(64)),
        ] {
            std::fs::write(&path, broken).expect("rewrite");
            let error = auth.reload().expect_err("a broken file is refused");
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert_eq!(
                auth.authenticate(Some(header.as_bytes())).ok(),
                Some(acme.clone())
            );
        }
        std::fs::remove_file(&path).expect("remove");
        assert!(auth.reload().is_err(), "a missing file is refused");
        assert_eq!(auth.authenticate(Some(header.as_bytes())).ok(), Some(acme));
        assert!(Auth::anonymous().reload().is_err());
    }
}
