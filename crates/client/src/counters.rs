//! Counters: draw sequence numbers (per day in a time zone, or without periods), and read
//! the last one issued.

use reqwest::Method;

use super::transport::Call;
use super::{Client, CounterDraw, CounterPeriod, CounterValue, Error, Next, json_call, path};

impl Client {
    /// `POST /v1/counters/{name}/next`: `count` contiguous values (and ids, with a
    /// `format`), starting at 1 in each period.
    pub async fn next_counter(&self, name: &str, next: &Next) -> Result<CounterDraw, Error> {
        let call = json_call(
            Method::POST,
            path(&["v1", "counters", name, "next"], &[]),
            next,
        )?;
        self.call(call).await
    }

    /// `GET /v1/counters/{name}`: the last value issued in `period` (0 if none).
    pub async fn get_counter(
        &self,
        name: &str,
        period: &CounterPeriod,
    ) -> Result<CounterValue, Error> {
        let query = match period {
            CounterPeriod::Today(None) => Vec::new(),
            CounterPeriod::Today(Some(tz)) => vec![("tz", tz.clone())],
            CounterPeriod::Date(date) => vec![("period", date.clone())],
            CounterPeriod::Whole => vec![("period", "none".to_owned())],
        };
        self.call(Call::new(
            Method::GET,
            path(&["v1", "counters", name], &query),
        ))
        .await
    }
}
