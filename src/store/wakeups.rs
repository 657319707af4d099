//! Wake-ups for long-poll claims, on every replica.
//!
//! A script that makes items available announces how many on the pool's channel (named
//! like its event stream, `lh:{tenant/pool}:events`). Each replica keeps one pub/sub
//! connection subscribed to every pool's channel and, for each announcement, wakes that
//! many of its waiters on that pool: a thousand waiters do not all rush Redis when one item
//! comes back. Waiters hold no Redis connection while they wait; each try is one ordinary
//! script call.
//!
//! Pub/sub may drop a message (a reconnect, a failover), and time alone makes items
//! available (a lease expires, a delay ends), which no script announces. So one waiter
//! per pool and replica, the watcher, also tries on a timer: when the pool's first lease
//! or delay ends, at least every second while there are such, and every few seconds as a
//! safety net otherwise (more often while the subscription is down). Its try reclaims
//! what ended, and the script announces what it freed. The other waiters sleep until
//! woken or their time is up: a thousand waiters cost a handful of tries a second, not a
//! thousand every few seconds. A waiter that leaves with the role vacant (it held it, or
//! was woken and nobody holds it) wakes the newest waiter to take it up; so should a lost
//! message have left items unannounced, the watcher's timed try takes one and each waiter
//! woken after it takes the next, until one finds nothing and watches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use redis::TlsCertificates;
use tokio::sync::Notify;

use super::Topology;
use super::backend::client;
use super::keys::POOL_EVENTS_PATTERN;
use super::sentinel::Primary;

/// How often the watcher tries again without being woken, while the subscription is up.
const SAFETY_RETRY: Duration = Duration::from_secs(5);
/// The longest the watcher waits before trying again while the pool has leases with an
/// expiry or delays: one granted after its last try may end before the one it watched.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The same while it is down (then pub/sub wakes nobody).
const UNSUBSCRIBED_RETRY: Duration = Duration::from_millis(500);
/// How often the subscription is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The most waiters one announcement wakes.
const MAX_WAKE: usize = 1000;

/// Whether the app that owns a store is stopping: then waiters (long polls, event
/// streams) answer at once with what they have, so they do not hold up the stop. Each app
/// has its own: apps in one process (the tests') stop on their own.
#[derive(Default)]
pub struct Stopping {
    stopped: AtomicBool,
    notify: Notify,
}

impl Stopping {
    /// Ends every wait of this app.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Completes once the app stops waiting.
    pub async fn stopped(&self) {
        let stopped = self.notify.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        stopped.await;
    }
}

/// The waiters of one replica.
#[derive(Default)]
pub struct Wakeups {
    pools: Mutex<HashMap<String, Weak<PoolWaiters>>>,
    pub stopping: Stopping,
    subscribed: AtomicBool,
    /// Told when Sentinel switches primaries: the subscription moves to the new one (the
    /// old one, if alive, hears nothing of the new one's announcements).
    switched: Arc<Notify>,
}

/// The waiters on one pool: woken one per item announced; one of them at a time, the
/// watcher, also tries on a timer.
#[derive(Default)]
pub struct PoolWaiters {
    pub notify: Notify,
    watched: AtomicBool,
}

impl PoolWaiters {
    /// A long-poll claim's place among the pool's waiters, until it is dropped.
    pub fn join(&self) -> Waiting<'_> {
        Waiting {
            waiters: self,
            watching: false,
            woken: false,
        }
    }
}

/// One long-poll claim among its pool's waiters. It may take up the watcher's role. When
/// it leaves (answered, failed or cancelled), the role is not left vacant while others
/// wait: if it held the role, or was woken (perhaps to take it up) and nobody holds it,
/// the newest waiter (the one likely to wait longest) is woken to try and take it up.
pub struct Waiting<'a> {
    waiters: &'a PoolWaiters,
    watching: bool,
    woken: bool,
}

impl Waiting<'_> {
    /// Takes the watcher's role if it is free; whether this claim holds it. Either way a
    /// wake it had is used: the role is held.
    pub fn watch(&mut self) -> bool {
        if !self.watching {
            self.watching = !self.waiters.watched.swap(true, Ordering::AcqRel);
        }
        self.woken = false;
        self.watching
    }

    /// Notes that this claim was woken (a wake it must use: try, then watch or pass on).
    pub fn woken(&mut self) {
        self.woken = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let vacant = if self.watching {
            self.waiters.watched.store(false, Ordering::Release);
            true
        } else {
            self.woken && !self.waiters.watched.load(Ordering::Acquire)
        };
        if vacant {
            self.waiters.notify.notify_last();
        }
    }
}

impl Wakeups {
    /// The waiters on the pool whose channel is `channel`, shared with every other waiter
    /// on it in this replica.
    pub fn pool(&self, channel: String) -> Arc<PoolWaiters> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(waiters) = pools.get(&channel).and_then(Weak::upgrade) {
            return waiters;
        }
        if pools.len() >= 64 {
            pools.retain(|_, waiters| waiters.strong_count() > 0);
        }
        let waiters = Arc::new(PoolWaiters::default());
        pools.insert(channel, Arc::downgrade(&waiters));
        waiters
    }

    /// How long the watcher waits before trying again: until the pool's first lease or
    /// delay ends (`next_in`, from its last try; `None` when there is none), but no longer
    /// than `PROBE_EVERY` then, nor than the safety net's interval.
    pub fn watch_for(&self, next_in: Option<Duration>) -> Duration {
        let retry = if self.subscribed.load(Ordering::Relaxed) {
            SAFETY_RETRY
        } else {
            UNSUBSCRIBED_RETRY
        };
        next_in.map_or(retry, |next| next.min(PROBE_EVERY).min(retry))
    }

    /// Sentinel switched primaries: subscribe again, to the new one.
    pub fn primary_switched(&self) {
        self.switched.notify_waiters();
    }

    fn wake(&self, channel: &str, count: usize) {
        let waiters = {
            let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.get(channel).and_then(Weak::upgrade)
        };
        if let Some(waiters) = waiters {
            for _ in 0..count.clamp(1, MAX_WAKE) {
                waiters.notify.notify_one();
            }
        }
    }

    /// Keeps one subscription to every pool's channel for as long as `wakeups` lives,
    /// reconnecting after failures (through Sentinel: to the primary it names now).
    pub async fn subscribe(
        wakeups: Weak<Wakeups>,
        topology: Topology,
        tls: Option<TlsCertificates>,
        timeout: Duration,
        primary: Option<Arc<Primary>>,
    ) {
        let mut attempt = 0usize;
        loop {
            if wakeups.strong_count() == 0 {
                return;
            }
            let url = topology.urls()[attempt % topology.urls().len()].clone();
            attempt += 1;
            match Self::listen(&wakeups, primary.as_deref(), &url, tls.as_ref(), timeout).await {
                Ok(()) => return,
                Err(e) => tracing::debug!("long-poll subscription lost, reconnecting: {e}"),
            }
            if let Some(wakeups) = wakeups.upgrade() {
                wakeups.subscribed.store(false, Ordering::Relaxed);
            }
            tokio::time::sleep(UNSUBSCRIBED_RETRY).await;
        }
    }

    /// Subscribes through `url` and wakes waiters until the connection fails (an error)
    /// or `wakeups` is dropped (Ok).
    async fn listen(
        wakeups: &Weak<Wakeups>,
        primary: Option<&Primary>,
        url: &str,
        tls: Option<&TlsCertificates>,
        timeout: Duration,
    ) -> Result<(), redis::RedisError> {
        let connect = async {
            let server = match primary {
                // Through Sentinel, the primary; on a Cluster any node will do (PUBLISH
                // reaches every node).
                Some(primary) => client(&primary.url().await?, None)?,
                None => client(url, tls)?,
            };
            let mut pubsub = server.get_async_pubsub().await?;
            pubsub.psubscribe(POOL_EVENTS_PATTERN).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| timed_out())??;
        let (mut sink, mut messages) = pubsub.split();
        let switched = match wakeups.upgrade() {
            Some(wakeups) => {
                wakeups.subscribed.store(true, Ordering::Relaxed);
                Arc::clone(&wakeups.switched)
            }
            None => return Ok(()),
        };
        let switched = switched.notified();
        tokio::pin!(switched);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = &mut switched => return Err(closed()),
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(closed());
                    };
                    let Some(wakeups) = wakeups.upgrade() else { return Ok(()) };
                    let count = message.get_payload::<String>().ok()
                        .and_then(|n| n.parse().ok()).unwrap_or(1);
                    wakeups.wake(message.get_channel_name(), count);
                }
                _ = ping.tick() => {
                    if wakeups.strong_count() == 0 {
                        return Ok(());
                    }
                    tokio::time::timeout(timeout, sink.ping::<redis::Value>())
                        .await
                        .map_err(|_| timed_out())??;
                }
            }
        }
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

fn closed() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// Three waiters on a pool: `a` watches. When `a` leaves, the newest (`c`) is woken
    /// to take up the role; should `c` leave without taking it (its time was up, or its
    /// request was dropped), `b` is woken in turn: the role is never left vacant.
    #[tokio::test]
    async fn the_watchers_role_is_handed_on_until_a_waiter_takes_it() {
        let pool = PoolWaiters::default();
        let mut a = pool.join();
        assert!(a.watch());
        let mut b = pool.join();
        assert!(!b.watch(), "one watcher at a time");
        let woken_b = pool.notify.notified();
        tokio::pin!(woken_b);
        woken_b.as_mut().enable();
        let mut c = pool.join();
        let woken_c = pool.notify.notified();
        tokio::pin!(woken_c);
        woken_c.as_mut().enable();

        drop(a);
        assert!(
            woken_c.as_mut().now_or_never().is_some(),
            "the newest is woken"
        );
        assert!(woken_b.as_mut().now_or_never().is_none(), "one at a time");
        c.woken();
        drop(c);
        assert!(woken_b.as_mut().now_or_never().is_some(), "then the next");
        assert!(b.watch(), "and it can take the role");
    }

    /// A waiter that leaves while another watches wakes nobody; nor does one that was not
    /// woken, while the role passes to another (a crowd leaving at its deadline does not
    /// wake the rest).
    #[tokio::test]
    async fn leaving_beside_a_watcher_or_unwoken_wakes_nobody() {
        let pool = PoolWaiters::default();
        let mut a = pool.join();
        assert!(a.watch());
        let mut b = pool.join();
        b.woken();
        let c = pool.join();
        let woken = pool.notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        drop(b);
        assert!(woken.as_mut().now_or_never().is_none(), "a watches");
        let d = pool.join();
        let woken_d = pool.notify.notified();
        tokio::pin!(woken_d);
        woken_d.as_mut().enable();
        drop(a);
        assert!(
            woken_d.as_mut().now_or_never().is_some(),
            "the role goes to d"
        );
        drop(c);
        assert!(woken.as_mut().now_or_never().is_none(), "c was not woken");
        drop(d);
    }
}
