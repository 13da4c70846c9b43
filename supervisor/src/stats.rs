//! Counters for the `stats` op: totals per function and outcome, and
//! latency percentiles over the most recent invocations.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

const SAMPLES: usize = 4096;

/// Daemon-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    totals: BTreeMap<String, BTreeMap<&'static str, u64>>,
    outcomes: BTreeMap<&'static str, u64>,
    pub rejected_busy: u64,
    /// Request → response milliseconds of recent invocations.
    latencies: VecDeque<f64>,
}

impl Stats {
    /// Count one finished invocation.
    pub fn record(&mut self, function: &str, status: &'static str, latency_ms: f64) {
        *self
            .totals
            .entry(function.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
        *self.outcomes.entry(status).or_default() += 1;
        if self.latencies.len() == SAMPLES {
            self.latencies.pop_front();
        }
        self.latencies.push_back(latency_ms);
    }

    /// The median of recent latencies (for busy retry hints).
    pub fn median_ms(&self) -> Option<f64> {
        percentiles(&self.latencies, &[0.5]).map(|v| v[0])
    }

    /// The `stats` result (without in_flight/queued, which the loop adds).
    pub fn to_json(&self) -> Value {
        let lat = match percentiles(&self.latencies, &[0.5, 0.9, 0.99]) {
            Some(p) => {
                json!({ "count": self.latencies.len(), "p50": p[0], "p90": p[1], "p99": p[2] })
            }
            None => json!({ "count": 0, "p50": null, "p90": null, "p99": null }),
        };
        json!({
            "totals": self.totals,
            "outcomes": self.outcomes,
            "rejected_busy": self.rejected_busy,
            "latency_ms": lat,
        })
    }
}

fn percentiles(samples: &VecDeque<f64>, qs: &[f64]) -> Option<Vec<f64>> {
    if samples.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = samples.iter().copied().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    Some(
        qs.iter()
            .map(|q| {
                let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
                (v[i] * 1000.0).round() / 1000.0
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_percentiles_and_totals() {
        let mut s = Stats::default();
        for i in 1..=100 {
            s.record(
                "f",
                if i % 10 == 0 { "timeout" } else { "exited" },
                i as f64,
            );
        }
        let j = s.to_json();
        assert_eq!(j["totals"]["f"]["exited"], 90);
        assert_eq!(j["outcomes"]["timeout"], 10);
        assert_eq!(j["latency_ms"]["p50"], 50.0);
        assert_eq!(j["latency_ms"]["p99"], 99.0);
        assert_eq!(s.median_ms(), Some(50.0));
    }

    #[test]
    fn stats_empty_has_null_percentiles() {
        assert!(Stats::default().to_json()["latency_ms"]["p50"].is_null());
    }
}
