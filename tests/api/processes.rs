//! The real `leasehold` binary: start-up refusals, key files, environment variables, and
//! the embedded `dev` mode with its own redis-server. Every child is stopped by its pid
//! when a test ends, whether it passes or not.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use futures::FutureExt;
use leasehold::names::{PoolName, Tenant};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A running `leasehold` process with its output in files. Dropping it stops the process
/// (SIGTERM, then SIGKILL after a grace period) and every process in `also_kill`.
struct Leasehold {
    child: Child,
    dir: PathBuf,
    also_kill: Vec<u32>,
}

impl Leasehold {
    /// Starts the binary with `args` and `env`, and none of the caller's `LEASEHOLD_*`.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Leasehold {
        let dir = temp_dir("leasehold-proc");
        let mut command = Command::new(env!("CARGO_BIN_EXE_leasehold"));
        for (name, _) in std::env::vars() {
            if name.starts_with("LEASEHOLD_") {
                command.env_remove(name);
            }
        }
        let child = command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"))
            .spawn()
            .expect("the leasehold binary starts");
        Leasehold {
            child,
            dir,
            also_kill: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit and returns its status.
    #[track_caller]
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "leasehold did not exit within {timeout:?}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, as a service manager would.
    fn terminate(&self) {
        signal("-TERM", self.pid());
    }

    /// Polls `GET /healthz` on `port` until it answers 200 (failing if the process exits).
    async fn wait_healthy(&mut self, port: u16) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("leasehold exited with {status}; stderr: {}", self.stderr());
            }
            let answer = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(answer, Ok(ref a) if a.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no healthy answer on port {port}; stderr: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts `serve` over the Redis at `redis_url` with `extra` flags on a free port,
    /// waits until it is healthy, and returns it with its port.
    async fn serve(redis_url: &str, extra: &[&str], env: &[(&str, &str)]) -> (Leasehold, u16) {
        let (port, listen) = listen_arg();
        let mut args = vec!["serve", "--redis", redis_url, "--listen", &listen];
        args.extend_from_slice(extra);
        let mut server = Leasehold::start(&args, env);
        server.wait_healthy(port).await;
        (server, port)
    }

    /// The processes this one started (such as dev's redis-server), by `pgrep -P`.
    fn children(&self) -> Vec<u32> {
        let out = Command::new("pgrep")
            .arg("-P")
            .arg(self.pid().to_string())
            .output()
            .expect("pgrep runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Leasehold {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.also_kill.extend(self.children());
            signal("-TERM", self.pid());
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for &pid in &self.also_kill {
            if alive(pid) {
                signal("-KILL", pid);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(which: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(which)
        .arg(pid.to_string())
        .status();
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        }
        Err(_) => false,
    }
}

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs a command that must end by itself, bounded, and returns (status, stdout, stderr).
fn run_to_exit(args: &[&str]) -> (ExitStatus, String, String) {
    let mut process = Leasehold::start(args, &[]);
    let status = process.wait_exit(Duration::from_secs(30));
    (status, process.stdout(), process.stderr())
}

fn listen_arg() -> (u16, String) {
    let port = free_port();
    (port, format!("127.0.0.1:{port}"))
}

/// `keygen --tenant tenant`: the key and the key-file entry.
fn keygen(tenant: &str) -> (String, String) {
    let (status, stdout, stderr) = run_to_exit(&["keygen", "--tenant", tenant]);
    assert!(status.success(), "keygen failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "keygen printed: {stdout:?}");
    (lines[0].to_owned(), lines[1].to_owned())
}

fn write_key_file(entry: &str) -> PathBuf {
    let path = temp_dir("leasehold-keys").join("keys");
    std::fs::write(&path, format!("{entry}\n")).expect("key file");
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn serve_refuses_a_redis_that_may_evict_keys() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&["--maxmemory-policy", "allkeys-lru"]);
    let (_, listen) = listen_arg();
    let (status, _, stderr) = run_to_exit(&[
        "serve",
        "--redis",
        &redis.url(),
        "--allow-anonymous",
        "--listen",
        &listen,
    ]);
    assert!(!status.success(), "serve started on allkeys-lru");
    assert!(stderr.contains("noeviction"), "stderr: {stderr}");
}

#[test]
fn serve_with_fsync_durability_refuses_appendfsync_everysec() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let (_, listen) = listen_arg();
    let (status, _, stderr) = run_to_exit(&[
        "serve",
        "--redis",
        &redis.url(),
        "--allow-anonymous",
        "--durability",
        "fsync",
        "--listen",
        &listen,
    ]);
    assert!(!status.success(), "serve --durability fsync started");
    assert!(stderr.contains("appendfsync"), "stderr: {stderr}");
}

#[test]
fn a_redis_url_without_its_scheme_is_refused_saying_what_it_must_look_like() {
    let (_, listen) = listen_arg();
    for (flag, value) in [
        ("--redis", "127.0.0.1:6379"),
        ("--redis-cluster", "localhost:7000"),
    ] {
        let (status, _, stderr) = run_to_exit(&[
            "serve",
            flag,
            value,
            "--allow-anonymous",
            "--listen",
            &listen,
        ]);
        assert!(!status.success());
        assert!(
            stderr.contains(&format!("{flag} must look like redis://host:6379")),
            "{stderr}"
        );
    }
}

#[test]
fn a_port_in_use_is_refused_naming_the_flag_that_changes_it() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let listen = taken.local_addr().expect("addr").to_string();
    let (status, _, stderr) = run_to_exit(&[
        "serve",
        "--redis",
        &redis.url(),
        "--allow-anonymous",
        "--listen",
        &listen,
    ]);
    assert!(!status.success());
    assert!(stderr.contains("another program has that port"), "{stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("LEASEHOLD_LISTEN"),
        "{stderr}"
    );
}

#[tokio::test]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let (server, _port) = Leasehold::serve(&redis.url(), &["--allow-anonymous"], &[]).await;
    let log = server.stdout();
    assert!(log.contains("is listening on"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
}

#[tokio::test]
async fn serve_with_fsync_durability_starts_on_appendfsync_always_and_stops_on_sigterm() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let (mut server, port) = Leasehold::serve(
        &redis.url(),
        &["--allow-anonymous", "--durability", "fsync"],
        &[],
    )
    .await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200);

    server.terminate();
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test]
async fn serve_as_a_user_that_may_not_load_functions_says_which_rights_to_add() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start_locked(&[]);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("leasehold")
        .arg("-function|load")
        .query(&mut redis.connection())
        .expect("ACL SETUSER");
    let (_, listen) = listen_arg();
    let (status, _, stderr) = run_to_exit(&[
        "serve",
        "--redis",
        &redis.app_url(),
        "--allow-anonymous",
        "--listen",
        &listen,
    ]);
    assert!(!status.success(), "serve started without FUNCTION LOAD");
    assert!(
        stderr.contains("+function|load") && stderr.contains("deploy/leasehold.acl"),
        "stderr: {stderr}"
    );
    // Given the right back, it starts.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("leasehold")
        .arg("+function|load")
        .query(&mut redis.connection())
        .expect("ACL SETUSER");
    let (_server, port) = Leasehold::serve(&redis.app_url(), &["--allow-anonymous"], &[]).await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn serve_with_fsync_durability_as_the_minimal_user_asks_for_config_get_and_starts_with_it() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start_locked(&["--appendonly", "yes", "--appendfsync", "always"]);
    let (_, listen) = listen_arg();
    let (status, _, stderr) = run_to_exit(&[
        "serve",
        "--redis",
        &redis.app_url(),
        "--allow-anonymous",
        "--durability",
        "fsync",
        "--listen",
        &listen,
    ]);
    assert!(
        !status.success(),
        "serve --durability fsync started without CONFIG GET"
    );
    assert!(stderr.contains("+config|get"), "stderr: {stderr}");
    // Without fsync, the minimal user is all it takes.
    let (_server, port) = Leasehold::serve(&redis.app_url(), &["--allow-anonymous"], &[]).await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200);
    // Given the one right the file says fsync needs, it starts.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("leasehold")
        .arg("+config|get")
        .query(&mut redis.connection())
        .expect("ACL SETUSER");
    let (_fsync, port) = Leasehold::serve(
        &redis.app_url(),
        &["--allow-anonymous", "--durability", "fsync"],
        &[],
    )
    .await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn serve_reaches_redis_over_tls_with_the_certificate_flags() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let certificates = crate::tls::Certificates::make();
    let (_redis, url) = crate::tls::tls_redis(&certificates);
    let flags = crate::tls::serve_flags(&certificates);
    let mut extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    extra.push("--allow-anonymous");
    let (_server, port) = Leasehold::serve(&url, &extra, &[]).await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200);

    // The certificate flags are for rediss:// only: over redis:// they would be ignored.
    let (_, listen) = listen_arg();
    let plain = url.replacen("rediss://", "redis://", 1);
    let mut args = vec!["serve", "--redis", &plain, "--listen", &listen];
    args.extend(extra);
    let (status, _, stderr) = run_to_exit(&args);
    assert!(
        !status.success(),
        "serve started with certificates over redis://"
    );
    assert!(stderr.contains("rediss://"), "stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_long_polls_at_once_with_an_empty_answer() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let (mut server, port) = Leasehold::serve(&redis.url(), &["--allow-anonymous"], &[]).await;
    let calls = || {
        command_calls(&mut redis.connection())
            .into_iter()
            .find(|(name, _)| name == "fcall")
            .map_or(0, |(_, calls)| calls)
    };
    let before = calls();
    let waiting = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/v1/pools/empty/claim"))
            .json(&json!({"holder": "w", "wait_ms": 30_000, "create": true}))
            .send(),
    );
    wait_for(Duration::from_secs(10), "the claim's first try", || {
        calls() > before
    });
    let stopping = Instant::now();
    server.terminate();
    let answer = waiting.await.expect("task").expect("an answer");
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["leases"], json!([]));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the long poll held up the stop for {:?}",
        stopping.elapsed()
    );
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_event_streams_so_the_server_stops() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let (mut server, port) = Leasehold::serve(&redis.url(), &["--allow-anonymous"], &[]).await;
    let client = reqwest::Client::new();
    let added = client
        .post(format!("http://127.0.0.1:{port}/v1/pools/watched/items"))
        .json(&json!({"items": [{"id": "a"}]}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(added.status(), 200);
    let mut stream = client
        .get(format!(
            "http://127.0.0.1:{port}/v1/pools/watched/events/stream"
        ))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    // The stream is under way once its first event has come.
    let mut text = String::new();
    while !text.contains("event: added") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the first event in time")
            .expect("the stream reads")
            .expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }

    let stopping = Instant::now();
    server.terminate();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the stream ends within 10 s of SIGTERM")
            .expect("the stream ends cleanly, not cut off");
        if chunk.is_none() {
            break;
        }
    }
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the stream held up the stop for {:?}",
        stopping.elapsed()
    );
}

/// Sends `CLIENT PAUSE <ms> ALL` to `redis`: its clients' commands wait that long.
async fn pause_redis(redis: &RedisProcess, ms: u64) {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connects");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .expect("CLIENT PAUSE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_requests_in_flight_finish() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let (mut server, port) = Leasehold::serve(
        &redis.url(),
        &["--allow-anonymous", "--redis-timeout-ms", "10000"],
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let added = client
        .post(format!("{base}/v1/pools/jobs/items"))
        .json(&json!({"items": [{"id": "a"}, {"id": "b"}]}))
        .send()
        .await
        .expect("add items");
    assert_eq!(added.status(), 200);

    // Redis holds every command for a while: two claims stay in flight.
    pause_redis(&redis, 1500).await;
    let claims: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|holder| {
            let request = client
                .post(format!("{base}/v1/pools/jobs/claim"))
                .json(&json!({"holder": holder}));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        if metrics.contains("\nleasehold_redis_calls_in_flight 2\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the claims never reached Redis: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.terminate();
    let mut granted = Vec::new();
    for claim in claims {
        let answer = claim.await.expect("task").expect("an answer after SIGTERM");
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.expect("json");
        granted.push(
            body["leases"][0]["id"]
                .as_str()
                .expect("an item")
                .to_owned(),
        );
    }
    granted.sort();
    assert_eq!(granted, ["a", "b"]);
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let (server, port) = Leasehold::serve(
        &redis.url(),
        &["--allow-anonymous", "--log-format", "json"],
        &[("LEASEHOLD_LOG", "debug")],
    )
    .await;
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/pools/nothing-here"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 404);
    assert_eq!(answer.headers()["x-request-id"], "trace-me-42");

    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let found = server
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["span"]["id"] == "trace-me-42" && l["fields"]["message"] == "answered");
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no JSON log line for the request; stdout: {}",
            server.stdout()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(line["level"], "DEBUG");
    assert_eq!(line["fields"]["status"], 404);
    assert_eq!(line["span"]["method"], "GET");
    assert_eq!(line["span"]["path"], "/v1/pools/nothing-here");
    // Every line is JSON, the start-up lines too.
    for l in server.stdout().lines() {
        assert!(serde_json::from_str::<serde_json::Value>(l).is_ok(), "{l}");
    }
}

#[test]
fn serve_without_api_keys_or_allow_anonymous_refuses_to_start() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let (_, listen) = listen_arg();
    let (status, _, stderr) =
        run_to_exit(&["serve", "--redis", &redis().url(), "--listen", &listen]);
    assert!(!status.success(), "serve started without keys");
    assert!(stderr.contains("--api-keys"), "stderr: {stderr}");
}

#[test]
fn keygen_prints_a_key_and_its_key_file_entry() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let (key, entry) = keygen("acme");
    assert!(key.len() >= 32, "short key {key:?}");
    assert!(
        key.bytes().all(|c| c.is_ascii_graphic()),
        "key has odd characters: {key:?}"
    );
    let expected = format!("acme:{}", hex::encode(Sha256::digest(key.as_bytes())));
    assert_eq!(entry, expected);
    let (another, _) = keygen("acme");
    assert_ne!(key, another, "every key is new");
}

/// The key recipe of docs/running.md, run as written from a shell: the key it prints is
/// the one the file it appends to lets in, and a file it makes is its owner's alone.
#[tokio::test]
async fn the_documented_keygen_recipe_gives_a_key_that_serve_accepts() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let doc = include_str!("../../docs/running.md");
    let recipe = doc
        .lines()
        .find(|line| line.starts_with("leasehold keygen"))
        .expect("the keygen line of docs/running.md");
    let dir = temp_dir("leasehold-recipe");
    let bin = Path::new(env!("CARGO_BIN_EXE_leasehold"))
        .parent()
        .expect("the binary's folder")
        .to_owned();
    let run = || {
        Command::new("sh")
            .arg("-c")
            .arg(recipe)
            .current_dir(&dir)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("sh runs")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let key = String::from_utf8(first.stdout).expect("utf-8");
    let key = key.trim();
    assert!(key.starts_with("lh_"), "printed only the key: {key:?}");
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(
        stderr.contains("api-keys"),
        "says where the entry went: {stderr}"
    );
    let file = dir.join("api-keys");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("made").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new key file is its owner's alone");
    }
    // Run again: a second entry, the first kept.
    let second = run();
    let other = String::from_utf8(second.stdout).expect("utf-8");
    assert_eq!(
        std::fs::read_to_string(&file)
            .expect("file")
            .lines()
            .count(),
        2
    );

    let (_server, port) =
        Leasehold::serve(&redis().url(), &["--api-keys", path_str(&file)], &[]).await;
    for key in [key, other.trim()] {
        let answer = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/v1/pools"))
            .bearer_auth(key)
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), 200, "the printed key is let in");
    }
}

#[tokio::test]
async fn serve_with_a_keygen_key_file_answers_only_that_key() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let (key, entry) = keygen("acme");
    let key_file = write_key_file(&entry);
    // Kept until the test ends: dropping it stops the server.
    let (_server, port) =
        Leasehold::serve(&redis().url(), &["--api-keys", path_str(&key_file)], &[]).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/pools");

    let anonymous = client.get(&url).send().await.expect("answer");
    assert_eq!(anonymous.status(), 401);
    let wrong = client
        .get(&url)
        .bearer_auth(format!("{key}x"))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status(), 401);
    let keyed = client
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .expect("answer");
    assert_eq!(keyed.status(), 200);
}

/// Replaces the key file in one step (write aside, then rename), as a deploy tool
/// should, so the server never reads half a file.
fn replace_key_file(path: &Path, text: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write the new key file");
    std::fs::rename(&aside, path).expect("rename it into place");
}

/// The status `GET /v1/pools` answers with `key`; asserts a 401 is problem+json.
async fn pools_status(port: u16, key: &str) -> u16 {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/pools"))
        .bearer_auth(key)
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    if status == 401 {
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: serde_json::Value = answer.json().await.expect("a JSON problem");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(body["code"], "unauthorized", "{body:#}");
    }
    status
}

/// Polls until `condition` holds (failing if the server exits or 15 s pass).
async fn poll_until<F: Future<Output = bool>>(
    server: &mut Leasehold,
    what: &str,
    mut condition: impl FnMut(&Leasehold) -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition(server).await {
        if let Some(status) = server.child.try_wait().expect("try_wait") {
            panic!(
                "leasehold exited with {status}; stderr: {}",
                server.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; stdout: {}; stderr: {}",
            server.stdout(),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sighup_reloads_the_key_file_and_a_broken_file_keeps_the_old_keys() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let acme = Tenant::parse("tenant", "acme").expect("valid");
    let globex = Tenant::parse("tenant", "globex").expect("valid");
    let (old_key, old_entry) = leasehold::auth::generate(&acme);
    let (new_key, new_entry) = leasehold::auth::generate(&globex);
    let key_file = write_key_file(&old_entry);
    let (mut server, port) =
        Leasehold::serve(&redis().url(), &["--api-keys", path_str(&key_file)], &[]).await;
    assert_eq!(pools_status(port, &old_key).await, 200);
    assert_eq!(pools_status(port, &new_key).await, 401);

    // Revoke the old key, add a new one.
    replace_key_file(&key_file, &format!("# rotated\n{new_entry}\n"));
    signal("-HUP", server.pid());
    poll_until(&mut server, "the new key to be accepted", |_| {
        pools_status(port, &new_key).map(|s| s == 200)
    })
    .await;
    assert_eq!(
        pools_status(port, &old_key).await,
        401,
        "a revoked key works"
    );

    // A file that does not parse: logged, and the keys in force stay.
    replace_key_file(&key_file, &format!("{old_entry}\nglobex:not-a-hash\n"));
    signal("-HUP", server.pid());
    poll_until(&mut server, "the failed reload to be logged", |s| {
        std::future::ready(format!("{}{}", s.stdout(), s.stderr()).contains("not reloaded"))
    })
    .await;
    assert_eq!(
        pools_status(port, &new_key).await,
        200,
        "a broken file revoked a key"
    );
    assert_eq!(
        pools_status(port, &old_key).await,
        401,
        "a broken file restored a key"
    );
    let output = format!("{}{}", server.stdout(), server.stderr());
    assert!(output.contains(":2:"), "the error names the line: {output}");

    // Reloads still work after a failed one.
    replace_key_file(&key_file, &format!("{old_entry}\n{new_entry}\n"));
    signal("-HUP", server.pid());
    poll_until(&mut server, "the old key to be accepted again", |_| {
        pools_status(port, &old_key).map(|s| s == 200)
    })
    .await;
    assert_eq!(pools_status(port, &new_key).await, 200);
}

#[tokio::test]
async fn listen_address_and_redis_url_can_come_from_the_environment() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let private = RedisProcess::start(&[]);
    let (port, listen) = listen_arg();
    let mut server = Leasehold::start(
        &["serve", "--allow-anonymous"],
        &[
            ("LEASEHOLD_LISTEN", listen.as_str()),
            ("LEASEHOLD_REDIS", private.url().as_str()),
        ],
    );
    server.wait_healthy(port).await;
    let pool = pool_name();
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/pools/{pool}/items"))
        .json(&json!({"items": [{"id": "a"}]}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);

    let tenant = Tenant::parse("tenant", "dev").expect("valid");
    let pool = PoolName::parse("pool", &pool).expect("valid");
    let keys = leasehold::store::keys::pool_keys(&tenant, &pool);
    let exists: u64 = redis::cmd("EXISTS")
        .arg(&keys[0])
        .query(&mut private.connection())
        .expect("EXISTS");
    assert_eq!(exists, 1, "the pool was written to LEASEHOLD_REDIS");
}

#[test]
fn dev_without_redis_server_exits_with_an_install_hint() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let data = temp_dir("leasehold-dev");
    let (_, listen) = listen_arg();
    let (status, _, stderr) = run_to_exit(&[
        "dev",
        "--redis-server",
        "/nonexistent/redis-server",
        "--listen",
        &listen,
        "--data-dir",
        path_str(&data),
    ]);
    let _ = std::fs::remove_dir_all(&data);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("redis-server"), "stderr: {stderr}");
    assert!(
        stderr.to_lowercase().contains("install"),
        "no install hint: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

/// The embedded Redis's port, from the line dev logs once it listens.
fn embedded_redis_port(log: &str) -> Option<u16> {
    let start = log.find("redis://127.0.0.1:")? + "redis://127.0.0.1:".len();
    let digits: String = log[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[tokio::test]
async fn dev_serves_tenant_dev_without_a_key_and_stops_its_redis_on_sigterm() {
    if skipped_on_topology_rerun("it runs `leasehold` processes over redis-servers of its own") {
        return;
    }
    let root = temp_dir("leasehold-dev");
    let data = root.join("data");
    let (port, listen) = listen_arg();
    let mut dev = Leasehold::start(
        &["dev", "--listen", &listen, "--data-dir", path_str(&data)],
        &[],
    );
    dev.wait_healthy(port).await;
    let redis_pids = dev.children();
    dev.also_kill.extend(&redis_pids);
    assert!(!redis_pids.is_empty(), "dev has no redis-server child");
    let mut stdout = String::new();
    wait_for(Duration::from_secs(5), "dev to log its Redis URL", || {
        stdout = dev.stdout();
        embedded_redis_port(&stdout).is_some()
    });
    let redis_port = embedded_redis_port(&stdout).expect("redis port");

    // A second dev on the same data directory exits at once, naming the first.
    let (_, other_listen) = listen_arg();
    let (status, _, stderr) = run_to_exit(&[
        "dev",
        "--listen",
        &other_listen,
        "--data-dir",
        path_str(&data),
    ]);
    assert!(!status.success(), "a second dev started on the same data");
    assert!(
        stderr.contains(&format!("pid {}", dev.pid())) && stderr.contains(&listen),
        "names the one running: {stderr}"
    );
    assert!(stderr.contains("--data-dir"), "{stderr}");

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let pool = pool_name();
    let added = client
        .post(format!("{base}/v1/pools/{pool}/items"))
        .json(&json!({"items": [{"id": "a"}]}))
        .send()
        .await
        .expect("answer");
    assert_eq!(added.status(), 200);
    let claimed = client
        .post(format!("{base}/v1/pools/{pool}/claim"))
        .json(&json!({"holder": "alice"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(claimed.status(), 200);
    let body: serde_json::Value = claimed.json().await.expect("json");
    assert_eq!(body["leases"][0]["id"], "a", "{body:#?}");

    let tenant = Tenant::parse("tenant", "dev").expect("valid");
    let pool_key = &leasehold::store::keys::pool_keys(
        &tenant,
        &PoolName::parse("pool", &pool).expect("valid"),
    )[0];
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{redis_port}"))
        .expect("client")
        .get_connection()
        .expect("the embedded redis answers");
    let exists: u64 = redis::cmd("EXISTS")
        .arg(pool_key)
        .query(&mut conn)
        .expect("EXISTS");
    assert_eq!(exists, 1, "the pool belongs to tenant dev");
    drop(conn);
    assert!(
        data.join("appendonlydir").is_dir(),
        "no appendonlydir in {}",
        data.display()
    );

    dev.terminate();
    let status = dev.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit after SIGTERM: {status}");
    wait_for(Duration::from_secs(10), "redis-server to be gone", || {
        redis_pids.iter().all(|&pid| !alive(pid))
    });
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err(),
        "the embedded redis still answers on {redis_port}"
    );
    drop(dev);
    let _ = std::fs::remove_dir_all(&root);
}

/// The README's worker recipe makes its Idempotency-Keys with what every POSIX shell has
/// (no `uuidgen`): run as written by `sh`, each is 32 hex digits, and each is new.
#[test]
fn the_readme_makes_idempotency_keys_with_what_every_shell_has() {
    let readme = include_str!("../../README.md");
    let definition = readme
        .lines()
        .find(|line| line.starts_with("new_key()"))
        .expect("the README defines new_key");
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{definition}\necho \"$(new_key)\"; echo \"$(new_key)\""
        ))
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("sh runs");
    assert!(output.status.success(), "{output:?}");
    let keys: Vec<String> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(keys.len(), 2);
    for key in &keys {
        assert_eq!(key.len(), 32, "{key:?}");
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()), "{key:?}");
    }
    assert_ne!(keys[0], keys[1]);
}

/// The README says which Rust it needs: the floor the crates declare.
#[test]
fn the_readme_names_the_rust_the_crates_need() {
    let manifest = include_str!("../../Cargo.toml");
    let floor = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("rust-version in Cargo.toml");
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&format!("Rust {floor} or newer")),
        "the README does not say Rust {floor} or newer"
    );
    assert!(
        readme.contains("cargo install --path ."),
        "how to put leasehold on the PATH"
    );
    assert!(readme.contains("noeviction"), "the Redis setting it needs");
}
