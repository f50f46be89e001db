//! CLIP's contrastive loss and SigLIP's sigmoid loss on features of your own: a batch whose
//! texts are noisy copies of its images (pairs that agree) scores a low loss, the same batch with
//! the texts shuffled a high one, and the loss over two "ranks" of gathered features equals the
//! loss over the whole batch.
//!
//!     cargo run --release -p clip-loss --example contrastive
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_loss::{INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, clip_loss, clip_loss_gathered, siglip_loss};
use tch::{Device, Kind, Tensor};

fn normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true)
}

fn main() {
    tch::manual_seed(0);
    let (n, d) = (8, 32);
    let image = normalize(&Tensor::randn([n, d], (Kind::Float, Device::Cpu)));
    let text = normalize(&(&image + 0.3 * Tensor::randn([n, d], (Kind::Float, Device::Cpu))));
    let shuffled = text.roll([1], [0]); // every text now belongs to the next image
    let scale = Tensor::from(INIT_LOGIT_SCALE).exp(); // 1 / 0.07, the paper's initial temperature
    let value = |t: Tensor| f64::try_from(t).expect("a scalar");
    println!("batch of {n} pairs, {d}-d features, scale {:.2}", value(scale.shallow_clone()));
    println!("CLIP loss, matched pairs:     {:.4}", value(clip_loss(&image, &text, &scale)));
    println!("CLIP loss, shuffled pairs:    {:.4}", value(clip_loss(&image, &shuffled, &scale)));
    println!("CLIP loss at chance, ln {n}:   {:.4}", (n as f64).ln());
    let (s, b) = (Tensor::from(SIGLIP_INIT_LOGIT_SCALE).exp(), Tensor::from(SIGLIP_INIT_LOGIT_BIAS));
    println!("SigLIP loss, matched pairs:   {:.4}", value(siglip_loss(&image, &text, &s, &b)));
    println!("SigLIP loss, shuffled pairs:  {:.4}", value(siglip_loss(&image, &shuffled, &s, &b)));
    // Two ranks of 4: each scores its own rows against everything gathered (open_clip's local loss).
    let ranks: Vec<f64> = (0..2)
        .map(|rank| {
            let rows = |t: &Tensor| t.narrow(0, rank as i64 * 4, 4);
            value(clip_loss_gathered(&rows(&image), &rows(&text), &image, &text, &scale, rank, true))
        })
        .collect();
    println!("local losses of 2 ranks:      {:.4} {:.4}, mean {:.4}", ranks[0], ranks[1], (ranks[0] + ranks[1]) / 2.0);
}
