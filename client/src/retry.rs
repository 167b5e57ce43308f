//! [`RetryPolicy`]: how often and how long a retry-safe call is tried again — jittered
//! exponential backoff from `backon`, bounded in attempts and in total sleep.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Bounds on retrying one call. Which calls may be retried at all is the crate header's rule
/// ([`crate::ClientError::retry_safe`]); this says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1 = never retry).
    pub attempts_max: usize,
    /// The first backoff; each next one doubles, with full jitter, up to `delay_max`.
    pub delay_min: Duration,
    pub delay_max: Duration,
    /// The sleeps of one call add up to at most this.
    pub total_delay_max: Duration,
}

impl RetryPolicy {
    /// The default: 4 tries, 100 ms doubling up to 2 s, at most 5 s asleep in all.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts_max: 4,
        delay_min: Duration::from_millis(100),
        delay_max: Duration::from_secs(2),
        total_delay_max: Duration::from_secs(5),
    };

    /// Every call is sent once: the caller sees each answer as the server gave it.
    pub const fn none() -> RetryPolicy {
        RetryPolicy { attempts_max: 1, ..RetryPolicy::DEFAULT }
    }

    /// The backoff of one call.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_factor(2.0)
            .with_min_delay(self.delay_min)
            .with_max_delay(self.delay_max)
            .with_max_times(self.attempts_max.saturating_sub(1))
            .with_total_delay(Some(self.total_delay_max))
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder;

    use super::*;

    #[test]
    fn the_backoff_is_bounded_in_count_and_total() {
        let delays: Vec<Duration> = RetryPolicy::DEFAULT.backoff().build().collect();
        assert!(delays.len() <= 3, "{delays:?}");
        assert!(delays.iter().sum::<Duration>() <= RetryPolicy::DEFAULT.total_delay_max);
        assert!(delays.iter().all(|d| *d <= RetryPolicy::DEFAULT.delay_max * 2), "{delays:?}");
        assert_eq!(RetryPolicy::none().backoff().build().count(), 0);
    }
}
