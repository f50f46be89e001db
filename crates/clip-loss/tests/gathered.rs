//! The per-rank losses computed in one process, with "gathering" done by slicing one leaf tensor
//! so that gradients flow back exactly as an all-gather with gradient would send them. The real
//! multi-process runs are in clip-dist's tests.

use clip_loss::{clip_loss, clip_loss_gathered, siglip_loss, siglip_loss_gathered, with_local_block};
use tch::{Device, Kind, Tensor};

fn features(n: i64, d: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let x = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
    (&x / x.norm_scalaropt_dim(2.0, [-1], true)).detach().set_requires_grad(true)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

#[test]
fn local_loss_over_ranks_equals_the_global_loss() {
    for world_size in [2i64, 4] {
        let n = 6;
        let (image, text) = (features(world_size * n, 16, 1), features(world_size * n, 16, 2));
        let scale = Tensor::from(30.0f32).set_requires_grad(true);

        let global = clip_loss(&image, &text, &scale);
        let grads_global = Tensor::run_backward(&[&global], &[&image, &text, &scale], false, false);

        for local_loss in [true, false] {
            // DDP averages gradients over ranks: the mean of the rank losses.
            let per_rank: Vec<Tensor> = (0..world_size)
                .map(|r| {
                    let (i, t) = (image.narrow(0, r * n, n), text.narrow(0, r * n, n));
                    clip_loss_gathered(&i, &t, &image, &text, &scale, r as usize, local_loss)
                })
                .collect();
            let mean = Tensor::stack(&per_rank, 0).mean(Kind::Float);
            let grads = Tensor::run_backward(&[&mean], &[&image, &text, &scale], false, false);
            assert!(max_diff(&mean, &global) < 1e-5, "W={world_size} local={local_loss}: {mean} vs {global}");
            for (a, b) in grads.iter().zip(&grads_global) {
                assert!(max_diff(a, b) < 1e-5, "W={world_size} local={local_loss}: gradients differ");
            }
        }
    }
}

#[test]
fn siglip_over_ranks_equals_the_global_loss() {
    for world_size in [2i64, 4] {
        let n = 5;
        let (image, text) = (features(world_size * n, 16, 3), features(world_size * n, 16, 4));
        let scale = Tensor::from(10.0f32).set_requires_grad(true);
        let bias = Tensor::from(-10.0f32).set_requires_grad(true);
        let global = siglip_loss(&image, &text, &scale, &bias);
        let grads_global = Tensor::run_backward(&[&global], &[&image, &text, &scale, &bias], false, false);
        let per_rank: Vec<Tensor> = (0..world_size)
            .map(|r| siglip_loss_gathered(&image.narrow(0, r * n, n), &text, &scale, &bias, r as usize))
            .collect();
        let mean = Tensor::stack(&per_rank, 0).mean(Kind::Float);
        let grads = Tensor::run_backward(&[&mean], &[&image, &text, &scale, &bias], false, false);
        assert!(max_diff(&mean, &global) < 1e-4, "W={world_size}: {mean} vs {global}");
        for (a, b) in grads.iter().zip(&grads_global) {
            assert!(max_diff(a, b) < 1e-5, "W={world_size}: gradients differ");
        }
    }
}

#[test]
fn local_block_replaces_only_this_ranks_rows() {
    let gathered = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([6, 2]);
    let local = Tensor::full([2, 2], -1.0, (Kind::Float, Device::Cpu));
    let out = with_local_block(&gathered, &local, 1);
    let expected = Tensor::from_slice(&[0.0f32, 1., 2., 3., -1., -1., -1., -1., 8., 9., 10., 11.]).view([6, 2]);
    assert!(out.equal(&expected));
}
