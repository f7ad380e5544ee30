//! Capped exponential backoff with full jitter, bounded by a deadline.
//!
//! Retryable failures (429, 5xx, connection errors, and 409 on registration) are tried again
//! after `rand(0, min(cap, base * 2^n))`, or after `Retry-After` when the server sent one, as
//! long as the deadline allows; every attempt is a new call with a new X-Request-ID. A final
//! failure is returned at once. One loop, [`retry`], serves every outbound call: the CAS calls
//! of the pipeline and operator commands ([`with_retries`]: when the deadline would pass, the
//! last error becomes [`CasError::BudgetSpent`]) and PDP reporting (which keeps the last answer
//! of a part left for a later run).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::CasError;

/// Backoff settings.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay bound.
    pub base: Duration,
    /// Largest delay bound.
    pub cap: Duration,
}

// === impl Backoff ===

impl Backoff {
    /// The delay bound before attempt `n` (0-based retries).
    pub fn bound(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A jittered delay before retry `n`.
    pub fn delay(&self, n: u32) -> Duration {
        let bound = self.bound(n).as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=bound))
    }
}

/// An error a retry loop can judge: whether calling again may succeed, and how long the server
/// asked to wait before it (`Retry-After`), if it did.
pub trait Retryable {
    /// Whether a new call may succeed.
    fn is_retryable(&self) -> bool;

    /// The wait the answer asked for, instead of the backoff's.
    fn wait(&self) -> Option<Duration> {
        None
    }
}

impl Retryable for CasError {
    fn is_retryable(&self) -> bool {
        CasError::is_retryable(self)
    }

    fn wait(&self) -> Option<Duration> {
        match self {
            CasError::Unavailable { retry_after, .. } => *retry_after,
            // Registration's 409: the resource exists under another X-Request-ID; a new one
            // goes at once.
            CasError::Conflict => Some(Duration::ZERO),
            _ => None,
        }
    }
}

/// How a retried call ended without success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp<E> {
    /// A failure that calling again cannot mend.
    Final(E),
    /// The deadline left no time for another call: the last failure.
    Spent(E),
}

/// Calls `call`, then again after each retryable failure while `deadline` leaves time for the
/// wait before it. The first call is always made, and a call once started is awaited to its end
/// (its own time-out bounds it): a call cut short may have been taken, and calling again would
/// then repeat it. `on_retry` is told about each retry (for the metric).
pub async fn retry<T, E, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    mut on_retry: impl FnMut(&E),
    mut call: F,
) -> Result<T, GaveUp<E>>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut n = 0;
    loop {
        let err = match call().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !err.is_retryable() {
            return Err(GaveUp::Final(err));
        }
        let wait = err.wait().unwrap_or_else(|| backoff.delay(n));
        if Instant::now() + wait >= deadline {
            return Err(GaveUp::Spent(err));
        }
        on_retry(&err);
        tokio::time::sleep(wait).await;
        n = n.saturating_add(1);
    }
}

/// [`retry`] for the CAS calls of a find or an operator command, whose budget is the deadline
/// itself: no call starts after it, a call still running at it is dropped, and a spent budget
/// is [`CasError::BudgetSpent`] whatever the last failure was.
pub async fn with_retries<T, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    on_retry: impl FnMut(&CasError),
    mut call: F,
) -> Result<T, CasError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CasError>>,
{
    let bounded = || {
        let started = (Instant::now() < deadline).then(&mut call);
        async move {
            match started {
                None => Err(CasError::BudgetSpent),
                Some(fut) => tokio::time::timeout_at(deadline, fut)
                    .await
                    .unwrap_or(Err(CasError::BudgetSpent)),
            }
        }
    };
    retry(deadline, backoff, on_retry, bounded)
        .await
        .map_err(|g| match g {
            GaveUp::Final(e) => e,
            GaveUp::Spent(_) => CasError::BudgetSpent,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }

    #[test]
    fn bounds_grow_and_cap() {
        let b = backoff();
        assert_eq!(b.bound(0), Duration::from_millis(100));
        assert_eq!(b.bound(3), Duration::from_millis(800));
        assert_eq!(b.bound(10), Duration::from_secs(2));
        assert_eq!(b.bound(63), Duration::from_secs(2));
        for n in 0..8 {
            assert!(b.delay(n) <= b.bound(n));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_until_success() {
        let mut calls = 0;
        let mut retries = 0;
        let r = with_retries(
            Instant::now() + Duration::from_secs(60),
            backoff(),
            |_| retries += 1,
            || {
                calls += 1;
                let c = calls;
                async move {
                    if c < 4 {
                        Err(CasError::Unavailable {
                            status: 503,
                            retry_after: None,
                        })
                    } else {
                        Ok(c)
                    }
                }
            },
        )
        .await;
        assert_eq!(r, Ok(4));
        assert_eq!(retries, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn final_errors_are_not_retried() {
        let mut calls = 0;
        let r: Result<(), _> = with_retries(
            Instant::now() + Duration::from_secs(60),
            backoff(),
            |_| {},
            || {
                calls += 1;
                async { Err(CasError::Refused { status: 401 }) }
            },
        )
        .await;
        assert_eq!(r, Err(CasError::Refused { status: 401 }));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_retries() {
        let start = Instant::now();
        let r: Result<(), _> = with_retries(
            start + Duration::from_secs(10),
            backoff(),
            |_| {},
            || async { Err(CasError::Unreachable("refused".into())) },
        )
        .await;
        assert_eq!(r, Err(CasError::BudgetSpent));
        assert!(Instant::now() <= start + Duration::from_secs(10));
    }

    /// Calls until the second call, the first failing with `first`: how long it waited.
    async fn wait_after<E: Retryable + std::fmt::Debug + PartialEq>(first: E) -> Duration {
        let start = Instant::now();
        let mut first = Some(first);
        let r = retry(
            start + Duration::from_secs(60),
            backoff(),
            |_| {},
            || {
                let failure = first.take();
                async move { failure.map_or(Ok(()), Err) }
            },
        )
        .await;
        assert_eq!(r, Ok(()));
        Instant::now() - start
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_for_the_cas_and_for_reporting() {
        let cas = CasError::Unavailable {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(wait_after(cas).await >= Duration::from_secs(7));
        let reporting = crate::cas::reporting::ReportCallError::Unavailable {
            status: 429,
            problem: String::new(),
            retry_after: Some(Duration::from_secs(9)),
        };
        assert!(wait_after(reporting).await >= Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_deadline_keeps_the_last_failure() {
        let start = Instant::now();
        let mut calls = 0u16;
        let r: Result<(), _> = retry(
            start + Duration::from_secs(10),
            backoff(),
            |_| {},
            || {
                calls += 1;
                let status = 500 + calls;
                async move {
                    Err(CasError::Unavailable {
                        status,
                        retry_after: None,
                    })
                }
            },
        )
        .await;
        let Err(GaveUp::Spent(CasError::Unavailable { status, .. })) = r else {
            panic!("{r:?}");
        };
        assert_eq!(status, 500 + calls, "the last answer, not the first");
        assert!(calls > 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_makes_the_first_call_and_never_cuts_one_started() {
        // A deadline already past: still called once.
        let mut calls = 0;
        let r: Result<(), _> = retry(
            Instant::now(),
            backoff(),
            |_| {},
            || {
                calls += 1;
                async { Err(CasError::Unreachable("refused".into())) }
            },
        )
        .await;
        assert!(matches!(r, Err(GaveUp::Spent(CasError::Unreachable(_)))));
        assert_eq!(calls, 1);
        // A call that outlasts the deadline is awaited to its answer.
        let start = Instant::now();
        let r = retry(
            start + Duration::from_secs(1),
            backoff(),
            |_| {},
            || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, CasError>(7)
            },
        )
        .await;
        assert_eq!(r, Ok(7));
        assert!(Instant::now() >= start + Duration::from_secs(5));
        // The CAS calls' budget is the deadline: past it nothing starts, and a call is cut.
        let mut calls = 0;
        let r: Result<(), _> = with_retries(
            Instant::now(),
            backoff(),
            |_| {},
            || {
                calls += 1;
                async { Ok(()) }
            },
        )
        .await;
        assert_eq!((r, calls), (Err(CasError::BudgetSpent), 0));
        let start = Instant::now();
        let r: Result<(), _> = with_retries(
            start + Duration::from_secs(1),
            backoff(),
            |_| {},
            std::future::pending,
        )
        .await;
        assert_eq!(r, Err(CasError::BudgetSpent));
        assert!(Instant::now() < start + Duration::from_secs(2));
    }
}
