//! Time inside the daemon: a `Timestamp` (milliseconds since the Unix epoch,
//! RFC 3339 on the wire), human durations (`"30s"`, `"72h"`) and an injectable
//! `Clock` so 72-hour behaviour can be tested in seconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The wall clock now (use a `Clock` inside the daemon instead).
    pub fn now() -> Self {
        Timestamp::from(SystemTime::now())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    pub fn minus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// RFC 3339 with second precision, UTC: `2026-11-22T10:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        humantime::format_rfc3339_seconds(self.formattable()).to_string()
    }

    /// RFC 5322 date for headers: `Sun, 22 Nov 2026 10:00:00 +0000`.
    pub fn to_rfc5322(self) -> String {
        // httpdate-style formatting from humantime gives "Sun, 22 Nov 2026 10:00:00 GMT".
        let s = humantime::format_rfc3339_seconds(self.formattable()).to_string();
        rfc5322_from_rfc3339(&s).unwrap_or(s)
    }

    /// Parses RFC 3339 (`2026-11-22T10:00:00Z`, fractions and offsets allowed) or a bare date `2026-11-22`.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.len() == 10 {
            return humantime::parse_rfc3339_weak(&format!("{s} 00:00:00"))
                .ok()
                .map(Timestamp::from);
        }
        if let Ok(t) = humantime::parse_rfc3339_weak(s) {
            return Some(Timestamp::from(t));
        }
        parse_with_offset(s)
    }

    /// The time clamped to what RFC 3339 formatting supports (1970-01-01 .. 9999-12-31).
    fn formattable(self) -> SystemTime {
        const MAX_MS: i64 = 253_402_300_799_000;
        Timestamp(self.0.clamp(0, MAX_MS)).to_system_time()
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        }
    }
}

/// Handles `+02:00` / `-05:00` offsets that humantime does not.
fn parse_with_offset(s: &str) -> Option<Timestamp> {
    let (base, sign, off) = if let Some(i) = s.rfind('+').filter(|&i| i > 10) {
        (&s[..i], 1i64, &s[i + 1..])
    } else {
        let i = s.rfind('-').filter(|&i| i > 10)?;
        (&s[..i], -1i64, &s[i + 1..])
    };
    let (h, m) = off.split_once(':')?;
    let mins = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
    let t = Timestamp::from(humantime::parse_rfc3339_weak(base).ok()?);
    Some(Timestamp(t.0 - sign * mins * 60_000))
}

fn rfc5322_from_rfc3339(s: &str) -> Option<String> {
    // s = YYYY-MM-DDTHH:MM:SSZ
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let mo: usize = s.get(5..7)?.parse().ok()?;
    let d: i64 = s.get(8..10)?.parse().ok()?;
    let hms = s.get(11..19)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = days_from_civil(y, mo as i64, d);
    let wd = DAYS[days.rem_euclid(7) as usize];
    Some(format!(
        "{wd}, {d:02} {} {y} {hms} +0000",
        MONTHS.get(mo.checked_sub(1)?)?
    ))
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_millis() as i64),
            Err(e) => Timestamp(-(e.duration().as_millis() as i64)),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Timestamp::parse_rfc3339(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("bad RFC 3339 time {s:?}")))
        } else {
            Ok(Timestamp(i64::deserialize(d)?))
        }
    }
}

/// Parses `"30s"`, `"5m"`, `"72h"`, `"30d"`, `"500ms"`, also combined (`"1h30m"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n_end == 0 {
            return Err(format!(
                "bad duration {s:?}: expected a number like \"30s\", \"5m\", \"72h\", \"30d\""
            ));
        }
        let n: u64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("bad duration {s:?}: number too large"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let ms: u64 = match unit {
            "ms" => 1,
            "s" | "" if u_end == 0 && !rest.is_empty() => {
                return Err(format!("bad duration {s:?}"));
            }
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "" => return Err(format!("bad duration {s:?}: missing unit (ms, s, m, h, d)")),
            other => {
                return Err(format!(
                    "bad duration {s:?}: unknown unit {other:?} (ms, s, m, h, d)"
                ));
            }
        };
        let add = n
            .checked_mul(ms)
            .ok_or_else(|| format!("bad duration {s:?}: too large"))?;
        total = total
            .checked_add(Duration::from_millis(add))
            .ok_or_else(|| format!("bad duration {s:?}: too large"))?;
    }
    Ok(total)
}

/// Formats a duration the way config files write it (`"5m"`, `"72h"`, `"1500ms"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, size) in [
        ("d", 86_400_000u64),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms > 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The daemon's source of "now". Production uses the system clock; tests may
/// use a `ManualClock` and move it forward.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The system wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that tests set and advance explicitly.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Shared handle to the clock in use.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("72h").unwrap(),
            Duration::from_secs(72 * 3600)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(72 * 3600)), "3d");
    }

    #[test]
    fn out_of_range_times_format_without_panicking() {
        assert_eq!(
            Timestamp(-2_592_000_000).to_rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(Timestamp(i64::MAX).to_rfc3339(), "9999-12-31T23:59:59Z");
        assert!(
            Timestamp(i64::MIN)
                .to_rfc5322()
                .starts_with("Thu, 01 Jan 1970")
        );
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T10:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22T12:00:00+02:00"),
            Some(t)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22").unwrap().to_rfc3339(),
            "2026-11-22T00:00:00Z"
        );
        assert_eq!(t.to_rfc5322(), "Sun, 22 Nov 2026 10:00:00 +0000");
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }
}
