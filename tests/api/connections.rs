//! Connections that would hold a replica up: one that sends nothing, half a head, or
//! stays idle after an answer is closed after the header timeout; a body that stops
//! coming is 408; connections over the cap are closed at once; a stop waits for what is
//! under way only for its grace period. Meanwhile everyone else is served.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// How long `stream` stays open before the server closes it (a read ends or fails),
/// reading and dropping whatever it answers meanwhile; `None` if still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .ok()
    .map(|()| start.elapsed())
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

/// The status line of the answer read from `stream`, up to `limit`.
async fn status_line(stream: &mut TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(Options {
        header_timeout_secs: Some(1),
        ..Options::default()
    })
    .await;
    let opened = Instant::now();
    let mut silent = connect(&app).await;
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: leasehold\r\n")
        .await
        .expect("write");
    let mut kept = connect(&app).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: leasehold\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        status_line(&mut kept, Duration::from_secs(5)).await,
        "HTTP/1.1 200 OK"
    );

    for (what, stream) in [
        ("sending nothing", &mut silent),
        ("half a head", &mut half),
        ("idle after an answer", &mut kept),
    ] {
        closed_within(stream, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("a connection {what} was still open after 10 s"));
        assert!(
            opened.elapsed() >= Duration::from_millis(800),
            "a connection {what} was closed after {:?}, before the timeout",
            opened.elapsed()
        );
    }
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_body_that_stops_coming_is_408_and_nothing_is_written() {
    let app = spawn_app_with(Options {
        body_timeout_secs: Some(1),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    let mut slow = connect(&app).await;
    let head = format!(
        "PUT /v1/pools/{pool} HTTP/1.1\r\nHost: leasehold\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.key
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    assert_eq!(
        status_line(&mut slow, Duration::from_secs(10)).await,
        "HTTP/1.1 408 Request Timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    app.get(&format!("/v1/pools/{pool}"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_connection_over_the_cap_is_closed_at_once_and_a_freed_place_is_taken_again() {
    let app = spawn_app_with(Options {
        max_connections: Some(3),
        ..Options::default()
    })
    .await;
    // Three connections that each had an answer take the three places.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: leasehold\r\n\r\n")
            .await
            .expect("write");
        assert_eq!(
            status_line(&mut stream, Duration::from_secs(5)).await,
            "HTTP/1.1 200 OK"
        );
        held.push(stream);
    }
    let mut over = connect(&app).await;
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: leasehold\r\n\r\n")
        .await;
    let took = closed_within(&mut over, Duration::from_secs(5))
        .await
        .expect("the connection over the cap was closed");
    assert!(took < Duration::from_secs(2), "closed only after {took:?}");

    drop(held.pop());
    eventually(
        Duration::from_secs(10),
        "a freed place taken again",
        async || {
            reqwest::get(app.url("/healthz"))
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
}

#[tokio::test]
async fn a_stop_waits_for_half_sent_requests_only_for_its_grace_period() {
    let first = spawn_app().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = replica_until(
        &first,
        Options {
            header_timeout_secs: Some(60),
            shutdown_grace_secs: Some(1),
            ..Options::default()
        },
        async {
            let _ = stopped.await;
        },
    )
    .await;
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: leasehold\r\n")
        .await
        .expect("write");
    assert_eq!(app.get("/healthz").await.status, 200);
    let asked = Instant::now();
    stop.send(()).expect("the app is running");
    let took = closed_within(&mut half, Duration::from_secs(20))
        .await
        .expect("the half-sent request's connection was closed");
    assert!(
        took < Duration::from_secs(5) && asked.elapsed() < Duration::from_secs(5),
        "the stop waited {took:?} for a half-sent request"
    );
}

/// Many idle and half-sent connections at once (1,000 and 200 where the file-descriptor
/// limit allows) do not keep the replica from answering others; they are closed after the
/// header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_crowds_do_not_keep_others_from_being_served() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let (idle_count, half_count) = if limit >= 4096 {
        (1000, 200)
    } else {
        (300, 60)
    };
    let app = spawn_app_with(Options {
        header_timeout_secs: Some(3),
        ..Options::default()
    })
    .await;
    let mut crowd = Vec::new();
    for _ in 0..idle_count {
        crowd.push(connect(&app).await);
    }
    for _ in 0..half_count {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"POST /v1/pools/p/items HTTP/1.1\r\nHost: leasehold\r\n")
            .await
            .expect("write");
        crowd.push(stream);
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(app.get("/healthz").await.status, 200);
        slowest = slowest.max(started.elapsed());
    }
    println!(
        "{idle_count} idle and {half_count} half-sent connections open: the slowest of 20 requests took {slowest:?}"
    );
    let mut closed = 0;
    for stream in &mut crowd {
        if closed_within(stream, Duration::from_secs(15))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        crowd.len(),
        "connections left open past the header timeout"
    );
}
