//! Requests refused before their handler, limited per client identity.
//!
//! What counts: every request the checks before a handler refuse (`admit` in [`super`]): no
//! route (`404`), an identity not on the endpoint's access list (`403`), the wrong method
//! (`405`), a malformed request line or header (`400`: no `Host`, a missing or malformed
//! X-Request-ID, two `Authorization`s; `431`; `415` and `501` for codings). Nothing else counts:
//! not a handler's answer (a find body refused, a view's `401` or `404`), not an ACK, not a
//! view. A well-behaved client never meets the limit, and a client past it still has every
//! request it may make answered as before.
//!
//! Each identity (the client certificate's subject, the audit record's `party`) has a token
//! bucket of `limits.refused_burst` tokens, refilled at `limits.refused_per_s`. A refusal that
//! finds a token is answered as before and audited in a record of its own. One that finds none
//! is answered `429` with `Retry-After` (the seconds until the next token), held for that long
//! before it is sent, and has no record of its own: `pdp_requests_limited_total` counts it as it
//! happens, and once per `limits.summary_window_s` the counts of each identity, endpoint and
//! refusal become one aggregate audit record ([`crate::audit::aggregate`]). So one identity adds
//! at most `refused_burst + refused_per_s × t` records in `t` seconds, plus one per endpoint and
//! refusal per window, however fast it sends.
//!
//! Holding the `429` makes a flood cost the client, not the endpoint: a connection that sends
//! one request after another (HTTP/1.1, pipelined or not) gets one answer a second, an HTTP/2
//! connection at most `server.max_concurrent_streams` a second. A held answer is an open request
//! like any other, bounded by the connection and stream limits.
//!
//! Logs: the first `403` and the first `429` of an identity, endpoint and refusal in a window
//! are logged (WARN) at once; the rest of the window's are one WARN line with the counts at its
//! end.
//!
//! Memory: at most `limits.max_identities` identities are tracked (a [`DashMap`], sharded so
//! that identities do not wait on each other), each with its subject, a bucket and one tally
//! per endpoint and refusal seen in the window (at most the audit names times the refusals, a
//! few dozen; about 64 bytes each). An identity whose bucket is full again and whose window
//! was quiet is forgotten at the window's end. When the table is full, identities not in it
//! share one more bucket, whose aggregate records name the party [`OVERFLOW_PARTY`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::respond::ApiError;
use crate::audit::aggregate::Limited;
use crate::config::LimitsConfig;
use crate::store::Store;
use crate::wire::problem::ErrorCode;

/// The party of the aggregate records of identities past `limits.max_identities`.
pub const OVERFLOW_PARTY: &str = "(identities past limits.max_identities)";

/// The outcome of a `429` answered here: such a request has no audit record of its own.
pub const LIMITED: &str = "rate_limited";

/// The refusal outcome that is logged at once, rate or not: an identity refused access.
const FORBIDDEN: &str = "forbidden";

/// The refusals of every client identity: buckets and the window's counts.
#[derive(Debug)]
pub struct Refusals {
    /// Tracked identities, by subject.
    clients: DashMap<Arc<str>, Client>,
    /// The bucket identities share once `clients` is full.
    overflow: Mutex<Client>,
    /// Tokens a second.
    per_s: f64,
    /// Tokens at most.
    burst: f64,
    /// Identities tracked at most.
    max_identities: usize,
    /// How often counts are written and logged.
    window: Duration,
}

/// One identity's bucket and what its window saw.
#[derive(Debug)]
struct Client {
    /// Tokens left at `refilled`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    refilled: Instant,
    /// This window's refusals, by endpoint and refusal (a handful: searched in order).
    tallies: Vec<Tally>,
}

/// One endpoint and refusal of one identity in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tally {
    /// The requests' audit name.
    endpoint: &'static str,
    /// The outcome they had, or would have had under the rate.
    refusal: &'static str,
    /// Answered as refused (each audited on its own).
    answered: u64,
    /// Answered `429`.
    limited: u64,
    /// When the first limited one arrived, µs since the epoch.
    first_limited_at: i64,
    /// When the last limited one arrived, µs since the epoch.
    last_limited_at: i64,
    /// Whether a `403` was logged this window.
    logged_answered: bool,
    /// Whether a `429` was logged this window.
    logged_limited: bool,
}

/// What a window saw of one identity, endpoint and refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The client certificate's subject ([`OVERFLOW_PARTY`] for the shared bucket).
    pub party: Arc<str>,
    /// The requests' audit name.
    pub endpoint: &'static str,
    /// Their refusal outcome.
    pub refusal: &'static str,
    /// Answered as refused, each audited on its own.
    pub answered: u64,
    /// Answered `429`.
    pub limited: u64,
    /// When the first limited one arrived, µs since the epoch.
    pub first_limited_at: i64,
    /// When the last limited one arrived, µs since the epoch.
    pub last_limited_at: i64,
    /// How many were not logged when they happened.
    pub unlogged: u64,
}

/// What to do with one refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it as refused, and audit it; `log`: the first `403` of its window.
    Answer {
        /// Whether to log it.
        log: bool,
    },
    /// Answer `429`; no audit record of its own.
    Limited {
        /// Seconds until the identity's next token.
        retry_after_s: u64,
        /// Whether to log it: the first of its window.
        log: bool,
    },
}

// === impl Refusals ===

impl Refusals {
    /// Empty, with the configured rate.
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            clients: DashMap::new(),
            overflow: Mutex::new(Client::new(f64::from(config.refused_burst), Instant::now())),
            per_s: f64::from(config.refused_per_s),
            burst: f64::from(config.refused_burst),
            max_identities: config.max_identities,
            window: Duration::from_secs(config.summary_window_s),
        }
    }

    /// The answer to one refused request of `party` to `endpoint` (its audit name, `metric` its
    /// family): `refused` itself, or past the rate a `429` (outcome [`LIMITED`]), which the
    /// caller does not audit on its own, given after its `Retry-After`. Counts, logs and meters
    /// it.
    pub async fn answer(
        &self,
        party: &Arc<str>,
        endpoint: &'static str,
        metric: &'static str,
        refused: ApiError,
    ) -> ApiError {
        let refusal = refused.outcome();
        let verdict = self.check(
            party,
            endpoint,
            refusal,
            Instant::now(),
            crate::now_micros(),
        );
        match verdict {
            Verdict::Answer { log } => {
                if log {
                    tracing::warn!(
                        party = %party,
                        endpoint,
                        "client identity not allowed on this endpoint (further refusals this \
                         window are counted and logged at its end)"
                    );
                }
                refused
            }
            Verdict::Limited { retry_after_s, log } => {
                crate::metrics::request_limited(metric);
                if log {
                    tracing::warn!(
                        party = %party,
                        endpoint,
                        refusal,
                        "client identity over its rate of refused requests: answering 429 \
                         (counted, logged at the window's end)"
                    );
                }
                tokio::time::sleep(Duration::from_secs(retry_after_s)).await;
                too_many(retry_after_s)
            }
        }
    }

    /// Takes a token of `party`'s bucket at `now` (`at`: the same instant, µs since the epoch)
    /// and counts the refusal.
    pub fn check(
        &self,
        party: &Arc<str>,
        endpoint: &'static str,
        refusal: &'static str,
        now: Instant,
        at: i64,
    ) -> Verdict {
        let (per_s, burst) = (self.per_s, self.burst);
        let count = |c: &mut Client| {
            let taken = c.take(now, per_s, burst);
            let tally = c.tally(endpoint, refusal);
            match taken {
                Ok(()) => {
                    tally.answered += 1;
                    let log = refusal == FORBIDDEN && !tally.logged_answered;
                    tally.logged_answered |= log;
                    Verdict::Answer { log }
                }
                Err(retry_after_s) => {
                    if tally.limited == 0 {
                        tally.first_limited_at = at;
                    }
                    tally.limited += 1;
                    tally.last_limited_at = at;
                    let log = !tally.logged_limited;
                    tally.logged_limited = true;
                    Verdict::Limited { retry_after_s, log }
                }
            }
        };
        if let Some(mut c) = self.clients.get_mut(party) {
            return count(&mut c);
        }
        if self.clients.len() < self.max_identities {
            let mut c = self
                .clients
                .entry(party.clone())
                .or_insert_with(|| Client::new(burst, now));
            return count(&mut c);
        }
        count(&mut self.overflow.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Ends a window at `now`: returns what it saw, and forgets identities whose bucket is full
    /// again and whose window was quiet.
    pub fn drain(&self, now: Instant) -> Vec<Summary> {
        let (per_s, burst) = (self.per_s, self.burst);
        let mut out = Vec::new();
        self.clients.retain(|party, c| {
            let seen = !c.tallies.is_empty();
            out.extend(c.tallies.drain(..).map(|t| t.summary(party)));
            c.refill(now, per_s, burst);
            seen || c.tokens < burst
        });
        let overflow = Arc::<str>::from(OVERFLOW_PARTY);
        let mut shared = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(shared.tallies.drain(..).map(|t| t.summary(&overflow)));
        out
    }

    /// Identities tracked now.
    pub fn tracked(&self) -> usize {
        self.clients.len()
    }

    /// Writes and logs what the window saw: an aggregate audit record for each identity,
    /// endpoint and refusal with limited requests, a WARN line for those not logged yet.
    pub fn flush(&self, store: &Store) {
        for s in self.drain(Instant::now()) {
            if s.limited > 0 {
                store.audit(
                    Limited {
                        party: &s.party,
                        endpoint: s.endpoint,
                        refusal: s.refusal,
                        count: s.limited,
                        first_at: s.first_limited_at,
                        last_at: s.last_limited_at,
                    }
                    .record(),
                );
            }
            if s.unlogged > 0 {
                tracing::warn!(
                    party = %s.party,
                    endpoint = s.endpoint,
                    refusal = s.refusal,
                    answered = s.answered,
                    limited = s.limited,
                    window_s = self.window.as_secs(),
                    "refused requests of one client identity in the last window"
                );
            }
        }
    }

    /// Flushes every window until `shutdown`, and once more then: run it on the listener's task
    /// tracker, so that the store is closed after it.
    pub async fn run(app: Arc<super::App>, shutdown: CancellationToken) {
        let refusals = &app.limits.refusals;
        let mut tick = tokio::time::interval(refusals.window);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => refusals.flush(&app.store),
                () = shutdown.cancelled() => break,
            }
        }
        refusals.flush(&app.store);
    }
}

/// The `429` for a limited request.
fn too_many(retry_after_s: u64) -> ApiError {
    ApiError {
        retry_after_s: Some(retry_after_s),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            "too many refused requests from this client certificate; see Retry-After",
        )
    }
}

// === impl Client ===

impl Client {
    fn new(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            refilled: now,
            tallies: Vec::new(),
        }
    }

    /// Brings the tokens up to `now`.
    fn refill(&mut self, now: Instant, per_s: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_s).min(burst);
        self.refilled = self.refilled.max(now);
    }

    /// Takes a token, or says in how many seconds the next one comes.
    fn take(&mut self, now: Instant, per_s: f64, burst: f64) -> Result<(), u64> {
        self.refill(now, per_s, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / per_s).ceil() as u64).max(1))
        }
    }

    /// The window's tally of `endpoint` and `refusal`, new if need be.
    fn tally(&mut self, endpoint: &'static str, refusal: &'static str) -> &mut Tally {
        let i = match self
            .tallies
            .iter()
            .position(|t| t.endpoint == endpoint && t.refusal == refusal)
        {
            Some(i) => i,
            None => {
                self.tallies.push(Tally::new(endpoint, refusal));
                self.tallies.len() - 1
            }
        };
        &mut self.tallies[i]
    }
}

// === impl Tally ===

impl Tally {
    fn new(endpoint: &'static str, refusal: &'static str) -> Self {
        Self {
            endpoint,
            refusal,
            answered: 0,
            limited: 0,
            first_limited_at: 0,
            last_limited_at: 0,
            logged_answered: false,
            logged_limited: false,
        }
    }

    fn summary(self, party: &Arc<str>) -> Summary {
        // Answered refusals other than `403` were never logged one by one: only the limited
        // ones and the `403`s need the window's line.
        let answered_unlogged = if self.refusal == FORBIDDEN {
            self.answered - u64::from(self.logged_answered)
        } else {
            0
        };
        let limited_unlogged = self.limited - u64::from(self.logged_limited);
        Summary {
            party: party.clone(),
            endpoint: self.endpoint,
            refusal: self.refusal,
            answered: self.answered,
            limited: self.limited,
            first_limited_at: self.first_limited_at,
            last_limited_at: self.last_limited_at,
            unlogged: answered_unlogged + limited_unlogged,
        }
    }
}

#[cfg(test)]
mod tests;
