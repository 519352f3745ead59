//! The retry plan: when the next attempt for a deferred recipient is due, given
//! the configured delays (the last repeats), the age of the message and
//! `max_age`. Pure: "now" is an argument. A final attempt is guaranteed shortly
//! before the deadline; after it, `None` means the message has expired.

use std::time::Duration;

use crate::model::time::Timestamp;

/// The retry schedule of `[delivery]`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
    pub max_age: Duration,
}

impl RetryPolicy {
    /// The delay after the `attempts`-th attempt (1-based); the last configured delay repeats.
    pub fn delay(&self, attempts: u32) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.delays.len().saturating_sub(1));
        self.delays
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }

    /// When the message must be given up.
    pub fn deadline(&self, received: Timestamp) -> Timestamp {
        received.plus(self.max_age)
    }

    /// How far before the deadline the guaranteed final attempt runs.
    fn final_margin(&self) -> Duration {
        (self.max_age / 100).min(Duration::from_secs(300))
    }

    /// The next attempt after `attempts` attempts made, or `None` when the message expired.
    pub fn next_attempt(
        &self,
        received: Timestamp,
        attempts: u32,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let deadline = self.deadline(received);
        if now >= deadline {
            return None;
        }
        let next = now.plus(self.delay(attempts));
        let last_call = deadline.minus(self.final_margin());
        if next < last_call {
            Some(next)
        } else if now < last_call {
            Some(last_call)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        let m = |n: u64| Duration::from_secs(n * 60);
        RetryPolicy {
            delays: vec![m(5), m(10), m(30), m(60), m(120), m(240)],
            max_age: Duration::from_secs(72 * 3600),
        }
    }

    #[test]
    fn delays_follow_the_list_then_repeat() {
        let p = policy();
        assert_eq!(p.delay(1), Duration::from_secs(300));
        assert_eq!(p.delay(6), Duration::from_secs(240 * 60));
        assert_eq!(p.delay(40), Duration::from_secs(240 * 60));
    }

    #[test]
    fn a_72h_run_ends_with_a_final_attempt_then_expires() {
        let p = policy();
        let t0 = Timestamp(0);
        let (mut now, mut attempts, mut times) = (t0, 0u32, vec![]);
        loop {
            attempts += 1;
            match p.next_attempt(t0, attempts, now) {
                Some(next) => {
                    assert!(next > now);
                    times.push(next);
                    now = next;
                }
                None => break,
            }
            assert!(attempts < 100);
        }
        let deadline = p.deadline(t0);
        let last = *times.last().unwrap();
        assert!(
            last <= deadline && deadline.since(last) <= Duration::from_secs(300),
            "final attempt shortly before the deadline"
        );
        assert!(attempts > 15 && attempts < 30, "{attempts} attempts");
        assert_eq!(p.next_attempt(t0, attempts, deadline), None);
    }

    #[test]
    fn second_scale_schedules_work() {
        let p = RetryPolicy {
            delays: vec![Duration::from_secs(1)],
            max_age: Duration::from_secs(6),
        };
        assert_eq!(
            p.next_attempt(Timestamp(0), 1, Timestamp(0)),
            Some(Timestamp(1000))
        );
        assert_eq!(
            p.next_attempt(Timestamp(0), 6, Timestamp(5500)),
            Some(Timestamp(5940))
        );
        assert_eq!(p.next_attempt(Timestamp(0), 7, Timestamp(5940)), None);
    }
}
