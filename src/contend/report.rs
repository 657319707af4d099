//! The run's report: per operation counts and latency percentiles, conflicts by code, the
//! checkers' verdict; as a table for people and as JSON for machines.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::Options;
use super::workload::{ClientStats, OpStats};
use crate::check::{self, Clock};

#[derive(Debug, Serialize)]
pub struct OpLine {
    pub operation: &'static str,
    pub count: u64,
    pub ok: u64,
    pub refused: u64,
    pub unknown: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run: String,
    pub seed: u64,
    pub urls: Vec<String>,
    pub clients: usize,
    pub items: usize,
    pub seconds: f64,
    pub requests: u64,
    pub throughput: f64,
    pub operations: Vec<OpLine>,
    pub conflicts: BTreeMap<String, u64>,
    /// Writes sent again with the same Idempotency-Key (no answer, or a 429, 502, 503 or 504).
    pub retries: u64,
    /// Why operations ended unknown, after their retries.
    pub unknown_causes: BTreeMap<String, u64>,
    /// Events the follower of the pool's live stream was sent (`trimmed` notices aside),
    /// each held to the pool's event log at the end.
    pub deliveries: usize,
    /// Connections the follower opened: more than one when it had to resume after a cut.
    pub stream_connections: usize,
    /// Events in the pool's log at the end.
    pub events_logged: usize,
    /// When the run's clock started; the clients began right after.
    #[serde(skip)]
    pub started: Instant,
    /// When the last attempt of any request failed with an unknown outcome (a 5xx, a
    /// timeout, a dropped connection), whether or not a retry then succeeded; `None` if
    /// none did.
    #[serde(skip)]
    pub last_unavailable: Option<Instant>,
    /// The same, in seconds after `started`.
    pub last_unavailable_s: Option<f64>,
    /// That request and what it got (`POST /v1/…: 503 Service Unavailable`).
    pub last_unavailable_cause: Option<String>,
    pub check: check::Report,
}

/// What a run measured besides what its clients counted and the checkers' verdict.
pub struct Measured {
    /// How long the clients ran.
    pub elapsed: Duration,
    /// The run's clock: the times in its history are counted from its start.
    pub clock: Clock,
    /// Writes sent again with the same Idempotency-Key.
    pub retries: u64,
    /// When the last attempt of any request failed with an unknown outcome, and how.
    pub last_failure: Option<(Instant, String)>,
    pub deliveries: usize,
    pub stream_connections: usize,
    pub events_logged: usize,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

impl OpLine {
    fn new(operation: &'static str, mut stats: OpStats) -> Self {
        stats.latencies_us.sort_unstable();
        OpLine {
            operation,
            count: stats.ok + stats.refused + stats.unknown,
            ok: stats.ok,
            refused: stats.refused,
            unknown: stats.unknown,
            p50_ms: percentile(&stats.latencies_us, 50.0),
            p95_ms: percentile(&stats.latencies_us, 95.0),
            p99_ms: percentile(&stats.latencies_us, 99.0),
        }
    }
}

impl RunReport {
    pub fn new(
        options: &Options,
        run: &str,
        stats: ClientStats,
        measured: Measured,
        check: check::Report,
    ) -> Self {
        let operations: Vec<OpLine> = stats
            .ops
            .into_iter()
            .map(|(kind, stats)| OpLine::new(kind, stats))
            .collect();
        let requests: u64 = operations.iter().map(|o| o.count).sum();
        let seconds = measured.elapsed.as_secs_f64();
        let clock = measured.clock;
        RunReport {
            run: run.to_owned(),
            seed: options.seed,
            urls: options.urls.clone(),
            clients: options.clients,
            items: options.items,
            seconds,
            requests,
            throughput: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            operations,
            conflicts: stats.conflicts,
            retries: measured.retries,
            unknown_causes: stats.unknown_causes,
            deliveries: measured.deliveries,
            stream_connections: measured.stream_connections,
            events_logged: measured.events_logged,
            started: clock.instant_at(0),
            last_unavailable: measured.last_failure.as_ref().map(|(at, _)| *at),
            last_unavailable_s: measured.last_failure.as_ref().map(|(at, _)| {
                at.saturating_duration_since(clock.instant_at(0))
                    .as_secs_f64()
            }),
            last_unavailable_cause: measured.last_failure.map(|(_, how)| how),
            check,
        }
    }

    /// True when the checkers found nothing wrong.
    pub fn passed(&self) -> bool {
        self.check.anomalies.is_empty()
    }

    /// The report as people read it.
    pub fn table(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "operation",
            "count",
            "ok",
            "refused",
            "unknown",
            "p50 ms",
            "p95 ms",
            "p99 ms",
        ]);
        for op in &self.operations {
            table.add_row(vec![
                Cell::new(op.operation),
                right(op.count.to_string()),
                right(op.ok.to_string()),
                right(op.refused.to_string()),
                right(op.unknown.to_string()),
                right(format!("{:.2}", op.p50_ms)),
                right(format!("{:.2}", op.p95_ms)),
                right(format!("{:.2}", op.p99_ms)),
            ]);
        }
        let conflicts = counts(&self.conflicts);
        let mut out = format!(
            "Leasehold contend: run {}, seed {}, {} clients over {} URL(s), {} items, {:.1} s\n{table}\n",
            self.run,
            self.seed,
            self.clients,
            self.urls.len(),
            self.items,
            self.seconds
        );
        out.push_str(&format!(
            "{} requests, {:.0} per second. Refused by code: {conflicts}.\n",
            self.requests, self.throughput
        ));
        if self.retries > 0 || !self.unknown_causes.is_empty() {
            out.push_str(&format!(
                "{} retries with the same Idempotency-Key; still unknown after them: {}.\n",
                self.retries,
                counts(&self.unknown_causes)
            ));
        }
        if let (Some(last), Some(how)) = (self.last_unavailable_s, &self.last_unavailable_cause) {
            out.push_str(&format!(
                "The last request to fail (no answer, or a 5xx) did so {last:.2} s into the run: {how}.\n"
            ));
        }
        out.push_str(&format!(
            "Followed the pool's event stream over {} connection(s): {} events delivered, \
             held to the {} events of its final log.\n",
            self.stream_connections, self.deliveries, self.events_logged
        ));
        let c = &self.check;
        out.push_str(&format!(
            "Checked {} operations ({} ok, {} failed, {} unknown): ",
            c.operations, c.ok, c.fail, c.unknown
        ));
        if self.passed() {
            out.push_str(
                "no item held by two holders, no token reused or gone back, no acknowledged write lost, no counter value issued twice or read and then taken back, no event sent that the log lost, twice or out of order.\n",
            );
        } else {
            out.push_str(&format!("{} ANOMALIES:\n", c.anomalies.len()));
            for a in c.anomalies.iter().take(20) {
                out.push_str(&format!("  [{}] {}: {}\n", a.checker, a.kind, a.detail));
            }
            if c.anomalies.len() > 20 {
                out.push_str(&format!("  … and {} more\n", c.anomalies.len() - 20));
            }
        }
        out
    }
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(what, n)| format!("{what} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn right(text: String) -> Cell {
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// A progress bar over the run's duration, on stderr when it is a terminal.
pub fn progress(show: bool, duration: Duration) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(duration.as_secs().max(1)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} s  {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
