//! Docker Hub's rate limits: the `X-RateLimit-*` headers of every answer, and when a 429
//! says to retry.
//!
//! The Hub API spec ("Rate Limiting" in docker/docs `content/reference/api/hub/latest.yaml`)
//! puts `X-RateLimit-Limit`, `-Remaining` and `-Reset` (a Unix timestamp) on every response.
//! On 429 its older version documents `X-Retry-After` holding a Unix timestamp, its newer one
//! (docker/docs#22916) `Retry-After` holding seconds, and a real 429 (docker/hub-feedback#2459)
//! carried `retry-after: 1746136938`, a timestamp equal to `x-ratelimit-reset`. So a value is
//! read as seconds, as a Unix timestamp when it is above about 10^9, or as an HTTP date.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Values above this are Unix timestamps, not seconds (10^9 s is 2001-09-09).
const TIMESTAMP_FROM: u64 = 1_000_000_000;

/// What the last answer said about the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Unix time at which the window resets.
    pub reset: Option<u64>,
}

impl RateLimit {
    /// From an answer's headers; `None` when it carries none of them.
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let r = RateLimit {
            limit: num("x-ratelimit-limit"),
            remaining: num("x-ratelimit-remaining"),
            reset: num("x-ratelimit-reset"),
        };
        (r.limit.is_some() || r.remaining.is_some() || r.reset.is_some()).then_some(r)
    }

    /// `170 of 180 requests left, the window resets at 14:05:33 CET`.
    pub fn describe(&self) -> String {
        let mut out = match (self.remaining, self.limit) {
            (Some(r), Some(l)) => format!("{r} of {l} requests left"),
            (Some(r), None) => format!("{r} requests left"),
            (None, Some(l)) => format!("a limit of {l} requests"),
            (None, None) => "no counts".to_string(),
        };
        if let Some(reset) = self.reset {
            out.push_str(&format!(", the window resets at {}", local_time(reset)));
        }
        out
    }
}

/// When a 429 says to retry, as a Unix time (seconds).
pub fn retry_at(headers: &HeaderMap, now: u64) -> Option<u64> {
    ["retry-after", "x-retry-after"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find_map(|value| parse_retry(value.trim(), now))
}

/// One `Retry-After` value: seconds, a Unix timestamp, or an HTTP date.
pub fn parse_retry(value: &str, now: u64) -> Option<u64> {
    if let Ok(n) = value.parse::<u64>() {
        return Some(if n > TIMESTAMP_FROM {
            n
        } else {
            now.saturating_add(n)
        });
    }
    let ts = jiff::fmt::rfc2822::parse(value)
        .ok()
        .map(|z| z.timestamp())
        .or_else(|| {
            jiff::fmt::rfc2822::DateTimeParser::new()
                .parse_timestamp(value)
                .ok()
        })?;
    u64::try_from(ts.as_second()).ok()
}

/// How long from `now` until `at` (zero when it is past).
pub fn wait_until(at: u64, now: u64) -> Duration {
    Duration::from_secs(at.saturating_sub(now))
}

/// `14:05:33 CET` (the date too when it is not today), in this machine's time zone.
pub fn local_time(unix: u64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(i64::try_from(unix).unwrap_or(i64::MAX)) else {
        return format!("Unix time {unix}");
    };
    let tz = jiff::tz::TimeZone::system();
    let zoned = ts.to_zoned(tz.clone());
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    let format = if zoned.date() == today {
        "%H:%M:%S %Z"
    } else {
        "%Y-%m-%d %H:%M:%S %Z"
    };
    zoned.strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const NOW: u64 = 1_746_136_000;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_reads_seconds_timestamps_and_http_dates() {
        assert_eq!(parse_retry("30", NOW), Some(NOW + 30));
        // The real 429 of docker/hub-feedback#2459: a timestamp.
        assert_eq!(parse_retry("1746136938", NOW), Some(1_746_136_938));
        assert_eq!(
            parse_retry("Thu, 01 May 2025 22:02:18 GMT", NOW),
            Some(1_746_136_938)
        );
        assert_eq!(parse_retry("soon", NOW), None);
        assert_eq!(parse_retry("-1", NOW), None);
    }

    #[test]
    fn the_older_spec_header_is_read_too() {
        let h = headers(&[("x-retry-after", "1746136938")]);
        assert_eq!(retry_at(&h, NOW), Some(1_746_136_938));
        let h = headers(&[("retry-after", "5"), ("x-retry-after", "1746136938")]);
        assert_eq!(retry_at(&h, NOW), Some(NOW + 5));
        assert_eq!(retry_at(&HeaderMap::new(), NOW), None);
    }

    #[test]
    fn rate_limit_headers_are_read_and_described() {
        let h = headers(&[
            ("x-ratelimit-limit", "180"),
            ("x-ratelimit-remaining", "170"),
            ("x-ratelimit-reset", "1746136938"),
        ]);
        let r = RateLimit::from_headers(&h).unwrap();
        assert_eq!(
            (r.limit, r.remaining, r.reset),
            (Some(180), Some(170), Some(1_746_136_938))
        );
        let text = r.describe();
        assert!(
            text.starts_with("170 of 180 requests left, the window resets at 2025-05-0"),
            "{text}"
        );
        assert_eq!(RateLimit::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn waits_are_never_negative() {
        assert_eq!(wait_until(NOW - 5, NOW), Duration::ZERO);
        assert_eq!(wait_until(NOW + 5, NOW), Duration::from_secs(5));
    }
}
