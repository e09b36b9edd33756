//! The spec's budget (`budget_usd`): which jobs may start, given what the
//! finished jobs cost and how many are running.
//!
//! The rule: a job starts only while the cost so far plus the jobs in flight,
//! each counted at a unit cost, stays under the limit. The unit is the
//! dearest finished job's cost, or the sweep's reserve if that is more: a
//! sweep with a batched model under test reserves an upper bound of one
//! job's cost up front (`Sweep::reserved_micro_usd`, 0 for other sweeps),
//! because a batched job takes hours to finish and tell what jobs cost.
//! Without a reserve, until a job has finished nothing is known of what jobs
//! cost, so they start one at a time; with one, they start together from the
//! first, and when the reserve is what does not fit, the next ones wait for
//! those in flight to finish and show what they cost. The first job refused
//! ends the sweep's dispatch (budget exhausted); jobs already running finish,
//! so the total can pass the limit by what they cost: at most the jobs in
//! flight at once × the unit (the reserve being an upper bound, a sweep
//! with a reserve stops with up to one reserve of its budget unspent).
//!
//! [`decide`] is the rule itself, a pure function of [`Spending`]. The local
//! runner keeps a [`Budget`] (asking for one job at a time); the lease script
//! in Redis (`candor-queue`'s `lua/lease.lua`) has a copy of [`decide`],
//! because Redis must decide atomically with the lease, and
//! `queue/tests/parity.rs` checks that the two agree. The reserve reaches
//! Redis in the sweep's meta (`reserve`, written at submit).
//!
//! The two ask the same rule with the same counts but for these, which are
//! how each side counts, not the rule (`queue/tests/parity.rs` says the same):
//! - `finished` is, locally, the jobs finished by this run (a resumed run
//!   counts the stored results only if one of them cost something, see
//!   [`Budget::resumed`]); in Redis it is the results recorded for the sweep
//!   (`done`). So a job that fail fast holds back counts locally (it ran and
//!   its cost is known) and not in Redis (nothing is recorded), and a paused
//!   and resumed distributed sweep keeps its count where a resumed local run
//!   whose stored results all cost nothing sends its first job alone.
//! - `in_flight` is, locally, the jobs admitted and not finished, a job
//!   waiting to retry included; in Redis it is the sweep's leases, expired
//!   ones included until leased again, and not a job waiting to retry (it is
//!   leased again through the same rule).
//! - Locally the rule is asked for one job, after early stopping has let it
//!   start; the lease script asks once per lease call, when a job waits to
//!   start, before early stopping looks at the jobs it scans. So a budget that
//!   runs out where early stopping would skip every job left ends a
//!   distributed sweep `budget_exhausted` where a local run completes.

/// What the rule looks at, in micro-USD and jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spending {
    /// What the finished jobs cost.
    pub spent: u64,
    /// The dearest finished job.
    pub dearest: u64,
    /// Jobs finished (0: nothing is known of what a job costs).
    pub finished: u64,
    /// Jobs started and not finished.
    pub in_flight: u64,
    /// What a job in flight is counted at, at least, before and after any
    /// has finished (0: no reserve, the first job goes alone).
    pub reserve: u64,
}

/// The rule's answer to "may `wanted` more jobs start?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// This many (at least 1, at most `wanted`) may start now.
    Start(u64),
    /// None now: no cost is known yet, there is no reserve and a job is
    /// running; ask again when it has finished.
    Wait,
    /// None, ever: the budget is spent (the sweep ends `budget_exhausted`).
    Exhausted,
}

/// The budget in micro-USD for `budget_usd` dollars. A positive budget is at
/// least one micro-dollar, so it is never confused with no budget (0 in Redis).
pub fn micro_usd(usd: f64) -> u64 {
    ((usd * 1e6) as u64).max(1)
}

/// The rule: whether `wanted` (at least 1) more jobs may start under a
/// budget of `limit` micro-USD. The unit is `max(dearest, reserve)`.
///
/// - No job finished yet and no reserve: one at a time (`Start(1)` with
///   nothing in flight, else `Wait`).
/// - `spent + (in_flight + 1) × unit ≥ limit`: `Wait` when jobs are in
///   flight and the unit is the reserve (more than any job has cost: they
///   may well cost less), else `Exhausted`.
/// - Else at most half of what the rest of the budget buys at the unit
///   cost, less what is in flight, but always one: `Start(min(wanted,
///   max(1, (limit − spent) / unit / 2 − in_flight)))`. Asked one job at a
///   time (as the local runner asks) the cap never binds; it bounds one
///   batch (a worker leasing many slots at once) while costs are still
///   poorly known. Every job of a batch still satisfies the check above.
pub fn decide(limit: u64, s: Spending, wanted: u64) -> Admit {
    let wanted = wanted.max(1);
    if s.finished == 0 && s.reserve == 0 {
        return if s.in_flight == 0 { Admit::Start(1) } else { Admit::Wait };
    }
    let unit = s.dearest.max(s.reserve);
    let estimate = s
        .spent
        .saturating_add(s.in_flight.saturating_add(1).saturating_mul(unit));
    if estimate >= limit {
        // What does not fit is a reservation, not a known cost: wait for
        // the jobs in flight to finish and show what they cost.
        if s.in_flight > 0 && s.reserve > s.dearest {
            return Admit::Wait;
        }
        return Admit::Exhausted;
    }
    let buys = (limit - s.spent) / unit.max(1) / 2;
    Admit::Start(buys.saturating_sub(s.in_flight).max(1).min(wanted))
}

/// A run's budget: the rule over counts it keeps as jobs start and finish.
/// Not shared by itself: callers on several threads hold it under one lock,
/// so that a job is never seen neither in flight nor spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    limit: u64,
    spending: Spending,
    exhausted: bool,
}

impl Budget {
    /// A budget of `limit` micro-USD with nothing spent.
    pub fn new(limit: u64) -> Budget {
        Budget::resumed(limit, 0, 0, 0)
    }

    /// A budget of `limit` micro-USD for a run that finds `stored` results
    /// costing `spent` in all, the dearest `dearest`. Results that cost
    /// nothing tell nothing of a job's cost: then, as in a fresh run, the
    /// first job goes alone (unless there is a reserve, see
    /// [`with_reserve`](Self::with_reserve)).
    pub fn resumed(limit: u64, spent: u64, dearest: u64, stored: u64) -> Budget {
        Budget {
            limit,
            spending: Spending {
                spent,
                dearest,
                finished: if dearest > 0 { stored } else { 0 },
                in_flight: 0,
                reserve: 0,
            },
            exhausted: false,
        }
    }

    /// This budget counting each job in flight at `reserve` micro-USD at
    /// least (`Sweep::reserved_micro_usd`; 0: no reserve).
    pub fn with_reserve(mut self, reserve: u64) -> Budget {
        self.spending.reserve = reserve;
        self
    }

    /// Asks to start `wanted` jobs (see [`decide`]); counts those admitted
    /// in flight, and remembers a refusal.
    pub fn admit(&mut self, wanted: u64) -> Admit {
        let a = decide(self.limit, self.spending, wanted);
        match a {
            Admit::Start(n) => self.spending.in_flight += n,
            Admit::Exhausted => self.exhausted = true,
            Admit::Wait => {}
        }
        a
    }

    /// Counts an admitted job that has finished, having cost `cost` micro-USD.
    pub fn finished(&mut self, cost: u64) {
        let s = &mut self.spending;
        s.spent = s.spent.saturating_add(cost);
        s.dearest = s.dearest.max(cost);
        s.finished += 1;
        s.in_flight = s.in_flight.saturating_sub(1);
    }

    /// Whether a job was refused: the run stops starting jobs.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn spending(&self) -> Spending {
        self.spending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(spent: u64, dearest: u64, finished: u64, in_flight: u64) -> Spending {
        Spending {
            spent,
            dearest,
            finished,
            in_flight,
            reserve: 0,
        }
    }

    /// The same with a reserve.
    fn r(spent: u64, dearest: u64, finished: u64, in_flight: u64, reserve: u64) -> Spending {
        Spending {
            reserve,
            ..s(spent, dearest, finished, in_flight)
        }
    }

    #[test]
    fn without_a_known_cost_jobs_go_one_at_a_time() {
        assert_eq!(decide(1_000, s(0, 0, 0, 0), 8), Admit::Start(1));
        assert_eq!(decide(1_000, s(0, 0, 0, 1), 1), Admit::Wait);
        let mut b = Budget::new(1_000);
        assert_eq!(b.admit(1), Admit::Start(1));
        assert_eq!(b.admit(1), Admit::Wait);
        b.finished(10);
        assert_eq!(b.spending(), s(10, 10, 1, 0));
        assert_eq!(b.admit(1), Admit::Start(1));
        assert!(!b.is_exhausted());
    }

    #[test]
    fn a_job_is_refused_once_spent_plus_flight_at_the_dearest_reaches_the_limit() {
        // 700 spent, dearest 100: a 3rd job in flight would make 1000.
        assert_eq!(decide(1_000, s(700, 100, 7, 1), 1), Admit::Start(1));
        assert_eq!(decide(1_000, s(700, 100, 7, 2), 1), Admit::Exhausted);
        assert_eq!(decide(1_000, s(899, 100, 9, 0), 1), Admit::Start(1));
        assert_eq!(decide(1_000, s(900, 100, 9, 0), 1), Admit::Exhausted);
        let mut b = Budget::resumed(1_000, 900, 100, 9);
        assert_eq!(b.admit(1), Admit::Exhausted);
        assert!(b.is_exhausted());
    }

    #[test]
    fn a_batch_gets_at_most_half_of_what_the_rest_buys_but_always_one() {
        // 1000 left buys 10 at 100; half is 5, less 1 in flight: 4.
        assert_eq!(decide(2_000, s(1_000, 100, 10, 1), 16), Admit::Start(4));
        assert_eq!(decide(2_000, s(1_000, 100, 10, 1), 3), Admit::Start(3));
        // 250 left buys 2; half is 1, less 1 in flight: 0, but always one.
        assert_eq!(decide(1_250, s(1_000, 100, 10, 1), 16), Admit::Start(1));
        // Jobs that cost nothing: the estimate stays 0 and the cap is large.
        assert_eq!(decide(1_000, s(0, 0, 3, 0), 64), Admit::Start(64));
        // One job at a time, the cap never binds: the limit alone decides.
        let mut b = Budget::resumed(1_000, 500, 100, 5);
        let started = std::iter::from_fn(|| matches!(b.admit(1), Admit::Start(1)).then_some(())).count();
        assert_eq!(started, 4, "500 + 5 × 100 reaches the limit");
        assert!(b.is_exhausted());
    }

    #[test]
    fn with_a_reserve_jobs_start_together_before_any_cost_is_known() {
        // 1000 buys 10 at the reserve of 100; half is 5.
        assert_eq!(decide(1_000, r(0, 0, 0, 0, 100), 8), Admit::Start(5));
        assert_eq!(decide(1_000, r(0, 0, 0, 3, 100), 8), Admit::Start(2));
        // 0 + (9 in flight + 1) × 100 reaches 1000: the reservation does
        // not fit, so the next job waits for those in flight.
        assert_eq!(decide(1_000, r(0, 0, 0, 8, 100), 1), Admit::Start(1));
        assert_eq!(decide(1_000, r(0, 0, 0, 9, 100), 1), Admit::Wait);
        // With nothing in flight, or a job dearer than the reserve, it ends.
        assert_eq!(decide(1_000, r(950, 40, 5, 0, 100), 1), Admit::Exhausted);
        assert_eq!(decide(1_000, r(700, 200, 5, 1, 100), 1), Admit::Exhausted);
        let mut b = Budget::new(1_000).with_reserve(100);
        let started = std::iter::from_fn(|| matches!(b.admit(1), Admit::Start(1)).then_some(())).count();
        assert_eq!(started, 9, "nine at once, none finished");
        assert!(!b.is_exhausted(), "the tenth waits");
        // They cost 20 each: the reservation is freed, more start.
        for _ in 0..9 {
            b.finished(20);
        }
        assert_eq!(b.admit(1), Admit::Start(1));
        // A resumed run whose stored results all cost nothing does not send
        // its first job alone either.
        let mut free = Budget::resumed(1_000, 0, 0, 40).with_reserve(100);
        assert_eq!(free.admit(1), Admit::Start(1));
        assert_eq!(free.admit(1), Admit::Start(1));
        assert_eq!(free.spending(), r(0, 0, 0, 2, 100));
    }

    #[test]
    fn the_unit_is_the_dearer_of_the_reserve_and_the_dearest_job() {
        // 300 spent, 2 in flight: a third at 150 makes 750, at 300 makes 1200.
        assert_eq!(decide(1_000, r(300, 150, 3, 2, 100), 1), Admit::Start(1));
        assert_eq!(decide(1_000, r(300, 150, 3, 2, 300), 1), Admit::Wait);
        assert_eq!(decide(1_000, r(300, 150, 3, 0, 800), 1), Admit::Exhausted);
        assert_eq!(decide(1_000, r(300, 250, 3, 2, 100), 1), Admit::Exhausted);
        // The cap counts at the unit too: 700 left buys 4 at 150 (half: 2), 2 at 300 (half: 1).
        assert_eq!(decide(1_000, r(300, 150, 3, 0, 100), 8), Admit::Start(2));
        assert_eq!(decide(1_000, r(300, 100, 3, 0, 300), 8), Admit::Start(1));
        let mut b = Budget::new(1_000).with_reserve(100);
        assert_eq!(b.admit(1), Admit::Start(1));
        b.finished(40);
        assert_eq!(
            b.spending(),
            r(40, 40, 1, 0, 100),
            "a cheap job leaves the unit at the reserve"
        );
    }

    #[test]
    fn every_job_of_a_batch_passes_the_check() {
        for limit in [1, 7, 100, 999, 10_000] {
            for (dearest, finished) in [(0, 0), (1, 1), (3, 1), (50, 1), (400, 1)] {
                for reserve in [0, 1, 60, 500] {
                    for spent in [0, 1, 90, 500, 998] {
                        for in_flight in 0..12 {
                            let sp = r(spent, dearest, finished, in_flight, reserve);
                            let unit = dearest.max(reserve);
                            if let Admit::Start(n) = decide(limit, sp, 1_000)
                                && (finished > 0 || reserve > 0)
                            {
                                assert!(spent + (in_flight + n) * unit < limit, "{sp:?} {limit}: {n}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_resumed_run_knows_the_dearest_stored_job_unless_all_were_free() {
        let b = Budget::resumed(1_000, 300, 60, 5);
        assert_eq!(b.spending(), s(300, 60, 5, 0));
        let free = Budget::resumed(1_000, 0, 0, 40);
        assert_eq!(free.spending(), s(0, 0, 0, 0), "the first job goes alone");
    }

    #[test]
    fn a_budget_is_at_least_one_micro_dollar() {
        assert_eq!(micro_usd(1.0), 1_000_000);
        assert_eq!(micro_usd(0.25), 250_000);
        assert_eq!(micro_usd(1e-9), 1);
    }
}
