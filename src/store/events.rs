//! Events: a page of a pool's change log (`GET /events`), and following it live (the SSE
//! stream).
//!
//! Live followers of a pool on one replica share one reader: it looks for new events
//! every [`POLL_EVERY`] while anyone follows, and hands each to every follower through a
//! broadcast channel. So Redis sees a read per pool and replica every half second however
//! many browsers watch. A follower first reads what it missed itself (from its
//! `Last-Event-ID`), then takes the shared events, skipping those it has already sent;
//! one that falls too far behind the channel reads from Redis again.

use leasehold_wire::items::EventKind;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::StoreError;
use super::{ItemState, PoolRef, Store, keys, lua_list};
use crate::names::{PoolName, Tenant};
use leasehold_wire::problem::ProblemCode;

/// How often a pool's shared reader looks for new events while anyone follows it.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How many events one read takes.
const READ_PAGE: u64 = 100;
/// How many events a follower may fall behind the shared reader before it reads again.
const CHANNEL_CAPACITY: usize = 1024;

/// What [`EventId::parse`] accepts.
pub const EVENT_ID_PATTERN: &str = "^[0-9]{1,19}-[0-9]{1,19}$";

/// An event id as Redis streams write them, `<ms>-<seq>`: ordered by time, then by the
/// order of the changes within a millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl EventId {
    /// `<ms>-<seq>`, each of 1 to 19 digits (so it fits 64 bits, as Redis's do);
    /// `None` for anything else. [`EVENT_ID_PATTERN`] says the same.
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        let number = |part: &str| {
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u64>().ok()
        };
        Some(EventId {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }

    /// The smallest id after this one (`None` after the largest there can be).
    fn successor(self) -> Option<Self> {
        match (self.seq.checked_add(1), self.ms.checked_add(1)) {
            (Some(seq), _) => Some(EventId { ms: self.ms, seq }),
            (None, Some(ms)) => Some(EventId { ms, seq: 0 }),
            (None, None) => None,
        }
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl EventId {
    /// What `parse` refuses, in words.
    pub const RULE: &str = "must be an event id such as 1768003200000-0";
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EventId::parse(&text).ok_or_else(|| serde::de::Error::custom(EventId::RULE))
    }
}

impl utoipa::PartialSchema for EventId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(EVENT_ID_PATTERN))
            .description(Some(
                "An event id, `<ms>-<seq>`: an event's `id` or a page's `next_after`",
            ))
            .examples([serde_json::json!("1768003200000-0")])
            .into()
    }
}

impl utoipa::ToSchema for EventId {}

/// One change to an item, as `lua/lib/pool.lua` appends it to the pool's stream.
#[derive(Debug, Clone, Deserialize)]
pub struct EventRecord {
    /// The stream entry id: when it happened (Redis's clock), and its place in the log.
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// None for a change to the pool itself.
    #[serde(default)]
    pub item: Option<String>,
    /// The state the change left the item in.
    #[serde(default)]
    pub state: Option<ItemState>,
    #[serde(default, deserialize_with = "optional_number_text")]
    pub version: Option<u64>,
    pub holder: Option<String>,
    #[serde(default, deserialize_with = "optional_number_text")]
    pub token: Option<u64>,
    /// When the fact happened, where it was recorded later (a lease's or a delay's end),
    /// in ms; else the id's time.
    #[serde(default, deserialize_with = "optional_number_text")]
    pub at: Option<u64>,
    /// The lease expiry the change concerns (ms).
    #[serde(default, deserialize_with = "optional_number_text")]
    pub expires: Option<u64>,
}

/// A page of events, and whether events the caller had not seen were dropped by the cap.
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<EventRecord>,
    /// True when events after the caller's `after` were dropped before it read them: the
    /// page starts at the oldest event kept, and what came between is lost.
    pub trimmed: bool,
}

#[derive(Deserialize)]
struct ScriptPage {
    #[serde(deserialize_with = "lua_list")]
    events: Vec<EventRecord>,
    trimmed_through: EventId,
    last: EventId,
}

/// The stream keeps numbers as text; so does the script (cjson would round past 1e14).
fn number_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map_err(|_| serde::de::Error::custom(format!("not a whole number: {text}")))
}

pub(super) fn optional_number_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    number_text(deserializer).map(Some)
}

impl PoolRef<'_> {
    /// Up to `limit` events after the one with id `after` (from the oldest kept if none).
    pub async fn list_events(
        &self,
        after: Option<EventId>,
        limit: u64,
    ) -> Result<EventPage, StoreError> {
        let start = match after {
            None => "-".to_owned(),
            Some(after) => match after.successor() {
                Some(next) => next.to_string(),
                // Nothing can come after the largest id; the pool must still exist.
                None => "+".to_owned(),
            },
        };
        let page = self.read_events(start, limit).await?;
        let trimmed = match after {
            Some(after) => after < page.trimmed_through,
            None => false,
        };
        Ok(EventPage {
            events: page.events,
            trimmed,
        })
    }

    /// The id of the pool's newest event (`0-0` if it has none yet).
    async fn last_event(&self) -> Result<EventId, StoreError> {
        Ok(self.read_events("+".to_owned(), 1).await?.last)
    }

    async fn read_events(&self, start: String, limit: u64) -> Result<ScriptPage, StoreError> {
        self.read(&self.scripts().list_events, &[start, limit.to_string()])
            .await
    }

    /// Follows the pool's events from after `after` (from the oldest kept if none), live:
    /// a 404 now if the pool does not exist.
    pub async fn follow_events(&self, after: Option<EventId>) -> Result<Follower, StoreError> {
        let feed = self.store.inner.feeds.feed(self).await?;
        let receiver = feed.receiver.resubscribe();
        let mut follower = Follower {
            store: self.store.clone(),
            tenant: self.tenant.clone(),
            pool: self.pool.clone(),
            _feed: feed,
            receiver,
            after,
            backlog: VecDeque::new(),
            catching_up: true,
        };
        // The first read now, so a pool that does not exist is an error, not a stream.
        follower.catch_up().await?;
        Ok(follower)
    }
}

/// What a follower gets next.
#[derive(Debug)]
pub enum Followed {
    Event(Arc<EventRecord>),
    /// Events after the last one sent were dropped by the cap before this follower read
    /// them: what follows starts at the oldest kept.
    Trimmed,
}

/// What a pool's shared reader hands its followers.
#[derive(Debug, Clone)]
enum Shared {
    Event(Arc<EventRecord>),
    /// The reader itself fell behind the cap (its reads failed for a while, or more than
    /// the cap came between two reads) and skipped to the oldest event kept: each
    /// follower reads for itself from its last event to learn whether it missed any.
    Gap,
}

/// One live follower of a pool's events.
pub struct Follower {
    store: Store,
    tenant: Tenant,
    pool: PoolName,
    /// Keeps the pool's shared reader running while this follower lives.
    _feed: Arc<Feed>,
    receiver: broadcast::Receiver<Shared>,
    /// The last event sent (or the caller's starting point).
    after: Option<EventId>,
    backlog: VecDeque<Followed>,
    /// Reading from Redis until a read comes back short, rather than from the channel.
    catching_up: bool,
}

impl Follower {
    /// The next event, waiting as long as it takes; `None` once the pool is gone.
    pub async fn next(&mut self) -> Option<Followed> {
        loop {
            if let Some(next) = self.backlog.pop_front() {
                if let Followed::Event(event) = &next {
                    self.after = Some(event.id);
                }
                return Some(next);
            }
            if self.catching_up {
                match self.catch_up().await {
                    Ok(()) => continue,
                    Err(StoreError::Refused(refusal)) if refusal.code == ProblemCode::NotFound => {
                        return None;
                    }
                    // Redis out of reach for a moment: try again shortly.
                    Err(_) => {
                        tokio::time::sleep(POLL_EVERY).await;
                        continue;
                    }
                }
            }
            match self.receiver.recv().await {
                Ok(Shared::Event(event)) if Some(event.id) <= self.after => {}
                Ok(Shared::Event(event)) => self.backlog.push_back(Followed::Event(event)),
                // Events this follower has not had: read them from Redis itself.
                Ok(Shared::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.catching_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads one page after the last event sent into the backlog; a short page means this
    /// follower has caught up and takes the shared reader's events from now on.
    async fn catch_up(&mut self) -> Result<(), StoreError> {
        let page = self
            .store
            .pool(&self.tenant, &self.pool)
            .list_events(self.after, READ_PAGE)
            .await?;
        if page.trimmed {
            self.backlog.push_back(Followed::Trimmed);
        }
        // Started before the pool had any event: it has seen all there was, so whatever
        // the cap drops from now on was missed (from the oldest kept, nothing would be).
        if self.after.is_none() && page.events.is_empty() {
            self.after = Some(EventId { ms: 0, seq: 0 });
        }
        self.catching_up = page.events.len() as u64 == READ_PAGE;
        self.backlog.extend(
            page.events
                .into_iter()
                .map(|e| Followed::Event(Arc::new(e))),
        );
        Ok(())
    }
}

/// The shared readers of this replica, by pool.
#[derive(Default)]
pub(super) struct Feeds(Mutex<HashMap<String, Weak<Feed>>>);

/// A pool's shared reader; it stops when the last follower drops it.
struct Feed {
    /// A receiver to make new ones from (`resubscribe`); never read itself.
    receiver: broadcast::Receiver<Shared>,
    reader: JoinHandle<()>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Feeds {
    /// The pool's running reader, started if there is none. A reader starts after the
    /// pool's newest event, read before anyone subscribes: whatever a follower reads
    /// itself after subscribing reaches at least that far, so nothing falls between.
    /// (That read is made outside the lock: a slow Redis holds up only this pool's new
    /// followers, not every pool's.)
    async fn feed(&self, pool: &PoolRef<'_>) -> Result<Arc<Feed>, StoreError> {
        let key = keys::pool_events(pool.tenant, pool.pool);
        if let Some(feed) = self.running(&key) {
            return Ok(feed);
        }
        let last = pool.last_event().await?;
        let mut feeds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Another follower may have started one meanwhile.
        if let Some(feed) = running(&feeds, &key) {
            return Ok(feed);
        }
        feeds.retain(|_, feed| feed.strong_count() > 0);
        let (sender, receiver) = broadcast::channel(CHANNEL_CAPACITY);
        let reader = tokio::spawn(read_feed(
            pool.store.clone(),
            pool.tenant.clone(),
            pool.pool.clone(),
            last,
            sender,
        ));
        let feed = Arc::new(Feed { receiver, reader });
        feeds.insert(key, Arc::downgrade(&feed));
        Ok(feed)
    }

    fn running(&self, key: &str) -> Option<Arc<Feed>> {
        running(&self.0.lock().unwrap_or_else(|e| e.into_inner()), key)
    }
}

/// The reader of `key` in `feeds`, if it is still running.
fn running(feeds: &HashMap<String, Weak<Feed>>, key: &str) -> Option<Arc<Feed>> {
    feeds
        .get(key)
        .and_then(Weak::upgrade)
        .filter(|feed| !feed.reader.is_finished())
}

/// A pool's shared reader: every new event, in order, to every follower, until the pool
/// is gone (or the last follower leaves, which aborts it).
async fn read_feed(
    store: Store,
    tenant: Tenant,
    pool: PoolName,
    mut after: EventId,
    sender: broadcast::Sender<Shared>,
) {
    loop {
        let page = store
            .pool(&tenant, &pool)
            .list_events(Some(after), READ_PAGE)
            .await;
        let full = match page {
            Ok(page) => {
                let full = page.events.len() as u64 == READ_PAGE;
                // (Sending fails only with no receiver but the template: nobody to tell.)
                if page.trimmed {
                    let _ = sender.send(Shared::Gap);
                }
                for event in page.events {
                    after = event.id;
                    let _ = sender.send(Shared::Event(Arc::new(event)));
                }
                full
            }
            Err(StoreError::Refused(refusal)) if refusal.code == ProblemCode::NotFound => return,
            // Redis out of reach for a moment: try again at the next poll.
            Err(_) => false,
        };
        if !full {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use regex_automata::meta::Regex;

    #[test]
    fn event_ids_are_two_whole_numbers_ordered_by_time_then_sequence() {
        let id = |text: &str| EventId::parse(text).expect("an event id");
        assert_eq!(
            id("1768003200000-7"),
            EventId {
                ms: 1768003200000,
                seq: 7
            }
        );
        assert_eq!(id("1768003200000-7").to_string(), "1768003200000-7");
        assert!(id("5-0") < id("5-1"));
        assert!(id("5-99") < id("6-0"));
        for bad in [
            "",
            "5",
            "-",
            "5-",
            "-5",
            "5-x",
            "+5-1",
            "10000000000000000000-0",
            "1-2-3",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn an_event_id_is_accepted_exactly_when_its_pattern_matches(
            id in prop_oneof![
                "[0-9]{0,21}-[0-9]{0,21}",
                "[ +-]?[0-9]{0,20}[-.:][0-9]{0,20}[ \n-]?",
                "[0-9a+ -]{0,8}",
            ]
        ) {
            let pattern = Regex::new(EVENT_ID_PATTERN).expect("the pattern compiles");
            prop_assert_eq!(EventId::parse(&id).is_some(), pattern.is_match(&id), "{:?}", id);
        }
    }

    #[test]
    fn the_successor_of_an_id_carries_into_the_milliseconds() {
        let next = |text: &str| {
            EventId::parse(text)
                .expect("an event id")
                .successor()
                .map(|id| id.to_string())
        };
        assert_eq!(next("5-1").as_deref(), Some("5-2"));
        let last = EventId {
            ms: u64::MAX,
            seq: u64::MAX,
        };
        assert_eq!(
            EventId { ms: 5, ..last }.successor(),
            Some(EventId { ms: 6, seq: 0 })
        );
        assert_eq!(last.successor(), None);
    }
}
