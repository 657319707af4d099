//! The dashboard at `/ui/`, in a real headless Chromium driven over WebDriver
//! (`chromedriver`, installed with Chromium by `scripts/ensure-chromium.sh`).
//!
//! The page reads the API by itself every two seconds, so every check here waits, within
//! a bound, until what the page shows equals what the API answers, then asserts it. The
//! numbers are read from the rendered page's text (`innerText`), as a person would see
//! them; the event panel's rows are compared with what `GET /events` answers. Per-route conflict figures come from the process-wide metrics recorder that every
//! test of this binary reports into, so they are checked against `/metrics` read before
//! and after the page's figure, which can only lie between the two.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::fixtures::browser::with_browser;
use crate::helpers::*;

/// How long any one thing the page should show may take to appear: the page polls every
/// 2 s, so this is a few polls.
const PAGE_WAIT: Duration = Duration::from_secs(8);

const CLAIM_ROUTE: &str = "/v1/pools/{pool}/items/{id}/claim";
const RENEW_ROUTE: &str = "/v1/pools/{pool}/items/{id}/renew";

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
async fn wait_for_page<T>(page: &Client, what: &str, check: impl FnMut(&Value) -> Option<T>) -> T {
    wait_for_script(page, SNAPSHOT, what, check).await
}

/// Runs `script` on the page until `check` finds what it wants in its answer, failing with
/// the last answer after `PAGE_WAIT`.
async fn wait_for_script<T>(
    page: &Client,
    script: &str,
    what: &str,
    mut check: impl FnMut(&Value) -> Option<T>,
) -> T {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let shown = page.execute(script, vec![]).await.expect(what);
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

// ---- the event panel ---------------------------------------------------------------------

/// How many events the panel shows.
const EVENT_ROWS: usize = 50;

/// The event panel as shown: its state and counters (stream connections opened, events read
/// from the stream), the pool picked and those to pick from, each row as `{id, at (the
/// `datetime` of its time), time (the text), fresh, type, item, state, holder, token,
/// version}`, and the tag of every element inside its cells.
const EVENT_PANEL: &str = r#"
const panel = document.getElementById('events-panel');
const select = document.getElementById('events-pool');
const note = document.getElementById('events-note');
const text = (node) => (node ? node.innerText.trim() : null);
return {
  state: panel.dataset.state,
  connects: Number(panel.dataset.connects || 0),
  streamed: Number(panel.dataset.streamed || 0),
  pool: select.value,
  pools: [...select.options].map((o) => o.textContent),
  note: note.hidden ? null : text(note),
  rows: [...document.querySelectorAll('#events tbody tr')].map((row) => {
    const time = row.querySelector('time');
    const cells = [...row.querySelectorAll('[data-col]')].filter((c) => c.dataset.col !== 'at');
    return {
      id: row.dataset.id,
      at: time ? time.getAttribute('datetime') : null,
      time: text(time),
      fresh: row.classList.contains('fresh'),
      ...Object.fromEntries(cells.map((c) => [c.dataset.col, text(c)])),
      until_at: row.querySelector('[data-col=until]')?.dataset.at ?? null,
    };
  }),
  elements: [...document.querySelectorAll('#events tbody td *')].map((n) => n.localName),
  injected: window.injected === undefined ? null : String(window.injected),
};
"#;

/// Every event of `pool` the API keeps, oldest first, read page by page.
async fn api_events(app: &TestApp, pool: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = format!("/v1/pools/{pool}/events?limit=1000");
    loop {
        let page = app.get(&path).await.expect(200);
        let batch = page["events"].as_array().expect("events").clone();
        if batch.is_empty() {
            return events;
        }
        events.extend(batch);
        let after = page["next_after"].as_str().expect("next_after");
        path = format!("/v1/pools/{pool}/events?limit=1000&after={after}");
    }
}

/// The panel's rows for `events` (oldest first, as the API pages them): the last
/// `EVENT_ROWS`, newest first, each field as the page prints it.
fn expected_event_rows(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .rev()
        .take(EVENT_ROWS)
        .map(|e| {
            json!({
                "id": e["id"],
                "at": e["at"],
                "type": e["type"],
                "item": e["item"],
                "state": e["state"],
                "holder": e["holder"].as_str().unwrap_or("—"),
                "token": e["token"].as_u64().map_or("—".to_owned(), |t| t.to_string()),
                "until_at": e["lease_expires_at"],
                "version": shown_version(e["version"].as_u64().expect("a version")),
            })
        })
        .collect()
}

/// A version as the page prints numbers (`1,234`).
fn shown_version(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The same fields of the rows the panel shows.
fn shown_event_rows(shown: &Value) -> Vec<Value> {
    shown["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let mut out = json!({});
            for col in [
                "id", "at", "type", "item", "state", "holder", "token", "until_at", "version",
            ] {
                out[col] = row[col].clone();
            }
            out
        })
        .collect()
}

/// Waits until the panel follows `pool` live and shows what the API has of its events now;
/// returns the panel.
async fn wait_for_events_as_api_says(app: &TestApp, page: &Client, pool: &str) -> Value {
    let expected = expected_event_rows(&api_events(app, pool).await);
    let what = format!("the events of {pool} as the API has them, live");
    wait_for_script(page, EVENT_PANEL, &what, |shown| {
        let ready = shown["pool"] == pool
            && shown["state"] == "live"
            && shown_event_rows(shown) == expected;
        ready.then(|| shown.clone())
    })
    .await
}

/// Appends an event to `pool`'s stream in Redis itself, as `lua/lib/pool.lua` writes them:
/// the way to have events older than the test, or names the API would refuse. `id` is
/// `*` (now) or `<ms>-<seq>`.
fn append_event(app: &TestApp, pool: &str, id: &str, fields: &[(&str, &str)]) {
    let pool = leasehold::names::PoolName::parse("pool", pool).expect("a pool name");
    let key = leasehold::store::keys::pool_events(&app.tenant, &pool);
    let mut xadd = redis::cmd("XADD");
    xadd.arg(&key).arg(id);
    for (field, value) in fields {
        xadd.arg(field).arg(value);
    }
    let _: String = xadd
        .query(&mut redis().connection())
        .expect("XADD to the pool's events");
}

async fn open_dashboard(page: &Client, url: &str, key: &str) {
    page.goto(&format!("{url}/ui/#key={key}"))
        .await
        .expect("page loads");
}

#[tokio::test]
async fn event_panel_shows_the_last_events_newest_first_as_the_api_has_them() {
    let app = spawn_app().await;
    app.put("/v1/pools/orders", json!({})).await.expect(201);
    // Forty events from two hours ago (written into Redis: the API only writes now's), so
    // the page must reach back past its first windows to find the fifty newest.
    let two_hours_ago = redis_now_ms() - 2 * 3_600_000;
    for n in 0..40 {
        let item = format!("old-{n}");
        append_event(
            &app,
            "orders",
            &format!("{two_hours_ago}-{n}"),
            &[
                ("type", "added"),
                ("item", &item),
                ("state", "available"),
                ("version", "1"),
            ],
        );
    }
    // Twenty through the API: adds, claims by two holders, renewals, a completion,
    // releases back and into a delay.
    app.add_items("orders", &["o1", "o2", "o3", "o4", "o5", "o6"])
        .await;
    let mut leases = Vec::new();
    for (n, holder) in ["alice", "bob@example.com", "alice", "carol", "dana", "erin"]
        .iter()
        .enumerate()
    {
        leases.push(claim_item(&app, "orders", &format!("o{}", n + 1), holder).await);
    }
    for lease in &leases[..3] {
        let id = lease["id"].as_str().expect("id");
        app.post(
            &action_path("orders", id, "renew"),
            json!({ "holder": lease["holder"], "token": lease["token"], "lease_ms": 60_000 }),
        )
        .await
        .expect(200);
    }
    complete(&app, "orders", &leases[0]).await;
    release(&app, "orders", &leases[1], json!({})).await;
    release(&app, "orders", &leases[2], json!({ "delay_ms": 600_000 })).await;
    let events = api_events(&app, "orders").await;
    assert_eq!(events.len(), 40 + 6 + 6 + 3 + 3);
    // Another pool, later in name order: not the one shown first.
    app.add_items("returns", &["r1"]).await;

    with_browser(|page| async move {
        open_dashboard(&page, &app.url(""), &app.key).await;
        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert_eq!(shown["pools"], json!(["orders", "returns"]));
        let rows = shown["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), EVENT_ROWS);
        // Newest first, down to the fiftieth newest: the first eight old events are not shown.
        assert_eq!(rows[0]["id"], events[events.len() - 1]["id"]);
        assert_eq!(rows[EVENT_ROWS - 1]["item"], "old-8");
        assert_eq!(rows[0]["type"], "released");
        assert_eq!(rows[0]["state"], "delayed");
        let claim = rows
            .iter()
            .find(|r| r["type"] == "claimed" && r["item"] == "o2")
            .expect("the claim of o2");
        assert_eq!(claim["holder"], "bob@example.com");
        assert_eq!(claim["token"], leases[1]["token"].to_string());
        assert_eq!(rows[EVENT_ROWS - 1]["holder"], "—");
        // Times in this browser's zone, to the millisecond: seconds and milliseconds are
        // those of the event's own time.
        for row in rows {
            let time = row["time"].as_str().expect("a time");
            let at = row["at"].as_str().expect("an at");
            assert_eq!(time.len(), "HH:MM:SS.mmm".len(), "{row}");
            assert_eq!(time[6..], at[17..23], "{row}");
        }
        // Seeded by pages of the log; nothing came through the stream yet.
        assert_eq!(shown["streamed"], 0);
        assert_eq!(shown["note"], Value::Null);
        assert!(rows.iter().all(|r| r["fresh"] == false));
    })
    .await;
}

#[tokio::test]
async fn event_panel_follows_new_events_live_from_the_stream_and_changes_pools() {
    let app = spawn_app().await;
    app.add_items("orders", &["o1", "o2", "o3"]).await;
    app.add_items("returns", &["r1", "r2"]).await;

    with_browser(|page| async move {
        open_dashboard(&page, &app.url(""), &app.key).await;
        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert_eq!(shown["rows"].as_array().map(Vec::len), Some(3));
        assert_eq!(shown["connects"], 1);
        page.execute("window.notReloaded = true", vec![])
            .await
            .expect("mark the page");

        // Six changes after the page loaded: they reach it through its one stream.
        let lease = claim_item(&app, "orders", "o2", "dana").await;
        app.post(
            &action_path("orders", "o2", "renew"),
            json!({ "holder": "dana", "token": lease["token"], "lease_ms": 60_000 }),
        )
        .await
        .expect(200);
        release(&app, "orders", &lease, json!({})).await;
        let lease = claim_item(&app, "orders", "o3", "erin").await;
        complete(&app, "orders", &lease).await;
        app.add_items("orders", &["o4"]).await;
        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert_eq!(
            shown["connects"], 1,
            "one stream, never reloaded or reseeded"
        );
        assert_eq!(shown["streamed"], 6);
        let fresh: Vec<bool> = shown["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["fresh"] == true)
            .collect();
        assert_eq!(
            fresh,
            [true, true, true, true, true, true, false, false, false]
        );
        let still = page
            .execute("return window.notReloaded === true", vec![])
            .await
            .expect("marker");
        assert_eq!(still, json!(true), "the page reloaded");

        // Another pool picked: its events, followed live; the first pool's are left behind.
        page.find(Locator::Id("events-pool"))
            .await
            .expect("the pool list")
            .select_by_value("returns")
            .await
            .expect("returns picked");
        wait_for_events_as_api_says(&app, &page, "returns").await;
        claim_item(&app, "orders", "o1", "frank").await;
        claim_item(&app, "returns", "r2", "gina").await;
        let shown = wait_for_events_as_api_says(&app, &page, "returns").await;
        assert_eq!(shown["connects"], 2);
        let items: BTreeSet<&str> = shown["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|r| r["item"].as_str())
            .collect();
        assert_eq!(items, BTreeSet::from(["r1", "r2"]));

        // The picked pool deleted: its stream ends, and the panel follows one still there.
        app.delete("/v1/pools/returns").await.expect(204);
        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert_eq!(shown["pools"], json!(["orders"]));
    })
    .await;
}

#[tokio::test]
async fn event_panel_shows_markup_in_item_ids_and_holders_as_text() {
    let app = spawn_app().await;
    app.add_items("orders", &["o1"]).await;
    // The API refuses such names; one that got into Redis some other way must still be
    // shown as the text it is, in the seed and from the stream.
    let hostile = |item: &str, holder: &str| {
        [
            ("type", "claimed"),
            ("item", item),
            ("state", "leased"),
            ("version", "2"),
            ("holder", holder),
            ("token", "7"),
        ]
        .map(|(k, v)| (k, v.to_owned()))
    };
    let fields = hostile(
        "<b>bold</b>",
        r#"<img src=x onerror="window.injected='img'">"#,
    );
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    append_event(&app, "orders", "*", &fields);

    with_browser(|page| async move {
        open_dashboard(&page, &app.url(""), &app.key).await;
        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert_eq!(shown["rows"][0]["item"], "<b>bold</b>");
        assert_eq!(
            shown["rows"][0]["holder"],
            r#"<img src=x onerror="window.injected='img'">"#
        );

        let fields = hostile("<script>window.injected='script'</script>", "<i>italic</i>");
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        append_event(&app, "orders", "*", &fields);
        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert_eq!(shown["streamed"], 1);
        assert_eq!(
            shown["rows"][0]["item"],
            "<script>window.injected='script'</script>"
        );
        assert_eq!(shown["rows"][0]["holder"], "<i>italic</i>");
        // No element made from any of it: the time is the only one in the cells.
        assert_eq!(shown["elements"], json!(["time", "time", "time"]));
        assert_eq!(shown["injected"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn event_panel_resumes_after_the_stream_is_cut_from_the_last_event_shown() {
    let app = spawn_app().await;
    app.add_items("orders", &["o1", "o2", "o3"]).await;
    // The browser reaches the app through a proxy that can reset its connections.
    let proxy = crate::fixtures::proxy::Proxy::start(app.addr, 1).await;

    with_browser(|page| async move {
        let through = format!("http://{}", proxy.addr());
        open_dashboard(&page, &through, &app.key).await;
        wait_for_events_as_api_says(&app, &page, "orders").await;

        proxy.set_mode(crate::fixtures::proxy::Mode::Reset);
        wait_for_script(
            &page,
            EVENT_PANEL,
            "the page seeing its stream cut",
            |shown| (shown["state"] == "reconnecting").then_some(()),
        )
        .await;
        // Changes while the page cannot reach the app, then the way opens again.
        claim_item(&app, "orders", "o1", "alice").await;
        claim_item(&app, "orders", "o2", "bob").await;
        proxy.set_mode(crate::fixtures::proxy::Mode::Pass);

        let shown = wait_for_events_as_api_says(&app, &page, "orders").await;
        assert!(shown["connects"].as_u64() >= Some(2), "{shown:#}");
        // Only the two new events came down the new stream (it went on after the last event
        // shown, by `Last-Event-ID`), each shown once.
        assert_eq!(shown["streamed"], 2, "{shown:#}");
        assert_eq!(shown["rows"].as_array().map(Vec::len), Some(5));
    })
    .await;
}

#[tokio::test]
async fn event_stream_parser_reads_chunks_split_anywhere_comments_and_multi_line_data() {
    let app = spawn_app().await;
    // The page's own parser, fed one text in chunks of every size from 1 up: what it makes
    // of it must not depend on where the chunks break (a CRLF split in two included).
    const PARSE_IN_CHUNKS: &str = r#"
const text = arguments[0];
const outcomes = [];
for (let size = 1; size <= text.length; size += 1) {
  const messages = [];
  const parser = new EventStreamParser((m) => messages.push(m));
  for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
  outcomes.push(messages);
}
return outcomes;
"#;
    let text = concat!(
        "\u{feff}: a comment, as the keep-alive\r\n",
        "id: 5-0\r\nevent: claimed\r\ndata: {\"a\":1,\r\ndata:  \"b\":2}\r\n\r\n",
        ":\n\n",
        "event: trimmed\ndata: {}\n\n",
        "data\n\n",
        "id: 6-0\nevent: no data, so no message\n\n",
        "retry: 5\rdata:no space\r\r",
        "data: cut off by the end of the stream",
    );
    let expected = json!([
        {"type": "claimed", "data": "{\"a\":1,\n \"b\":2}", "id": "5-0"},
        {"type": "trimmed", "data": "{}", "id": "5-0"},
        {"type": "message", "data": "", "id": "5-0"},
        {"type": "message", "data": "no space", "id": "6-0"},
    ]);

    with_browser(|page| async move {
        page.goto(&app.url("/ui/")).await.expect("page loads");
        let outcomes = page
            .execute(PARSE_IN_CHUNKS, vec![json!(text)])
            .await
            .expect("parsed");
        let outcomes = outcomes.as_array().expect("outcomes");
        assert_eq!(outcomes.len(), text.chars().count());
        for (n, messages) in outcomes.iter().enumerate() {
            assert_eq!(messages, &expected, "in chunks of {}", n + 1);
        }
    })
    .await;
}

#[tokio::test]
async fn dashboard_pages_through_the_pools_fifty_at_a_time() {
    let app = spawn_app().await;
    let mut names: Vec<String> = (0..53).map(|n| format!("p{n:02}")).collect();
    for name in &names {
        app.put(&format!("/v1/pools/{name}"), json!({}))
            .await
            .expect(201);
    }
    names.sort();
    let shown_names = |shown: &Value| -> Vec<String> {
        shown["pools"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    with_browser(|page| async move {
        open_dashboard(&page, &app.url(""), &app.key).await;
        let first = names[..50].to_vec();
        wait_for_page(&page, "the first fifty pools", |shown| {
            (shown_names(shown) == first).then_some(())
        })
        .await;
        page.find(Locator::Id("pools-next"))
            .await
            .expect("a next button")
            .click()
            .await
            .expect("clicked");
        let rest = names[50..].to_vec();
        wait_for_page(&page, "the last three pools", |shown| {
            (shown_names(shown) == rest).then_some(())
        })
        .await;
        let next_disabled: Value = page
            .execute(
                "return document.getElementById('pools-next').disabled;",
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(next_disabled, json!(true), "no page after the last");
        page.find(Locator::Id("pools-first"))
            .await
            .expect("a first button")
            .click()
            .await
            .expect("clicked");
        wait_for_page(&page, "the first fifty pools again", |shown| {
            (shown_names(shown) == first).then_some(())
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_root_sends_a_browser_to_the_dashboard_and_tells_others_where_things_are() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let browser = client
        .get(app.url("/"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("GET /");
    assert_eq!(browser.status(), 307);
    assert_eq!(
        browser
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok()),
        Some("ui/")
    );
    let index: Value = client
        .get(app.url("/"))
        .send()
        .await
        .expect("GET /")
        .json()
        .await
        .expect("JSON");
    for link in ["dashboard", "docs", "openapi", "health", "ready"] {
        let path = index[link].as_str().expect("a link");
        let status = client
            .get(app.url(path))
            .send()
            .await
            .expect("link")
            .status();
        assert_eq!(status, 200, "{link}: {path}");
    }
}

#[tokio::test]
async fn another_method_on_the_dashboards_routes_is_405_problem_json() {
    let app = spawn_app().await;
    for path in ["/", "/ui/", "/ui/app.js"] {
        let reply = app.send(app.request(reqwest::Method::POST, path)).await;
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        reply.expect_problem(405, "method_not_allowed");
    }
}

#[tokio::test]
async fn dashboard_marks_a_paused_pool_and_unmarks_it_when_resumed() {
    let app = spawn_app().await;
    app.add_items("orders", &["a"]).await;
    app.put("/v1/pools/orders", json!({"paused": true}))
        .await
        .expect(200);
    const PAUSED: &str = r#"
return [...document.querySelectorAll('#pools tbody tr')].map((row) =>
  [row.dataset.pool, row.dataset.paused === 'true',
   getComputedStyle(row.querySelector('[data-col=name]'), '::after').content]);
"#;
    with_browser(|page| async move {
        open_dashboard(&page, &app.url(""), &app.key).await;
        wait_for_script(&page, PAUSED, "the pool marked paused", |shown| {
            (shown == &json!([["orders", true, "\"paused\""]])).then_some(())
        })
        .await;
        app.put("/v1/pools/orders", json!({"paused": false}))
            .await
            .expect(200);
        wait_for_script(&page, PAUSED, "the mark gone", |shown| {
            (shown[0][1] == json!(false)).then_some(())
        })
        .await;
    })
    .await;
}
