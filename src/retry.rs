//! One retry loop for everything that calls out (the Alibaba API client, summary webhooks): jittered
//! exponential back-off inside a time budget. Each caller answers only "is this error retriable, and is it
//! throttling?" ([`Retriable`]); the schedule, the budget and the counting live here.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Most attempts, the first included (at least one is always made).
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubled for each further one, capped at `max_delay`, then
    /// jittered to 50–100 %.
    pub base_delay: Duration,
    /// The base after a throttling answer: a throttled service needs a longer pause than a dropped connection.
    pub throttle_base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once its back-off would end later than this after the first attempt started.
    pub budget: Duration,
}

/// The caller's answer about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retriable {
    /// Another attempt cannot help, or is not safe.
    No,
    /// A passing failure: try again after the normal back-off.
    Yes,
    /// The service asked us to slow down: try again after the throttling back-off.
    Throttled,
}

/// Why the loop stopped without a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// The last error was not retriable.
    NotRetriable,
    /// `max_attempts` attempts were made.
    Attempts,
    /// The next back-off would have ended past the budget.
    Budget,
}

/// The last error of a call that did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed<E> {
    pub error: E,
    pub attempts: u32,
    pub gave_up: GaveUp,
}

/// Runs `attempt` until it succeeds or the schedule says stop. `attempt` receives the attempt number (from 1)
/// and the budget left (for a per-attempt timeout); `retriable` judges each error; `on_retry` is told of each
/// error that will be retried and the back-off chosen (for logs). Returns the value and the attempts made.
pub async fn run<T, E, F, Fut>(
    schedule: &Schedule,
    mut attempt: F,
    retriable: impl Fn(&E) -> Retriable,
    mut on_retry: impl FnMut(&E, u32, Duration),
) -> Result<(T, u32), Failed<E>>
where
    F: FnMut(u32, Duration) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = schedule.budget.saturating_sub(start.elapsed());
        let error = match attempt(attempts, remaining).await {
            Ok(v) => return Ok((v, attempts)),
            Err(e) => e,
        };
        let base = match retriable(&error) {
            Retriable::No => return Err(Failed { error, attempts, gave_up: GaveUp::NotRetriable }),
            Retriable::Yes => schedule.base_delay,
            Retriable::Throttled => schedule.throttle_base_delay,
        };
        if attempts >= schedule.max_attempts {
            return Err(Failed { error, attempts, gave_up: GaveUp::Attempts });
        }
        let delay = backoff(base, schedule.max_delay, attempts);
        if start.elapsed() + delay > schedule.budget {
            return Err(Failed { error, attempts, gave_up: GaveUp::Budget });
        }
        on_retry(&error, attempts, delay);
        tokio::time::sleep(delay).await;
    }
}

/// The back-off after attempt `attempt` (from 1): `d/2 + rand(0..=d/2)` with `d = base * 2^(attempt-1)`,
/// capped at `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let d = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(max);
    let half = d / 2;
    let jitter = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=jitter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    const SCHEDULE: Schedule = Schedule {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        throttle_base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(20),
        budget: Duration::from_secs(60),
    };

    /// Runs against a script of answers (`Err(Retriable)` is a failure judged so) and records the back-offs.
    async fn scripted(
        schedule: Schedule,
        script: &[Result<&'static str, Retriable>],
    ) -> (Result<(&'static str, u32), Failed<Retriable>>, Vec<Duration>, Vec<Duration>) {
        let delays = RefCell::new(Vec::new());
        let remaining = RefCell::new(Vec::new());
        let result = run(
            &schedule,
            |n, left| {
                remaining.borrow_mut().push(left);
                let answer = script.get(n as usize - 1).copied().unwrap_or(Ok("late"));
                async move { answer }
            },
            |r| *r,
            |_, _, d| delays.borrow_mut().push(d),
        )
        .await;
        (result, delays.into_inner(), remaining.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn retries_passing_failures_then_succeeds() {
        let (result, delays, _) =
            scripted(SCHEDULE, &[Err(Retriable::Yes), Err(Retriable::Throttled), Ok("done")]).await;
        assert_eq!(result, Ok(("done", 3)));
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100), "{delays:?}");
        // Throttling starts from the slower base: 500 ms doubled for the second retry, jittered to 50-100 %.
        assert!(delays[1] >= Duration::from_millis(500) && delays[1] <= Duration::from_millis(1000), "{delays:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_an_error_that_is_not_retriable() {
        let (result, delays, _) = scripted(SCHEDULE, &[Err(Retriable::Yes), Err(Retriable::No)]).await;
        assert_eq!(result, Err(Failed { error: Retriable::No, attempts: 2, gave_up: GaveUp::NotRetriable }));
        assert_eq!(delays.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_max_attempts() {
        let (result, delays, _) = scripted(SCHEDULE, &[Err(Retriable::Yes); 10]).await;
        assert_eq!(result, Err(Failed { error: Retriable::Yes, attempts: 4, gave_up: GaveUp::Attempts }));
        assert_eq!(delays.len(), 3);
        let one = Schedule { max_attempts: 1, ..SCHEDULE };
        let (result, _, _) = scripted(one, &[Err(Retriable::Yes)]).await;
        assert_eq!(result.unwrap_err().gave_up, GaveUp::Attempts);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_past_the_budget_and_attempts_see_what_is_left() {
        let tight = Schedule { budget: Duration::from_millis(700), ..SCHEDULE };
        let (result, delays, remaining) = scripted(tight, &[Err(Retriable::Throttled); 10]).await;
        let failed = result.unwrap_err();
        assert_eq!(failed.gave_up, GaveUp::Budget);
        // One throttled back-off (250-500 ms) fits; the next (500-1000 ms) cannot end inside 700 ms.
        assert_eq!((failed.attempts, delays.len()), (2, 1));
        assert_eq!(remaining[0], Duration::from_millis(700));
        assert_eq!(remaining[1], Duration::from_millis(700) - delays[0]);
        let none = Schedule { budget: Duration::ZERO, ..SCHEDULE };
        let (result, _, remaining) = scripted(none, &[Err(Retriable::Yes)]).await;
        assert_eq!(result.unwrap_err().attempts, 1, "a zero budget still makes the first attempt");
        assert_eq!(remaining, [Duration::ZERO]);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(2);
        for attempt in 1..40 {
            assert!(backoff(Duration::from_millis(100), max, attempt) <= max);
        }
        let first = backoff(Duration::from_millis(100), max, 1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        assert!(backoff(Duration::from_millis(100), max, 3) >= Duration::from_millis(200));
        assert_eq!(backoff(Duration::ZERO, max, 5), Duration::ZERO);
        assert!(backoff(Duration::from_secs(1), Duration::MAX, 30) >= Duration::from_secs(1 << 15));
    }
}
