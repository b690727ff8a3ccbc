//! labels/budget: how many votes may a client, and everyone together, cast?
//!
//! Every vote appends a line to the label log, so votes are budgeted before they are written:
//! per client (its address; IPv6 addresses by their /64, the block one host is usually given)
//! and for everyone together, in votes per hour and in note bytes per hour. Each budget is a
//! GCRA limiter from `governor` (a bucket that refills continuously: the whole hour's budget may
//! be spent at once, then it comes back a vote at a time). A vote that replaces the client's
//! earlier one still costs: it still writes a line.
//!
//! The per-client state is a map with one entry per recent client. Entries whose budget is full
//! again are dropped every [`SWEEP_EVERY`] checks, and when the map reaches
//! [`BudgetConfig::max_clients`] after a sweep, every vote is refused until entries age out, so
//! memory stays bounded whatever addresses the votes come from.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

use crate::clients::client_key;

/// The budgets (see README.md, "Limits", for the reasons behind the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Votes per hour from one client.
    pub client_votes_per_hour: NonZeroU32,
    /// Note bytes (UTF-8) per hour from one client.
    pub client_note_bytes_per_hour: NonZeroU32,
    /// Votes per hour from everyone together.
    pub votes_per_hour: NonZeroU32,
    /// Note bytes per hour from everyone together.
    pub note_bytes_per_hour: NonZeroU32,
    /// Clients remembered at once; at this many, votes wait until some budgets are full again.
    pub max_clients: usize,
}

impl Default for BudgetConfig {
    /// 120 votes an hour is a person judging every result of six pages of twenty; 64 KiB of
    /// notes an hour is more than 30 notes of the longest kind (2,000 characters) or hundreds of
    /// ordinary ones. Together, 20,000 votes and 8 MiB of notes an hour bound how fast the log
    /// can grow (at most a few hundred megabytes an hour with the largest vectors and queries)
    /// while leaving room for ~170 people voting flat out at once. 100,000 clients cost a few
    /// megabytes.
    fn default() -> Self {
        Self {
            client_votes_per_hour: const { NonZeroU32::new(120).unwrap() },
            client_note_bytes_per_hour: const { NonZeroU32::new(64 << 10).unwrap() },
            votes_per_hour: const { NonZeroU32::new(20_000).unwrap() },
            note_bytes_per_hour: const { NonZeroU32::new(8 << 20).unwrap() },
            max_clients: 100_000,
        }
    }
}

/// Sweep the per-client maps of full budgets after this many checks.
pub const SWEEP_EVERY: u64 = 1024;

/// Which budget refused a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    ClientVotes,
    ClientNotes,
    Votes,
    Notes,
    /// Too many clients at once to remember each one's budget.
    Clients,
}

/// A vote over budget: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}; retry in {} s", describe(*.spent, .config), .retry_after.as_secs().max(1))]
pub struct BudgetError {
    pub spent: Spent,
    pub retry_after: Duration,
    config: BudgetConfig,
}

fn describe(spent: Spent, c: &BudgetConfig) -> String {
    match spent {
        Spent::ClientVotes => format!(
            "this client's votes are over budget ({} an hour)",
            c.client_votes_per_hour
        ),
        Spent::ClientNotes => format!(
            "this client's notes are over budget ({} bytes an hour)",
            c.client_note_bytes_per_hour
        ),
        Spent::Votes => format!(
            "the server's votes are over budget ({} an hour from everyone)",
            c.votes_per_hour
        ),
        Spent::Notes => format!(
            "the server's notes are over budget ({} bytes an hour from everyone)",
            c.note_bytes_per_hour
        ),
        Spent::Clients => format!(
            "too many clients are voting at once (over {})",
            c.max_clients
        ),
    }
}

type Keyed<C> =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The vote budgets of every client and of the server.
pub struct VoteBudget<C: Clock = DefaultClock> {
    config: BudgetConfig,
    clock: C,
    client_votes: Keyed<C>,
    client_notes: Keyed<C>,
    votes: Direct<C>,
    notes: Direct<C>,
    checks: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for VoteBudget<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoteBudget")
            .field("config", &self.config)
            .field("clients", &self.client_votes.len())
            .finish_non_exhaustive()
    }
}

impl VoteBudget {
    pub fn new(config: BudgetConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl Default for VoteBudget {
    fn default() -> Self {
        Self::new(BudgetConfig::default())
    }
}

impl<C: Clock + Clone> VoteBudget<C> {
    /// Budgets that read the time from `clock` (tests use a fake one).
    pub fn with_clock(config: BudgetConfig, clock: C) -> Self {
        Self {
            config,
            client_votes: RateLimiter::dashmap_with_clock(
                Quota::per_hour(config.client_votes_per_hour),
                clock.clone(),
            ),
            client_notes: RateLimiter::dashmap_with_clock(
                Quota::per_hour(config.client_note_bytes_per_hour),
                clock.clone(),
            ),
            votes: RateLimiter::direct_with_clock(
                Quota::per_hour(config.votes_per_hour),
                clock.clone(),
            ),
            notes: RateLimiter::direct_with_clock(
                Quota::per_hour(config.note_bytes_per_hour),
                clock.clone(),
            ),
            clock,
            checks: AtomicU64::new(0),
        }
    }
}

impl<C: Clock> VoteBudget<C> {
    /// Charge one vote with a note of `note_bytes` bytes to `client` and to the server, or say
    /// which budget is spent and when to retry. The client's budgets are checked first, so a
    /// client over its own budget spends nothing of everyone's. (A vote refused by a later
    /// budget keeps what the earlier ones charged: refusals err on the side of refusing.)
    pub fn charge(&self, client: IpAddr, note_bytes: usize) -> Result<(), BudgetError> {
        let client = client_key(client);
        self.sweep()?;
        let notes = u32::try_from(note_bytes).ok().and_then(NonZeroU32::new);
        if note_bytes > 0 && notes.is_none() {
            // Over u32::MAX bytes: more than any budget.
            return Err(self.never(Spent::ClientNotes));
        }
        self.client_votes
            .check_key(&client)
            .map_err(|t| self.over(Spent::ClientVotes, &t))?;
        if let Some(n) = notes {
            self.check_n(
                self.client_notes.check_key_n(&client, n),
                Spent::ClientNotes,
            )?;
        }
        self.votes
            .check()
            .map_err(|t| self.over(Spent::Votes, &t))?;
        if let Some(n) = notes {
            self.check_n(self.notes.check_n(n), Spent::Notes)?;
        }
        Ok(())
    }

    /// Clients whose budget state is remembered now.
    pub fn clients(&self) -> usize {
        self.client_votes.len()
    }

    /// Every [`SWEEP_EVERY`] checks, or when the map is full, drop the clients whose budgets are
    /// full again; still full after that: refuse.
    fn sweep(&self) -> Result<(), BudgetError> {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        let full = self.client_votes.len() >= self.config.max_clients;
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 || full {
            for map in [&self.client_votes, &self.client_notes] {
                map.retain_recent();
                map.shrink_to_fit();
            }
        }
        if full && self.client_votes.len() >= self.config.max_clients {
            // A client that cast one vote is forgotten two votes' refill later.
            let retry_after =
                Duration::from_secs(2 * 3600) / self.config.client_votes_per_hour.get();
            return Err(BudgetError {
                spent: Spent::Clients,
                retry_after,
                config: self.config,
            });
        }
        Ok(())
    }

    fn check_n(
        &self,
        outcome: Result<Result<(), NotUntil<C::Instant>>, governor::InsufficientCapacity>,
        spent: Spent,
    ) -> Result<(), BudgetError> {
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(t)) => Err(self.over(spent, &t)),
            Err(_) => Err(self.never(spent)),
        }
    }

    fn over(&self, spent: Spent, until: &NotUntil<C::Instant>) -> BudgetError {
        BudgetError {
            spent,
            retry_after: until.wait_time_from(self.clock.now()),
            config: self.config,
        }
    }

    /// A note larger than a whole hour's budget: it will never fit.
    fn never(&self, spent: Spent) -> BudgetError {
        BudgetError {
            spent,
            retry_after: Duration::from_secs(3600),
            config: self.config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::net::Ipv4Addr;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    fn config(client_votes: u32, client_notes: u32, votes: u32, notes: u32) -> BudgetConfig {
        BudgetConfig {
            client_votes_per_hour: nz(client_votes),
            client_note_bytes_per_hour: nz(client_notes),
            votes_per_hour: nz(votes),
            note_bytes_per_hour: nz(notes),
            max_clients: 1000,
        }
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + n))
    }

    #[test]
    fn a_client_over_its_votes_waits_and_others_do_not() {
        let clock = FakeRelativeClock::default();
        let budget = VoteBudget::with_clock(config(3, 1000, 100, 10_000), clock.clone());
        for _ in 0..3 {
            budget.charge(ip(1), 0).expect("within budget");
        }
        let err = budget.charge(ip(1), 0).expect_err("the fourth vote");
        assert_eq!(err.spent, Spent::ClientVotes);
        // One vote comes back every 20 minutes.
        assert_eq!(err.retry_after, Duration::from_secs(1200));
        assert!(err.to_string().contains("3 an hour"), "{err}");
        budget.charge(ip(2), 0).expect("another client");
        clock.advance(Duration::from_secs(1200));
        budget.charge(ip(1), 0).expect("refilled");
        assert!(budget.charge(ip(1), 0).is_err());
    }

    #[test]
    fn note_bytes_are_budgeted_per_client_and_a_huge_note_never_fits() {
        let clock = FakeRelativeClock::default();
        let budget = VoteBudget::with_clock(config(100, 100, 100, 10_000), clock);
        budget.charge(ip(1), 60).expect("60 of 100 bytes");
        let err = budget.charge(ip(1), 60).expect_err("120 of 100 bytes");
        assert_eq!(err.spent, Spent::ClientNotes);
        budget
            .charge(ip(1), 0)
            .expect("a vote without a note still fits");
        let err = budget
            .charge(ip(2), 101)
            .expect_err("more than an hour's budget");
        assert_eq!(
            (err.spent, err.retry_after),
            (Spent::ClientNotes, Duration::from_secs(3600))
        );
    }

    #[test]
    fn everyone_together_has_a_budget() {
        let clock = FakeRelativeClock::default();
        let budget = VoteBudget::with_clock(config(10, 1000, 5, 150), clock);
        for n in 0..5 {
            budget.charge(ip(n), 0).expect("within the server's budget");
        }
        let err = budget
            .charge(ip(9), 0)
            .expect_err("the server's sixth vote");
        assert_eq!(err.spent, Spent::Votes);
        assert!(err.to_string().contains("from everyone"), "{err}");
        let budget =
            VoteBudget::with_clock(config(10, 1000, 50, 150), FakeRelativeClock::default());
        budget.charge(ip(1), 100).expect("100 of 150");
        let err = budget.charge(ip(2), 100).expect_err("200 of 150");
        assert_eq!(err.spent, Spent::Notes);
    }

    #[test]
    fn a_client_over_its_own_budget_spends_nothing_of_everyones() {
        let budget =
            VoteBudget::with_clock(config(2, 1000, 3, 10_000), FakeRelativeClock::default());
        budget.charge(ip(1), 0).expect("1");
        budget.charge(ip(1), 0).expect("2");
        for _ in 0..10 {
            assert_eq!(
                budget.charge(ip(1), 0).expect_err("over").spent,
                Spent::ClientVotes
            );
        }
        budget
            .charge(ip(2), 0)
            .expect("the server's third vote is still there");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(client_key(mapped), ip(1));
        let budget =
            VoteBudget::with_clock(config(1, 1000, 100, 10_000), FakeRelativeClock::default());
        budget.charge(a, 0).expect("first");
        assert_eq!(
            budget.charge(b, 0).expect_err("same /64").spent,
            Spent::ClientVotes
        );
        budget.charge(other, 0).expect("another /64");
    }

    #[test]
    fn many_clients_stay_bounded_in_memory() {
        let clock = FakeRelativeClock::default();
        let mut c = config(60, 1000, 1_000_000, 10_000_000);
        c.max_clients = 500;
        let budget = VoteBudget::with_clock(c, clock.clone());
        for n in 0..500 {
            budget.charge(ip(n), 0).expect("room for 500 clients");
        }
        let err = budget.charge(ip(10_000), 0).expect_err("the 501st client");
        assert_eq!(err.spent, Spent::Clients);
        assert_eq!(budget.clients(), 500);
        // Two votes' refill (two minutes) later, every budget is full again and forgotten.
        assert_eq!(err.retry_after, Duration::from_secs(120));
        clock.advance(Duration::from_secs(120));
        budget.charge(ip(10_000), 0).expect("room again");
        assert_eq!(budget.clients(), 1);
        // The periodic sweep forgets clients without waiting for the map to fill.
        for n in 0..SWEEP_EVERY as u32 {
            clock.advance(Duration::from_secs(60));
            budget
                .charge(ip(20_000 + n), 0)
                .expect("a new client each minute");
        }
        assert!(budget.clients() < 10, "{} remembered", budget.clients());
    }
}
