//! PLACEHOLDER until the checkers land: the history types and signatures only.
pub mod history;
pub use history::{Event, History, LeaseAction, Op, Outcome};
use std::collections::HashMap;
#[derive(Debug, Clone, serde::Serialize)]
pub struct Anomaly {
    pub checker: &'static str,
    pub kind: &'static str,
    pub detail: String,
}
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub operations: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    pub anomalies: Vec<Anomaly>,
}
#[derive(Debug, Default, Clone)]
pub struct Finals {
    pub registers: HashMap<String, (u64, u64)>,
    pub counters: HashMap<(String, Option<String>), u64>,
}
pub fn check_all(events: &[Event], _finals: &Finals) -> Report {
    Report {
        operations: events.len(),
        ..Default::default()
    }
}
pub struct FencedResource(std::sync::Mutex<HashMap<(String, String), u64>>);
impl Default for FencedResource {
    fn default() -> Self {
        Self(Default::default())
    }
}
impl FencedResource {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn write(&self, pool: &str, item: &str, _holder: &str, token: u64) -> bool {
        let mut m = self.0.lock().expect("lock");
        let e = m.entry((pool.to_owned(), item.to_owned())).or_insert(0);
        if token >= *e {
            *e = token;
            true
        } else {
            false
        }
    }
    pub fn anomalies(&self) -> Vec<Anomaly> {
        Vec::new()
    }
}
