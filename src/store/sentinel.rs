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
//!
//! From the moment a sentinel announces that it tries to fail the primary over
//! (`+try-failover`) until the failover is over, the primary is **fenced**: nothing is
//! sent to it. Once the replica chosen to replace it stops replicating (`REPLICAOF NO
//! ONE`), a primary that is still alive — it was only slow, or cut off from the sentinels
//! alone — would go on acknowledging writes through its other replicas until the sentinels
//! reconfigure them, and every such write is lost with the failover. The fence is lifted
//! when a sentinel announces the new primary (or they name another when asked), or when
//! none is failing it over any more and most think it up (the failover was aborted).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

use super::backend::{NodeAuth, client};

/// While fenced, how often the sentinels are asked whether the failover is over (calls
/// in between are refused at once).
const RECHECK_FENCE: Duration = Duration::from_millis(200);

/// A primary's address, and how sure of it we are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    address: String,
    /// The configuration epoch the sentinels gave it (`None`: announced by a switch).
    epoch: Option<u64>,
}

/// A failover of the primary at `address` is under way.
#[derive(Debug)]
struct Fence {
    address: String,
    /// When the sentinels were last asked whether it is over.
    checked: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    known: Option<Known>,
    fence: Option<Fence>,
}

/// One sentinel's view of the master: the primary it names, and what it thinks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    primary: Known,
    /// It thinks the primary down (subjectively or objectively) or cannot reach it.
    down: bool,
    /// It is failing the primary over.
    failing_over: bool,
}

/// The primary that the sentinels name for one master.
pub(super) struct Primary {
    sentinels: Vec<String>,
    master: String,
    /// How to log in to the servers the sentinels name.
    auth: Option<NodeAuth>,
    timeout: Duration,
    state: Mutex<State>,
}

impl Primary {
    pub fn new(
        sentinels: Vec<String>,
        master: String,
        auth: Option<NodeAuth>,
        timeout: Duration,
    ) -> Primary {
        Primary {
            sentinels,
            master,
            auth,
            timeout,
            state: Mutex::new(State::default()),
        }
    }

    /// The primary's `redis://[user:password@]host:port`, resolved first if it is not
    /// known; refused while a failover of it is under way.
    pub async fn url(&self) -> Result<String, RedisError> {
        if let Some(fenced) = self.fence_to_check()? {
            self.check_fence(&fenced).await?;
        }
        let known = self.lock().known.clone();
        let address = match known {
            Some(known) => known.address,
            None => self.resolve().await?,
        };
        if self.is_fenced(&address) {
            return Err(failing_over(&address));
        }
        let url = format!("redis://{address}");
        let Some(auth) = &self.auth else {
            return Ok(url);
        };
        let mut url = url::Url::parse(&url).map_err(|e| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "the primary's address is not a URL",
                e.to_string(),
            ))
        })?;
        let bad = |_| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cannot put the credentials in the primary's URL",
            ))
        };
        url.set_username(auth.username.as_deref().unwrap_or(""))
            .map_err(bad)?;
        url.set_password(Some(&auth.password)).map_err(bad)?;
        Ok(url.into())
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

    /// A sentinel announced a new primary (`host:port`): use it from now on. Unless it is
    /// the one being failed over: then it is a late announcement of the switch that made
    /// it primary (sentinels that learn of a failover from the others announce it up to
    /// seconds later), older than the failover; false then, and nothing changes.
    pub fn switched(&self, address: String) -> bool {
        let mut state = self.lock();
        if state.fence.as_ref().is_some_and(|f| f.address == address) {
            return false;
        }
        state.fence = None;
        state.known = Some(Known {
            address,
            epoch: None,
        });
        true
    }

    /// A sentinel announced that it tries to fail over the primary at `address`
    /// (`host:port`): send it nothing until that is over. True if that is the primary in
    /// use (or the one in use is not known), whose connections must go.
    pub fn failover_started(&self, address: String) -> bool {
        let mut state = self.lock();
        if state
            .known
            .as_ref()
            .is_some_and(|known| known.address != address)
        {
            return false;
        }
        state.known = None;
        state.fence = Some(Fence {
            address,
            checked: None,
        });
        true
    }

    /// A connection met a fault: ask the sentinels again next time.
    pub fn forget(&self) {
        self.lock().known = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_fenced(&self, address: &str) -> bool {
        self.lock()
            .fence
            .as_ref()
            .is_some_and(|fence| fence.address == address)
    }

    /// While fenced: the fenced address when it is time to ask the sentinels whether its
    /// failover is over (at most every `RECHECK_FENCE`), else the refusal.
    fn fence_to_check(&self) -> Result<Option<String>, RedisError> {
        let mut state = self.lock();
        let Some(fence) = state.fence.as_mut() else {
            return Ok(None);
        };
        if fence.checked.is_some_and(|at| at.elapsed() < RECHECK_FENCE) {
            return Err(failing_over(&fence.address));
        }
        fence.checked = Some(Instant::now());
        Ok(Some(fence.address.clone()))
    }

    /// Lifts the fence on `address` if the sentinels have moved on: they name another
    /// primary (the newest epoch wins), or none is failing it over and most of those that
    /// answer think it up (the failover was aborted).
    async fn check_fence(&self, address: &str) -> Result<(), RedisError> {
        let views = self.views().await;
        let named = newest(&views);
        let moved_on = named.as_ref().is_some_and(|known| known.address != address);
        let up = views.iter().filter(|v| !v.down).count();
        let settled = up * 2 > views.len() && views.iter().all(|v| !v.failing_over);
        if moved_on || settled {
            let mut state = self.lock();
            if state.fence.as_ref().is_some_and(|f| f.address == address) {
                state.fence = None;
                if state.known.is_none() {
                    state.known = named;
                }
            }
            Ok(())
        } else {
            Err(failing_over(address))
        }
    }

    /// Asks every sentinel at once; of the primaries they name that they do not think
    /// down, the one with the newest configuration epoch.
    async fn resolve(&self) -> Result<String, RedisError> {
        match newest(&self.views().await) {
            Some(known) => {
                let address = known.address.clone();
                // Unless an announcement came meanwhile, which is newer still.
                let mut state = self.lock();
                if state.known.is_none() {
                    state.known = Some(known);
                }
                Ok(state.known.as_ref().map_or(address, |k| k.address.clone()))
            }
            None => Err(RedisError::from((
                redis::ErrorKind::MasterNameNotFoundBySentinel,
                "no sentinel names a primary that is up",
                self.master.clone(),
            ))),
        }
    }

    /// What every sentinel that answers in time says of the master.
    async fn views(&self) -> Vec<View> {
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
        answers
            .iter()
            .flatten()
            .filter_map(|fields| view(fields))
            .collect()
    }
}

/// Of the primaries the sentinels name and do not think down, the one with the newest
/// configuration epoch.
fn newest(views: &[View]) -> Option<Known> {
    views
        .iter()
        .filter(|v| !v.down)
        .map(|v| v.primary.clone())
        .max_by_key(|known| known.epoch)
}

/// A sentinel's view of the master from its `SENTINEL MASTER` answer.
fn view(fields: &[String]) -> Option<View> {
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().is_some_and(|key| key == name))
            .and_then(|pair| pair.get(1))
    };
    let flags: Vec<&str> = field("flags")?.split(',').collect();
    Some(View {
        primary: Known {
            address: format!("{}:{}", field("ip")?, field("port")?),
            epoch: Some(field("config-epoch")?.parse().ok()?),
        },
        down: flags
            .iter()
            .any(|flag| matches!(*flag, "s_down" | "o_down" | "disconnected")),
        failing_over: flags.contains(&"failover_in_progress"),
    })
}

fn failing_over(address: &str) -> RedisError {
    RedisError::from(std::io::Error::other(format!(
        "a failover of the primary at {address} is under way"
    )))
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

    fn known(address: &str, epoch: u64) -> Known {
        Known {
            address: address.to_owned(),
            epoch: Some(epoch),
        }
    }

    #[test]
    fn a_sentinel_answer_names_its_primary_and_epoch_and_what_it_thinks_of_it() {
        let up = answer(&[
            ("name", "leasehold"),
            ("ip", "10.0.0.2"),
            ("port", "6380"),
            ("flags", "master"),
            ("config-epoch", "3"),
        ]);
        let up = view(&up).expect("a view");
        assert_eq!(up.primary, known("10.0.0.2:6380", 3));
        assert!(!up.down && !up.failing_over);

        let down = answer(&[
            ("ip", "10.0.0.1"),
            ("port", "6379"),
            ("flags", "master,s_down,o_down,failover_in_progress"),
            ("config-epoch", "2"),
        ]);
        let down = view(&down).expect("a view");
        assert!(down.down && down.failing_over);
        assert_eq!(view(&answer(&[("ip", "10.0.0.1")])), None);

        assert_eq!(
            newest(&[down.clone(), up.clone()]),
            Some(up.primary.clone())
        );
        assert_eq!(newest(&[down]), None);
    }

    #[test]
    fn a_failover_fences_the_primary_in_use_until_a_switch_names_another() {
        let primary = Primary::new(vec![], "leasehold".to_owned(), None, Duration::from_secs(1));
        primary.switched("10.0.0.1:6379".to_owned());
        assert!(!primary.failover_started("10.0.0.9:6379".to_owned()));
        assert!(!primary.is_fenced("10.0.0.1:6379"));

        assert!(primary.failover_started("10.0.0.1:6379".to_owned()));
        assert!(primary.is_fenced("10.0.0.1:6379"));
        let due = primary.fence_to_check().expect("due at once");
        assert_eq!(due.as_deref(), Some("10.0.0.1:6379"));
        assert!(primary.fence_to_check().is_err(), "asked again too soon");

        assert!(
            !primary.switched("10.0.0.1:6379".to_owned()),
            "a late announcement of the switch that made it primary"
        );
        assert!(primary.is_fenced("10.0.0.1:6379"));

        assert!(primary.switched("10.0.0.2:6379".to_owned()));
        assert!(!primary.is_fenced("10.0.0.1:6379"));
        assert_eq!(primary.fence_to_check().ok(), Some(None));
    }
}
