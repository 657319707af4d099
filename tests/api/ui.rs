//! The dashboard at `/ui/`, in a real headless Chromium driven over WebDriver
//! (`chromedriver`, installed with Chromium by `scripts/ensure-chromium.sh`).
//!
//! The page reads the API by itself every two seconds, so every check here waits, within
//! a bound, until what the page shows equals what the API answers, then asserts it. The
//! numbers are read from the rendered page's text (`innerText`), as a person would see
//! them. Per-route conflict figures come from the process-wide metrics recorder that every
//! test of this binary reports into, so they are checked against `/metrics` read before
//! and after the page's figure, which can only lie between the two.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use crate::helpers::*;

/// How long any one thing the page should show may take to appear: the page polls every
/// 2 s, so this is a few polls.
const PAGE_WAIT: Duration = Duration::from_secs(8);

const CLAIM_ROUTE: &str = "/v1/pools/{pool}/items/{id}/claim";
const RENEW_ROUTE: &str = "/v1/pools/{pool}/items/{id}/renew";

/// chromedriver and the Chromium it starts, with a fresh profile. The session is closed
/// (which quits Chromium) by `with_browser`, on success and on failure; a small `sh` guard
/// stops whatever is left of both when its stdin closes, so nothing outlives this test
/// binary however it ends.
struct Browser {
    client: Client,
    guard: Child,
    stdin: Option<ChildStdin>,
    profile: PathBuf,
}

/// Flags that keep Chromium headless, sandbox-free (it runs as root in CI) and off the
/// network: without the background-networking ones it tries to reach Google's servers.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

/// The Chromium binary on `PATH` (Debian calls it `chromium`), for chromedriver to start.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let profile =
            std::env::temp_dir().join(format!("leasehold-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("profile dir");
        // The guard leads a process group of its own, which chromedriver and every
        // Chromium process it starts join: when the test's end closes the guard's stdin,
        // it stops that group (itself excepted), and nothing of the browser outlives it.
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(r#"chromedriver "$@" >/dev/null 2>&1 & echo started; read _; trap '' TERM; kill -TERM 0; wait"#)
            .arg("sh")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh starts chromedriver (scripts/ensure-chromium.sh installs it)");
        let stdin = guard.stdin.take();
        let mut line = String::new();
        BufReader::new(guard.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("chromedriver started");
        let driver = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = status
                .get(format!("{driver}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut options = json!({ "args": args });
        if let Some(binary) = chromium() {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
        });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.as_object().expect("an object").clone())
            .connect(&driver)
            .await
            .expect("a Chromium session");
        Browser {
            client,
            guard,
            stdin,
            profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the pipe tells the guard to stop chromedriver; then reap the guard.
        self.stdin.take();
        let _ = self.guard.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Runs `test` with a browser, then closes the session (quitting Chromium) whether the
/// test passed or panicked, and only then lets a panic through.
async fn with_browser<F, Fut>(test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let browser = Browser::start().await;
    let outcome = AssertUnwindSafe(test(browser.client.clone()))
        .catch_unwind()
        .await;
    let _ = browser.client.clone().close().await;
    drop(browser);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// What the page shows, read in one go (the page redraws its tables on every poll):
/// each table row as `{column: text}`, by the cells' `data-col`.
const SNAPSHOT: &str = r#"
const text = (node) => (node ? node.innerText.trim() : null);
const rows = (selector) => [...document.querySelectorAll(selector)].map((row) =>
  Object.fromEntries([...row.querySelectorAll('[data-col]')].map((c) => [c.dataset.col, text(c)])));
const problem = document.getElementById('problem');
return {
  polls: Number(document.body.dataset.polls || 0),
  status: text(document.getElementById('status')),
  problem: problem.hidden ? null : text(problem),
  pools: rows('#pools tbody tr'),
  leases: rows('#leases tbody tr'),
  routes: rows('#routes tbody tr'),
  trend_bars: [...document.querySelectorAll('#routes tbody tr')].map((row) =>
    row.querySelectorAll('svg rect').length),
  markup_in_tables: document.querySelectorAll('main tbody b, main tbody img, main tbody script').length,
};
"#;

async fn snapshot(page: &Client) -> Value {
    page.execute(SNAPSHOT, vec![]).await.expect("snapshot")
}

/// Polls the page until `check` finds what it wants in a snapshot, failing with the last
/// snapshot after `PAGE_WAIT`.
async fn wait_for_page<T>(
    page: &Client,
    what: &str,
    mut check: impl FnMut(&Value) -> Option<T>,
) -> T {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let shown = snapshot(page).await;
        if let Some(found) = check(&shown) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {what}; it shows:\n{shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A number as the page prints it (`1,234`).
fn shown_number(text: &Value) -> u64 {
    let text = text.as_str().unwrap_or_default().replace(',', "");
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

/// A time left as the page prints it (`1h 02m`, `9m 58s`, `42s`), in seconds.
fn shown_seconds(text: &str) -> i64 {
    text.split_whitespace()
        .map(|part| {
            let (digits, unit) = part.split_at(part.len() - 1);
            let n: i64 = digits
                .parse()
                .unwrap_or_else(|_| panic!("not a time left: {text:?}"));
            match unit {
                "h" => n * 3600,
                "m" => n * 60,
                "s" => n,
                _ => panic!("not a time left: {text:?}"),
            }
        })
        .sum()
}

/// The pool table's row for `pool`, as the API's figures would print:
/// `{name, available, …, dead, claims, conflicts, expired}`.
fn expected_pool_row(pool: &Value) -> Value {
    json!({
        "name": pool["name"],
        "available": pool["counts"]["available"],
        "leased": pool["counts"]["leased"],
        "delayed": pool["counts"]["delayed"],
        "done": pool["counts"]["done"],
        "dead": pool["counts"]["dead"],
        "claims": pool["stats"]["claims"],
        "conflicts": pool["stats"]["conflicts"],
        "expired": pool["stats"]["expired"],
    })
}

/// The same fields of a row the page shows.
fn shown_pool_row(row: &Value) -> Value {
    let mut out = json!({ "name": row["name"] });
    for col in [
        "available",
        "leased",
        "delayed",
        "done",
        "dead",
        "claims",
        "conflicts",
        "expired",
    ] {
        out[col] = json!(shown_number(&row[col]));
    }
    out
}

/// Every pool of the tenant as `GET /v1/pools/{pool}` answers, in name order.
async fn api_pools(app: &TestApp) -> Vec<Value> {
    let list = app.get("/v1/pools").await.expect(200);
    let mut pools = Vec::new();
    for summary in list["pools"].as_array().expect("pools") {
        let name = summary["name"].as_str().expect("name");
        pools.push(app.get(&format!("/v1/pools/{name}")).await.expect(200));
    }
    pools
}

/// Every leased item of the tenant as (pool, id, holder), from
/// `GET /v1/pools/{pool}/items?state=leased`.
async fn api_leases(app: &TestApp) -> BTreeSet<(String, String, String)> {
    let mut leases = BTreeSet::new();
    for pool in api_pools(app).await {
        let name = pool["name"].as_str().expect("name");
        let items = app
            .get(&format!("/v1/pools/{name}/items?state=leased&limit=1000"))
            .await
            .expect(200);
        for item in items["items"].as_array().expect("items") {
            leases.insert((
                name.to_owned(),
                item["id"].as_str().expect("id").to_owned(),
                item["holder"].as_str().expect("holder").to_owned(),
            ));
        }
    }
    leases
}

fn shown_leases(shown: &Value) -> BTreeSet<(String, String, String)> {
    shown["leases"]
        .as_array()
        .expect("leases")
        .iter()
        .map(|row| {
            let text = |col: &str| row[col].as_str().unwrap_or_default().to_owned();
            (text("pool"), text("item"), text("holder"))
        })
        .collect()
}

/// Waits until the pool table equals what the API answers now, and returns it.
async fn wait_for_pools_as_api_says(app: &TestApp, page: &Client) -> Vec<Value> {
    let expected: Vec<Value> = api_pools(app).await.iter().map(expected_pool_row).collect();
    wait_for_page(page, "the pools as the API has them", |shown| {
        let rows: Vec<Value> = shown["pools"]
            .as_array()?
            .iter()
            .map(shown_pool_row)
            .collect();
        (rows == expected).then_some(rows)
    })
    .await
}

/// The conflicts counted for `route` (all codes) in a `/metrics` text.
fn conflicts_on(metrics: &str, route: &str) -> u64 {
    let label = format!("route=\"{route}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with("leasehold_conflicts_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The route table's row for `route`.
fn route_row<'a>(shown: &'a Value, route: &str) -> Option<(usize, &'a Value)> {
    shown["routes"]
        .as_array()?
        .iter()
        .enumerate()
        .find(|(_, row)| row["route"] == route)
}

/// Where the test keeps its screenshot: `target/ui/dashboard.png`.
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("ui").join("dashboard.png")
}

/// Seeds three pools with items in every state, three leases (one without expiry) and
/// two conflicts; returns the leases of `CASE-003` (whose data holds markup) and `CASE-001`.
async fn seed(app: &TestApp) -> (Value, Value) {
    app.put("/v1/pools/imports", json!({ "max_attempts": 1 }))
        .await
        .expect(201);
    app.post(
        "/v1/pools/cases/items",
        json!({ "items": [
            {"id": "CASE-001"}, {"id": "CASE-002"},
            {"id": "CASE-003", "data": {"note": "<b>x</b><img src=x>"}},
            {"id": "CASE-004"}, {"id": "CASE-005"}, {"id": "CASE-006"},
        ]}),
    )
    .await
    .expect(200);
    app.add_items("students", &["s1", "s2", "s3"]).await;
    app.add_items("imports", &["i1", "i2"]).await;

    let markup = app
        .post(
            &action_path("cases", "CASE-003", "claim"),
            json!({ "holder": "alice", "lease_ms": 600_000 }),
        )
        .await
        .expect(200);
    let claimed = app
        .post(
            "/v1/pools/cases/claim",
            json!({ "holder": "bob@example.com", "lease_ms": 90_000 }),
        )
        .await
        .expect(200);
    let next = claimed["leases"][0].clone();
    assert_eq!(next["id"], "CASE-001");
    let delayed = claim_item(app, "cases", "CASE-004", "dana").await;
    release(app, "cases", &delayed, json!({ "delay_ms": 600_000 })).await;
    let done = claim_item(app, "cases", "CASE-005", "erin").await;
    complete(app, "cases", &done).await;
    app.post(
        &action_path("students", "s1", "claim"),
        json!({ "holder": "carol", "lease_ms": 0 }),
    )
    .await
    .expect(200);
    let dead = claim_item(app, "imports", "i1", "worker-7").await;
    assert_eq!(
        release(app, "imports", &dead, json!({})).await["state"],
        "dead"
    );
    for _ in 0..2 {
        app.post(
            &action_path("cases", "CASE-003", "claim"),
            json!({ "holder": "bob@example.com" }),
        )
        .await
        .expect_problem(409, "already_leased");
    }
    (markup, next)
}

#[tokio::test]
async fn dashboard_is_a_static_page_under_a_strict_policy() {
    let app = spawn_app().await;
    // No key: the page holds no data, and the redirect is relative, for path prefixes.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = plain.get(app.url("/ui")).send().await.expect("GET /ui");
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "ui/");

    for (path, content_type) in [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ] {
        let answer = plain.get(app.url(path)).send().await.expect(path);
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().expect("ascii");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        let etag = headers["etag"].clone();
        let again = plain
            .get(app.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .expect(path);
        assert_eq!(again.status(), 304, "{path}");
    }
    let page = plain
        .get(app.url("/ui/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains(r#"<script src="app.js" defer></script>"#));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no outside fetch"
    );
}

#[tokio::test]
async fn dashboard_shows_what_the_api_says_and_follows_it_live() {
    let app = spawn_app().await;
    let (markup, next) = seed(&app).await;
    let markup_expiry = markup["lease_expires_at"]
        .as_str()
        .expect("expiry")
        .to_owned();

    with_browser(|page| async move {
        // The key travels in the fragment, which no server sees; the page moves it to
        // session storage and takes it out of the address bar.
        page.goto(&app.url(&format!("/ui/#key={}", app.key)))
            .await
            .expect("page loads");

        // Counts per state and stats per pool: exactly the API's.
        let pools = wait_for_pools_as_api_says(&app, &page).await;
        let names: Vec<&str> = pools.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["cases", "imports", "students"]);
        assert_eq!(
            pools[0],
            json!({"name": "cases", "available": 2, "leased": 2, "delayed": 1, "done": 1,
                   "dead": 0, "claims": 4, "conflicts": 2, "expired": 0})
        );
        assert_eq!(pools[1]["dead"], 1);
        let url = page.current_url().await.expect("url");
        assert!(!url.as_str().contains(&app.key), "the key left in {url}");
        let kept = page
            .execute("return sessionStorage.getItem('leasehold.apiKey')", vec![])
            .await
            .expect("session storage");
        assert_eq!(kept, json!(app.key));

        // Leases with their holders: exactly the API's leased items.
        let expected = api_leases(&app).await;
        assert_eq!(expected.len(), 3);
        let shown = wait_for_page(&page, "the leases", |shown| {
            (shown_leases(shown) == expected).then(|| shown.clone())
        })
        .await;

        // Time left by the server's clock: within a couple of seconds of what Redis says.
        let row_of = |shown: &Value, item: &str| -> Value {
            shown["leases"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["item"] == item).cloned())
                .unwrap_or_else(|| panic!("no lease row for {item}: {shown:#}"))
        };
        let expires_ms = markup_expiry
            .parse::<jiff::Timestamp>()
            .expect("RFC 3339")
            .as_millisecond();
        let left = shown_seconds(row_of(&shown, "CASE-003")["left"].as_str().expect("text"));
        let actual = (expires_ms - redis_now_ms()) as f64 / 1000.0;
        assert!(
            (left as f64 - actual).abs() <= 2.0,
            "shows {left} s left, Redis says {actual:.1} s"
        );
        assert_eq!(row_of(&shown, "s1")["left"], "no expiry");

        // It counts down between polls, not only when new data arrives.
        let first = row_of(&shown, "CASE-003")["left"].clone();
        let polls = shown["polls"].clone();
        wait_for_page(&page, "the time left counting down between polls", |now| {
            let changed = now["polls"] == polls && row_of(now, "CASE-003")["left"] != first;
            changed.then_some(())
        })
        .await;

        // Item data is user data: markup in it is shown as text, never parsed.
        let data = row_of(&shown, "CASE-003")["data"].clone();
        assert_eq!(data, r#"{"note":"<b>x</b><img src=x>"}"#);
        assert_eq!(shown["markup_in_tables"], 0);

        // Conflicts per route: more of them now, while the page is sampling.
        for _ in 0..2 {
            app.post(
                &action_path("cases", "CASE-003", "claim"),
                json!({ "holder": "bob@example.com" }),
            )
            .await
            .expect_problem(409, "already_leased");
        }
        app.post(
            &action_path("cases", "CASE-003", "renew"),
            json!({ "holder": "alice", "token": markup["token"].as_u64().expect("token") + 1000 }),
        )
        .await
        .expect_problem(409, "lease_lost");
        let before = scrape(&app).await;
        let shown = wait_for_page(&page, "the new conflicts by route", |shown| {
            let (_, claim) = route_row(shown, CLAIM_ROUTE)?;
            let (_, renew) = route_row(shown, RENEW_ROUTE)?;
            let caught_up = shown_number(&claim["total"]) >= conflicts_on(&before, CLAIM_ROUTE)
                && shown_number(&renew["total"]) >= conflicts_on(&before, RENEW_ROUTE)
                && claim["window"] != "—"
                && shown_number(&claim["window"]) >= 2
                && shown_number(&renew["window"]) >= 1;
            caught_up.then(|| shown.clone())
        })
        .await;
        let after = scrape(&app).await;
        let (n, claim) = route_row(&shown, CLAIM_ROUTE).expect("claim row");
        assert!(shown_number(&claim["total"]) <= conflicts_on(&after, CLAIM_ROUTE));
        assert!(shown_number(&claim["window"]) <= shown_number(&claim["total"]));
        assert!(
            claim["codes"]
                .as_str()
                .unwrap_or_default()
                .contains("already_leased"),
            "{claim}"
        );
        assert!(
            claim["share"].as_str().unwrap_or_default().ends_with('%'),
            "{claim}"
        );
        assert!(
            shown["trend_bars"][n].as_u64() > Some(0),
            "a trend: {shown:#}"
        );
        let (_, renew) = route_row(&shown, RENEW_ROUTE).expect("renew row");
        assert!(shown_number(&renew["total"]) <= conflicts_on(&after, RENEW_ROUTE));
        assert!(
            renew["codes"]
                .as_str()
                .unwrap_or_default()
                .contains("lease_lost"),
            "{renew}"
        );

        // Live: a completion and a new claim through the API reach the page, unreloaded.
        page.execute("window.notReloaded = true", vec![])
            .await
            .expect("mark the page");
        complete(&app, "cases", &next).await;
        app.post(
            &action_path("cases", "CASE-002", "claim"),
            json!({ "holder": "frank", "lease_ms": 300_000 }),
        )
        .await
        .expect(200);
        let pools = wait_for_pools_as_api_says(&app, &page).await;
        assert_eq!(
            (&pools[0]["leased"], &pools[0]["done"]),
            (&json!(2), &json!(2))
        );
        let expected = api_leases(&app).await;
        assert!(expected.contains(&("cases".into(), "CASE-002".into(), "frank".into())));
        assert!(
            !expected
                .iter()
                .any(|(_, _, holder)| holder == "bob@example.com")
        );
        wait_for_page(&page, "the leases after the change", |shown| {
            (shown_leases(shown) == expected).then_some(())
        })
        .await;
        let still = page
            .execute("return window.notReloaded === true", vec![])
            .await
            .expect("marker");
        assert_eq!(still, json!(true), "the page reloaded");

        // The whole page in the picture: the window grown to fit it.
        let size = page
            .execute(
                "return [window.outerWidth, window.outerHeight - window.innerHeight \
                 + document.documentElement.scrollHeight]",
                vec![],
            )
            .await
            .expect("page size");
        let dimension = |n: usize| size[n].as_u64().and_then(|v| u32::try_from(v).ok());
        if let (Some(width), Some(height)) = (dimension(0), dimension(1)) {
            page.set_window_size(width, height).await.expect("resized");
        }
        let png = page.screenshot().await.expect("screenshot");
        let path = screenshot_path();
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("target/ui");
        std::fs::write(&path, png).expect("screenshot written");
    })
    .await;
}

#[tokio::test]
async fn dashboard_asks_for_a_key_when_refused_and_uses_the_one_typed_in() {
    let app = spawn_app().await;
    app.add_items("orders", &["o1", "o2"]).await;

    with_browser(|page| async move {
        // Through the redirect, without a key: the server answers 401 and the page asks.
        page.goto(&app.url("/ui")).await.expect("page loads");
        let shown = wait_for_page(&page, "a request for a key", |shown| {
            let problem = shown["problem"].as_str()?;
            problem.contains("needs an API key").then(|| shown.clone())
        })
        .await;
        assert_eq!(shown["status"], "needs a key");
        assert_eq!(shown["pools"], json!([]));

        page.find(Locator::Id("key"))
            .await
            .expect("key field")
            .send_keys(&app.key)
            .await
            .expect("typed");
        page.find(Locator::Id("key-use"))
            .await
            .expect("button")
            .click()
            .await
            .expect("clicked");
        let pools = wait_for_pools_as_api_says(&app, &page).await;
        assert_eq!(pools[0]["name"], "orders");
        assert_eq!(pools[0]["available"], 2);
        let shown = snapshot(&page).await;
        assert_eq!(shown["problem"], Value::Null);
        assert_eq!(shown["status"], "live");
        let url = page.current_url().await.expect("url");
        assert!(url.path().ends_with("/ui/"), "{url}");
        assert!(!url.as_str().contains(&app.key), "the key in {url}");
    })
    .await;
}
