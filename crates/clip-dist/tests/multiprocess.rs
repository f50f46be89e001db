//! Multi-process tests on loopback with Gloo. `cargo test` runs this binary's `main` as the
//! coordinator, which spawns copies of itself as ranks (`CLIP_DIST_SCENARIO` names what a rank
//! runs); a rank reports through its exit code and stderr. Ends with "N passed, N failed".

// A test harness talks to its user.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clip_dist::{Backend, Dist, Error, GradReducer, ReduceOp, Reduced};
use clip_loss::{clip_loss, clip_loss_gathered, siglip_loss, siglip_loss_gathered, with_local_block};
use tch::{Device, Kind, Tensor};

/// Exit code of a rank whose collective failed the way the scenario expects.
const EXPECTED_FAILURE: i32 = 3;

fn main() -> ExitCode {
    match std::env::var("CLIP_DIST_SCENARIO") {
        Ok(scenario) => worker(&scenario),
        Err(_) => coordinator(),
    }
}

// ---------------------------------------------------------------- ranks

fn worker(scenario: &str) -> ExitCode {
    let dist = match Dist::from_env(Backend::Gloo) {
        Ok(dist) => dist,
        Err(err) => {
            eprintln!("init failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match scenario {
        "collectives" => collectives(&dist),
        "loss" => loss(&dist),
        "dead-rank" => return dead_rank(&dist),
        "dead-rank-overlap" => return dead_rank_overlap(&dist),
        "grad-reducer" => grad_reducer(&dist),
        "mismatch" => mismatch(&dist),
        other => Err(format!("unknown scenario {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rank {}: {message}", dist.rank);
            ExitCode::FAILURE
        }
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

fn collectives(dist: &Dist) -> Result<(), String> {
    let (r, w) = (dist.rank as f64, dist.world_size as f64);
    let e = |e: Error| e.to_string();
    let mut t = Tensor::from_slice(&[r + 1.0, 2.0 * (r + 1.0)]);
    dist.all_reduce_(&mut t, ReduceOp::Sum).map_err(e)?;
    let sum = w * (w + 1.0) / 2.0;
    ensure(Vec::<f64>::try_from(&t).unwrap() == vec![sum, 2.0 * sum], || format!("sum gave {t}"))?;
    let mut t = Tensor::from_slice(&[r]);
    dist.all_reduce_(&mut t, ReduceOp::Avg).map_err(e)?;
    ensure(f64::try_from(&t).unwrap() == (w - 1.0) / 2.0, || format!("avg gave {t}"))?;
    let mut t = Tensor::from_slice(&[r]);
    dist.all_reduce_(&mut t, ReduceOp::Max).map_err(e)?;
    ensure(f64::try_from(&t).unwrap() == w - 1.0, || format!("max gave {t}"))?;
    let mut t = Tensor::from_slice(&[r * 10.0 + 1.0]);
    dist.broadcast_(&mut t, dist.world_size - 1).map_err(e)?;
    ensure(f64::try_from(&t).unwrap() == (w - 1.0) * 10.0 + 1.0, || format!("broadcast gave {t}"))?;
    let g = dist.all_gather(&Tensor::full([2, 3], r, (Kind::Float, Device::Cpu))).map_err(e)?;
    ensure(g.size() == vec![2 * dist.world_size as i64, 3], || format!("gather shape {:?}", g.size()))?;
    for rank in 0..dist.world_size as i64 {
        ensure(f64::try_from(g.narrow(0, 2 * rank, 2).mean(Kind::Float)).unwrap() == rank as f64, || format!("gather block {rank}"))?;
    }
    // All-reduce of gradients: each rank's gradient of its own loss, summed.
    let p = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    let loss = (&p * (r + 1.0)).sum(Kind::Float);
    loss.backward();
    let mut grad = p.grad();
    dist.all_reduce_(&mut grad, ReduceOp::Sum).map_err(e)?;
    ensure(Vec::<f32>::try_from(&grad).unwrap() == vec![sum as f32; 2], || format!("gradient all-reduce gave {grad}"))?;
    dist.barrier().map_err(e)
}

fn normalized(rows: i64, dim: i64) -> Tensor {
    let x = Tensor::randn([rows, dim], (Kind::Float, Device::Cpu));
    &x / x.norm_scalaropt_dim(2.0, [-1], true)
}

fn leaf(t: &Tensor) -> Tensor {
    t.detach().copy().set_requires_grad(true)
}

/// Distributed losses (local loss + gather with grad; full loss + gather without grad; SigLIP with
/// gathered texts) against the single-process loss over the concatenated batch.
fn loss(dist: &Dist) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let (r, w, n, d) = (dist.rank as i64, dist.world_size as i64, 4i64, 16i64);
    tch::manual_seed(7); // Every rank draws the same global batch and keeps its block.
    let (image, text) = (normalized(w * n, d), normalized(w * n, d));
    let (scale, bias) = (Tensor::from(20.0f32), Tensor::from(-5.0f32));
    const TOL: f64 = 1e-5;

    // Reference: one process, the whole batch.
    let (gi, gt, gs) = (leaf(&image), leaf(&text), leaf(&scale));
    let global = clip_loss(&gi, &gt, &gs);
    global.backward();

    // (a) local loss, features gathered with gradient; DDP averages over ranks.
    let (li, lt, ls) = (leaf(&image.narrow(0, r * n, n)), leaf(&text.narrow(0, r * n, n)), leaf(&scale));
    let all_i = dist.all_gather_with_grad(&li).map_err(e)?;
    let all_t = dist.all_gather_with_grad(&lt).map_err(e)?;
    let local = clip_loss_gathered(&li, &lt, &all_i, &all_t, &ls, dist.rank, true);
    local.backward();
    let mut mean_loss = local.detach();
    dist.all_reduce_(&mut mean_loss, ReduceOp::Avg).map_err(e)?;
    ensure(max_diff(&mean_loss, &global) < TOL, || format!("local loss mean {mean_loss} vs global {global}"))?;
    let mut scale_grad = ls.grad();
    dist.all_reduce_(&mut scale_grad, ReduceOp::Avg).map_err(e)?;
    ensure(max_diff(&scale_grad, &gs.grad()) < TOL, || "local loss: scale gradient differs".into())?;
    // Each rank's feature gradient is that of the sum of all rank losses: W × the mean's.
    ensure(max_diff(&(li.grad() / w as f64), &gi.grad().narrow(0, r * n, n)) < TOL, || "local loss: image gradient differs".into())?;
    ensure(max_diff(&(lt.grad() / w as f64), &gt.grad().narrow(0, r * n, n)) < TOL, || "local loss: text gradient differs".into())?;

    // (b) full loss on every rank, gathered without gradient, local block put back.
    let (li, lt, ls) = (leaf(&image.narrow(0, r * n, n)), leaf(&text.narrow(0, r * n, n)), leaf(&scale));
    let all_i = with_local_block(&dist.all_gather(&li).map_err(e)?, &li, dist.rank);
    let all_t = with_local_block(&dist.all_gather(&lt).map_err(e)?, &lt, dist.rank);
    let full = clip_loss_gathered(&li, &lt, &all_i, &all_t, &ls, dist.rank, false);
    full.backward();
    ensure(max_diff(&full, &global) < TOL, || format!("full loss {full} vs global {global}"))?;
    ensure(max_diff(&li.grad(), &gi.grad().narrow(0, r * n, n)) < TOL, || "full loss: image gradient differs".into())?;
    ensure(max_diff(&lt.grad(), &gt.grad().narrow(0, r * n, n)) < TOL, || "full loss: text gradient differs".into())?;

    // (c) SigLIP: local images against every rank's texts, gathered with gradient.
    let (gi, gt, gs, gb) = (leaf(&image), leaf(&text), leaf(&scale), leaf(&bias));
    let global = siglip_loss(&gi, &gt, &gs, &gb);
    global.backward();
    let (li, lt, ls, lb) = (leaf(&image.narrow(0, r * n, n)), leaf(&text.narrow(0, r * n, n)), leaf(&scale), leaf(&bias));
    let all_t = dist.all_gather_with_grad(&lt).map_err(e)?;
    let local = siglip_loss_gathered(&li, &all_t, &ls, &lb, dist.rank);
    local.backward();
    let mut mean_loss = local.detach();
    dist.all_reduce_(&mut mean_loss, ReduceOp::Avg).map_err(e)?;
    ensure(max_diff(&mean_loss, &global) < 1e-4, || format!("siglip mean {mean_loss} vs global {global}"))?;
    ensure(max_diff(&(li.grad() / w as f64), &gi.grad().narrow(0, r * n, n)) < TOL, || "siglip: image gradient differs".into())?;
    ensure(max_diff(&(lt.grad() / w as f64), &gt.grad().narrow(0, r * n, n)) < TOL, || "siglip: text gradient differs".into())?;
    for (local, global, what) in [(ls.grad(), gs.grad(), "scale"), (lb.grad(), gb.grad(), "bias")] {
        let mut g = local;
        dist.all_reduce_(&mut g, ReduceOp::Avg).map_err(e)?;
        ensure(max_diff(&g, &global) < 1e-4, || format!("siglip: {what} gradient differs"))?;
    }
    dist.barrier().map_err(e)
}

/// The last rank dies (SIGKILL) once everyone has met; the others' next collective must fail,
/// within the timeout, naming it.
fn dead_rank(dist: &Dist) -> ExitCode {
    if let Err(err) = dist.barrier() {
        eprintln!("rank {}: first barrier failed: {err}", dist.rank);
        return ExitCode::FAILURE;
    }
    if dist.rank == dist.world_size - 1 {
        // SAFETY: plain libc calls; the process ends here.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut t = Tensor::from_slice(&[1.0f32]);
    match dist.all_reduce_(&mut t, ReduceOp::Sum) {
        Ok(()) => {
            eprintln!("rank {}: all_reduce succeeded with a dead rank", dist.rank);
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXPECTED_FAILURE as u8)
        }
    }
}

fn mismatch(dist: &Dist) -> Result<(), String> {
    let t = Tensor::zeros([dist.rank as i64 + 1, 4], (Kind::Float, Device::Cpu));
    match dist.all_gather_with_grad(&t) {
        Err(Error::Mismatch { layouts, .. }) if layouts.len() == dist.world_size => Ok(()),
        Err(other) => Err(format!("expected a mismatch error, got {other}")),
        Ok(_) => Err("gathering mismatched shapes succeeded".into()),
    }
}

// ---------------------------------------------------------------- gradient reducer

/// A small net laid out as clip-train lays out a model: the gradients of the dense parameters are
/// views into one flat, aligned buffer (AdamW's), an embedding table keeps its own gradient (made
/// by the reducer: it has none yet), one parameter takes its gradient from the first of a step's
/// two passes only (as the logit scale) and one from none. Same weights on every rank.
struct Net {
    /// emb, w1, b1, w2, b2, w3, scale, unused: the order of the forward pass.
    params: Vec<Tensor>,
}

/// Elements per bucket in these tests: several buckets, w2 cut into pieces.
const SMALL_BUCKETS: i64 = 1000;

impl Net {
    fn new() -> Self {
        tch::manual_seed(11);
        let leaf = |t: Tensor| t.set_requires_grad(true);
        let randn = |shape: &[i64], std: f64| leaf(Tensor::randn(shape, (Kind::Float, Device::Cpu)) * std);
        let zeros = |shape: &[i64]| leaf(Tensor::zeros(shape, (Kind::Float, Device::Cpu)));
        let params = vec![
            randn(&[50, 16], 1.0),
            randn(&[16, 64], 0.25),
            zeros(&[64]),
            randn(&[64, 64], 0.125),
            zeros(&[64]),
            randn(&[64, 8], 0.125),
            zeros(&[]),
            zeros(&[5]),
        ];
        let dense = &params[1..];
        tch::with_grad(|| {
            let parts: Vec<Tensor> = dense.iter().map(|p| p.sum(Kind::Float) * 0.0).collect();
            Tensor::stack(&parts, 0).sum(Kind::Float).backward();
        });
        let aligned = |n: i64| (n + 15) / 16 * 16;
        let flat = Tensor::zeros([dense.iter().map(|p| aligned(p.numel() as i64)).sum::<i64>()], (Kind::Float, Device::Cpu));
        let mut offset = 0;
        for p in dense {
            let n = p.numel() as i64;
            p.grad().set_data(&flat.narrow(0, offset, n).view(p.size().as_slice()));
            offset += aligned(n);
        }
        Self { params }
    }

    /// The parameters in the order the backward pass completes their gradients.
    fn backward_order(&self) -> Vec<Tensor> {
        self.params.iter().rev().map(Tensor::shallow_clone).collect()
    }

    fn loss(&self, ids: &Tensor, target: &Tensor, with_scale: bool) -> Tensor {
        let p = &self.params;
        let h = (p[0].index_select(0, ids).matmul(&p[1]) + &p[2]).relu();
        let h = (h.matmul(&p[3]) + &p[4]).relu();
        let scale = if with_scale { p[6].exp() } else { p[6].detach().exp() };
        (h.matmul(&p[5]) * scale - target).square().mean(Kind::Float)
    }

    /// This rank's gradients of a step: two accumulated passes on its data, `reducer` (if any)
    /// armed for the second.
    fn passes(&self, rank: usize, step: i64, reducer: Option<&GradReducer>) {
        for p in &self.params {
            let _ = p.grad().zero_();
        }
        for pass in 0..2 {
            tch::manual_seed(1000 * step + 10 * rank as i64 + pass);
            let ids = Tensor::randint(50, [8], (Kind::Int64, Device::Cpu));
            let target = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
            if let (1, Some(reducer)) = (pass, reducer) {
                reducer.arm();
            }
            self.loss(&ids, &target, pass == 0).backward();
        }
    }

    /// A step's gradients averaged over ranks.
    fn gradients(&self, reducer: &GradReducer, rank: usize, step: i64) -> Result<Reduced, Error> {
        self.passes(rank, step, Some(reducer));
        reducer.finish()
    }

    fn sgd(&self) {
        tch::no_grad(|| {
            for p in &self.params {
                let _ = p.shallow_clone().g_sub_(&(p.grad() * 0.1));
            }
        });
    }
}

/// 16 steps of two copies of the net, one reduced after the backward pass and one overlapped
/// with it: bit-identical gradients and weights at every step; the averages are those of a plain
/// all-reduce; the overlapped copy launched some buckets during the backward pass but not those
/// waiting on the parameters the last pass leaves out.
fn grad_reducer(dist: &Dist) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let (plain, overlapped) = (Net::new(), Net::new());
    let plain_reducer = dist.grad_reducer(&plain.backward_order(), SMALL_BUCKETS, false).map_err(e)?;
    let reducer = dist.grad_reducer(&overlapped.backward_order(), SMALL_BUCKETS, true).map_err(e)?;
    let plan = reducer.plan().ok_or("no plan with several ranks")?;
    ensure(plan == plain_reducer.plan().unwrap() && plan.buckets.len() > 6, || format!("plans: {plan:?}"))?;
    ensure(overlapped.params[0].grad().defined(), || "the embedding was given no gradient".into())?;
    // Buckets holding the scale or the unused parameter (and any after them) wait for finish().
    let waiting = plan.order.iter().position(|&b| plan.buckets[b].members.iter().any(|&m| m <= 1)).unwrap();
    for step in 0..16 {
        let a = plain.gradients(&plain_reducer, dist.rank, step).map_err(e)?;
        ensure(a.overlapped == 0, || format!("the plain reducer launched {} buckets early", a.overlapped))?;
        // What a plain all-reduce of this rank's own gradients gives.
        overlapped.passes(dist.rank, step, None);
        let local: Vec<Tensor> = overlapped.params.iter().map(|p| p.grad().copy()).collect();
        let b = overlapped.gradients(&reducer, dist.rank, step).map_err(e)?;
        ensure(b.overlapped == waiting, || {
            format!("step {step}: {} of {} buckets launched early, expected {waiting}", b.overlapped, plan.buckets.len())
        })?;
        for (i, (x, y)) in plain.params.iter().zip(&overlapped.params).enumerate() {
            let (gx, gy) = (x.grad(), y.grad());
            ensure(gx.equal(&gy), || format!("step {step}: parameter {i}: gradients differ by {}", max_diff(&gx, &gy)))?;
            let mut expected = local[i].copy();
            dist.all_reduce_(&mut expected, ReduceOp::Avg).map_err(e)?;
            ensure(gy.equal(&expected), || format!("step {step}: parameter {i}: not the average ({})", max_diff(&gy, &expected)))?;
        }
        ensure(overlapped.params[7].grad().abs().sum(Kind::Float).double_value(&[]) == 0.0, || {
            "the unused parameter has a gradient".into()
        })?;
        plain.sgd();
        overlapped.sgd();
    }
    for (i, (x, y)) in plain.params.iter().zip(&overlapped.params).enumerate() {
        ensure(x.equal(y), || format!("parameter {i} differs after 16 steps: {}", max_diff(x, y)))?;
    }
    dist.barrier().map_err(e)
}

/// Training with overlap, the last rank dies (SIGKILL) at the third step, just before its last
/// backward pass; the others' reduction of that step must fail, within the timeout, naming it.
fn dead_rank_overlap(dist: &Dist) -> ExitCode {
    let net = Net::new();
    let reducer = match dist.grad_reducer(&net.backward_order(), SMALL_BUCKETS, true) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("rank {}: {err}", dist.rank);
            return ExitCode::FAILURE;
        }
    };
    for step in 0..100 {
        if step == 2 && dist.rank == dist.world_size - 1 {
            // SAFETY: plain libc calls; the process ends here.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        match net.gradients(&reducer, dist.rank, step) {
            Ok(_) => net.sgd(),
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::from(if step == 2 { EXPECTED_FAILURE as u8 } else { 1 });
            }
        }
    }
    eprintln!("rank {}: 100 steps succeeded with a dead rank", dist.rank);
    ExitCode::FAILURE
}

// ---------------------------------------------------------------- coordinator

struct Outcome {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `scenario` on `world_size` ranks; kills them all if they outlive `deadline`.
fn launch(scenario: &str, world_size: usize, timeout_secs: u64, deadline: Duration) -> Vec<Outcome> {
    let port = free_port();
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let mut children: Vec<Child> = (0..world_size)
        .map(|rank| {
            Command::new(&exe)
                .env("CLIP_DIST_SCENARIO", scenario)
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", world_size.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .env("CLIP_DIST_TIMEOUT", timeout_secs.to_string())
                .env("TORCH_CPP_LOG_LEVEL", "ERROR")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut done: Vec<Option<(Option<i32>, Duration)>> = vec![None; world_size];
    while done.iter().any(Option::is_none) {
        for (rank, child) in children.iter_mut().enumerate() {
            if done[rank].is_none()
                && let Some(status) = child.try_wait().unwrap()
            {
                done[rank] = Some((status.code(), start.elapsed()));
            }
        }
        if start.elapsed() > deadline {
            for (rank, child) in children.iter_mut().enumerate() {
                if done[rank].is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                    done[rank] = Some((None, start.elapsed()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children
        .into_iter()
        .zip(done)
        .map(|(child, d)| {
            let (code, elapsed) = d.unwrap();
            let stderr = std::io::read_to_string(child.stderr.unwrap()).unwrap_or_default();
            Outcome { code, stderr, elapsed }
        })
        .collect()
}

fn all_succeed(scenario: &str, world_size: usize) -> Result<(), String> {
    let outcomes = launch(scenario, world_size, 60, Duration::from_secs(120));
    for (rank, o) in outcomes.iter().enumerate() {
        if o.code != Some(0) {
            return Err(format!("rank {rank} exited with {:?}:\n{}", o.code, o.stderr));
        }
    }
    Ok(())
}

fn dead_rank_is_named(scenario: &str, world_size: usize) -> Result<(), String> {
    let timeout = 20;
    let outcomes = launch(scenario, world_size, timeout, Duration::from_secs(90));
    let dead = world_size - 1;
    if outcomes[dead].code.is_some() {
        return Err(format!("rank {dead} should have died by SIGKILL, exited {:?}", outcomes[dead].code));
    }
    for (rank, o) in outcomes.iter().enumerate().take(dead) {
        if o.code != Some(EXPECTED_FAILURE) {
            return Err(format!("rank {rank} exited {:?} after {:?}:\n{}", o.code, o.elapsed, o.stderr));
        }
        // Failure within the collective timeout, plus start-up and the check-in grace.
        if o.elapsed > Duration::from_secs(timeout + 15) {
            return Err(format!("rank {rank} took {:?} to fail", o.elapsed));
        }
        let named = format!("ranks whose heartbeat stopped (dead): [{dead}]");
        if !o.stderr.contains(&named) {
            return Err(format!("rank {rank}'s error does not name rank {dead}:\n{}", o.stderr));
        }
    }
    Ok(())
}

type Check = Box<dyn Fn() -> Result<(), String>>;

fn coordinator() -> ExitCode {
    let tests: Vec<(&str, Check)> = vec![
        ("collectives_2_ranks", Box::new(|| all_succeed("collectives", 2))),
        ("collectives_4_ranks", Box::new(|| all_succeed("collectives", 4))),
        ("loss_equals_single_process_2_ranks", Box::new(|| all_succeed("loss", 2))),
        ("loss_equals_single_process_4_ranks", Box::new(|| all_succeed("loss", 4))),
        ("mismatched_shapes_are_an_error", Box::new(|| all_succeed("mismatch", 2))),
        ("a_dead_rank_fails_the_others_and_is_named", Box::new(|| dead_rank_is_named("dead-rank", 3))),
        ("overlapped_gradient_reduction_equals_the_plain_bit_for_bit", Box::new(|| all_succeed("grad-reducer", 2))),
        ("a_rank_dead_during_overlapped_reduction_is_named", Box::new(|| dead_rank_is_named("dead-rank-overlap", 3))),
    ];
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in &tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        match test() {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1} s)", start.elapsed().as_secs_f64());
            }
            Err(message) => {
                failed += 1;
                println!("test {name} ... FAILED\n{message}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
