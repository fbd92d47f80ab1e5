//! Requests in flight per endpoint, adapted to throttling (AIMD, as TCP does with its window).
//!
//! Each endpoint starts at the configured bound (`concurrency.per_endpoint`). A throttling answer halves the
//! endpoint's bound (never below 1; at most one cut per `pause`, so a burst of throttled answers to requests
//! that were already in flight counts once) and holds every new request to that endpoint for `pause`. Each
//! run of `bound` successful answers raises the bound by one, back up to the configured maximum. Alibaba's
//! flow control is per account and API (reference section 2), so backing off the endpoint as a whole is what
//! keeps a real account's other callers from being throttled too.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How many calls may be in flight: per endpoint host (where the adaptive bound starts), and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub per_endpoint: usize,
    /// Across every endpoint at once. Each call in flight holds a connection with its buffers (TLS state too,
    /// against the real service): without this bound, ten regions of five products are 400 connections at
    /// once (benchmark, 100k scenario: over 14 MB of connection buffers at the peak).
    pub total: usize,
}

impl CallLimits {
    /// The policy's default run-wide bound (`concurrency.total`): 20 endpoint hosts busy at 8 calls each. At
    /// 128 the FIFO share slowed the benchmark's critical host by 3 s; at 192 the 100k apply peaked 4 MiB higher.
    pub const DEFAULT_TOTAL: usize = 160;

    /// `per_endpoint` per host, and the default bound in all.
    pub fn per_endpoint(per_endpoint: usize) -> Self {
        CallLimits { per_endpoint, total: Self::DEFAULT_TOTAL }
    }
}

pub(crate) struct AdaptiveLimit {
    max: usize,
    pause: Duration,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    bound: usize,
    in_flight: usize,
    successes: usize,
    paused_until: Option<Instant>,
    last_cut: Option<Instant>,
    cuts: u64,
    lowest: usize,
}

/// What an endpoint's limiter has done so far, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStats {
    /// The bound now.
    pub bound: usize,
    /// The lowest bound reached.
    pub lowest: usize,
    /// How many times throttling halved the bound.
    pub cuts: u64,
}

impl AdaptiveLimit {
    pub fn new(max: usize, pause: Duration) -> Self {
        let max = max.max(1);
        AdaptiveLimit {
            max,
            pause,
            state: Mutex::new(State {
                bound: max,
                in_flight: 0,
                successes: 0,
                paused_until: None,
                last_cut: None,
                cuts: 0,
                lowest: max,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned state is still the best we have.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> LimitStats {
        let s = self.lock();
        LimitStats { bound: s.bound, lowest: s.lowest, cuts: s.cuts }
    }

    /// Waits for a slot: no pause in force and fewer requests in flight than the bound.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a release between the check and the wait is not missed.
            notified.as_mut().enable();
            let pause = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if until > now => Some(until - now),
                    _ if s.in_flight < s.bound => {
                        s.in_flight += 1;
                        if s.in_flight < s.bound {
                            // Room for more: pass the wake-up on (waiters are woken one at a time).
                            self.changed.notify_one();
                        }
                        return Permit { limit: Some(self.clone()) };
                    }
                    _ => None,
                }
            };
            match pause {
                Some(wait) => tokio::time::sleep(wait).await,
                None => notified.await,
            }
        }
    }

    fn release(&self) {
        {
            let mut s = self.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.changed.notify_one();
    }

    fn throttled(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        if s.last_cut.is_none_or(|t| now.saturating_duration_since(t) >= self.pause) {
            s.bound = (s.bound / 2).max(1);
            s.lowest = s.lowest.min(s.bound);
            s.last_cut = Some(now);
            s.successes = 0;
            s.cuts += 1;
            tracing::warn!(
                bound = s.bound,
                pause_ms = self.pause.as_millis() as u64,
                "throttled: fewer requests in flight to this endpoint"
            );
        }
        let until = now + self.pause;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    fn succeeded(&self) {
        let raised = {
            let mut s = self.lock();
            s.successes += 1;
            if s.successes >= s.bound && s.bound < self.max {
                s.bound += 1;
                s.successes = 0;
                true
            } else {
                false
            }
        };
        if raised {
            self.changed.notify_one();
        }
    }
}

/// A slot held for one request; tell it how the request went, then drop it.
pub(crate) struct Permit {
    limit: Option<Arc<AdaptiveLimit>>,
}

impl Permit {
    pub fn throttled(&self) {
        if let Some(l) = &self.limit {
            l.throttled();
        }
    }

    pub fn succeeded(&self) {
        if let Some(l) = &self.limit {
            l.succeeded();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(l) = self.limit.take() {
            l.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn throttling_halves_and_successes_recover() {
        let l = Arc::new(AdaptiveLimit::new(8, Duration::from_millis(20)));
        let p = l.acquire().await;
        p.throttled();
        p.throttled(); // within the pause: counted once
        drop(p);
        assert_eq!(l.stats(), LimitStats { bound: 4, lowest: 4, cuts: 1 });
        tokio::time::sleep(Duration::from_millis(25)).await;
        l.acquire().await.throttled();
        assert_eq!(l.stats().bound, 2);
        tokio::time::sleep(Duration::from_millis(25)).await;
        l.acquire().await.throttled();
        tokio::time::sleep(Duration::from_millis(25)).await;
        l.acquire().await.throttled();
        assert_eq!(l.stats().bound, 1, "never below one");
        // Additive increase: `bound` successes raise it by one.
        let mut seen = Vec::new();
        for _ in 0..40 {
            l.acquire().await.succeeded();
            seen.push(l.stats().bound);
        }
        assert_eq!(l.stats().bound, 8, "recovers to the configured maximum: {seen:?}");
        assert_eq!(seen[..3], [2, 2, 3]);
        assert_eq!(l.stats().lowest, 1);
    }

    #[tokio::test]
    async fn a_throttle_pauses_new_requests() {
        let l = Arc::new(AdaptiveLimit::new(4, Duration::from_millis(60)));
        l.acquire().await.throttled();
        let t = Instant::now();
        drop(l.acquire().await);
        assert!(t.elapsed() >= Duration::from_millis(50), "{:?}", t.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_in_flight_than_the_bound() {
        let l = Arc::new(AdaptiveLimit::new(3, Duration::from_millis(5)));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (l, now, peak) = (l.clone(), now.clone(), peak.clone());
            tasks.spawn(async move {
                let p = l.acquire().await;
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                if i == 10 {
                    p.throttled();
                } else {
                    p.succeeded();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(l.stats().cuts, 1);
        assert_eq!(l.lock().in_flight, 0);
    }
}
