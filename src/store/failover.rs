//! Following Sentinel's switch of primary as it happens.
//!
//! A connection to a primary that Sentinel has replaced may go on answering: the old
//! primary, stopped and resumed or cut off and back, believes it is primary until the
//! sentinels turn it into a replica, which can take them tens of seconds. Under
//! `replicas:N` it refuses to acknowledge (its replicas left it), so no wrong answer comes
//! of it, but every request on such a connection fails. So each replica listens on every
//! sentinel for `+switch-master` and, when its primary is switched, closes every
//! connection it holds: the next request connects to the primary the sentinels name now.
//! Without the message (it was missed, or the sentinels were out of reach) a connection
//! that fails is closed all the same (see `Store::with_connection`); the message only
//! saves the failures.
//!
//! Each replica also listens for `+try-failover`: from then on the primary is fenced (see
//! `sentinel`), its connections are closed, and a call that was under way on one of them
//! answers 503 (its outcome unknown) even if the primary acknowledged it, since the
//! failover may take it back.

use std::sync::Weak;
use std::time::Duration;

use futures::StreamExt;

use super::Inner;
use super::backend::client;

/// The channel on which a sentinel announces a new primary:
/// `<master name> <old ip> <old port> <new ip> <new port>`.
const SWITCH_MASTER: &str = "+switch-master";
/// The channel on which a sentinel announces that it starts a failover (its leader may
/// be another): `master <master name> <ip> <port>`.
const TRY_FAILOVER: &str = "+try-failover";
/// How long to wait before connecting to a sentinel again after losing it.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// How often the subscription is checked with a PING (and whether the store still lives).
const PING_EVERY: Duration = Duration::from_secs(5);

/// Listens on the sentinel at `url` for switches of `master`, for as long as the store
/// lives, reconnecting after failures.
pub(super) async fn follow_switches(
    inner: Weak<Inner>,
    url: String,
    master: String,
    timeout: Duration,
    fence: bool,
) {
    let channels: &[&str] = if fence {
        &[SWITCH_MASTER, TRY_FAILOVER]
    } else {
        &[SWITCH_MASTER]
    };
    while inner.strong_count() > 0 {
        if let Err(e) = listen(&inner, &url, &master, timeout, channels).await {
            tracing::debug!(sentinel = %super::redacted(&url), "sentinel subscription lost, reconnecting: {e}");
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// Subscribes on one sentinel and acts on every switch of `master` until the connection
/// fails (an error) or the store is dropped (Ok).
async fn listen(
    inner: &Weak<Inner>,
    url: &str,
    master: &str,
    timeout: Duration,
    channels: &[&str],
) -> Result<(), redis::RedisError> {
    let connect = async {
        let mut pubsub = client(url, None)?.get_async_pubsub().await?;
        pubsub.subscribe(channels).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err(timed_out());
                };
                let Some(inner) = inner.upgrade() else { return Ok(()) };
                let payload: String = message.get_payload().unwrap_or_default();
                if message.get_channel_name() == TRY_FAILOVER {
                    if let Some(address) = failover_of(&payload, master) {
                        tracing::warn!(%master, %address, "Sentinel fails the primary over; sending it nothing until that is over");
                        inner.backend.failover_started(address);
                    }
                } else if let Some((from, to)) = switch_of(&payload, master) {
                    if inner.backend.primary_switched(to.clone()) {
                        tracing::warn!(%master, %from, %to, "Sentinel switched the primary; reconnecting to the new one");
                        inner.wakeups.primary_switched();
                    } else {
                        tracing::info!(%master, %from, %to, "a late announcement of a switch to the primary being failed over; ignored");
                    }
                }
            }
            _ = ping.tick() => {
                if inner.strong_count() == 0 {
                    return Ok(());
                }
                tokio::time::timeout(timeout, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| timed_out())??;
            }
        }
    }
}

/// The old and new `ip:port` of a `+switch-master` message, if it is about `master`.
fn switch_of(payload: &str, master: &str) -> Option<(String, String)> {
    let fields: Vec<&str> = payload.split_whitespace().collect();
    match fields.as_slice() {
        [name, old_ip, old_port, new_ip, new_port] if *name == master => Some((
            format!("{old_ip}:{old_port}"),
            format!("{new_ip}:{new_port}"),
        )),
        _ => None,
    }
}

/// The `ip:port` of a `+try-failover` message, if it is about `master`.
fn failover_of(payload: &str, master: &str) -> Option<String> {
    let fields: Vec<&str> = payload.split_whitespace().collect();
    match fields.as_slice() {
        ["master", name, ip, port] if *name == master => Some(format!("{ip}:{port}")),
        _ => None,
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_is_read_only_for_its_own_master() {
        let payload = "leasehold 127.0.0.1 6379 127.0.0.1 6380";
        assert_eq!(
            switch_of(payload, "leasehold"),
            Some(("127.0.0.1:6379".to_owned(), "127.0.0.1:6380".to_owned()))
        );
        assert_eq!(switch_of(payload, "other"), None);
        assert_eq!(switch_of("leasehold 127.0.0.1 6379", "leasehold"), None);
    }

    #[test]
    fn a_failover_attempt_is_read_only_for_its_own_master() {
        let payload = "master leasehold 127.0.0.1 6379";
        assert_eq!(
            failover_of(payload, "leasehold").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(failover_of(payload, "other"), None);
        assert_eq!(
            failover_of(
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ leasehold 127.0.0.1 6379",
                "leasehold"
            ),
            None
        );
    }
}
