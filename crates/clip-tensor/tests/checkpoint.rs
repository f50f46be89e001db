use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clip_tensor::checkpoint::{Pass, checkpoint};
use clip_tensor::precision::{Precision, autocast};
use tch::{Device, Kind, Tensor};

/// A residual MLP block with dropout inside: `x + W₂ · dropout(gelu(W₁ x))`.
struct Block {
    w1: Tensor,
    w2: Tensor,
}

impl Block {
    fn new() -> Self {
        let w = |rows, cols| {
            (Tensor::randn([rows, cols], (Kind::Float, Device::Cpu)) * 0.3).set_requires_grad(true)
        };
        Self {
            w1: w(16, 8),
            w2: w(8, 16),
        }
    }

    fn shallow_clone(&self) -> Self {
        Self {
            w1: self.w1.shallow_clone(),
            w2: self.w2.shallow_clone(),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        xs + xs
            .matmul(&self.w1.tr())
            .gelu("none")
            .dropout(0.3, true)
            .matmul(&self.w2.tr())
    }
}

/// The loss of three blocks on `x`, and what the generator draws after it.
fn run(
    blocks: &[Block],
    x: &Tensor,
    checkpointed: bool,
    calls: &Arc<AtomicUsize>,
) -> (Tensor, Tensor) {
    tch::manual_seed(7);
    let mut xs = x.shallow_clone();
    for block in blocks {
        xs = if checkpointed {
            let (block, calls) = (block.shallow_clone(), Arc::clone(calls));
            checkpoint(&xs, move |xs, _| {
                calls.fetch_add(1, Ordering::Relaxed);
                block.forward(xs)
            })
            .unwrap()
        } else {
            block.forward(&xs)
        };
    }
    let loss = (xs.sin() * 3.0).sum(Kind::Float);
    loss.backward();
    (loss, Tensor::rand([4], (Kind::Float, Device::Cpu)))
}

fn grads(blocks: &[Block], x: &Tensor) -> Vec<Tensor> {
    let mut grads = vec![x.grad().copy()];
    for b in blocks {
        grads.extend([b.w1.grad().copy(), b.w2.grad().copy()]);
    }
    grads
}

fn zero_grads(blocks: &[Block], x: &Tensor) {
    for t in blocks.iter().flat_map(|b| [&b.w1, &b.w2]).chain([x]) {
        let mut g = t.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

#[test]
fn checkpointed_blocks_give_the_plain_loss_gradients_and_random_stream() {
    let _generator = crate::generator();
    tch::manual_seed(1);
    let blocks: Vec<Block> = (0..3).map(|_| Block::new()).collect();
    let x = Tensor::randn([5, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let calls = Arc::new(AtomicUsize::new(0));
    let (loss, after) = run(&blocks, &x, false, &calls);
    let plain = grads(&blocks, &x);
    zero_grads(&blocks, &x);
    let (loss_c, after_c) = run(&blocks, &x, true, &calls);
    // Each block ran twice: the forward without a graph, the recompute in the backward.
    assert_eq!(calls.load(Ordering::Relaxed), 6);
    assert_eq!(
        loss.double_value(&[]).to_bits(),
        loss_c.double_value(&[]).to_bits()
    );
    // Dropout drew the same masks in the recompute (else these would differ), and the stream
    // after the step is the one without checkpointing.
    for (a, b) in plain.iter().zip(grads(&blocks, &x)) {
        assert!(a.abs().max().double_value(&[]) > 0.0);
        assert!(
            a.equal(&b),
            "max |Δ| {}",
            (a - b).abs().max().double_value(&[])
        );
    }
    assert!(after.equal(&after_c));
    // Another step accumulates onto .grad as a plain one does.
    let _ = run(&blocks, &x, true, &calls);
    for (a, b) in plain.iter().zip(grads(&blocks, &x)) {
        assert!((a * 2.0).equal(&b));
    }
}

#[test]
fn without_a_gradient_to_record_the_block_runs_once_plainly() {
    let _generator = crate::generator();
    let block = Block::new();
    let x = Tensor::randn([5, 8], (Kind::Float, Device::Cpu));
    let x_grad = Tensor::randn([5, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let passes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let call = |x: &Tensor| {
        let (b, passes) = (block.shallow_clone(), Arc::clone(&passes));
        checkpoint(x, move |xs, pass| {
            passes.lock().unwrap().push(pass);
            b.forward(xs)
        })
        .unwrap()
    };
    {
        let _guard = tch::no_grad_guard();
        assert!(!call(&x_grad).requires_grad());
    }
    // An input that needs no gradient: run plainly, so the parameters still get theirs (a
    // checkpoint's output would need none, and they would get nothing).
    let out = call(&x);
    assert!(out.requires_grad());
    out.sum(Kind::Float).backward();
    assert!(block.w1.grad().defined() && block.w2.grad().defined());
    assert_eq!(*passes.lock().unwrap(), [Pass::Forward, Pass::Forward]);
    // With a gradient to record: the forward, then the recompute.
    call(&x_grad).sum(Kind::Float).backward();
    assert_eq!(
        passes.lock().unwrap()[2..],
        [Pass::Forward, Pass::Recompute]
    );
}

#[test]
fn the_recompute_runs_under_the_forwards_autocast() {
    let _generator = crate::generator();
    tch::manual_seed(3);
    let block = Block::new();
    let x = Tensor::randn([5, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let step = |precision: Precision, checkpointed: bool| {
        tch::manual_seed(9);
        let out = autocast(Device::Cpu, precision, || {
            if checkpointed {
                let b = block.shallow_clone();
                checkpoint(&x, move |xs, _| b.forward(xs)).unwrap()
            } else {
                block.forward(&x)
            }
        })
        .unwrap();
        out.sum(Kind::Float).backward();
        let g = [x.grad().copy(), block.w1.grad().copy()];
        zero_grads(std::slice::from_ref(&block), &x);
        g
    };
    let (plain, checkpointed) = (step(Precision::Bf16, false), step(Precision::Bf16, true));
    for (a, b) in plain.iter().zip(&checkpointed) {
        assert!(
            a.equal(b),
            "max |Δ| {}",
            (a - b).abs().max().double_value(&[])
        );
    }
    // bf16 made a difference, so a recompute in fp32 would not have matched.
    let fp32 = step(Precision::Fp32, false);
    assert!((&fp32[1] - &plain[1]).abs().max().double_value(&[]) > 1e-4);
}

#[test]
fn a_panicking_block_panics_in_the_forward_and_fails_the_backward() {
    let _generator = crate::generator();
    let x = Tensor::randn([2, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let caught = std::panic::catch_unwind(|| checkpoint(&x, |_, _| panic!("forward broke")));
    let payload = caught.expect_err("the block's panic is resumed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"forward broke"));

    // A libtorch error inside the block (tch panics on it) in the recompute: backward fails with
    // the message, the process goes on.
    let w = Tensor::randn([3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let out = checkpoint(&x, move |xs, pass| match pass {
        Pass::Forward => xs.matmul(&w),
        Pass::Recompute => xs.matmul(&w.narrow(0, 0, 2)),
    })
    .unwrap();
    let err = out.sum(Kind::Float).f_backward().unwrap_err().to_string();
    assert!(
        err.contains("gradient checkpointing: the block failed in its recompute")
            && err.contains("cannot be multiplied"),
        "{err}"
    );
}
