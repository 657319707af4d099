//! Runs the conformance suite (`clients/conformance/*.json`, format in its README) through
//! this client, against a running Leasehold:
//!
//! ```sh
//! cargo run -p leasehold-client --example conformance -- --url http://127.0.0.1:8080
//! ```
//!
//! It prints one line per scenario (`ok` or `FAILED` with the step and why) and exits
//! non-zero if any failed. `--expect-failure` turns that around, for showing that a
//! deliberately wrong scenario is caught: it succeeds only if every scenario given fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use futures::future::join_all;
use leasehold_client::{
    Assign, Claim, Client, CounterPeriod, Error, ItemFilter, ItemState, Lease, LeaseInfo, NewItem,
    Next, Period, PoolSettings, Preconditions, PutItem, Release,
};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Run conformance scenarios through the Rust client.
#[derive(Debug, Parser)]
struct Args {
    /// The deployment's base URL.
    #[arg(long, env = "LEASEHOLD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (`leasehold dev` needs none).
    #[arg(long, env = "LEASEHOLD_KEY")]
    key: Option<String>,
    /// Succeed only if every scenario fails (to show the runner catches a broken one).
    #[arg(long)]
    expect_failure: bool,
    /// Scenario files (default: every `*.json` in `clients/conformance`).
    files: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = match Client::builder(&args.url).api_key(args.key.clone()).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = if args.files.is_empty() {
        match suite_files() {
            Ok(files) => files,
            Err(e) => {
                eprintln!("conformance: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        args.files.clone()
    };
    let mut failed = 0;
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match run_file(&client, file).await {
            Ok(title) => println!("ok      {name}: {title}"),
            // Under --expect-failure a failure is what was asked for: it was caught.
            Err(why) if args.expect_failure => {
                failed += 1;
                println!("caught  {name}: {why}");
            }
            Err(why) => {
                failed += 1;
                println!("FAILED  {name}: {why}");
            }
        }
    }
    if args.expect_failure {
        println!("{} scenarios, {failed} caught failing", files.len());
    } else {
        println!("{} scenarios, {failed} failed", files.len());
    }
    let all_failed = failed == files.len() && !files.is_empty();
    if (args.expect_failure && all_failed) || (!args.expect_failure && failed == 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every scenario of the suite, by name.
fn suite_files() -> Result<Vec<PathBuf>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/conformance");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    Ok(files)
}

async fn run_file(client: &Client, file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let scenario: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let title = scenario["name"].as_str().unwrap_or("(unnamed)").to_owned();
    let steps = scenario["steps"]
        .as_array()
        .ok_or("a scenario needs a list of steps")?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut run = Run {
        client: client.clone(),
        saved: HashMap::new(),
        leases: HashMap::new(),
    };
    for (index, step) in steps.iter().enumerate() {
        let step = substitute(step, &run_id);
        let op = step["op"].as_str().unwrap_or("concurrently");
        run.step(&step)
            .await
            .map_err(|why| format!("step {index} ({op}): {why}"))?;
    }
    // Leases still held end with the run: dropping the guards stops their renewals (and
    // gives the items back); nothing after the last step is checked.
    Ok(title)
}

/// `{run}` in every string replaced with the run id.
fn substitute(value: &Value, run_id: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace("{run}", run_id)),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, run_id)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, run_id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A lease a step got, under the reference a later step names it by (`mine`, `claimed.0`).
struct HeldLease {
    pool: String,
    info: LeaseInfo,
    /// The client's guard, until `release` or `complete` uses it up.
    guard: Option<Lease>,
}

struct Run {
    client: Client,
    /// Answers saved by `save`, in canonical JSON.
    saved: HashMap<String, Value>,
    leases: HashMap<String, HeldLease>,
}

/// What one call came to: its canonical answer and the leases it granted, or the error.
type Outcome = Result<(Value, Vec<(String, Lease)>), Value>;

impl Run {
    async fn step(&mut self, step: &Value) -> Result<(), String> {
        let calls: Vec<&Value> = if let Some(list) = step.get("concurrently") {
            list.as_array()
                .ok_or("`concurrently` must be a list")?
                .iter()
                .collect()
        } else if let Some(times) = step.get("times") {
            let times = times.as_u64().ok_or("`times` must be a number")?;
            (0..times).map(|_| step).collect()
        } else {
            vec![step]
        };
        let concurrent = calls.len() > 1 || step.get("times").is_some();
        let mut prepared = Vec::with_capacity(calls.len());
        for call in &calls {
            let op = call["op"]
                .as_str()
                .ok_or("a step needs an `op`")?
                .to_owned();
            let args = self.resolve(call.get("args").unwrap_or(&Value::Null))?;
            let lease = match call["args"].get("lease").and_then(Value::as_str) {
                // A renewal leaves the guard where it is (it goes on renewing by itself).
                Some(reference) => Some(self.take_lease(reference, op != "renew")?),
                None => None,
            };
            let client = match call.get("idempotency_key").and_then(Value::as_str) {
                Some(key) => self.client.with_idempotency_key(key),
                None => self.client.clone(),
            };
            prepared.push((client, op, args, lease));
        }
        let outcomes: Vec<Outcome> = join_all(prepared.into_iter().map(
            |(client, op, args, lease)| async move { call(&client, &op, &args, lease).await },
        ))
        .await;

        let expect = step.get("expect");
        let save = step.get("save").and_then(Value::as_str);
        if !concurrent {
            let outcome = outcomes.into_iter().next().ok_or("no outcome")?;
            // Saved first, so that the step's own expectation may refer to it.
            let outcome = match outcome {
                Ok((answer, leases)) => {
                    // Leases not saved are kept too, unnamed: a guard dropped now would
                    // give its item back while later steps count on it being held.
                    let name =
                        save.map_or_else(|| format!("#{}", self.leases.len()), str::to_owned);
                    self.keep(&name, answer.clone(), leases);
                    Ok((answer, Vec::new()))
                }
                Err(error) => Err(error),
            };
            if let Some(expect) = expect {
                self.check(expect, &outcome)?;
            } else if let Err(error) = &outcome {
                return Err(format!("failed: {error}"));
            }
            return Ok(());
        }
        if let Some(name) = save {
            let answers = outcomes
                .iter()
                .map(|o| o.as_ref().map_or(Value::Null, |(answer, _)| answer.clone()))
                .collect();
            self.saved.insert(name.to_owned(), Value::Array(answers));
        }
        for (index, outcome) in outcomes.iter().enumerate() {
            if let Some(expect) = expect {
                self.check(expect, outcome)
                    .map_err(|why| format!("call {index}: {why}"))?;
            }
        }
        if let Some(together) = step.get("together") {
            let together = self.resolve(together)?;
            check_together(&together, &outcomes)?;
        } else if expect.is_none()
            && let Some(Err(error)) = outcomes.iter().find(|o| o.is_err())
        {
            return Err(format!("failed: {error}"));
        }
        for (index, outcome) in outcomes.into_iter().enumerate() {
            if let Ok((_, leases)) = outcome {
                // Kept (under `<save>.<index>.<n>`, or unnamed) so that no guard is
                // dropped, which would give its item back, before the run ends.
                let name = save.map_or_else(|| format!("#{index}"), |s| format!("{s}.{index}"));
                for (suffix, lease) in leases {
                    self.hold(format!("{name}{suffix}"), lease);
                }
            }
        }
        Ok(())
    }

    fn keep(&mut self, name: &str, answer: Value, leases: Vec<(String, Lease)>) {
        for (suffix, lease) in leases {
            self.hold(format!("{name}{suffix}"), lease);
        }
        self.saved.insert(name.to_owned(), answer);
    }

    fn hold(&mut self, reference: String, lease: Lease) {
        let held = HeldLease {
            pool: lease.pool().to_owned(),
            info: lease.info(),
            guard: Some(lease),
        };
        self.leases.insert(reference, held);
    }

    /// The lease a reference names: its guard if not used up yet, else what a call
    /// through the client's own methods needs.
    fn take_lease(&mut self, reference: &str, take_guard: bool) -> Result<LeaseArg, String> {
        let name = reference
            .strip_prefix('$')
            .ok_or_else(|| format!("`lease` must be a reference, not {reference}"))?;
        let held = self
            .leases
            .get_mut(name)
            .ok_or_else(|| format!("no lease saved as {name}"))?;
        Ok(LeaseArg {
            pool: held.pool.clone(),
            info: held.info.clone(),
            guard: if take_guard { held.guard.take() } else { None },
        })
    }

    /// `args` with every reference replaced by the value it names.
    fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) if s.starts_with('$') => self.lookup(s)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    // A lease reference is taken as the lease itself, not its JSON.
                    if k == "lease" {
                        out.insert(k.clone(), v.clone());
                    } else {
                        out.insert(k.clone(), self.resolve(v)?);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn lookup(&self, reference: &str) -> Result<Value, String> {
        let mut parts = reference.trim_start_matches('$').split('.');
        let name = parts.next().unwrap_or_default();
        let mut value = self
            .saved
            .get(name)
            .ok_or_else(|| format!("nothing saved as {name} (for {reference})"))?;
        for part in parts {
            value = match value {
                Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
                Value::Object(map) => map.get(part),
                _ => None,
            }
            .ok_or_else(|| format!("{reference}: nothing at {part}"))?;
        }
        Ok(value.clone())
    }

    fn check(&self, expect: &Value, outcome: &Outcome) -> Result<(), String> {
        let expect = self.resolve(expect)?;
        match (expect.get("result"), expect.get("error"), outcome) {
            (Some(want), _, Ok((answer, _))) => matches(want, answer, "answer"),
            (Some(_), _, Err(error)) => Err(format!("expected success, got error {error}")),
            (None, Some(want), Err(error)) => matches(want, error, "error"),
            (None, Some(_), Ok((answer, _))) => Err(format!("expected an error, got {answer}")),
            (None, None, _) => Err("`expect` needs `result` or `error`".to_owned()),
        }
    }
}

/// A `lease` argument: the guard if it can still be used, and what the client's methods
/// need otherwise.
struct LeaseArg {
    pool: String,
    info: LeaseInfo,
    guard: Option<Lease>,
}

fn canonical(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn canonical_error(error: &Error) -> Value {
    match error.problem() {
        Some(problem) => json!({
            "status": problem.status,
            "code": problem.code.as_str(),
            "detail": problem.detail,
            "current": problem.current.as_ref().map(canonical),
        }),
        None => {
            json!({ "status": null, "code": null, "detail": error.to_string(), "current": null })
        }
    }
}

fn text(args: &Value, key: &str) -> Result<String, Value> {
    args[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| json!({ "runner": format!("`{key}` must be a string") }))
}

fn opt_u64(args: &Value, key: &str) -> Option<u64> {
    args.get(key).and_then(Value::as_u64)
}

/// An ETag (`"3"`) as the version the client's preconditions take.
fn etag_version(args: &Value, key: &str) -> Result<Option<u64>, Value> {
    match args.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(etag) => etag
            .trim_matches('"')
            .parse()
            .map(Some)
            .map_err(|_| json!({ "runner": format!("`{key}` is not an ETag: {etag}") })),
    }
}

fn preconditions(args: &Value) -> Result<Preconditions, Value> {
    Ok(Preconditions {
        if_match: etag_version(args, "if_match")?,
        if_none_match_any: args.get("if_none_match").and_then(Value::as_str) == Some("*"),
        lease_token: opt_u64(args, "lease_token"),
    })
}

fn settings(args: &Value) -> PoolSettings {
    let s = &args["settings"];
    let keep = |key: &str| match s.get(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(v.as_u64()),
    };
    PoolSettings {
        lease_ms: opt_u64(s, "lease_ms"),
        max_leases_per_holder: opt_u64(s, "max_leases_per_holder"),
        max_attempts: opt_u64(s, "max_attempts"),
        require_if_match: s.get("require_if_match").and_then(Value::as_bool),
        max_events: opt_u64(s, "max_events"),
        keep_done_ms: keep("keep_done_ms"),
        keep_dead_ms: keep("keep_dead_ms"),
        paused: s.get("paused").and_then(Value::as_bool),
    }
}

fn new_items(args: &Value) -> Vec<NewItem> {
    let list = args["items"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|item| NewItem {
            id: item["id"].as_str().unwrap_or_default().to_owned(),
            priority: item.get("priority").and_then(Value::as_i64),
            data: item.get("data").cloned(),
            available_at: item
                .get("available_at")
                .and_then(Value::as_str)
                .map(str::to_owned),
            delay_ms: opt_u64(item, "delay_ms"),
        })
        .collect()
}

/// One operation, through the client's own method for it.
async fn call(client: &Client, op: &str, args: &Value, lease: Option<LeaseArg>) -> Outcome {
    let err = |e: Error| canonical_error(&e);
    let pool = || text(args, "pool");
    let id = || text(args, "id");
    let answer = match op {
        "put_pool" => canonical(
            client
                .put_pool(&pool()?, &settings(args))
                .await
                .map_err(err)?
                .0,
        ),
        "get_pool" => canonical(client.get_pool(&pool()?).await.map_err(err)?),
        "list_pools" => {
            let after = args.get("after").and_then(Value::as_str);
            let limit = opt_u64(args, "limit").map(|l| l as u32);
            canonical(client.list_pools_page(after, limit).await.map_err(err)?)
        }
        "delete_pool" => {
            client.delete_pool(&pool()?).await.map_err(err)?;
            Value::Null
        }
        "add_items" => canonical(
            client
                .add_items(&pool()?, &new_items(args))
                .await
                .map_err(err)?,
        ),
        "get_item" => {
            let item = client.get_item(&pool()?, &id()?).await.map_err(err)?;
            // The Rust client reads an item without its headers: its ETag is its version.
            let etag = format!("\"{}\"", item.version);
            json!({ "item": canonical(item), "etag": etag })
        }
        "put_item" => {
            let put = PutItem {
                data: args["data"].clone(),
                priority: args.get("priority").and_then(Value::as_i64),
                expected_version: opt_u64(args, "expected_version"),
            };
            let put = client
                .put_item(&pool()?, &id()?, &put, &preconditions(args)?)
                .await
                .map_err(err)?;
            canonical(put.item)
        }
        "patch_item" => canonical(
            client
                .patch_item(&pool()?, &id()?, &args["patch"], &preconditions(args)?)
                .await
                .map_err(err)?,
        ),
        "delete_item" => {
            client
                .delete_item(&pool()?, &id()?, &preconditions(args)?)
                .await
                .map_err(err)?;
            Value::Null
        }
        "list_items" => {
            let state = match args.get("state").and_then(Value::as_str) {
                Some(state) => Some(
                    serde_json::from_value::<ItemState>(json!(state))
                        .map_err(|e| json!({ "runner": e.to_string() }))?,
                ),
                None => None,
            };
            let filter = ItemFilter {
                state,
                holder: args
                    .get("holder")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                limit: opt_u64(args, "limit"),
                cursor: args
                    .get("cursor")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            canonical(client.list_items(&pool()?, &filter).await.map_err(err)?)
        }
        "claim_next" => {
            let claim = Claim {
                holder: text(args, "holder")?,
                count: opt_u64(args, "count").map(|c| c as u32),
                lease_ms: opt_u64(args, "lease_ms"),
                wait_ms: opt_u64(args, "wait_ms"),
                create: args.get("create").and_then(Value::as_bool),
            };
            let leases = client.claim_next(&pool()?, &claim).await.map_err(err)?;
            let answer = Value::Array(leases.iter().map(|l| canonical(l.info())).collect());
            let held = leases
                .into_iter()
                .enumerate()
                .map(|(i, lease)| (format!(".{i}"), lease))
                .collect();
            return Ok((answer, held));
        }
        "claim_item" => {
            let holder = text(args, "holder")?;
            let lease = client
                .claim_item(&pool()?, &id()?, &holder, opt_u64(args, "lease_ms"))
                .await
                .map_err(err)?;
            return Ok((canonical(lease.info()), vec![(String::new(), lease)]));
        }
        "renew" | "release" | "complete" => {
            let lease = lease.ok_or_else(|| json!({ "runner": "`lease` is missing" }))?;
            lease_call(client, op, args, lease).await?
        }
        "assign_item" => {
            let assign = Assign {
                lease_ms: opt_u64(args, "lease_ms"),
                expected_version: opt_u64(args, "expected_version"),
                if_match: etag_version(args, "if_match")?,
            };
            let item = match args.get("holder").and_then(Value::as_str) {
                Some(holder) => client.assign(&pool()?, &id()?, holder, &assign).await,
                None => client.unassign(&pool()?, &id()?, &assign).await,
            };
            canonical(item.map_err(err)?)
        }
        "requeue_item" => {
            let item = match opt_u64(args, "delay_ms") {
                Some(delay_ms) => client.snooze(&pool()?, &id()?, delay_ms).await,
                None => {
                    let priority = args.get("priority").and_then(Value::as_i64);
                    client.requeue(&pool()?, &id()?, priority).await
                }
            };
            canonical(item.map_err(err)?)
        }
        "list_leases" => canonical(
            client
                .list_leases(&pool()?, &text(args, "holder")?, None, None)
                .await
                .map_err(err)?,
        ),
        "next_counter" => {
            let period = match args.get("period").and_then(Value::as_str) {
                Some("none") => Some(Period::None),
                Some("day") => Some(Period::Day),
                Some(other) => return Err(json!({ "runner": format!("period {other}") })),
                None => None,
            };
            let next = Next {
                period,
                tz: args.get("tz").and_then(Value::as_str).map(str::to_owned),
                count: opt_u64(args, "count").map(|c| c as u32),
                format: args
                    .get("format")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            let name = text(args, "name")?;
            canonical(client.next_counter(&name, &next).await.map_err(err)?)
        }
        "get_counter" => {
            let tz = args.get("tz").and_then(Value::as_str).map(str::to_owned);
            let period = match args.get("period").and_then(Value::as_str) {
                Some("none") => CounterPeriod::Whole,
                Some(date) => CounterPeriod::Date(date.to_owned()),
                None => CounterPeriod::Today(tz),
            };
            let name = text(args, "name")?;
            canonical(client.get_counter(&name, &period).await.map_err(err)?)
        }
        "list_events" => {
            let after = args.get("after").and_then(Value::as_str);
            canonical(
                client
                    .list_events(&pool()?, after, opt_u64(args, "limit"))
                    .await
                    .map_err(err)?,
            )
        }
        other => return Err(json!({ "runner": format!("unknown op {other}") })),
    };
    Ok((answer, Vec::new()))
}

/// `renew`, `release` or `complete` of a lease: through its guard while it has one, else
/// through the client's methods with the lease's id, holder and token.
async fn lease_call(
    client: &Client,
    op: &str,
    args: &Value,
    lease: LeaseArg,
) -> Result<Value, Value> {
    let err = |e: Error| canonical_error(&e);
    let LeaseArg { pool, info, guard } = lease;
    let (id, holder, token) = (&info.id, &info.holder, info.token);
    let release = Release {
        delay_ms: opt_u64(args, "delay_ms"),
        priority: None,
    };
    let data = args.get("data").cloned();
    Ok(match (op, guard) {
        ("renew", _) => {
            let renewed = client
                .renew(&pool, id, holder, token, opt_u64(args, "lease_ms"))
                .await
                .map_err(err)?;
            canonical(renewed)
        }
        ("release", Some(guard)) => canonical(guard.release(&release).await.map_err(err)?),
        ("release", None) => canonical(
            client
                .release(&pool, id, holder, token, &release)
                .await
                .map_err(err)?,
        ),
        ("complete", Some(guard)) => canonical(guard.complete(data).await.map_err(err)?),
        (_, _) => canonical(
            client
                .complete(&pool, id, holder, token, data)
                .await
                .map_err(err)?,
        ),
    })
}

/// Matches an expectation against a canonical answer (the README's rules).
fn matches(want: &Value, got: &Value, at: &str) -> Result<(), String> {
    let mismatch = || format!("{at}: expected {want}, got {got}");
    match want {
        Value::Object(map) if map.len() == 1 && map.keys().all(|k| k.starts_with('$')) => {
            let (key, arg) = map.iter().next().ok_or_else(mismatch)?;
            let ok = match key.as_str() {
                "$type" => match arg.as_str().unwrap_or_default() {
                    "string" => got.is_string(),
                    "number" => got.is_number(),
                    "integer" => got.is_i64() || got.is_u64(),
                    "boolean" => got.is_boolean(),
                    "null" => got.is_null(),
                    "object" => got.is_object(),
                    "array" => got.is_array(),
                    other => return Err(format!("{at}: unknown $type {other}")),
                },
                "$len" => {
                    let len = match got {
                        Value::Array(items) => Some(items.len()),
                        Value::String(s) => Some(s.chars().count()),
                        _ => None,
                    };
                    len.is_some() && len.map(|l| l as u64) == arg.as_u64()
                }
                "$prefix" => {
                    let (Some(want), Some(items)) = (arg.as_array(), got.as_array()) else {
                        return Err(mismatch());
                    };
                    if items.len() < want.len() {
                        return Err(mismatch());
                    }
                    for (i, (w, g)) in want.iter().zip(items).enumerate() {
                        matches(w, g, &format!("{at}[{i}]"))?;
                    }
                    true
                }
                "$regex" => {
                    let pattern = arg.as_str().unwrap_or_default();
                    let regex = Regex::new(pattern).map_err(|e| format!("{at}: {e}"))?;
                    got.as_str().is_some_and(|s| regex.is_match(s))
                }
                "$gt" | "$ge" => match (got.as_f64(), arg.as_f64()) {
                    (Some(g), Some(w)) => {
                        if key == "$gt" {
                            g > w
                        } else {
                            g >= w
                        }
                    }
                    _ => false,
                },
                "$ne" => matches(arg, got, at).is_err(),
                other => return Err(format!("{at}: unknown matcher {other}")),
            };
            if ok { Ok(()) } else { Err(mismatch()) }
        }
        Value::Object(map) => {
            for (key, w) in map {
                let g = got.get(key).unwrap_or(&Value::Null);
                matches(w, g, &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        Value::Array(want_items) => {
            let Some(items) = got.as_array() else {
                return Err(mismatch());
            };
            if items.len() != want_items.len() {
                return Err(mismatch());
            }
            for (i, (w, g)) in want_items.iter().zip(items).enumerate() {
                matches(w, g, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        Value::Number(w) => match (w.as_f64(), got.as_f64()) {
            (Some(w), Some(g)) if w == g => Ok(()),
            _ => Err(mismatch()),
        },
        other => {
            if other == got {
                Ok(())
            } else {
                Err(mismatch())
            }
        }
    }
}

/// The `together` checks of a concurrent step.
fn check_together(together: &Value, outcomes: &[Outcome]) -> Result<(), String> {
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    if let Some(want) = together.get("ok").and_then(Value::as_u64)
        && ok as u64 != want
    {
        return Err(format!("{ok} calls succeeded, expected {want}"));
    }
    let mut codes: HashMap<String, u64> = HashMap::new();
    for outcome in outcomes {
        if let Err(error) = outcome {
            let code = error["code"].as_str().unwrap_or("(no code)").to_owned();
            *codes.entry(code).or_default() += 1;
        }
    }
    let want_codes: HashMap<String, u64> = together
        .get("errors")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    if codes != want_codes {
        return Err(format!("errors {codes:?}, expected {want_codes:?}"));
    }
    if let Some(collect) = together.get("collect") {
        let path = collect["path"].as_str().unwrap_or_default();
        let mut values = Vec::new();
        for (answer, _) in outcomes.iter().flatten() {
            let parts: Vec<&Value> = match answer {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for part in parts {
                let value = path
                    .split('.')
                    .filter(|p| !p.is_empty())
                    .try_fold(part, |v, p| v.get(p))
                    .cloned()
                    .unwrap_or(Value::Null);
                match value {
                    Value::Array(items) => values.extend(items),
                    other => values.push(other),
                }
            }
        }
        if let Some(count) = collect.get("count").and_then(Value::as_u64)
            && values.len() as u64 != count
        {
            return Err(format!(
                "collected {} values, expected {count}",
                values.len()
            ));
        }
        if collect.get("distinct").and_then(Value::as_bool) == Some(true) {
            let mut seen = std::collections::HashSet::new();
            for value in &values {
                if !seen.insert(value.to_string()) {
                    return Err(format!("{value} was collected twice"));
                }
            }
        }
        if let Some(range) = collect.get("range").and_then(Value::as_array) {
            let (from, to) = (range[0].as_i64(), range[1].as_i64());
            let mut numbers: Vec<i64> = values.iter().filter_map(Value::as_i64).collect();
            numbers.sort_unstable();
            let expected: Vec<i64> = match (from, to) {
                (Some(from), Some(to)) => (from..=to).collect(),
                _ => return Err("`range` needs two numbers".to_owned()),
            };
            if numbers != expected || numbers.len() != values.len() {
                return Err(format!("collected {numbers:?}, expected {from:?}..={to:?}"));
            }
        }
    }
    Ok(())
}
