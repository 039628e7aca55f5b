//! Table configuration: the RFC 3261 timer base values and proxy policies.

use std::time::Duration;

use bytes::Bytes;

/// When an INVITE server transaction sends `100 Trying` by itself (RFC 3261 §17.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trying {
    /// As soon as the INVITE creates the transaction (what a proxy does).
    Immediately,
    /// If the transaction user has sent no provisional response after this long.
    After(Duration),
    /// Never (the transaction user sends its own).
    Never,
}

/// Configuration of a [`crate::TxnTable`]. Plain data; build with `Default` and the setters.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// T1, the RTT estimate (default 500 ms).
    pub t1: Duration,
    /// T2, the cap of non-INVITE and INVITE-response retransmission intervals (default 4 s).
    pub t2: Duration,
    /// T4, how long a message may stay in the network (default 5 s).
    pub t4: Duration,
    /// Timer D on unreliable transports (at least 32 s).
    pub timer_d: Duration,
    /// Timer C, the proxy INVITE timeout reset by each provisional (> 3 min); `None` disables it.
    pub timer_c: Option<Duration>,
    /// 100 Trying policy for INVITE server transactions.
    pub trying: Trying,
    /// A 6xx on one branch cancels the others and is relayed at once (RFC 3261 §16.7 step 5).
    pub six_xx_cancels: bool,
    /// A 2xx on one branch cancels the other pending branches (§16.7 step 10).
    pub two_xx_cancels: bool,
    /// A selected 503 is relayed as 500 (§16.7 step 6).
    pub map_503_to_500: bool,
    /// Seed mixed into the To tags of locally generated replies.
    pub tag_seed: u64,
    /// Overrides timers B and F (64·T1 by default): OpenSIPS's `fr_timeout`, how long a
    /// client transaction waits for a first response (INVITE) or a final one (non-INVITE).
    pub fr_timeout: Option<Duration>,
    /// When timer C fires on a branch that had a provisional response, report the branch as
    /// failed with 408 at once (and still send the CANCEL), as OpenSIPS does when
    /// `fr_inv_timeout` hits, instead of waiting for the CANCEL's outcome (RFC 3261 §16.8).
    pub timer_c_fails_at_once: bool,
    /// Every provisional response (above 100) restarts timer C (OpenSIPS's
    /// `restart_fr_on_each_reply`, on by default); off: only one with a higher code than the
    /// branch had so far (and at least 180 unless it is the first) does.
    pub restart_timer_c: bool,
    /// Timer C starts with the first provisional response (100 included) instead of when the
    /// request is sent, as OpenSIPS's `fr_inv_timeout` does (until then timer B runs alone).
    pub timer_c_from_provisional: bool,
    /// `Server:` value for the replies the table builds itself (100 Trying, local replies,
    /// local failures): OpenSIPS's `server_header` when `server_signature` is on.
    pub server: Option<Bytes>,
    /// `User-Agent:` value for the requests the table builds itself (CANCEL, ACK of a failure):
    /// OpenSIPS's `user_agent_header` when `server_signature` is on.
    pub user_agent: Option<Bytes>,
    /// How long a completed non-INVITE server transaction (timer J, unreliable transports)
    /// and an accepted INVITE server transaction (timer L) linger: OpenSIPS's `wt_timer`.
    /// `None`: 64·T1.
    pub wait: Option<Duration>,
    /// RFC 2543 matching compares the Request-URI (OpenSIPS's `ruri_matching`).
    pub rfc2543_ruri: bool,
    /// RFC 2543 matching compares the top Via (OpenSIPS's `via1_matching`).
    pub rfc2543_via1: bool,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            timer_c: Some(Duration::from_secs(180)),
            trying: Trying::Immediately,
            six_xx_cancels: true,
            two_xx_cancels: true,
            map_503_to_500: true,
            tag_seed: 0x5a5a_1234_9876_abcd,
            fr_timeout: None,
            timer_c_fails_at_once: false,
            restart_timer_c: true,
            timer_c_from_provisional: false,
            server: None,
            user_agent: None,
            wait: None,
            rfc2543_ruri: true,
            rfc2543_via1: true,
        }
    }
}

impl TxnConfig {
    /// Sets T1.
    pub fn t1(&mut self, v: Duration) -> &mut Self {
        self.t1 = v;
        self
    }
    /// Sets T2.
    pub fn t2(&mut self, v: Duration) -> &mut Self {
        self.t2 = v;
        self
    }
    /// Sets T4.
    pub fn t4(&mut self, v: Duration) -> &mut Self {
        self.t4 = v;
        self
    }
    /// Sets timer D (unreliable transports).
    pub fn timer_d(&mut self, v: Duration) -> &mut Self {
        self.timer_d = v;
        self
    }
    /// Sets or disables timer C.
    pub fn timer_c(&mut self, v: Option<Duration>) -> &mut Self {
        self.timer_c = v;
        self
    }
    /// Sets the 100 Trying policy.
    pub fn trying(&mut self, v: Trying) -> &mut Self {
        self.trying = v;
        self
    }
    /// Enables or disables "6xx cancels the other branches".
    pub fn six_xx_cancels(&mut self, v: bool) -> &mut Self {
        self.six_xx_cancels = v;
        self
    }
    /// Enables or disables "2xx cancels the other branches".
    pub fn two_xx_cancels(&mut self, v: bool) -> &mut Self {
        self.two_xx_cancels = v;
        self
    }
    /// Enables or disables turning a selected 503 into 500.
    pub fn map_503_to_500(&mut self, v: bool) -> &mut Self {
        self.map_503_to_500 = v;
        self
    }
    /// Sets or clears the override of timers B and F.
    pub fn fr_timeout(&mut self, v: Option<Duration>) -> &mut Self {
        self.fr_timeout = v;
        self
    }
    /// Enables or disables "timer C fails the branch at once".
    pub fn timer_c_fails_at_once(&mut self, v: bool) -> &mut Self {
        self.timer_c_fails_at_once = v;
        self
    }
    /// Enables or disables "each provisional restarts timer C".
    pub fn restart_timer_c(&mut self, v: bool) -> &mut Self {
        self.restart_timer_c = v;
        self
    }
    /// Enables or disables "timer C starts with the first provisional".
    pub fn timer_c_from_provisional(&mut self, v: bool) -> &mut Self {
        self.timer_c_from_provisional = v;
        self
    }
    /// 64·T1: timers B, F, H, J (unreliable), L, M.
    pub(crate) fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
    /// Timers B and F.
    pub(crate) fn timer_bf(&self) -> Duration {
        self.fr_timeout.unwrap_or_else(|| self.t1x64())
    }
}

/// Per-transaction overrides of the branch timers (OpenSIPS's `$T_fr_timeout` and
/// `$T_fr_inv_timeout`): for the branches a server transaction creates from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BranchTimers {
    /// Timers B and F instead of [`TxnConfig::fr_timeout`]; `None` keeps the configuration's.
    pub fr_timeout: Option<Duration>,
    /// Timer C instead of [`TxnConfig::timer_c`]; `None` keeps the configuration's.
    pub timer_c: Option<Duration>,
}
