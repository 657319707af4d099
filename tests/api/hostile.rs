//! Hostile input: deeply nested JSON, oversized and mis-typed bodies, invalid UTF-8,
//! 10 KB names, NUL bytes and percent-encoded garbage in paths, numbers out of range.
//! Every one is answered 400/404/413/415 with problem+json and a stable code, and none
//! reaches Redis: each test runs the app on a redis-server of its own and compares
//! Redis's own count of every command it ran (`INFO commandstats`) and its key count
//! before and after each request.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::*;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The app on a Redis no other test uses, so every command Redis counts is this app's.
struct Isolated {
    app: TestApp,
    /// Held so the server lives as long as the test (dropping it stops the server).
    _redis: RedisProcess,
    /// The one connection used to look inside; it is open before the first count.
    inspect: redis::Connection,
}

/// What Redis has done: calls of each command (INFO and DBSIZE, which only the test
/// sends, left out) and the number of keys.
#[derive(Debug, PartialEq, Eq)]
struct RedisActivity {
    calls: BTreeMap<String, u64>,
    keys: u64,
}

impl Isolated {
    async fn start() -> Isolated {
        Isolated::start_with(Options::default()).await
    }

    async fn start_with(options: Options) -> Isolated {
        let redis = RedisProcess::start(&[]);
        let app = spawn_app_with(Options {
            redis_url: Some(redis.url()),
            ..options
        })
        .await;
        let inspect = redis.connection();
        Isolated {
            app,
            _redis: redis,
            inspect,
        }
    }

    fn activity(&mut self) -> RedisActivity {
        let calls = command_calls(&mut self.inspect)
            .into_iter()
            // Not the tests' own looks, nor the replica's long-poll subscription (which
            // subscribes once, on its own time, and pings now and then).
            .filter(|(name, _)| !["info", "dbsize", "psubscribe", "ping"].contains(&name.as_str()))
            .collect();
        let keys = redis::cmd("DBSIZE")
            .query(&mut self.inspect)
            .expect("DBSIZE");
        RedisActivity { calls, keys }
    }

    /// Sends `request` and asserts a problem+json answer with `status` and `code` that
    /// Redis never saw. `what` names the case in a failure.
    async fn refused(&mut self, what: &str, request: RequestBuilder, status: u16, code: &str) {
        let before = self.activity();
        let reply = self.app.send(request).await;
        self.assert_refused(what, &reply, status, code);
        assert_eq!(self.activity(), before, "{what}: reached Redis");
    }

    #[track_caller]
    fn assert_refused(&self, what: &str, reply: &Reply, status: u16, code: &str) {
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{what}: unexpected answer {:#}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{what}: {:#}",
            reply.body
        );
        assert_eq!(reply.code(), code, "{what}: {:#}", reply.body);
        assert_eq!(reply.body["status"], status, "{what}: {:#}", reply.body);
    }

    /// A request with a raw body and content type.
    fn raw(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> RequestBuilder {
        self.app
            .request(method, path)
            .header("Content-Type", content_type)
            .body(body)
    }

    fn json(&self, method: Method, path: &str, body: &Value) -> RequestBuilder {
        self.app.request(method, path).json(body)
    }

    /// Sends raw bytes over TCP (for what an HTTP client refuses to send) and returns
    /// the status, the content type and the JSON body of the answer.
    async fn send_raw(&self, request: &[u8]) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(self.app.addr)
            .await
            .expect("connect");
        // The server may answer before it has read everything (413): ignore a refused write.
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("an answer within 10 s")
            .expect("read the answer");
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .expect("a status line");
        let mut headers = reqwest::header::HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':')
                && let (Ok(name), Ok(value)) = (
                    reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                    reqwest::header::HeaderValue::from_str(value.trim()),
                )
            {
                headers.insert(name, value);
            }
        }
        Reply {
            status: reqwest::StatusCode::from_u16(status).expect("status"),
            headers,
            body: serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        }
    }

    /// Like `refused`, for a raw request.
    async fn refused_raw(&mut self, what: &str, request: &[u8], status: u16, code: &str) {
        let before = self.activity();
        let reply = self.send_raw(request).await;
        self.assert_refused(what, &reply, status, code);
        assert_eq!(self.activity(), before, "{what}: reached Redis");
    }
}

/// `depth` nested arrays around a number.
fn nested_arrays(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` nested objects `{"a":{"a":…}}`.
fn nested_objects(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[tokio::test]
async fn the_redis_activity_count_sees_a_request_that_reaches_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let before = iso.activity();
    iso.app
        .put(
            &format!("/v1/pools/{pool}/items/a"),
            json!({"data": {"n": 1}}),
        )
        .await
        .expect(201);
    let after = iso.activity();
    assert_ne!(after.calls, before.calls, "a write ran no command");
    assert!(after.keys > before.keys, "a write made no key");
}

#[tokio::test]
async fn deeply_nested_json_is_400_and_never_reaches_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let item = format!("/v1/pools/{pool}/items/a");
    let deep = 10_000;
    let cases: Vec<(&str, Method, String, String)> = vec![
        (
            "item data of nested arrays",
            Method::PUT,
            item.clone(),
            format!(r#"{{"data":{{"a":{}}}}}"#, nested_arrays(deep)),
        ),
        (
            "item data of nested objects",
            Method::PUT,
            item.clone(),
            format!(r#"{{"data":{}}}"#, nested_objects(deep)),
        ),
        (
            "unclosed nested arrays",
            Method::PUT,
            item.clone(),
            format!(r#"{{"data":{{"a":{}"#, "[".repeat(deep)),
        ),
        (
            "a merge patch of nested objects",
            Method::PATCH,
            item.clone(),
            nested_objects(deep),
        ),
        (
            "a merge patch of nested arrays",
            Method::PATCH,
            item.clone(),
            format!(r#"{{"a":{}}}"#, nested_arrays(deep)),
        ),
        (
            "new items with nested data",
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            format!(
                r#"{{"items":[{{"id":"a","data":{{"a":{}}}}}]}}"#,
                nested_arrays(deep)
            ),
        ),
        (
            "complete with nested data",
            Method::POST,
            format!("{item}/complete"),
            format!(
                r#"{{"holder":"h","token":1,"data":{}}}"#,
                nested_objects(deep)
            ),
        ),
        (
            "a claim body of nested arrays",
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            nested_arrays(deep),
        ),
        (
            "a counter body of nested arrays",
            Method::POST,
            "/v1/counters/cases/next".to_owned(),
            nested_arrays(deep),
        ),
        (
            "pool settings of nested objects",
            Method::PUT,
            format!("/v1/pools/{pool}"),
            nested_objects(deep),
        ),
    ];
    for (what, method, path, body) in cases {
        let request = iso.raw(method, &path, "application/json", body.into_bytes());
        iso.refused(what, request, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn bodies_over_the_size_limit_are_413_and_never_reach_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    // 3 MiB of valid JSON, over the default 2 MiB.
    let items: Vec<Value> = (0..30_000)
        .map(|n| json!({"id": format!("item-{n:06}"), "data": {"pad": "x".repeat(80)}}))
        .collect();
    let big = json!({ "items": items });
    assert!(big.to_string().len() > 3 * 1024 * 1024);
    let request = iso.json(Method::POST, &format!("/v1/pools/{pool}/items"), &big);
    iso.refused("a 3 MiB body", request, 413, "payload_too_large")
        .await;

    // A Content-Length far over the limit is refused before any of the body is read.
    let raw = format!(
        "POST /v1/pools/{pool}/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n{{",
        iso.app.key
    );
    iso.refused_raw(
        "a Content-Length of 99999999999",
        raw.as_bytes(),
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_and_never_reaches_redis() {
    let mut iso = Isolated::start_with(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    // No Content-Length: the limit must hold while the body streams in.
    let chunk = format!(
        r#"{{"items":[{{"id":"a","data":{{"pad":"{}"}}}}]}}"#,
        "x".repeat(4000)
    );
    let raw = format!(
        "POST /v1/pools/{pool}/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        iso.app.key,
        chunk.len()
    );
    iso.refused_raw(
        "a 4 KB chunked body over a 1 KB limit",
        raw.as_bytes(),
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn ten_kilobyte_names_and_headers_are_400_and_never_reach_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let long = "a".repeat(10 * 1024);
    let item = format!("/v1/pools/{pool}/items/a");
    let json_cases: Vec<(&str, Method, String, Value)> = vec![
        (
            "a 10 KB pool name in PUT pool",
            Method::PUT,
            format!("/v1/pools/{long}"),
            json!({}),
        ),
        (
            "a 10 KB pool name in add items",
            Method::POST,
            format!("/v1/pools/{long}/items"),
            json!({"items": [{"id": "a"}]}),
        ),
        (
            "a 10 KB pool name in claim",
            Method::POST,
            format!("/v1/pools/{long}/claim"),
            json!({"holder": "h"}),
        ),
        (
            "a 10 KB item id in the path",
            Method::PUT,
            format!("/v1/pools/{pool}/items/{long}"),
            json!({"data": {}}),
        ),
        (
            "a 10 KB item id in claim item",
            Method::POST,
            format!("/v1/pools/{pool}/items/{long}/claim"),
            json!({"holder": "h"}),
        ),
        (
            "a 10 KB item id in the body",
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            json!({"items": [{"id": long}]}),
        ),
        (
            "a 10 KB holder in claim",
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            json!({"holder": long}),
        ),
        (
            "a 10 KB holder in assign",
            Method::PUT,
            format!("{item}/holder"),
            json!({"holder": long}),
        ),
        (
            "a 10 KB counter name",
            Method::POST,
            format!("/v1/counters/{long}/next"),
            json!({}),
        ),
        (
            "a 10 KB time zone",
            Method::POST,
            "/v1/counters/cases/next".to_owned(),
            json!({"tz": long}),
        ),
        (
            "a time zone that is a path",
            Method::POST,
            "/v1/counters/cases/next".to_owned(),
            json!({"tz": "../../../../etc/passwd"}),
        ),
        (
            "a 10 KB id format",
            Method::POST,
            "/v1/counters/cases/next".to_owned(),
            json!({ "format": long }),
        ),
    ];
    for (what, method, path, body) in json_cases {
        let request = iso.json(method, &path, &body);
        iso.refused(what, request, 400, "invalid_request").await;
    }
    let get_cases = [
        ("a 10 KB pool name in GET pool", format!("/v1/pools/{long}")),
        (
            "a 10 KB item id in GET item",
            format!("/v1/pools/{pool}/items/{long}"),
        ),
        (
            "a 10 KB counter name in GET",
            format!("/v1/counters/{long}"),
        ),
        (
            "a 10 KB holder in the leases query",
            format!("/v1/pools/{pool}/leases?holder={long}"),
        ),
        (
            "a 10 KB cursor",
            format!("/v1/pools/{pool}/items?cursor={long}"),
        ),
        (
            "a 10 KB state",
            format!("/v1/pools/{pool}/items?state={long}"),
        ),
        (
            "a 10 KB period",
            format!("/v1/counters/cases?period={long}"),
        ),
    ];
    for (what, path) in get_cases {
        let request = iso.app.request(Method::GET, &path);
        iso.refused(what, request, 400, "invalid_request").await;
    }
    let header_cases = [
        ("a 10 KB Idempotency-Key", "Idempotency-Key", long.clone()),
        ("a 10 KB Lease-Token", "Lease-Token", long.clone()),
        ("an If-Match of 10 KB of garbage", "If-Match", long.clone()),
    ];
    for (what, name, value) in header_cases {
        let request = iso
            .json(Method::PUT, &item, &json!({"data": {}}))
            .header(name, value);
        iso.refused(what, request, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn invalid_utf8_is_400_and_never_reaches_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let item = format!("/v1/pools/{pool}/items/a");
    let body_cases: Vec<(&str, Method, String, Vec<u8>)> = vec![
        (
            "invalid UTF-8 in item data",
            Method::PUT,
            item.clone(),
            b"{\"data\":{\"a\":\"\xff\xfe\"}}".to_vec(),
        ),
        (
            "a lone continuation byte in a holder",
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            b"{\"holder\":\"\x80\"}".to_vec(),
        ),
        (
            "a truncated sequence in an id",
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            b"{\"items\":[{\"id\":\"a\xc3\"}]}".to_vec(),
        ),
        (
            "an overlong encoding of '/' in a merge patch",
            Method::PATCH,
            item.clone(),
            b"{\"a\":\"\xc0\xaf\"}".to_vec(),
        ),
        (
            "a lone surrogate escape in item data",
            Method::PUT,
            item.clone(),
            br#"{"data":{"a":"\ud800"}}"#.to_vec(),
        ),
        (
            "a lone surrogate escape in a holder",
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            br#"{"holder":"a\udfff"}"#.to_vec(),
        ),
        (
            "a UTF-8 byte order mark before the JSON",
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            b"\xef\xbb\xbf{\"holder\":\"h\"}".to_vec(),
        ),
        (
            "a UTF-16 byte order mark and text",
            Method::POST,
            "/v1/counters/cases/next".to_owned(),
            b"\xff\xfe{\x00}\x00".to_vec(),
        ),
    ];
    for (what, method, path, body) in body_cases {
        let request = iso.raw(method, &path, "application/json", body);
        iso.refused(what, request, 400, "invalid_request").await;
    }
    for (what, path) in [
        ("%FF as a pool name", "/v1/pools/%FF/items/a".to_owned()),
        (
            "an invalid sequence in an item id",
            format!("/v1/pools/{pool}/items/a%C3%28"),
        ),
        (
            "a surrogate in a counter name",
            "/v1/counters/%ED%A0%80".to_owned(),
        ),
    ] {
        let request = iso.app.request(Method::GET, &path);
        iso.refused(what, request, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_and_never_reaches_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let body = br#"{"items":[{"id":"a"}]}"#.to_vec();
    let path = format!("/v1/pools/{pool}/items");
    for content_type in [
        "text/plain",
        "text/json",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "application/jsonx",
        "json",
        "",
    ] {
        let request = iso.raw(Method::POST, &path, content_type, body.clone());
        iso.refused(
            &format!("Content-Type {content_type:?}"),
            request,
            415,
            "unsupported_media_type",
        )
        .await;
    }
    let request = iso.app.request(Method::POST, &path).body(body);
    iso.refused("no Content-Type", request, 415, "unsupported_media_type")
        .await;
}

#[tokio::test]
async fn nul_bytes_and_percent_garbage_in_paths_are_refused_and_never_reach_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let bad_names = [
        "%00", "a%00b", "a%00", "%", "a%zz", "%%", "a%2Fb", "a%5Cb", "%7B%7D", "a%0Ab", "%20",
        "a%3Ab", "a%25",
    ];
    for bad in bad_names {
        for (what, method, path, body) in [
            (
                "a pool name",
                Method::PUT,
                format!("/v1/pools/{bad}/items/a"),
                Some(json!({"data": {}})),
            ),
            ("a pool name", Method::GET, format!("/v1/pools/{bad}"), None),
            (
                "a pool name",
                Method::DELETE,
                format!("/v1/pools/{bad}"),
                None,
            ),
            (
                "a counter name",
                Method::POST,
                format!("/v1/counters/{bad}/next"),
                Some(json!({})),
            ),
            (
                "a counter name",
                Method::GET,
                format!("/v1/counters/{bad}"),
                None,
            ),
        ] {
            let mut request = iso.app.request(method.clone(), &path);
            if let Some(body) = body {
                request = request.json(&body);
            }
            iso.refused(
                &format!("{method} {path} ({what})"),
                request,
                400,
                "invalid_request",
            )
            .await;
        }
    }
    // Item ids allow ':' but nothing else of the above.
    for bad in ["%00", "a%00b", "%zz", "a%2Fb", "%7Bt%7D", "a%20b"] {
        let path = format!("/v1/pools/{pool}/items/{bad}");
        let request = iso.json(Method::PUT, &path, &json!({"data": {}}));
        iso.refused(&format!("PUT {path}"), request, 400, "invalid_request")
            .await;
        let request = iso.app.request(Method::DELETE, &path);
        iso.refused(&format!("DELETE {path}"), request, 400, "invalid_request")
            .await;
    }
    // Dot segments and raw bytes an HTTP client would normalise or refuse to send.
    for (what, target) in [
        (
            "an encoded dot-dot pool name",
            "/v1/pools/%2e%2e".to_owned(),
        ),
        ("an encoded dot pool name", "/v1/pools/%2E".to_owned()),
        (
            "an encoded dot-dot item id",
            format!("/v1/pools/{pool}/items/%2e%2e"),
        ),
        (
            "a raw dot-dot item id",
            format!("/v1/pools/{pool}/items/.."),
        ),
    ] {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            iso.app.key
        );
        iso.refused_raw(what, raw.as_bytes(), 400, "invalid_request")
            .await;
    }
    // A raw NUL or DEL in the request line is not HTTP: hyper's parser answers a bare 400
    // before the request exists for the router (so no problem+json), and nothing more.
    for target in ["/v1/pools/a\0b", "/v1/pools/a\x7fb", "/v1/counters/\0/next"] {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            iso.app.key
        );
        let before = iso.activity();
        let reply = iso.send_raw(raw.as_bytes()).await;
        assert_eq!(reply.status.as_u16(), 400, "{target:?}: {:#}", reply.body);
        assert_eq!(iso.activity(), before, "{target:?}: reached Redis");
    }
    // Garbage where no route is: 404.
    for path in [
        format!("/v1/pools/{pool}/items/a/%00"),
        "/v1/%00".to_owned(),
        "/%zz".to_owned(),
        format!("/v1/pools/{pool}/items/a/claim/%2e%2e"),
    ] {
        let request = iso.app.request(Method::POST, &path).json(&json!({}));
        iso.refused(&format!("POST {path}"), request, 404, "not_found")
            .await;
    }
}

#[tokio::test]
async fn numbers_out_of_range_are_400_and_never_reach_redis() {
    let mut iso = Isolated::start().await;
    let pool = pool_name();
    let item = format!("/v1/pools/{pool}/items/a");
    let claim = format!("/v1/pools/{pool}/claim");
    let counter = "/v1/counters/cases/next".to_owned();
    // Raw JSON text, so that numbers serde_json's Value cannot hold are sent as written.
    let cases: Vec<(Method, String, &str)> = vec![
        (Method::PUT, item.clone(), r#"{"data":{},"priority":1e30}"#),
        (Method::PUT, item.clone(), r#"{"data":{},"priority":1.5}"#),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"priority":1000001}"#,
        ),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"priority":-1000001}"#,
        ),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"priority":9223372036854775808}"#,
        ),
        (Method::PUT, item.clone(), r#"{"data":{},"priority":"5"}"#),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"expected_version":-1}"#,
        ),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"expected_version":1.5}"#,
        ),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"expected_version":9007199254740992}"#,
        ),
        (
            Method::PUT,
            item.clone(),
            r#"{"data":{},"expected_version":18446744073709551616}"#,
        ),
        (
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            r#"{"items":[{"id":"a","priority":2000000}]}"#,
        ),
        (
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            r#"{"items":[{"id":"a","priority":-0.5}]}"#,
        ),
        (Method::POST, claim.clone(), r#"{"holder":"h","count":0}"#),
        (Method::POST, claim.clone(), r#"{"holder":"h","count":101}"#),
        (Method::POST, claim.clone(), r#"{"holder":"h","count":-1}"#),
        (Method::POST, claim.clone(), r#"{"holder":"h","count":1.5}"#),
        (Method::POST, claim.clone(), r#"{"holder":"h","count":1e3}"#),
        (
            Method::POST,
            claim.clone(),
            r#"{"holder":"h","lease_ms":-1}"#,
        ),
        (
            Method::POST,
            claim.clone(),
            r#"{"holder":"h","lease_ms":2592000001}"#,
        ),
        (
            Method::POST,
            claim.clone(),
            r#"{"holder":"h","lease_ms":1e20}"#,
        ),
        (
            Method::POST,
            claim.clone(),
            r#"{"holder":"h","wait_ms":-1}"#,
        ),
        (
            Method::POST,
            claim.clone(),
            r#"{"holder":"h","wait_ms":30001}"#,
        ),
        (
            Method::POST,
            format!("{item}/claim"),
            r#"{"holder":"h","lease_ms":-5}"#,
        ),
        (
            Method::POST,
            format!("{item}/renew"),
            r#"{"holder":"h","token":-1}"#,
        ),
        (
            Method::POST,
            format!("{item}/renew"),
            r#"{"holder":"h","token":1.5}"#,
        ),
        (
            Method::POST,
            format!("{item}/renew"),
            r#"{"holder":"h","token":9007199254740992}"#,
        ),
        (
            Method::POST,
            format!("{item}/renew"),
            r#"{"holder":"h","token":18446744073709551616}"#,
        ),
        (
            Method::POST,
            format!("{item}/renew"),
            r#"{"holder":"h","token":1,"lease_ms":-1}"#,
        ),
        (
            Method::POST,
            format!("{item}/release"),
            r#"{"holder":"h","token":1,"delay_ms":-5}"#,
        ),
        (
            Method::POST,
            format!("{item}/release"),
            r#"{"holder":"h","token":1,"priority":2e6}"#,
        ),
        (
            Method::POST,
            format!("{item}/complete"),
            r#"{"holder":"h","token":-3}"#,
        ),
        (
            Method::PUT,
            format!("{item}/holder"),
            r#"{"holder":"h","lease_ms":-1}"#,
        ),
        (
            Method::PUT,
            format!("{item}/holder"),
            r#"{"holder":"h","expected_version":-1}"#,
        ),
        (
            Method::POST,
            format!("{item}/requeue"),
            r#"{"priority":10000000}"#,
        ),
        (
            Method::PUT,
            format!("/v1/pools/{pool}"),
            r#"{"lease_ms":-1}"#,
        ),
        (
            Method::PUT,
            format!("/v1/pools/{pool}"),
            r#"{"max_attempts":-1}"#,
        ),
        (
            Method::PUT,
            format!("/v1/pools/{pool}"),
            r#"{"max_leases_per_holder":1e12}"#,
        ),
        (
            Method::PUT,
            format!("/v1/pools/{pool}"),
            r#"{"max_leases_per_holder":1000000000000}"#,
        ),
        (
            Method::PUT,
            format!("/v1/pools/{pool}"),
            r#"{"require_if_match":"yes"}"#,
        ),
        (Method::POST, counter.clone(), r#"{"count":0}"#),
        (Method::POST, counter.clone(), r#"{"count":1001}"#),
        (Method::POST, counter.clone(), r#"{"count":-1}"#),
        (Method::POST, counter.clone(), r#"{"count":2.5}"#),
        (
            Method::POST,
            counter.clone(),
            r#"{"count":99999999999999999999999}"#,
        ),
        (Method::POST, counter.clone(), r#"{"count":1e999999999}"#),
        (Method::PUT, item.clone(), r#"{"data":{"a":1e400}}"#),
        (Method::PUT, item.clone(), r#"{"data":{"a":-1e400}}"#),
        (
            Method::POST,
            claim.clone(),
            r#"{"holder":"h","holder":"i"}"#,
        ),
        (Method::POST, claim.clone(), r#"{"holder":"h"} trailing"#),
        (Method::POST, claim.clone(), r#"null"#),
        (Method::POST, claim.clone(), r#"{"holder":null}"#),
    ];
    for (method, path, body) in cases {
        let what = format!("{method} {path} {body}");
        let request = iso.raw(method, &path, "application/json", body.as_bytes().to_vec());
        iso.refused(&what, request, 400, "invalid_request").await;
    }
    for query in [
        "limit=0",
        "limit=-1",
        "limit=1.5",
        "limit=1e3",
        "limit=1001",
        "limit=99999999999999999999",
        "cursor=-1",
        "cursor=1.2.3",
        "limit=1&limit=2",
        "limit=1&colour=red",
        "state=%00",
        "cursor=99999999999999999999.1",
    ] {
        let path = format!("/v1/pools/{pool}/items?{query}");
        let request = iso.app.request(Method::GET, &path);
        iso.refused(&format!("GET {path}"), request, 400, "invalid_request")
            .await;
    }
    for token in [
        "-1",
        "1.5",
        "99999999999999999999",
        "9007199254740992",
        "0x10",
    ] {
        let request = iso
            .json(Method::PUT, &item, &json!({"data": {}}))
            .header("Lease-Token", token);
        iso.refused(
            &format!("Lease-Token {token}"),
            request,
            400,
            "invalid_request",
        )
        .await;
    }
}
