//! Rate limits on the flows attackers hammer: sign-in, sign-up, password reset and MFA
//! verification, each per client address and per account. In memory, per process; a
//! cluster behind a load balancer multiplies the budget by its size at most.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests allowed per window for each flow (from configuration).
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub login: u32,
    pub signup: u32,
    pub forgot_password: u32,
    pub mfa: u32,
    pub window: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            login: 10,
            signup: 5,
            forgot_password: 5,
            mfa: 5,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Login,
    Signup,
    ForgotPassword,
    Mfa,
    VerificationResend,
    /// Proving presence again for a sensitive change (current password, a code).
    Reauth,
    /// Recording a refused platform route: once a minute per user and route.
    RefusalRecord,
}

struct Limiter {
    by_ip: DefaultKeyedRateLimiter<String>,
    by_account: DefaultKeyedRateLimiter<String>,
}

#[derive(Clone)]
pub struct Limits {
    login: Arc<Limiter>,
    signup: Arc<Limiter>,
    forgot_password: Arc<Limiter>,
    mfa: Arc<Limiter>,
    verification_resend: Arc<Limiter>,
    reauth: Arc<Limiter>,
    refusal_record: Arc<Limiter>,
}

fn limiter(per_window: u32, window: Duration) -> Arc<Limiter> {
    let burst = NonZeroU32::new(per_window.max(1)).unwrap_or(NonZeroU32::MIN);
    // `burst` requests at once, then one more each window/burst: at most `per_window`
    // in any window.
    let period = window / burst.get();
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    Arc::new(Limiter {
        by_ip: RateLimiter::keyed(quota),
        by_account: RateLimiter::keyed(quota),
    })
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            login: limiter(settings.login, settings.window),
            signup: limiter(settings.signup, settings.window),
            forgot_password: limiter(settings.forgot_password, settings.window),
            mfa: limiter(settings.mfa, settings.window),
            verification_resend: limiter(3, Duration::from_secs(60 * 60)),
            // A re-authentication guesses a password or a code like a sign-in does.
            reauth: limiter(settings.login, settings.window),
            refusal_record: limiter(1, Duration::from_secs(60)),
        }
    }

    fn limiter(&self, flow: Flow) -> &Limiter {
        match flow {
            Flow::Login => &self.login,
            Flow::Signup => &self.signup,
            Flow::ForgotPassword => &self.forgot_password,
            Flow::Mfa => &self.mfa,
            Flow::VerificationResend => &self.verification_resend,
            Flow::Reauth => &self.reauth,
            Flow::RefusalRecord => &self.refusal_record,
        }
    }

    /// Counts one attempt; `Err(retry_after)` when the address or the account is over
    /// its budget. Both are charged, so neither rotating addresses nor rotating
    /// accounts escapes the limit.
    pub fn check(&self, flow: Flow, ip: Option<&str>, account: Option<&str>) -> Result<(), Duration> {
        let limiter = self.limiter(flow);
        let clock = DefaultClock::default();
        let mut wait = Duration::ZERO;
        if let Some(ip) = ip
            && let Err(not_until) = limiter.by_ip.check_key(&ip.to_owned())
        {
            wait = wait.max(not_until.wait_time_from(clock.now()));
        }
        if let Some(account) = account
            && let Err(not_until) = limiter.by_account.check_key(&account.to_owned())
        {
            wait = wait.max(not_until.wait_time_from(clock.now()));
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    /// Forgets keys whose budget has fully recovered, bounding memory.
    pub fn prune(&self) {
        for limiter in [
            &self.login,
            &self.signup,
            &self.forgot_password,
            &self.mfa,
            &self.verification_resend,
            &self.reauth,
            &self.refusal_record,
        ] {
            limiter.by_ip.retain_recent();
            limiter.by_account.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_per_address_and_per_account() {
        let limits = Limits::new(LimitSettings {
            login: 3,
            ..LimitSettings::default()
        });
        for _ in 0..3 {
            assert!(
                limits
                    .check(Flow::Login, Some("10.0.0.1"), Some("a@example.com"))
                    .is_ok()
            );
        }
        let retry = limits
            .check(Flow::Login, Some("10.0.0.1"), Some("b@example.com"))
            .unwrap_err();
        assert!(retry >= Duration::from_secs(1));
        // Another address against the exhausted account is refused too.
        assert!(
            limits
                .check(Flow::Login, Some("10.0.0.2"), Some("a@example.com"))
                .is_err()
        );
        assert!(
            limits
                .check(Flow::Login, Some("10.0.0.3"), Some("c@example.com"))
                .is_ok()
        );
        // Other flows have their own budgets.
        assert!(limits.check(Flow::Signup, Some("10.0.0.1"), None).is_ok());
    }
}
