//! The limit on failed sign-ins per client address: after `limit` wrong tokens (on `/login` or
//! in `Authorization`) within `window`, that address is refused with 429 until the window ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Addresses tracked at most: an attacker with many addresses cannot grow the map without
/// bound (the oldest entry is dropped to make room).
const MAX_ADDRESSES: usize = 10_000;

/// Failures of one address in its current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// The limit and this server's counts. Clones share the counts, so every handle of one server
/// counts together; each [`super::Config::new`] starts with none.
#[derive(Clone)]
pub struct SignInThrottle {
    limit: u32,
    window: Duration,
    seen: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// The address an attacker controls as one: IPv4 as is, IPv6 by its /64 network (a single
/// host is usually given a whole /64).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl SignInThrottle {
    /// At most `limit` failures per address in `window`.
    pub fn new(limit: u32, window: Duration) -> SignInThrottle {
        SignInThrottle {
            limit,
            window,
            seen: Arc::default(),
        }
    }

    /// How long `ip` must wait before it may try a token again; `None` when it may now.
    pub fn retry_after(&self, ip: IpAddr) -> Option<Duration> {
        self.retry_after_at(ip, Instant::now())
    }

    /// Counts a wrong token from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // The map holds counts only: one left half-updated by a panic is still usable.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn retry_after_at(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let failures = *self.lock().get(&key(ip))?;
        let ends = failures.since + self.window;
        (failures.count >= self.limit && now < ends).then(|| ends - now)
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let window = self.window;
        let live = |f: &Failures| now.duration_since(f.since) < window;
        let mut seen = self.lock();
        let ip = key(ip);
        if let Some(failures) = seen.get_mut(&ip) {
            if live(failures) {
                failures.count = failures.count.saturating_add(1);
            } else {
                *failures = Failures {
                    since: now,
                    count: 1,
                };
            }
            return;
        }
        if seen.len() >= MAX_ADDRESSES {
            seen.retain(|_, f| live(f));
        }
        if seen.len() >= MAX_ADDRESSES
            && let Some(oldest) = seen.iter().min_by_key(|(_, f)| f.since).map(|(ip, _)| *ip)
        {
            seen.remove(&oldest);
        }
        seen.insert(
            ip,
            Failures {
                since: now,
                count: 1,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_refused_after_the_limit_until_the_window_ends() {
        let throttle = SignInThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..2 {
            throttle.record_failure_at(a, t0);
        }
        assert_eq!(
            throttle.retry_after_at(a, t0),
            None,
            "two failures are allowed"
        );
        throttle.record_failure_at(a, t0);
        let wait = throttle.retry_after_at(a, t0 + Duration::from_secs(10));
        assert_eq!(wait, Some(Duration::from_secs(50)));
        assert_eq!(
            throttle.retry_after_at(ip("192.0.2.2"), t0),
            None,
            "others are not"
        );
        let later = t0 + Duration::from_secs(60);
        assert_eq!(throttle.retry_after_at(a, later), None, "the window ended");
        throttle.record_failure_at(a, later);
        assert_eq!(
            throttle.retry_after_at(a, later),
            None,
            "a new window counts anew"
        );
    }

    #[test]
    fn ipv6_hosts_of_one_network_count_together() {
        let throttle = SignInThrottle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        throttle.record_failure_at(ip("2001:db8:1:2::1"), t0);
        throttle.record_failure_at(ip("2001:db8:1:2::ffff"), t0);
        assert!(throttle.retry_after_at(ip("2001:db8:1:2::7"), t0).is_some());
        assert!(throttle.retry_after_at(ip("2001:db8:1:3::1"), t0).is_none());
        throttle.record_failure_at(ip("::ffff:192.0.2.9"), t0);
        throttle.record_failure_at(ip("192.0.2.9"), t0);
        assert!(throttle.retry_after_at(ip("192.0.2.9"), t0).is_some());
    }

    #[test]
    fn the_map_stays_bounded() {
        let throttle = SignInThrottle::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(i));
            throttle.record_failure_at(addr, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(throttle.lock().len(), MAX_ADDRESSES);
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(MAX_ADDRESSES as u32 + 49));
        assert!(
            throttle
                .retry_after_at(newest, t0 + Duration::from_secs(1))
                .is_some()
        );
    }
}
