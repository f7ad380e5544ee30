//! The phases: open loop on a fixed schedule, closed loop back to back, and the collector that
//! turns answers into series, per-second figures and the live progress line.
//!
//! Open loop: request `i` is due at `start + i / rate` ([`super::pacing`]); its latency runs
//! from when it was *due*, not when it was sent, so a stall on either side shows in the figures
//! instead of silently lowering the offered rate (coordinated omission). At most
//! `max_in_flight` requests await answers; a request due past that is dropped by the client
//! and counted, never queued. Closed loop: `concurrency` tasks each send the next request when
//! the last is answered, each on a connection of its own ([`super::client`]); the achieved rate
//! is the throughput the endpoint sustains.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{Connector, Slot};
use super::completion::{Completion, Control, Followed};
use super::failure::{self, Failures, Outcome, Transport};
use super::histogram::{Series, SeriesKind, Timeline};
use super::mix::{Pick, Picker};
use super::pacing;
use super::request::{self, FindRequest, Finds};
use super::scenario::Mode;
use super::views::Views;
use pdp_provider::members::record::MemberRecord;

/// What every phase of a run shares.
pub struct Ctx {
    /// Open loop: one client per connection pool, used in turn.
    pub clients: Vec<reqwest::Client>,
    /// Closed loop: opens each task's own connection.
    pub connector: Connector,
    /// `{target}/find-requests`.
    pub url: String,
    /// The members finds are derived from.
    pub members: Arc<Vec<MemberRecord>>,
    /// Their find data, rendered once.
    pub finds: Finds,
    /// The mix, shared by the phases so a member's first yes find is known across them.
    pub picker: Mutex<Picker>,
    /// The CAS simulator's control listener, when completion is followed.
    pub control: Option<Control>,
    /// No progress lines.
    pub quiet: bool,
    /// Stops sending (Ctrl-C); the report is still written.
    pub cancel: CancellationToken,
    /// When the run started (per-second figures count from here).
    pub run_start: Instant,
}

/// One phase to run.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// `main` or `recovery`.
    pub name: String,
    /// Open or closed loop.
    pub mode: Mode,
    /// Finds/s (open loop).
    pub rate: f64,
    /// Length.
    pub duration: Duration,
    /// Closed-loop tasks.
    pub concurrency: usize,
    /// Open-loop in-flight bound.
    pub max_in_flight: usize,
    /// `503`s are shed, not errors.
    pub expect_shedding: bool,
    /// Error threshold.
    pub max_error_rate: f64,
    /// Follow completion of sampled finds.
    pub follow: bool,
}

/// Closed loop: answers a task hands the collector at once, at most.
const BATCH: usize = 64;

/// Closed loop: how long a task keeps answers before handing them over, at most.
const FLUSH: Duration = Duration::from_millis(100);

enum Event {
    /// Closed loop: a task's answers since its last batch (one hand-over, one wake-up of the
    /// collector, instead of one per answer).
    Batch(Vec<Event>),
    Done {
        second: usize,
        latency: Duration,
        outcome: Outcome,
        answered_at: Instant,
        follow: Option<String>,
    },
    Dropped {
        second: usize,
    },
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// What it ran.
    pub spec: PhaseSpec,
    /// Seconds from the run's start to the phase's.
    pub start_s: f64,
    /// From the phase's start to its last answer.
    pub elapsed: Duration,
    /// Requests due (open loop) or started (closed loop), dropped ones included.
    pub attempted: u64,
    /// Requests sent.
    pub sent: u64,
    /// `202`s.
    pub acked: u64,
    /// `503`s when shedding is expected.
    pub shed: u64,
    /// Every status other than `202`, by code (`503`s included, shed or not).
    pub statuses: BTreeMap<u16, u64>,
    /// Requests with no answer, by cause.
    pub transport: BTreeMap<Transport, u64>,
    /// Requests due while `max_in_flight` were awaiting answers: not sent.
    pub dropped: u64,
    /// ACK latencies (`202`s only).
    pub ack: Series,
    /// Completion latencies, when followed.
    pub completion: Option<Completion>,
    /// The view phase's latencies and failures (after the last phase of a run with
    /// `view_rate`).
    pub views: Option<Views>,
    /// Per-second figures.
    pub timeline: Timeline,
    /// Stopped early (Ctrl-C).
    pub interrupted: bool,
}

// === impl PhaseResult ===

impl PhaseResult {
    /// Errors: non-`202` statuses (`503` excluded when shedding is expected), requests with no
    /// answer, and requests dropped by the client.
    pub fn errors(&self) -> u64 {
        count_errors(
            &self.statuses,
            &self.transport,
            self.dropped,
            self.spec.expect_shedding,
        )
    }

    /// Every failed find by reason: each status counted as an error, each request with no
    /// answer, each dropped by the client. Their total is [`Self::errors`].
    pub fn find_failures(&self) -> Failures {
        let mut f = Failures::new();
        for (code, n) in &self.statuses {
            if let Some(reason) = failure::find_status(*code, self.spec.expect_shedding) {
                f.add_n(reason, *n);
            }
        }
        for (t, n) in &self.transport {
            f.add_n(t.reason(), *n);
        }
        f.add_n(failure::DROPPED, self.dropped);
        f
    }

    /// `202`s per second over the phase.
    pub fn achieved_rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.acked as f64 / s
        } else {
            0.0
        }
    }
}

/// Non-`202` statuses (`503` excluded when shedding is expected), plus requests with no answer
/// and requests dropped by the client.
pub fn count_errors(
    statuses: &BTreeMap<u16, u64>,
    transport: &BTreeMap<Transport, u64>,
    dropped: u64,
    expect_shedding: bool,
) -> u64 {
    let statuses: u64 = statuses
        .iter()
        .filter(|(code, _)| !(expect_shedding && **code == 503))
        .map(|(_, n)| n)
        .sum();
    statuses + transport.values().sum::<u64>() + dropped
}

/// Sends one find request; the answer's body is read so the connection is reused.
async fn send(client: &reqwest::Client, url: &str, request_id: &str, body: Vec<u8>) -> Outcome {
    let sent = client
        .post(url)
        .header("X-Request-ID", request_id)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            Outcome::Status(status)
        }
        Err(e) => Outcome::Transport(Transport::of_reqwest(&e)),
    }
}

/// The request of a pick: a fresh `X-Request-ID` and user `sub` each time.
fn build<R: rand::RngCore>(
    builder: &mut request::Builder<R>,
    finds: &Finds,
    pick: Pick,
) -> FindRequest {
    builder.build(
        finds,
        pick.member,
        pick.kind,
        chrono::Utc::now().timestamp(),
    )
}

impl Ctx {
    fn next_pick(&self) -> Pick {
        self.picker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_pick()
    }
}

/// Runs one phase to its end: sending, then waiting for every answer and followed completion.
pub async fn run_phase(ctx: &Arc<Ctx>, spec: PhaseSpec) -> PhaseResult {
    let start = Instant::now() + Duration::from_millis(5);
    let start_s = start.saturating_duration_since(ctx.run_start).as_secs_f64();
    let sent = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let (follow_tx, poller) = match (&ctx.control, spec.follow) {
        (Some(c), true) => {
            let (t, h) = c.spawn_poller(ctx.cancel.clone()).await;
            (Some(t), Some(h))
        }
        _ => (None, None),
    };
    let collector = tokio::spawn(collect(
        rx,
        spec.clone(),
        start,
        sent.clone(),
        follow_tx,
        ctx.quiet,
    ));
    let interrupted = match spec.mode {
        Mode::Open => open_loop(ctx, &spec, start, &sent, tx).await,
        Mode::Closed => closed_loop(ctx, &spec, start, &sent, tx).await,
    };
    // Every sender is gone once the last request is answered.
    let collected = collector.await.unwrap_or_else(|_| Collected::new());
    let elapsed = collected
        .last_answer
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
    let completion = match poller {
        Some(h) => h.await.ok(),
        None => None,
    };
    let attempted = sent.load(Ordering::Relaxed) + collected.dropped;
    PhaseResult {
        spec,
        start_s,
        elapsed,
        attempted,
        sent: sent.load(Ordering::Relaxed),
        acked: collected.acked,
        shed: collected.shed,
        statuses: collected.statuses,
        transport: collected.transport,
        dropped: collected.dropped,
        ack: collected.ack,
        completion,
        views: None,
        timeline: collected.timeline,
        interrupted: interrupted || ctx.cancel.is_cancelled(),
    }
}

/// Sends on the schedule; returns whether it was interrupted.
async fn open_loop(
    ctx: &Arc<Ctx>,
    spec: &PhaseSpec,
    start: Instant,
    sent: &Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Event>,
) -> bool {
    let total = pacing::count(spec.rate, spec.duration);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let n = ctx.clients.len().max(1);
    for i in 0..total {
        let offset = pacing::offset(i, spec.rate);
        let due = start + offset;
        if due > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = ctx.cancel.cancelled() => return true,
            }
        } else if ctx.cancel.is_cancelled() {
            return true;
        }
        let second = pacing::second_of(offset);
        let pick = ctx.next_pick();
        if in_flight.load(Ordering::Relaxed) >= spec.max_in_flight {
            let _ = tx.send(Event::Dropped { second });
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        sent.fetch_add(1, Ordering::Relaxed);
        let client = ctx.clients[(i % n as u64) as usize].clone();
        let (ctx, tx, in_flight, follow) =
            (ctx.clone(), tx.clone(), in_flight.clone(), spec.follow);
        tokio::spawn(async move {
            let FindRequest { request_id, body } = build(
                &mut request::Builder::new(rand::thread_rng()),
                &ctx.finds,
                pick,
            );
            let outcome = send(&client, &ctx.url, request_id.as_str(), body).await;
            let answered_at = Instant::now();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Event::Done {
                second,
                latency: answered_at.saturating_duration_since(due),
                outcome,
                answered_at,
                follow: (follow && pick.follow).then(|| request_id.as_str().to_owned()),
            });
        });
    }
    false
}

/// Sends back to back from `concurrency` tasks until the phase ends; returns whether it was
/// interrupted.
///
/// The tasks are spread over one thread per CPU, each running a single-threaded runtime of its
/// own (as `oha` does): a task, its connection and its timer stay on one thread, a thread
/// handles the answers that arrived together in one go, and no worker is woken to steal work.
/// Against nginx's static answer on a 2-CPU machine this sustained a fifth more (median of six
/// alternating runs) than the same tasks on the shared work-stealing runtime, for the same
/// instructions per request. The answers reach the collector, on the caller's runtime, in
/// batches.
async fn closed_loop(
    ctx: &Arc<Ctx>,
    spec: &PhaseSpec,
    start: Instant,
    sent: &Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Event>,
) -> bool {
    tokio::time::sleep_until(start).await;
    let deadline = start + spec.duration;
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, spec.concurrency.max(1));
    // Tasks that found no thread to run on run here instead.
    let mut here = tokio::task::JoinSet::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut running = 0;
    for t in 0..threads {
        let n = spec.concurrency / threads + usize::from(t < spec.concurrency % threads);
        let task = || {
            closed_task(
                ctx.clone(),
                start,
                deadline,
                sent.clone(),
                tx.clone(),
                spec.follow,
            )
        };
        let tasks: Vec<_> = (0..n).map(|_| task()).collect();
        let done_tx = done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let unrun = match rt {
                    Ok(rt) => {
                        rt.block_on(async {
                            let mut set = tokio::task::JoinSet::new();
                            for task in tasks {
                                set.spawn(task);
                            }
                            while set.join_next().await.is_some() {}
                        });
                        Vec::new()
                    }
                    Err(e) => {
                        eprintln!("warning: load thread {t} has no runtime ({e}): its tasks run on the main one");
                        tasks
                    }
                };
                let _ = done_tx.send(unrun);
            });
        match spawned {
            Ok(_) => running += 1,
            Err(e) => {
                eprintln!(
                    "warning: load thread {t} not started ({e}): its tasks run on the main runtime"
                );
                for _ in 0..n {
                    here.spawn(task());
                }
            }
        }
    }
    drop((tx, done_tx));
    while running > 0 {
        let Some(unrun) = done_rx.recv().await else {
            break;
        };
        running -= 1;
        for task in unrun {
            here.spawn(task);
        }
    }
    while here.join_next().await.is_some() {}
    ctx.cancel.is_cancelled()
}

/// One closed-loop task: the next request as soon as the last is answered, on a connection of
/// its own, until `deadline`.
async fn closed_task(
    ctx: Arc<Ctx>,
    start: Instant,
    deadline: Instant,
    sent: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Event>,
    follow: bool,
) {
    let mut slot = Slot::new();
    let mut builder = request::Builder::new(rand::rngs::StdRng::from_entropy());
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushed = Instant::now();
    while Instant::now() < deadline && !ctx.cancel.is_cancelled() {
        let pick = ctx.next_pick();
        let FindRequest { request_id, body } = build(&mut builder, &ctx.finds, pick);
        let at = Instant::now();
        sent.fetch_add(1, Ordering::Relaxed);
        let outcome = slot.send(&ctx.connector, request_id.as_str(), body).await;
        let answered_at = Instant::now();
        batch.push(Event::Done {
            second: pacing::second_of(at.saturating_duration_since(start)),
            latency: answered_at.saturating_duration_since(at),
            outcome,
            answered_at,
            follow: (follow && pick.follow).then(|| request_id.as_str().to_owned()),
        });
        if batch.len() >= BATCH || answered_at.saturating_duration_since(flushed) >= FLUSH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let _ = tx.send(Event::Batch(full));
            flushed = answered_at;
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Event::Batch(batch));
    }
}

struct Collected {
    acked: u64,
    shed: u64,
    dropped: u64,
    statuses: BTreeMap<u16, u64>,
    transport: BTreeMap<Transport, u64>,
    ack: Series,
    timeline: Timeline,
    last_answer: Option<Instant>,
}

impl Collected {
    fn new() -> Self {
        Self {
            acked: 0,
            shed: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            transport: BTreeMap::new(),
            ack: Series::new(SeriesKind::Ack),
            timeline: Timeline::default(),
            last_answer: None,
        }
    }

    /// Counts one answer (or a drop); `answered` counts answers for the progress line.
    fn record(
        &mut self,
        ev: Event,
        spec: &PhaseSpec,
        follow: Option<&mpsc::UnboundedSender<Followed>>,
        answered: &mut u64,
    ) {
        let c = self;
        match ev {
            Event::Batch(evs) => {
                for ev in evs {
                    c.record(ev, spec, follow, answered);
                }
            }
            Event::Dropped { second } => {
                c.dropped += 1;
                let s = c.timeline.at(second);
                s.sent += 1;
                s.errors += 1;
            }
            Event::Done {
                second,
                latency,
                outcome,
                answered_at,
                follow: f,
            } => {
                *answered += 1;
                c.last_answer = Some(c.last_answer.map_or(answered_at, |t| t.max(answered_at)));
                let s = c.timeline.at(second);
                s.sent += 1;
                match outcome {
                    Outcome::Status(202) => {
                        c.acked += 1;
                        c.ack.record(latency);
                        s.acked += 1;
                        s.hist
                            .saturating_record(super::histogram::duration_micros(latency));
                        if let (Some(tx), Some(request_id)) = (follow, f) {
                            let _ = tx.send(Followed {
                                request_id,
                                acked_at: answered_at,
                            });
                        }
                    }
                    Outcome::Status(code) => {
                        *c.statuses.entry(code).or_default() += 1;
                        if spec.expect_shedding && code == 503 {
                            c.shed += 1;
                            s.shed += 1;
                        } else {
                            s.errors += 1;
                        }
                    }
                    Outcome::Transport(t) => {
                        *c.transport.entry(t).or_default() += 1;
                        s.errors += 1;
                    }
                }
            }
        }
    }

    fn errors(&self, expect_shedding: bool) -> u64 {
        count_errors(
            &self.statuses,
            &self.transport,
            self.dropped,
            expect_shedding,
        )
    }
}

/// Receives every answer until all senders are gone; prints progress once a second.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<Event>,
    spec: PhaseSpec,
    start: Instant,
    sent: Arc<AtomicU64>,
    follow: Option<mpsc::UnboundedSender<Followed>>,
    quiet: bool,
) -> Collected {
    let mut c = Collected::new();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut answered_last = 0u64;
    let mut answered = 0u64;
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                c.record(ev, &spec, follow.as_ref(), &mut answered);
            }
            _ = tick.tick() => {
                if !quiet {
                    let t = Instant::now().saturating_duration_since(start).as_secs_f64();
                    let p99 = c.ack.at_percentile(99.0).as_secs_f64() * 1000.0;
                    eprintln!(
                        "[{}] {t:5.0}s  sent {}  acked {}  errors {}  shed {}  dropped {}  rate {}/s  ack p99 {p99:.1} ms",
                        spec.name,
                        sent.load(Ordering::Relaxed),
                        c.acked,
                        c.errors(spec.expect_shedding),
                        c.shed,
                        c.dropped,
                        answered - answered_last,
                    );
                }
                answered_last = answered;
            }
        }
    }
    c
}
