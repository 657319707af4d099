//! A worker: claims items from a pool one at a time, works on each under a lease that the
//! client keeps alive, completes it, and stops gracefully — on Ctrl-C or SIGTERM (the item
//! in hand goes back to the pool), after `--max-items`, or with `--drain` once the pool has
//! nothing left to claim. Without `--drain`, an empty pool is waited on with long-poll
//! claims: the service answers the moment an item is available (on any replica), so the
//! worker neither sleeps nor polls.
//!
//! ```sh
//! cargo run -p leasehold-client --example worker -- --url http://127.0.0.1:8080 --pool cases --holder w1 --drain
//! ```
//!
//! It prints one line per event (`waiting`, `claimed`, `completed`, `released`, `lost`) and
//! a summary.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use leasehold_client::{Claim, Client, Lease, Lost, ProblemCode, Release};
use serde_json::{Value, json};

/// Claim, work, complete; until stopped.
#[derive(Debug, Parser)]
struct Args {
    /// The deployment's base URL.
    #[arg(long, env = "LEASEHOLD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (`leasehold dev` needs none).
    #[arg(long, env = "LEASEHOLD_KEY")]
    key: Option<String>,
    /// The pool to take work from.
    #[arg(long, env = "LEASEHOLD_POOL", default_value = "cases")]
    pool: String,
    /// Who this worker is (leases are held in this name).
    #[arg(long, env = "LEASEHOLD_HOLDER", default_value = "worker-1")]
    holder: String,
    /// The lease time; the client renews at a third of it while the work runs.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// How long the pretend work on one item takes.
    #[arg(long, default_value_t = 200)]
    work_ms: u64,
    /// Stop after completing this many items.
    #[arg(long)]
    max_items: Option<u64>,
    /// Stop when a claim finds nothing (instead of waiting for more work).
    #[arg(long)]
    drain: bool,
    /// How long one claim waits for an item when the pool has none (at most 30000); an
    /// empty answer after it is simply claimed again.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=30_000))]
    wait_ms: u64,
}

/// What happened to one lease.
enum Outcome {
    Worked(Value),
    Lost(Lost),
    Stopping,
}

#[derive(Default)]
struct Tally {
    completed: u64,
    released: u64,
    lost: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = match Client::builder(&args.url).api_key(args.key.clone()).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut tally = Tally::default();
    let claim = Claim::new(&args.holder).lease_ms(args.lease_ms);
    // Once a claim has found nothing, the next ones wait for work on the service's side.
    let waiting = claim.clone().wait_ms(args.wait_ms);
    let mut idle = false;

    while args.max_items.is_none_or(|max| tally.completed < max) {
        let claim = if idle { &waiting } else { &claim };
        // Stopping drops a waiting claim: the service may still grant an item to it just
        // then, which nobody holds, and which comes back when its lease time ends.
        let claimed = tokio::select! {
            () = &mut stop => break,
            claimed = client.claim_next(&args.pool, claim) => claimed,
        };
        let lease = match claimed {
            Ok(mut leases) => leases.pop(),
            Err(e) => {
                eprintln!("worker {}: cannot claim: {e}", args.holder);
                return ExitCode::FAILURE;
            }
        };
        let Some(lease) = lease else {
            if args.drain {
                println!("drained {}", args.pool);
                break;
            }
            if !idle {
                println!("waiting for work in {}", args.pool);
            }
            // Nothing now, or nothing during the whole wait: wait (again).
            idle = true;
            continue;
        };
        idle = false;
        println!("claimed {} token {}", lease.id(), lease.token());

        let outcome = tokio::select! {
            () = &mut stop => Outcome::Stopping,
            lost = lease.lost() => Outcome::Lost(lost),
            result = work(&lease, &args) => Outcome::Worked(result),
        };
        let stopping = matches!(outcome, Outcome::Stopping);
        finish(lease, outcome, &mut tally).await;
        if stopping {
            break;
        }
    }
    println!(
        "worker {}: completed {}, released {}, lost {}",
        args.holder, tally.completed, tally.released, tally.lost
    );
    ExitCode::SUCCESS
}

/// The pretend work: takes a while, and produces a result to store with the item.
async fn work(lease: &Lease, args: &Args) -> Value {
    tokio::time::sleep(Duration::from_millis(args.work_ms)).await;
    json!({"worked_by": args.holder, "token": lease.token(), "input": lease.data()})
}

/// Completes, gives back, or gives up the lease, as the outcome says.
async fn finish(lease: Lease, outcome: Outcome, tally: &mut Tally) {
    let (id, token) = (lease.id().to_owned(), lease.token());
    match outcome {
        Outcome::Worked(result) => match lease.complete(Some(result)).await {
            Ok(_) => {
                tally.completed += 1;
                println!("completed {id} token {token}");
            }
            // Too late: the lease ran out or was taken away while we worked, and the item
            // is someone else's now. Our result must not count.
            Err(e) if e.code() == Some(ProblemCode::LeaseLost) => {
                tally.lost += 1;
                println!("lost {id} token {token}: {e}");
            }
            Err(e) => eprintln!("cannot complete {id}: {e}"),
        },
        Outcome::Lost(reason) => {
            tally.lost += 1;
            println!("lost {id} token {token}: {reason}");
        }
        Outcome::Stopping => match lease.release(&Release::default()).await {
            Ok(_) => {
                tally.released += 1;
                println!("released {id} token {token} (stopping)");
            }
            Err(e) => eprintln!("cannot release {id}: {e}"),
        },
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
