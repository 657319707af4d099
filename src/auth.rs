//! API keys: generating them, the key file of hashes, and finding a key's tenant.
//!
//! The tenant always comes from the key, never from a path or body. Only SHA-256 hashes
//! of keys are stored (keys are long random strings, so a fast hash is enough), and a
//! presented key's hash is compared with every entry in constant time.

use std::path::Path;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::names::Tenant;

/// The tenant of requests without a key where anonymous access is allowed.
pub const ANONYMOUS_TENANT: &str = "dev";

/// Who may call, and as which tenant.
#[derive(Debug, Clone)]
pub struct Auth {
    keys: Vec<(Tenant, [u8; 32])>,
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read API key file {}: {e}", path.display()))?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("{}:{}: {why}", path.display(), n + 1);
            let (tenant, digest) = line
                .split_once(':')
                .ok_or_else(|| bad("expected <tenant>:<sha256 hex>"))?;
            let tenant = Tenant::parse("tenant", tenant).map_err(|e| bad(&e.to_string()))?;
            let digest: [u8; 32] = hex::decode(digest)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| bad("the hash must be 64 hex digits"))?;
            keys.push((tenant, digest));
        }
        Ok(Auth {
            keys,
            allow_anonymous,
        })
    }

    /// Anyone may call, as the tenant `dev`.
    pub fn anonymous() -> Self {
        Auth {
            keys: Vec::new(),
            allow_anonymous: true,
        }
    }

    /// The tenant of an `Authorization` header value. A key that is presented must be
    /// valid even where anonymous access is allowed.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Tenant, ApiError> {
        let Some(value) = authorization else {
            return if self.allow_anonymous {
                Tenant::parse("tenant", ANONYMOUS_TENANT)
            } else {
                Err(ApiError::Unauthorized)
            };
        };
        let key = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let presented = hash(key);
        let mut found = None;
        for (tenant, digest) in &self.keys {
            if bool::from(digest.ct_eq(&presented)) {
                found = Some(tenant);
            }
        }
        found.cloned().ok_or(ApiError::Unauthorized)
    }
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
            auth.authenticate(Some(header.as_bytes())).ok(),
            Some(tenant)
        );
        assert!(auth.authenticate(Some(b"Bearer lh_wrong")).is_err());
        assert!(auth.authenticate(None).is_err());
        assert!(auth.authenticate(Some(key.as_bytes())).is_err());
    }
}
