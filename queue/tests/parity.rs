//! The lease script (`lua/lease.lua`) applies candor-core's scheduling rules
//! inside Redis, because Redis must decide atomically with the lease: the
//! seed-by-seed dispatch order (`JobSpace::dispatch`), a job's report cell
//! (`JobSpace::cell_of`) and the budget (`budget::decide`, with or without
//! a batched sweep's reserve) are copied into Lua; early stopping (`early::keeps_going`) reaches it as the decision
//! table written at submit. These tests start a real `redis-server`, drive
//! sweeps through the crate's own scripts (`Queue`), run the same scenarios
//! through the Rust rules, and require the same decisions.
//!
//! The Rust side here is a [`Model`] of one sweep's leasing built from the
//! core rules in the lease script's order: the budget is asked once per
//! lease call (only when a job is waiting to start), then jobs handed back
//! are leased again first, then new positions, each through early stopping.
//! The local runner asks in the other order, job by job: early stopping for
//! the next position, then the budget for that one job. The decisions are the
//! same rules over the same counts; what differs is when they are taken: a
//! refused or waiting job has already had its early-stopping decision taken
//! locally and not yet in Redis, and a budget that runs out where early
//! stopping would skip every job left ends a distributed sweep
//! `budget_exhausted` where a local run completes. How each side counts what
//! the budget is fed also differs, as `core/src/budget.rs` documents (a job
//! held by fail fast, a job waiting to retry, an expired lease, a resumed
//! run); the scenarios here keep clear of those but for the job handed back
//! when a sweep pauses, which Redis leases again first (the local run stops).

mod common;

use common::RedisServer;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use candor_testkit::Rng;

use candor_core::budget::{self, Admit, Budget, Spending};
use candor_core::early::{DecisionTable, EarlyStop, keeps_going};
use candor_core::spec::EarlyStopping;
use candor_core::stats::{Z95, wilson};
use candor_core::{JobSpace, JobTuple};
use candor_queue::{Completion, FailKind, Failure, JobRef, JobStatus, Lease, NewSweep, Queue};

/// Leases that never expire during a test.
const TTL_MS: u64 = 600_000;

fn space(models: u64, variants: u64, queries: u64, conditions: u64, seeds: u64) -> JobSpace {
    JobSpace {
        models,
        variants,
        queries,
        conditions,
        seeds,
    }
}

/// A sweep as the coordinator submits one (see `server/sweeps.rs`), without
/// a spec; without a reserve (see [`reserved`]).
fn new_sweep(id: &str, s: JobSpace, budget_micro_usd: u64, early: Option<EarlyStopping>) -> NewSweep {
    NewSweep {
        id: id.to_string(),
        name: id.to_string(),
        total: s.total(),
        max_attempts: 3,
        classifiers: 1,
        simulated: true,
        budget_micro_usd,
        reserve_micro_usd: 0,
        seeds: s.seeds,
        queries: s.queries,
        conditions: s.conditions,
        early_stopping: early.map(|e| DecisionTable::new(e.target_width, s.per_cell()).unwrap()),
        min_seeds: early.map_or(1, |e| e.min_seeds),
        fail_fast: 0,
        retention_ms: None,
        cells_per_model: (s.cells() as u64) / s.models,
    }
}

/// The same sweep with a reserve: as a sweep with a batched model under test.
fn reserved(s: NewSweep, reserve_micro_usd: u64) -> NewSweep {
    NewSweep { reserve_micro_usd, ..s }
}

fn rule(target_width: f64, min_seeds: u32) -> EarlyStopping {
    EarlyStopping {
        target_width,
        min_seeds,
    }
}

async fn submit(q: &Queue, s: &NewSweep) {
    assert!(q.submit(s, "{}").await.unwrap(), "sweep {} is new", s.id);
}

async fn lease(q: &Queue, slots: u32) -> Vec<Lease> {
    q.lease(slots, TTL_MS).await.unwrap()
}

fn indices(ls: &[Lease]) -> Vec<u64> {
    ls.iter().map(|l| l.index).collect()
}

/// What the budget sees in Redis: the sweep's meta and its leases.
async fn spending(q: &Queue, id: &str) -> Spending {
    let mut con = q.connection();
    let (spent, dearest, done, reserve): (Option<u64>, Option<u64>, Option<u64>, Option<u64>) = redis::cmd("HMGET")
        .arg(format!("candor:s:{id}:meta"))
        .arg("spent")
        .arg("cost_max")
        .arg("done")
        .arg("reserve")
        .query_async(&mut con)
        .await
        .unwrap();
    let in_flight: u64 = redis::cmd("ZCARD")
        .arg(format!("candor:s:{id}:leases"))
        .query_async(&mut con)
        .await
        .unwrap();
    Spending {
        spent: spent.unwrap_or(0),
        dearest: dearest.unwrap_or(0),
        finished: done.unwrap_or(0),
        in_flight,
        reserve: reserve.unwrap_or(0),
    }
}

async fn state(q: &Queue, id: &str) -> String {
    q.state(id).await.unwrap().unwrap().state
}

/// Writes a cell's counts into the sweep's tally, as `complete` keeps them.
async fn set_tally(q: &Queue, id: &str, cell: usize, ok: u64, yes: u64) {
    let mut con = q.connection();
    let _: () = redis::cmd("HSET")
        .arg(format!("candor:s:{id}:tally"))
        .arg(format!("{cell}:ok"))
        .arg(ok)
        .arg(format!("{cell}:y0"))
        .arg(yes)
        .query_async(&mut con)
        .await
        .unwrap();
}

/// Records a leased job's result with what it cost and its verdict.
async fn complete(q: &Queue, s: &JobSpace, l: &Lease, cost: u64, yes: bool) {
    let cell = s.cell_of(&s.decode(l.index)) as u32;
    let c = Completion {
        index: l.index,
        fence: l.fence,
        status: JobStatus::Ok,
        class_bits: u32::from(yes),
        cell,
        dead: None,
        result: b"{}".to_vec(),
        parsed: None,
        cache_hits: 0,
        cost_micro_usd: cost,
    };
    let r = q.complete(&l.sweep_id, "part", &[c]).await.unwrap();
    assert_eq!(r, vec![candor_queue::Recorded::Recorded]);
}

fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

fn width(y: u64, n: u64) -> f64 {
    let w = wilson(y, n, Z95);
    w.hi - w.lo
}

/// One sweep leased by candor-core's rules (see the module comment).
struct Model {
    space: JobSpace,
    limit: Option<u64>,
    spending: Spending,
    exhausted: bool,
    paused: bool,
    early: Option<EarlyStop>,
    cursor: u64,
    handed_back: VecDeque<u64>,
}

impl Model {
    fn new(space: JobSpace, limit: Option<u64>, reserve: u64, early: Option<EarlyStopping>) -> Model {
        Model {
            space,
            limit,
            spending: Spending {
                reserve,
                ..Spending::default()
            },
            exhausted: false,
            paused: false,
            early: early.map(|r| EarlyStop::for_space(r, &space)),
            cursor: 0,
            handed_back: VecDeque::new(),
        }
    }

    fn lease(&mut self, slots: u64) -> Vec<u64> {
        if self.exhausted || self.paused {
            return Vec::new();
        }
        let waiting = !self.handed_back.is_empty() || self.cursor < self.space.total();
        let mut share = slots;
        if let Some(limit) = self.limit
            && waiting
        {
            match budget::decide(limit, self.spending, slots) {
                Admit::Start(n) => share = n,
                Admit::Wait => share = 0,
                Admit::Exhausted => {
                    self.exhausted = true;
                    return Vec::new();
                }
            }
        }
        let mut out = Vec::new();
        while (out.len() as u64) < share
            && let Some(i) = self.handed_back.pop_front()
        {
            out.push(i);
        }
        while (out.len() as u64) < share && self.cursor < self.space.total() {
            let i = self.space.dispatch(self.cursor);
            self.cursor += 1;
            let t = self.space.decode(i);
            if self
                .early
                .as_ref()
                .is_none_or(|e| e.admit(self.space.cell_of(&t), t.seed))
            {
                out.push(i);
            }
        }
        self.spending.in_flight += out.len() as u64;
        out
    }

    fn finish(&mut self, index: u64, cost: u64, yes: bool) {
        let s = &mut self.spending;
        s.spent += cost;
        s.dearest = s.dearest.max(cost);
        s.finished += 1;
        s.in_flight -= 1;
        if let Some(e) = &self.early {
            e.record(self.space.cell_of(&self.space.decode(index)), true, yes);
        }
    }

    fn hand_back(&mut self, index: u64) {
        self.spending.in_flight -= 1;
        self.handed_back.push_back(index);
    }

    fn cutoffs(&self) -> HashMap<u64, u32> {
        self.early.as_ref().map_or_else(HashMap::new, |e| {
            e.stops()
                .iter()
                .enumerate()
                .filter_map(|(c, s)| s.map(|s| (c as u64, s)))
                .collect()
        })
    }
}

/// A sweep in Redis and its model, driven by the same steps.
struct Twin<'a> {
    q: &'a Queue,
    id: String,
    model: Model,
    /// Jobs leased and not finished, in the order they were leased.
    held: Vec<Lease>,
}

impl<'a> Twin<'a> {
    async fn submit(q: &'a Queue, id: &str, s: JobSpace, limit: Option<u64>, early: Option<EarlyStopping>) -> Twin<'a> {
        Twin::reserved(q, id, s, limit, 0, early).await
    }

    /// A sweep whose budget counts each job in flight at `reserve` at least.
    async fn reserved(
        q: &'a Queue,
        id: &str,
        s: JobSpace,
        limit: Option<u64>,
        reserve: u64,
        early: Option<EarlyStopping>,
    ) -> Twin<'a> {
        submit(q, &reserved(new_sweep(id, s, limit.unwrap_or(0), early), reserve)).await;
        Twin {
            q,
            id: id.to_string(),
            model: Model::new(s, limit, reserve, early),
            held: Vec::new(),
        }
    }

    /// Leases up to `slots` both ways; the same jobs, the same counts, the same state.
    async fn lease(&mut self, slots: u32, step: &str) -> Vec<u64> {
        let got = lease(self.q, slots).await;
        let want = self.model.lease(u64::from(slots));
        assert_eq!(indices(&got), want, "{}: lease({slots}) at {step}", self.id);
        self.held.extend(got);
        self.check(step).await;
        want
    }

    /// Finishes the `nth` job held (modulo how many are held).
    async fn finish(&mut self, nth: usize, cost: u64, yes: bool, step: &str) {
        let l = self.held.remove(nth % self.held.len());
        complete(self.q, &self.model.space, &l, cost, yes).await;
        self.model.finish(l.index, cost, yes);
        self.check(step).await;
    }

    /// Takes the sweep out of leasing (so the next one is leased alone).
    async fn end(self) {
        self.q.cancel(&self.id).await.unwrap();
    }

    async fn check(&self, step: &str) {
        let st = self.q.state(&self.id).await.unwrap().unwrap();
        assert_eq!(
            spending(self.q, &self.id).await,
            self.model.spending,
            "{}: counts at {step}",
            self.id
        );
        assert_eq!(
            st.state == "budget_exhausted",
            self.model.exhausted,
            "{}: state {} at {step}",
            self.id,
            st.state
        );
        assert_eq!(st.cutoffs, self.model.cutoffs(), "{}: cutoffs at {step}", self.id);
    }
}

#[tokio::test]
async fn dispatch_order_is_the_same_over_odd_radices() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    let shapes = [
        space(1, 1, 5, 1, 3),
        space(1, 1, 5, 3, 7),
        space(1, 1, 1, 1, 7),
        space(2, 3, 1, 1, 5),
        space(3, 1, 7, 1, 1),
        space(1, 2, 3, 5, 4),
        space(2, 1, 3, 2, 9),
        space(1, 1, 13, 1, 11),
    ];
    for (i, s) in shapes.iter().enumerate() {
        let rust: Vec<u64> = (0..s.total()).map(|p| s.dispatch(p)).collect();
        for slots in [1, 4] {
            let id = format!("order{i}x{slots}");
            submit(&q, &new_sweep(&id, *s, 0, None)).await;
            let mut redis_order = Vec::new();
            loop {
                let got = lease(&q, slots).await;
                if got.is_empty() {
                    break;
                }
                assert!(got.len() <= slots as usize);
                redis_order.extend(indices(&got));
            }
            assert_eq!(redis_order, rust, "{s:?} leased {slots} at a time");
            q.cancel(&id).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_jobs_cell_is_the_same() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    // One output, no yes: narrower than 0.9 (0.79), so the cell stops at seed
    // 1; every other cell has none and keeps going. Which jobs the lease
    // script skips shows which cell it finds for each index.
    let shapes = [
        space(2, 3, 4, 2, 3),
        space(1, 1, 3, 5, 2),
        space(3, 2, 1, 1, 2),
        space(2, 1, 5, 3, 2),
        space(1, 4, 2, 3, 2),
    ];
    for (i, s) in shapes.iter().enumerate() {
        for cell in 0..s.cells() {
            let id = format!("cell{i}c{cell}");
            let mut t = Twin::submit(&q, &id, *s, None, Some(rule(0.9, 1))).await;
            let round = (s.total() / s.seeds) as u32;
            let first = t.lease(round, "seed 0").await;
            assert_eq!(first.len() as u32, round);
            set_tally(&q, &id, cell, 1, 0).await;
            t.model.early.as_ref().unwrap().record(cell, true, false);
            let rest = t.lease(s.total() as u32, "seeds from 1").await;
            let stopped: Vec<u64> = (round as u64..s.total())
                .map(|p| s.dispatch(p))
                .filter(|&i| s.cell_of(&s.decode(i)) == cell)
                .collect();
            assert_eq!(rest.len() + stopped.len() + first.len(), s.total() as usize);
            assert!(stopped.iter().all(|i| !rest.contains(i)), "{s:?}: cell {cell}");
            assert_eq!(
                q.state(&id).await.unwrap().unwrap().cutoffs,
                HashMap::from([(cell as u64, 1)])
            );
            q.cancel(&id).await.unwrap();
        }
    }
}

#[tokio::test]
async fn early_stopping_cutoffs_are_the_same_at_edge_counts() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    // One cell per case (a condition each), one query, seeds enough that a
    // cell may hold every count tried.
    const SEEDS: u64 = 100_000;
    let mut counts: Vec<u64> = vec![
        0, 1, 2, 3, 4, 5, 7, 10, 37, 100, 380, 381, 384, 385, 1000, 9604, 9999, 10_000, 38_412, 38_413, 100_000,
    ];
    let targets = [
        0.9,
        width(0, 1),
        next_up(width(0, 1)),
        0.5,
        0.25,
        width(37, 100),
        next_up(width(37, 100)),
        0.1,
        0.05,
        0.02,
        width(5_000, 10_000),
        next_up(width(5_000, 10_000)),
        0.01,
        0.005,
    ];
    for (i, &target) in targets.iter().enumerate() {
        // Counts around the table's end too.
        let len = DecisionTable::new(target, SEEDS).unwrap().len();
        counts.extend(
            [len.saturating_sub(1), len, len + 1]
                .into_iter()
                .filter(|&n| n <= SEEDS),
        );
        // (n, y): the counts whose own widths are among the targets, then a grid.
        let mut cases: Vec<(u64, u64)> = vec![(1, 0), (100, 37), (100, 63), (10_000, 5_000)];
        for &n in &counts {
            for y in [0, 1, n / 4, n / 2, n.div_ceil(2), n.saturating_sub(1), n] {
                if y <= n && !cases.contains(&(n, y)) {
                    cases.push((n, y));
                }
            }
        }
        let s = space(1, 1, 1, cases.len() as u64, SEEDS);
        let id = format!("wilson{i}");
        submit(&q, &new_sweep(&id, s, 0, Some(rule(target, 1)))).await;
        let c = cases.len() as u32;
        assert_eq!(lease(&q, c).await.len() as u32, c, "seed 0");
        for (cell, &(n, y)) in cases.iter().enumerate() {
            set_tally(&q, &id, cell, n, y).await;
        }
        let keep: Vec<usize> = (0..cases.len())
            .filter(|&cell| keeps_going(cases[cell].1, cases[cell].0, target))
            .collect();
        let stops: HashMap<u64, u32> = (0..cases.len())
            .filter(|cell| !keep.contains(cell))
            .map(|cell| (cell as u64, 1))
            .collect();
        let at = |cell: usize, seed: u32| {
            s.encode(&JobTuple {
                model: 0,
                variant: 0,
                query: 0,
                condition: cell,
                seed,
            })
        };
        // Seed 1 of the cells that keep going, and one more job (the first
        // such cell's seed 2), so that every cell's seed 1 has come up.
        let want: Vec<u64> = keep
            .iter()
            .map(|&cell| at(cell, 1))
            .chain(keep.first().map(|&cell| at(cell, 2)))
            .collect();
        let got = indices(&lease(&q, keep.len() as u32 + 1).await);
        let st = q.state(&id).await.unwrap().unwrap();
        assert_eq!(st.cutoffs, stops, "target {target}: cells stopped");
        assert_eq!(got, want, "target {target}: jobs leased");
        for (cell, &(n, y)) in cases.iter().enumerate() {
            assert_eq!(
                stops.contains_key(&(cell as u64)),
                !keeps_going(y, n, target),
                "target {target}: {y} of {n}"
            );
        }
        q.cancel(&id).await.unwrap();
    }

    // min_seeds: no decision before it, then the same decision.
    let s = space(1, 1, 1, 3, 5);
    let mut t = Twin::submit(&q, "minseeds", s, None, Some(rule(0.9, 2))).await;
    t.lease(3, "seed 0").await;
    for cell in 0..3 {
        set_tally(&q, "minseeds", cell, 1, 0).await;
        t.model.early.as_ref().unwrap().record(cell, true, false);
    }
    assert_eq!(t.lease(3, "seed 1, before min_seeds").await.len(), 3);
    assert_eq!(t.lease(3, "seed 2").await, Vec::<u64>::new());
    assert_eq!(t.model.cutoffs(), HashMap::from([(0, 2), (1, 2), (2, 2)]));
}

#[tokio::test]
async fn the_budget_admits_and_refuses_alike() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    let s = space(1, 1, 10, 2, 50);

    // No cost known: one job at a time until one has finished.
    let mut t = Twin::submit(&q, "nocost", s, Some(1_000), None).await;
    assert_eq!(t.lease(4, "first").await.len(), 1);
    assert_eq!(t.lease(4, "one running").await.len(), 0);
    assert_eq!(state(&q, "nocost").await, "running", "waiting is not exhausted");
    t.finish(0, 100, false, "first done").await;
    // One cost known: 900 left buys 9 at 100, half of it is 4; then one by one.
    assert_eq!(t.lease(8, "one cost known").await.len(), 4);
    for n in [1, 1, 1, 1] {
        assert_eq!(t.lease(8, "several in flight").await.len(), n);
    }
    // 100 spent + (8 in flight + 1) × 100 reaches 1000.
    assert_eq!(t.lease(8, "at the limit").await.len(), 0);
    assert_eq!(state(&q, "nocost").await, "budget_exhausted");
    let running: Vec<JobRef> = t
        .held
        .iter()
        .map(|l| JobRef {
            sweep_id: l.sweep_id.clone(),
            index: l.index,
            fence: l.fence,
        })
        .collect();
    assert_eq!(
        q.renew(&running, TTL_MS).await.unwrap(),
        vec![true; 8],
        "jobs running when the budget ran out keep their leases"
    );
    for i in 0..8 {
        t.finish(0, 100, false, &format!("in flight {i} done")).await;
    }
    assert_eq!(t.lease(8, "after").await.len(), 0, "jobs in flight finish, none starts");
    t.end().await;

    // Spent near the limit: 800 spent at 100 a job.
    let mut t = Twin::submit(&q, "near", s, Some(1_000), None).await;
    for i in 0..8 {
        t.lease(1, &format!("job {i}")).await;
        t.finish(0, 100, false, &format!("job {i} done")).await;
    }
    assert_eq!(t.lease(1, "900 < 1000").await.len(), 1);
    assert_eq!(t.lease(1, "800 + 2 × 100").await.len(), 0);
    assert!(t.model.exhausted);
    t.end().await;

    // A dearer job raises the estimate of every job in flight.
    let mut t = Twin::submit(&q, "dearer", s, Some(10_000), None).await;
    t.lease(1, "first").await;
    t.finish(0, 50, false, "cheap first").await;
    t.lease(16, "batch at 50").await;
    t.finish(3, 900, false, "a dear one").await;
    t.lease(16, "batch at 900").await;
    t.lease(16, "again").await;
    t.end().await;

    // Jobs that cost nothing leave the estimate at 0.
    let mut t = Twin::submit(&q, "free", s, Some(1_000), None).await;
    t.lease(1, "first").await;
    t.finish(0, 0, false, "free").await;
    assert_eq!(t.lease(64, "at 0").await.len(), 64);
    t.end().await;

    // Every job started: a lease call near the end (an idle worker) finds
    // nothing to start and does not end the sweep, which ends done.
    let small = space(1, 1, 3, 2, 1);
    let mut t = Twin::submit(&q, "allstarted", small, Some(650), None).await;
    t.lease(5, "first").await;
    t.finish(0, 100, false, "first").await;
    while t.model.cursor < small.total() {
        assert!(!t.lease(5, "until all started").await.is_empty());
    }
    t.lease(5, "nothing left: 100 + 6 × 100 would pass 650").await;
    assert_eq!(state(&q, "allstarted").await, "running");
    while !t.held.is_empty() {
        t.finish(0, 100, false, "the rest").await;
    }
    assert_eq!(state(&q, "allstarted").await, "done");

    // Many steps at random: leases of 1..8 slots, jobs finishing in any
    // order at any cost (some free), until the budget runs out.
    for seed in 1..=4u64 {
        random_steps(&q, &format!("random{seed}"), s, seed, 0).await;
    }
}

/// Leases of 1..8 slots and jobs finishing in any order at any cost (50 to
/// 450, some free), at random from `seed`, under a budget of 40,000 with
/// `reserve`, until the budget runs out; both sides checked at each step.
async fn random_steps(q: &Queue, id: &str, s: JobSpace, seed: u64, reserve: u64) {
    let mut rng = Rng(seed);
    let mut t = Twin::reserved(q, id, s, Some(40_000), reserve, None).await;
    for step in 0..400 {
        if t.model.exhausted {
            break;
        }
        if t.held.is_empty() || rng.below(3) == 0 {
            t.lease(1 + rng.below(8) as u32, &format!("step {step}")).await;
        } else {
            let cost = if rng.below(5) == 0 { 0 } else { 50 + rng.below(400) };
            t.finish(rng.below(64) as usize, cost, false, &format!("step {step}"))
                .await;
        }
    }
    assert!(t.model.exhausted, "{id}: the budget ran out");
    t.end().await;
}

#[tokio::test]
async fn a_reserve_admits_and_refuses_alike() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    let s = space(1, 1, 10, 2, 50);

    // Nothing finished, a reserve of 100: 1000 buys 10, half of it is 5;
    // then one by one until 0 + (9 in flight + 1) × 100 reaches 1000, when
    // the next waits for those in flight; once they have cost 100 each,
    // with nothing in flight, the budget is spent.
    let mut t = Twin::reserved(&q, "together", s, Some(1_000), 100, None).await;
    assert_eq!(t.lease(8, "first").await.len(), 5, "jobs start together");
    for n in [1, 1, 1, 1] {
        assert_eq!(t.lease(8, "several in flight").await.len(), n);
    }
    assert_eq!(t.lease(8, "the reservation does not fit").await.len(), 0);
    assert_eq!(state(&q, "together").await, "running", "it waits");
    for i in 0..9 {
        t.finish(0, 100, false, &format!("job {i}")).await;
    }
    assert_eq!(t.lease(8, "spent").await.len(), 0);
    assert_eq!(state(&q, "together").await, "budget_exhausted");
    t.end().await;

    // Cheap jobs leave the unit at the reserve; a dearer one raises it.
    let mut t = Twin::reserved(&q, "unit", s, Some(10_000), 300, None).await;
    t.lease(4, "first").await;
    t.finish(0, 50, false, "cheaper than the reserve").await;
    t.lease(16, "at the reserve").await;
    t.finish(2, 900, false, "dearer than the reserve").await;
    t.lease(16, "at 900").await;
    t.lease(16, "again").await;
    t.end().await;

    // Many steps at random, reserves below, within and above the costs
    // (50 to 450, some free), until the budget runs out.
    for (seed, reserve) in [(1u64, 1u64), (2, 150), (3, 300), (4, 600)] {
        random_steps(&q, &format!("reserved{seed}"), s, seed, reserve).await;
    }
}

#[tokio::test]
async fn the_local_budget_counts_as_redis_does() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    for reserve in [0, 250] {
        local_counts_as_redis(&q, &format!("local{reserve}"), reserve).await;
    }
}

/// The local runner's [`Budget`], asked one job at a time, and the lease
/// script in step over one sweep with `reserve`.
async fn local_counts_as_redis(q: &Queue, id: &str, reserve: u64) {
    let s = space(1, 1, 20, 2, 5);
    submit(q, &reserved(new_sweep(id, s, 5_000, None), reserve)).await;
    let mut b = Budget::new(5_000).with_reserve(reserve);
    let mut held: Vec<Lease> = Vec::new();
    let mut rng = Rng(7);
    // The most jobs in flight before any had finished.
    let mut first_round = 0;
    for step in 0..300 {
        // Three jobs asked for first: with a reserve they start together.
        if held.is_empty() || step < 3 || rng.below(2) == 0 {
            let got = lease(q, 1).await;
            let a = b.admit(1);
            match a {
                Admit::Start(1) => assert_eq!(got.len(), 1, "{id} step {step}"),
                Admit::Wait => assert!(got.is_empty() && state(q, id).await == "running", "{id} step {step}"),
                Admit::Exhausted => assert_eq!(state(q, id).await, "budget_exhausted", "{id} step {step}"),
                Admit::Start(n) => panic!("{n} jobs for one"),
            }
            held.extend(got);
            if a == Admit::Exhausted {
                break;
            }
        } else {
            let l = held.remove(rng.below(held.len() as u64) as usize);
            let cost = 100 + rng.below(200);
            complete(q, &s, &l, cost, false).await;
            b.finished(cost);
        }
        if b.spending().finished == 0 {
            first_round = first_round.max(held.len());
        }
        assert_eq!(spending(q, id).await, b.spending(), "{id} step {step}");
    }
    assert!(b.is_exhausted(), "{id}");
    assert_eq!(
        first_round > 1,
        reserve > 0,
        "{id}: {first_round} in flight before any had finished"
    );
    q.cancel(id).await.unwrap();
}

#[tokio::test]
async fn a_paused_sweep_resumes_where_it_stopped_with_its_cutoffs_and_budget() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    let s = space(1, 2, 4, 2, 8);
    let id = "resume";
    let mut t = Twin::submit(&q, id, s, Some(4_000), Some(rule(0.3, 2))).await;
    let mut rng = Rng(11);
    let mut paused_at = None;
    for step in 0..600 {
        if t.model.exhausted || (t.model.cursor >= s.total() && t.held.is_empty()) {
            break;
        }
        if paused_at.is_none() && step >= 40 && !t.held.is_empty() {
            // A provider refuses the key: the job goes back, the sweep pauses.
            let l = t.held.pop().expect("a job in flight");
            let f = Failure {
                index: l.index,
                fence: l.fence,
                kind: FailKind::Paused,
                error: "the provider refused the API key".into(),
                attempt: l.attempt,
                cell: s.cell_of(&s.decode(l.index)) as u32,
                result: Vec::new(),
                parsed: None,
                persistent: false,
            };
            assert_eq!(
                q.fail(id, "part", &[f]).await.unwrap(),
                vec![candor_queue::FailOutcome::Paused]
            );
            t.model.hand_back(l.index);
            t.model.paused = true;
            assert_eq!(state(&q, id).await, "paused");
            let before = q.state(id).await.unwrap().unwrap();
            assert_eq!(t.lease(8, "paused").await, Vec::<u64>::new());
            assert_eq!(q.resume(id).await.unwrap().as_deref(), Some("running"));
            t.model.paused = false;
            let after = q.state(id).await.unwrap().unwrap();
            assert_eq!(
                (after.cutoffs, after.spent_micro_usd, after.done),
                (before.cutoffs, before.spent_micro_usd, before.done)
            );
            let again = t.lease(1, "resumed").await;
            assert_eq!(again, vec![l.index], "the job handed back goes first");
            paused_at = Some(t.model.cursor);
            continue;
        }
        if t.held.is_empty() || rng.below(3) == 0 {
            t.lease(1 + rng.below(4) as u32, &format!("step {step}")).await;
        } else {
            // Cell 0 of each variant never complies, the others half the time.
            let nth = rng.below(64) as usize;
            let l = &t.held[nth % t.held.len()];
            let yes = s.decode(l.index).condition == 1 && rng.below(2) == 0;
            t.finish(nth, 40 + rng.below(40), yes, &format!("step {step}")).await;
        }
    }
    let cursor = paused_at.expect("the pause happened");
    assert!(cursor < t.model.cursor, "dispatch went on after the resume");
    assert!(!t.model.cutoffs().is_empty(), "some cell stopped early");
    assert!(t.model.exhausted, "the budget ran out after the resume");
}

#[tokio::test]
async fn deleting_an_ended_sweep_deletes_its_decision_table() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    let s = space(1, 1, 3, 2, 4);
    submit(&q, &new_sweep("gone", s, 0, Some(rule(0.2, 1)))).await;
    let mut con = q.connection();
    let key = "candor:s:gone:early";
    let table: Vec<u8> = redis::cmd("GET").arg(key).query_async(&mut con).await.unwrap();
    assert_eq!(table, DecisionTable::new(0.2, s.per_cell()).unwrap().to_bytes());
    q.cancel("gone").await.unwrap();
    assert_eq!(q.delete("gone").await.unwrap().as_deref(), Some("cancelled"));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("candor:s:gone:*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(keys.is_empty(), "left behind: {keys:?}");
}

#[tokio::test]
async fn a_dead_workers_leases_stop_counting_in_flight_once_they_expire() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    let s = space(1, 1, 10, 2, 5);
    submit(&q, &new_sweep("lapsed", s, 1_000, None)).await;
    let first = lease(&q, 1).await;
    complete(&q, &s, &first[0], 400, false).await;
    // 600 left buys one job at 400; a worker leases it for 200 ms and dies.
    assert_eq!(q.lease(2, 200).await.unwrap().len(), 1);
    // 400 + (1 + 1) × 400 reaches the budget: the sweep ends with that lease held.
    assert!(lease(&q, 1).await.is_empty());
    let st = q.state("lapsed").await.unwrap().unwrap();
    assert_eq!((st.state.as_str(), st.in_flight), ("budget_exhausted", 1));
    // Nobody leases an ended sweep's jobs again; once the lease has expired
    // the job is no longer shown in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while q.state("lapsed").await.unwrap().unwrap().in_flight > 0 {
        assert!(Instant::now() < deadline, "the expired lease still counts in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
