//! Completion latency and fault injection, through the CAS simulator's control listener.
//!
//! A followed find is one the endpoint ACKed and should register PeIs for. A single poller asks
//! `GET {control}/__sim/registrations?since=N` every 100 ms while any followed find is pending
//! (only the registrations made since its last answer, starting where the log ended when the
//! phase began: a poll costs what happened in 100 ms, not everything registered so far, which
//! had stalled the endpoint sharing the machine), and
//! records, for each registration whose `inbound_request_id` is a pending find's X-Request-ID,
//! the time from the ACK to the poll answer that first showed it (so figures are upper bounds,
//! by at most one poll). A registration seen before its find reached the poller (the `202` was
//! still on its way to the load tool) is kept for [`GIVE_UP`] and counts from its ACK when the
//! find arrives. A find not seen within 60 s of its ACK counts as missed: `not registered
//! within 60 s` when the poll that judged it answered, or the poll's own failure (`CAS control
//! unreachable`, …) when it did not, since then nobody knows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::failure::{self, Failures};
use super::histogram::{Series, SeriesKind};
use super::LoadError;
use pdp_sim::cas::Faults;

/// How often the poller asks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// A followed find not registered within this of its ACK is missed (CoCo2.1.2).
pub const GIVE_UP: Duration = Duration::from_secs(60);
/// Time-out of one control call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A followed find: its X-Request-ID and when it was ACKed.
#[derive(Debug, Clone)]
pub struct Followed {
    /// The X-Request-ID.
    pub request_id: String,
    /// When the `202` arrived.
    pub acked_at: Instant,
}

/// What the poller measured.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Completion latencies and misses.
    pub series: Series,
    /// Polls that failed (the control listener did not answer, or not with JSON).
    pub poll_errors: u64,
    /// The missed ones by reason ([`failure`]); they add up to `series.missed`.
    pub failures: Failures,
}

/// The registrations made after a cursor, and the cursor to ask from next.
#[derive(Deserialize)]
struct Since {
    registrations: Vec<Registration>,
    next: usize,
}

#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    name: String,
    #[serde(default)]
    inbound_request_id: String,
}

/// The CAS simulator's control listener.
#[derive(Clone)]
pub struct Control {
    client: reqwest::Client,
    base: String,
}

// === impl Control ===

impl Control {
    /// A client of the control listener at `base` (e.g. `http://127.0.0.1:8445`).
    pub fn new(base: &str) -> Result<Self, LoadError> {
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| LoadError::Client(e.to_string()))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// `GET /__sim/registrations` with `query`, its JSON answer.
    async fn get<T: serde::de::DeserializeOwned>(&self, query: &str) -> Result<T, reqwest::Error> {
        self.client
            .get(format!("{}/__sim/registrations{query}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    /// The registrations made after the first `since`, in order, and the next cursor.
    async fn registrations_since(&self, since: usize) -> Result<Since, reqwest::Error> {
        self.get(&format!("?since={since}")).await
    }

    /// The names (PeIs) registered so far.
    pub async fn registered_peis(&self) -> Result<HashSet<String>, LoadError> {
        let regs: Vec<Registration> = self.get("").await.map_err(|e| self.error(e))?;
        Ok(regs.into_iter().map(|r| r.name).collect())
    }

    /// Injects `faults` (`POST /__sim/faults`).
    pub async fn set_faults(&self, faults: &Faults) -> Result<(), LoadError> {
        self.client
            .post(format!("{}/__sim/faults", self.base))
            .json(faults)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Clears faults (`DELETE /__sim/faults`).
    pub async fn clear_faults(&self) -> Result<(), LoadError> {
        self.client
            .delete(format!("{}/__sim/faults", self.base))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    fn error(&self, e: reqwest::Error) -> LoadError {
        LoadError::Control {
            url: self.base.clone(),
            reason: e.without_url().to_string(),
        }
    }

    /// Starts the poller, reading on from the registrations made so far (those of earlier runs
    /// are never fetched); send it followed finds, then drop the sender and await the handle.
    /// It ends when the sender is dropped and nothing is pending, or at `cancel` (what is
    /// pending then counts as missed).
    pub async fn spawn_poller(
        &self,
        cancel: CancellationToken,
    ) -> (
        mpsc::UnboundedSender<Followed>,
        tokio::task::JoinHandle<Completion>,
    ) {
        // Where the log ends now; from the start when the control listener does not say.
        let read = self
            .registrations_since(usize::MAX)
            .await
            .map_or(0, |s| s.next);
        let (tx, rx) = mpsc::unbounded_channel();
        let control = self.clone();
        (tx, tokio::spawn(control.poll(rx, read, cancel)))
    }

    async fn poll(
        self,
        mut rx: mpsc::UnboundedReceiver<Followed>,
        mut read: usize,
        cancel: CancellationToken,
    ) -> Completion {
        let mut series = Series::new(SeriesKind::Completion);
        let mut failures = Failures::new();
        let mut poll_errors = 0;
        let mut pending: HashMap<String, Instant> = HashMap::new();
        // Registrations whose find had not reached the poller yet, oldest first for expiry.
        let mut early: HashMap<String, Instant> = HashMap::new();
        let mut early_order: VecDeque<(Instant, String)> = VecDeque::new();
        let mut open = true;
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => {
                    series.missed += pending.len() as u64;
                    failures.add_n(failure::INTERRUPTED, pending.len() as u64);
                    break;
                }
            }
            while open {
                match rx.try_recv() {
                    Ok(f) => match early.remove(&f.request_id) {
                        Some(seen) => series.record(seen.saturating_duration_since(f.acked_at)),
                        None => {
                            pending.insert(f.request_id, f.acked_at);
                        }
                    },
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            if pending.is_empty() {
                if open {
                    continue;
                }
                break;
            }
            // Why this poll failed; `None` when it answered.
            let poll_failed = match self.registrations_since(read).await {
                Ok(page) => {
                    let now = Instant::now();
                    read = page.next;
                    for r in page.registrations {
                        match pending.remove(&r.inbound_request_id) {
                            Some(acked_at) => {
                                series.record(now.saturating_duration_since(acked_at))
                            }
                            None => {
                                if !early.contains_key(&r.inbound_request_id) {
                                    early.insert(r.inbound_request_id.clone(), now);
                                    early_order.push_back((now, r.inbound_request_id));
                                }
                            }
                        }
                    }
                    None
                }
                Err(e) => {
                    poll_errors += 1;
                    Some(failure::control(&e))
                }
            };
            let now = Instant::now();
            while let Some((seen, _)) = early_order.front() {
                if now.saturating_duration_since(*seen) <= GIVE_UP {
                    break;
                }
                if let Some((_, id)) = early_order.pop_front() {
                    early.remove(&id);
                }
            }
            pending.retain(|_, acked_at| {
                let live = now.saturating_duration_since(*acked_at) <= GIVE_UP;
                if !live {
                    series.missed += 1;
                    failures.add(poll_failed.as_deref().unwrap_or(failure::NOT_REGISTERED));
                }
                live
            });
        }
        Completion {
            series,
            poll_errors,
            failures,
        }
    }
}

#[cfg(test)]
mod tests;
