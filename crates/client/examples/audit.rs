//! The audit trail of a pool: who held which item, and when, from the pool's event log.
//!
//! ```sh
//! cargo run -p leasehold-client --example audit -- --url http://127.0.0.1:8080 --pool cases --item c1
//! cargo run -p leasehold-client --example audit -- --url http://127.0.0.1:8080 --pool cases --follow
//! ```
//!
//! It prints one line per event, oldest first:
//! `<at> <item> <type> <state> v<version> [<holder> token <token>]`; with `--item`, then
//! one `held` line per lease the item had (`held <item> by <holder> token <token> from <at>
//! to <at> (<how it ended>)`, or `to now` for a lease still running). With `--follow` it
//! goes on printing events as they happen until the pool is deleted (it then prints
//! `pool <pool> is gone`) or it is stopped with Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use futures::StreamExt;
use leasehold_client::{Client, Error, Event, EventKind, Followed};

/// Print a pool's events.
#[derive(Debug, Parser)]
struct Args {
    /// The deployment's base URL.
    #[arg(long, env = "LEASEHOLD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (`leasehold dev` needs none).
    #[arg(long, env = "LEASEHOLD_KEY")]
    key: Option<String>,
    /// The pool whose events to print.
    #[arg(long, env = "LEASEHOLD_POOL", default_value = "cases")]
    pool: String,
    /// Only this item's events, and who held it when.
    #[arg(long)]
    item: Option<String>,
    /// Keep printing events as they happen, until the pool is deleted.
    #[arg(long)]
    follow: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = match Client::builder(&args.url).api_key(args.key.clone()).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("audit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if args.follow {
        follow(&client, &args).await
    } else {
        history(&client, &args).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit {}: {e}", args.pool);
            ExitCode::FAILURE
        }
    }
}

/// Every event kept, page by page, then who held the item when.
async fn history(client: &Client, args: &Args) -> Result<(), Error> {
    let mut after: Option<String> = None;
    let mut events = Vec::new();
    loop {
        let page = client
            .list_events(&args.pool, after.as_deref(), Some(1000))
            .await?;
        if page.trimmed {
            println!("(older events were dropped by the pool's cap)");
        }
        if page.events.is_empty() {
            break;
        }
        after = page.next_after;
        for event in page.events {
            if args
                .item
                .as_ref()
                .is_none_or(|item| Some(item) == event.item.as_ref())
            {
                println!("{}", line(&event));
                events.push(event);
            }
        }
    }
    if let Some(item) = &args.item {
        for held in holdings(&events) {
            println!("held {item} {held}");
        }
    }
    Ok(())
}

/// The events as they happen, until the pool is gone or Ctrl-C.
async fn follow(client: &Client, args: &Args) -> Result<(), Error> {
    let mut events = client.follow_events(&args.pool, None);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match next {
            Some(Ok(Followed::Event(event))) => {
                if args
                    .item
                    .as_ref()
                    .is_none_or(|item| Some(item) == event.item.as_ref())
                {
                    println!("{}", line(&event));
                }
            }
            Some(Ok(Followed::Trimmed)) => {
                println!("(events were dropped by the pool's cap before they could be read)");
            }
            Some(Err(e)) => return Err(e),
            None => {
                println!("pool {} is gone", args.pool);
                return Ok(());
            }
        }
    }
}

fn line(event: &Event) -> String {
    let (Some(item), Some(state), Some(version)) = (&event.item, event.state, event.version) else {
        // A change to the pool itself (paused, resumed).
        return format!("{} pool {}", event.at, event.kind.as_str());
    };
    let mut line = format!(
        "{} {} {} {} v{}",
        event.at,
        item,
        event.kind.as_str(),
        state.as_str(),
        version
    );
    if let (Some(holder), Some(token)) = (&event.holder, event.token) {
        line.push_str(&format!(" {holder} token {token}"));
    }
    line
}

/// One item's leases, from its events: who, under which token, from when to when.
fn holdings(events: &[Event]) -> Vec<String> {
    let mut held = Vec::new();
    let mut current: Option<&Event> = None;
    for event in events {
        match event.kind {
            EventKind::Claimed | EventKind::Assigned => {
                // An assignment over a running lease ends it.
                if let Some(start) = current.take() {
                    held.push(span(start, &event.at, "taken over"));
                }
                current = Some(event);
            }
            EventKind::Released
            | EventKind::Completed
            | EventKind::Expired
            | EventKind::Unassigned
            | EventKind::Deleted => {
                if let Some(start) = current.take() {
                    held.push(span(start, &event.at, event.kind.as_str()));
                }
            }
            _ => {}
        }
    }
    if let Some(start) = current {
        held.push(span(start, "now", "still held"));
    }
    held
}

fn span(start: &Event, end: &str, how: &str) -> String {
    format!(
        "by {} token {} from {} to {end} ({how})",
        start.holder.as_deref().unwrap_or("-"),
        start.token.map_or("-".to_owned(), |t| t.to_string()),
        start.at,
    )
}
