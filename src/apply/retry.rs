//! Retry on purpose: transient failures are retried with exponential backoff
//! and full jitter, honouring `Retry-After`; permanent ones are not.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::targets::TargetError;

/// The longest `Retry-After` believed, as for Snipe-IT's 429s (its pace's
/// `MAX_HOLD`): a longer one (a date years ahead, a server's bug) would
/// stall the run for that long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The default; `HOMEBASE_RETRY_BASE_MS` shortens the delays (tests set it to 0).
    pub fn from_env() -> RetryPolicy {
        let base = std::env::var("HOMEBASE_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(250), Duration::from_millis);
        RetryPolicy {
            attempts: 6,
            base,
            max: Duration::from_secs(30),
        }
    }

    /// The pause before try `n + 1` (n ≥ 1): a random time up to base·2ⁿ⁻¹,
    /// capped; never shorter than the server's `Retry-After` up to
    /// [`MAX_RETRY_AFTER`].
    pub fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.base.saturating_mul(1 << (n - 1).min(16)).min(self.max);
        let jittered = if ceiling.is_zero() {
            ceiling
        } else {
            Duration::from_micros(rand::thread_rng().gen_range(0..=ceiling.as_micros() as u64))
        };
        retry_after.map_or(jittered, |after| jittered.max(after.min(MAX_RETRY_AFTER)))
    }
}

/// Run `op` until it succeeds, fails permanently, or the tries are used up.
/// Returns the result and how many tries it took.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> (Result<T, TargetError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TargetError>>,
{
    let mut n = 1;
    loop {
        match op().await {
            Ok(value) => return (Ok(value), n),
            Err(TargetError::Transient {
                message,
                retry_after,
            }) if n < policy.attempts => {
                let _ = message;
                tokio::time::sleep(policy.delay(n, retry_after)).await;
                n += 1;
            }
            Err(err) => return (Err(err), n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        }
    }

    #[tokio::test]
    async fn retries_transient_until_success() {
        let calls = AtomicU32::new(0);
        let (result, tries) = retry(&fast(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(TargetError::transient("503"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(tries, 3);
    }

    #[tokio::test]
    async fn permanent_fails_at_once() {
        let calls = AtomicU32::new(0);
        let (result, tries) = retry(&fast(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(TargetError::permanent("400 bad attribute"))
        })
        .await;
        assert_eq!(result.unwrap_err().to_string(), "400 bad attribute");
        assert_eq!((tries, calls.load(Ordering::SeqCst)), (1, 1));
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let (result, tries) = retry(&fast(), || async {
            Err::<(), _>(TargetError::transient("timeout"))
        })
        .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(tries, 4);
    }

    #[test]
    fn delays_grow_are_capped_and_honour_retry_after() {
        let p = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for n in 1..10 {
            let d = p.delay(n, None);
            assert!(d <= Duration::from_millis(100 * (1 << (n - 1))).min(p.max));
        }
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    /// Found by the `rate_limit` fuzz target: a `Retry-After` of years (or
    /// a date far ahead) was waited out in full before the next try.
    #[test]
    fn an_absurd_retry_after_is_capped() {
        let p = RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        };
        let wait = p.delay(1, Some(Duration::from_secs(367_946_340)));
        assert!(wait <= Duration::from_secs(120), "{wait:?}");
        assert!(wait >= Duration::from_secs(30), "{wait:?}");
    }
}
