//! Per-firm daily case IDs (`CASE-20260110-00001`): each firm draws from its own counter,
//! numbered from 1 each day in the firm's time zone (the day decided by Redis's clock),
//! never twice — here with all the draws of a firm made at once, as when its staff press
//! "New case" together.
//!
//! ```sh
//! cargo run -p leasehold-client --example case_ids -- --url http://127.0.0.1:8080 \
//!     --firm acme:Europe/Paris --firm globex:America/New_York --count 5
//! ```
//!
//! It prints `<firm> <id>` lines, in order. Against `leasehold dev` every firm shares the
//! anonymous tenant, so each gets a counter of its own name (`cases-<firm>`); with an API
//! key per firm (a tenant each), one counter name would do, numbered apart per tenant.

use std::process::ExitCode;

use clap::Parser;
use leasehold_client::{Client, Next};

/// Draw case IDs for a few firms.
#[derive(Debug, Parser)]
struct Args {
    /// The deployment's base URL.
    #[arg(long, env = "LEASEHOLD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (`leasehold dev` needs none).
    #[arg(long, env = "LEASEHOLD_KEY")]
    key: Option<String>,
    /// A firm and its IANA time zone, `name:zone`; repeat for more.
    #[arg(long = "firm", default_values_t = ["acme:Europe/Paris".to_owned(), "globex:America/New_York".to_owned()])]
    firms: Vec<String>,
    /// How many IDs each firm draws.
    #[arg(long, default_value_t = 3)]
    count: usize,
    /// How IDs look: `{date}` is the day as YYYYMMDD, `{seq:05}` the number, zero-padded.
    #[arg(long, default_value = "CASE-{date}-{seq:05}")]
    format: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = match Client::builder(&args.url).api_key(args.key.clone()).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("case_ids: {e}");
            return ExitCode::FAILURE;
        }
    };
    for firm in &args.firms {
        let (name, tz) = firm.split_once(':').unwrap_or((firm.as_str(), "UTC"));
        let next = Next {
            tz: Some(tz.to_owned()),
            format: Some(args.format.clone()),
            ..Next::default()
        };
        let counter = format!("cases-{name}");
        // One draw per "New case" press, all at once: each gets its own number.
        let draws = futures::future::join_all(
            (0..args.count).map(|_| client.next_counter(&counter, &next)),
        )
        .await;
        let mut ids = Vec::with_capacity(args.count);
        for draw in draws {
            match draw {
                Ok(draw) => ids.extend(draw.values.into_iter().zip(draw.ids)),
                Err(e) => {
                    eprintln!("case_ids: {name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        ids.sort();
        for (_, id) in ids {
            println!("{name} {id}");
        }
    }
    ExitCode::SUCCESS
}
