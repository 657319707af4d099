//! Where the primary is, as the sentinels say: resolved when a connection is needed, and
//! kept current as failovers happen.
//!
//! Sentinels learn of a failover at different moments (the one that led it first, the
//! others from its hello messages, a second or two later), and a replaced primary may be
//! alive and still believe it is primary, so "the first sentinel's answer, checked with
//! `ROLE`" can lead back to the old primary for a while. So every sentinel is asked and
//! the answer with the newest configuration epoch wins; and a `+switch-master`
//! announcement (see `failover`) names the new primary outright, which is used until a
//! fault says it is worth asking again.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

use super::backend::client;

/// A primary's address, and how sure of it we are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    address: String,
    /// The configuration epoch the sentinels gave it (`None`: announced by a switch).
    epoch: Option<u64>,
}

/// The primary that the sentinels name for one master.
pub(super) struct Primary {
    sentinels: Vec<String>,
    master: String,
    timeout: Duration,
    known: Mutex<Option<Known>>,
}

impl Primary {
    pub fn new(sentinels: Vec<String>, master: String, timeout: Duration) -> Primary {
        Primary {
            sentinels,
            master,
            timeout,
            known: Mutex::new(None),
        }
    }

    /// The primary's `redis://host:port`, resolved first if it is not known.
    pub async fn url(&self) -> Result<String, RedisError> {
        let address = match self.known() {
            Some(known) => known.address,
            None => self.resolve().await?,
        };
        Ok(format!("redis://{address}"))
    }

    /// A connection to the primary.
    pub async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        let url = self.url().await?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connected = client(&url, None)?
            .get_multiplexed_async_connection_with_config(&config)
            .await;
        if connected.is_err() {
            self.forget();
        }
        connected
    }

    /// A sentinel announced a new primary (`host:port`): use it from now on.
    pub fn switched(&self, address: String) {
        *self.lock() = Some(Known {
            address,
            epoch: None,
        });
    }

    /// A connection met a fault: ask the sentinels again next time.
    pub fn forget(&self) {
        *self.lock() = None;
    }

    fn known(&self) -> Option<Known> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks every sentinel at once; of the primaries they name that they do not think
    /// down, the one with the newest configuration epoch.
    async fn resolve(&self) -> Result<String, RedisError> {
        let answers = futures::future::join_all(self.sentinels.iter().map(|url| async move {
            let ask = async {
                let mut conn = client(url, None)?
                    .get_multiplexed_async_connection()
                    .await?;
                redis::cmd("SENTINEL")
                    .arg("MASTER")
                    .arg(&self.master)
                    .query_async::<Vec<String>>(&mut conn)
                    .await
            };
            tokio::time::timeout(self.timeout, ask).await.ok()?.ok()
        }))
        .await;
        let newest = answers
            .iter()
            .flatten()
            .filter_map(|fields| named(fields))
            .max_by_key(|known| known.epoch);
        match newest {
            Some(known) => {
                let address = known.address.clone();
                // Unless an announcement came meanwhile, which is newer still.
                let mut current = self.lock();
                if current.is_none() {
                    *current = Some(known);
                }
                Ok(current.as_ref().map_or(address, |k| k.address.clone()))
            }
            None => Err(RedisError::from((
                redis::ErrorKind::MasterNameNotFoundBySentinel,
                "no sentinel names a primary that is up",
                self.master.clone(),
            ))),
        }
    }
}

/// The primary a `SENTINEL MASTER` answer names, unless the sentinel thinks it down.
fn named(fields: &[String]) -> Option<Known> {
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().is_some_and(|key| key == name))
            .and_then(|pair| pair.get(1))
    };
    let flags = field("flags")?;
    if flags
        .split(',')
        .any(|flag| flag == "s_down" || flag == "o_down" || flag == "disconnected")
    {
        return None;
    }
    Some(Known {
        address: format!("{}:{}", field("ip")?, field("port")?),
        epoch: Some(field("config-epoch")?.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(pairs: &[(&str, &str)]) -> Vec<String> {
        pairs
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect()
    }

    #[test]
    fn a_sentinel_answer_names_its_primary_and_epoch_unless_it_is_down() {
        let up = answer(&[
            ("name", "leasehold"),
            ("ip", "10.0.0.2"),
            ("port", "6380"),
            ("flags", "master"),
            ("config-epoch", "3"),
        ]);
        assert_eq!(
            named(&up),
            Some(Known {
                address: "10.0.0.2:6380".to_owned(),
                epoch: Some(3)
            })
        );
        let down = answer(&[
            ("ip", "10.0.0.1"),
            ("port", "6379"),
            ("flags", "master,s_down,o_down"),
            ("config-epoch", "2"),
        ]);
        assert_eq!(named(&down), None);
        assert_eq!(named(&answer(&[("ip", "10.0.0.1")])), None);
    }
}
