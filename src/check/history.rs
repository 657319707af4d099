//! PLACEHOLDER until the checkers land.
use std::sync::Mutex;
use std::time::Instant;
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    Unknown,
}
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseAction {
    Renew,
    Release,
    Complete,
    Write,
}
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Grant {
        pool: String,
        item: String,
        holder: String,
        token: u64,
    },
    UseLease {
        pool: String,
        item: String,
        holder: String,
        token: u64,
        action: LeaseAction,
    },
    Read {
        key: String,
        version: u64,
        value: u64,
    },
    Cas {
        key: String,
        expected: u64,
        value: u64,
        new_version: u64,
    },
    Counter {
        counter: String,
        period: Option<String>,
        values: Vec<u64>,
    },
}
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub client: usize,
    pub call_us: u64,
    pub return_us: u64,
    pub outcome: Outcome,
    pub op: Op,
}
pub struct History {
    start: Instant,
    events: Mutex<Vec<Event>>,
}
impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}
impl History {
    pub fn new() -> Self {
        History {
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
        }
    }
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
    pub fn record(&self, event: Event) {
        self.events.lock().expect("lock").push(event)
    }
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("lock").clone()
    }
}
