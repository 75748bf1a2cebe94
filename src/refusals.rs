//! Refused requests (a missing or wrong token on an MCP or view server), counted and logged
//! at most once per source per minute, so code in a sandbox that hammers a server cannot
//! flood seer's terminal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The refusals of every server of this process.
pub static REFUSALS: std::sync::LazyLock<Refusals> = std::sync::LazyLock::new(Refusals::default);

/// The peer address of a request served with connect info (else `None`).
pub fn peer(req: &axum::extract::Request) -> Option<IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// How often one source's refusals are logged at most.
const EVERY: Duration = Duration::from_secs(60);

/// A source of refused requests: the server and the peer's address.
type Source = (&'static str, Option<IpAddr>);

/// Refusals per source since the last line logged for it.
#[derive(Debug, Default)]
pub struct Refusals {
    /// When a line was last logged for the source, and how many refusals came since.
    seen: Mutex<HashMap<Source, (Instant, u64)>>,
}

impl Refusals {
    /// Counts one refusal by `server` of a request from `peer`; returns how many refusals
    /// the line to log now stands for (`None`: not yet, one was logged for this source less
    /// than a minute ago).
    pub fn count(&self, server: &'static str, peer: Option<IpAddr>, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().ok()?;
        match seen.get_mut(&(server, peer)) {
            Some((last, n)) if now.duration_since(*last) < EVERY => {
                *n += 1;
                None
            }
            Some((last, n)) => {
                let total = *n + 1;
                *last = now;
                *n = 0;
                Some(total)
            }
            None => {
                seen.insert((server, peer), (now, 0));
                Some(1)
            }
        }
    }

    /// Counts a refusal and logs it when [`Refusals::count`] says so.
    pub fn note(&self, server: &'static str, peer: Option<IpAddr>) {
        if let Some(n) = self.count(server, peer, Instant::now()) {
            let from = peer.map_or_else(|| "an unknown address".to_string(), |p| p.to_string());
            if n == 1 {
                tracing::warn!(
                    "{server}: refused a request from {from} without a valid token (more from there are counted, and logged once a minute)"
                );
            } else {
                tracing::warn!(
                    "{server}: refused {n} requests from {from} without a valid token in the last minute"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_source_per_minute_with_the_count() {
        let r = Refusals::default();
        let t0 = Instant::now();
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        let got: Vec<Option<u64>> = vec![
            r.count("mcp", a, t0),
            r.count("mcp", a, t0 + Duration::from_secs(1)),
            r.count("mcp", a, t0 + Duration::from_secs(59)),
            r.count("mcp", b, t0 + Duration::from_secs(2)),
            r.count("view", a, t0 + Duration::from_secs(2)),
            r.count("mcp", a, t0 + Duration::from_secs(61)),
            r.count("mcp", a, t0 + Duration::from_secs(62)),
        ];
        assert_eq!(got, [Some(1), None, None, Some(1), Some(1), Some(3), None]);
    }
}
