//! Gradient checkpointing (`ClipModel::set_grad_checkpointing`): a training step gives the plain
//! run's loss and the gradient of every parameter, for both families and timm's SigLIP tower; a
//! ModifiedResNet's BatchNorm statistics move once; the graph holds no block's activations;
//! evaluation is unchanged.

use std::collections::BTreeMap;

use clip_model::patch_dropout::draw_kept;
use clip_model::{ClipConfig, ClipModel};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::families::load as load_family;

fn random_model(name: &str) -> (VarStore, ClipModel, Tensor, Tensor) {
    tch::manual_seed(0);
    let config = ClipConfig::named(name).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config);
    let s = config.vision.image_size();
    let images = Tensor::randn([6, 3, s, s], (Kind::Float, Device::Cpu));
    let ids = Tensor::randint(
        config.text.vocab_size,
        [6, config.text.context_length],
        (Kind::Int64, Device::Cpu),
    );
    (vs, model, images, ids)
}

/// CLIP's symmetric cross-entropy over the batch, `logit_bias` added when the model has one.
fn loss(model: &ClipModel, images: &Tensor, ids: &Tensor, kept: Option<&Tensor>) -> Tensor {
    let out = model.forward_with(images, ids, kept);
    let mut logits = out.image_features.matmul(&out.text_features.tr()) * &out.logit_scale;
    if let Some(bias) = model.logit_bias() {
        logits += bias;
    }
    let labels = Tensor::arange(logits.size()[0], (Kind::Int64, Device::Cpu));
    (logits.cross_entropy_for_logits(&labels) + logits.tr().cross_entropy_for_logits(&labels)) / 2.0
}

/// One step's loss and every parameter's gradient (then zeroed).
fn step(
    vs: &VarStore,
    model: &ClipModel,
    images: &Tensor,
    ids: &Tensor,
    kept: Option<&Tensor>,
) -> (f64, BTreeMap<String, Tensor>) {
    let loss = loss(model, images, ids, kept);
    loss.backward();
    let mut grads = BTreeMap::new();
    for (name, var) in vs.variables() {
        if !var.requires_grad() {
            continue;
        }
        let mut grad = var.grad();
        assert!(grad.defined(), "{name}: no gradient");
        grads.insert(name, grad.copy());
        let _ = grad.zero_();
    }
    (loss.double_value(&[]), grads)
}

/// The largest gradient difference relative to the gradient's own largest magnitude.
fn largest_relative_difference(
    plain: &BTreeMap<String, Tensor>,
    checkpointed: &BTreeMap<String, Tensor>,
) -> f64 {
    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        checkpointed.keys().collect::<Vec<_>>()
    );
    plain
        .iter()
        .map(|(name, a)| {
            let b = &checkpointed[name];
            let scale = a.abs().max().double_value(&[]).max(1e-30);
            (a - b).abs().max().double_value(&[]) / scale
        })
        .fold(0.0, f64::max)
}

/// Plain against checkpointed on the same model and batch; returns the largest relative
/// gradient difference.
#[allow(clippy::print_stderr)] // reports the measured difference
fn compare(
    what: &str,
    vs: &VarStore,
    model: &mut ClipModel,
    images: &Tensor,
    ids: &Tensor,
    kept: Option<&Tensor>,
) -> f64 {
    model.set_grad_checkpointing(false);
    let (plain_loss, plain) = step(vs, model, images, ids, kept);
    model.set_grad_checkpointing(true);
    let (loss, checkpointed) = step(vs, model, images, ids, kept);
    model.set_grad_checkpointing(false);
    let d = largest_relative_difference(&plain, &checkpointed);
    eprintln!(
        "{what}: loss {plain_loss} vs {loss}, largest relative gradient difference {d:e} over {} parameters",
        plain.len()
    );
    assert!(
        (plain_loss - loss).abs() <= 1e-6 * plain_loss.abs(),
        "{what}: loss {plain_loss} vs {loss}"
    );
    assert!(d <= 1e-5, "{what}: gradients differ by {d:e} (relative)");
    d
}

#[test]
fn checkpointed_vit_gives_the_plain_gradients() {
    let (vs, mut model, images, ids) = random_model("tiny-vit");
    compare("tiny-vit", &vs, &mut model, &images, &ids, None);
    // With patch dropout (the kept patches drawn outside the blocks).
    let kept = draw_kept(&[1, 2, 3, 4, 5, 6], 64, 0.5);
    compare(
        "tiny-vit, patch dropout 0.5",
        &vs,
        &mut model,
        &images,
        &ids,
        Some(&kept),
    );
}

#[test]
fn checkpointed_siglip_tower_gives_the_plain_gradients() {
    let (vs, mut model, io) = load_family("siglip");
    compare(
        "siglip (timm ViT, non-causal text)",
        &vs,
        &mut model,
        &io["images"],
        &io["text"],
        None,
    );
}

#[test]
#[allow(clippy::print_stderr)] // reports the measured difference
fn checkpointed_resnet_gives_the_plain_gradients_and_moves_batch_norm_statistics_once() {
    let (vs, mut model, images, ids) = random_model("tiny");
    model.set_training(true);
    let buffers = || -> BTreeMap<String, Tensor> {
        vs.variables()
            .into_iter()
            .filter(|(n, _)| n.contains("running_"))
            .map(|(n, t)| (n, t.copy()))
            .collect()
    };
    let restore = |saved: &BTreeMap<String, Tensor>| {
        let _guard = tch::no_grad_guard();
        for (name, mut t) in vs.variables() {
            if let Some(s) = saved.get(&name) {
                t.copy_(s);
            }
        }
    };
    let initial = buffers();
    assert!(
        initial.len() >= 2 * 8,
        "{} running statistics",
        initial.len()
    );
    model.set_grad_checkpointing(false);
    let (_, plain) = step(&vs, &model, &images, &ids, None);
    let after_plain = buffers();
    restore(&initial);
    model.set_grad_checkpointing(true);
    let (_, checkpointed) = step(&vs, &model, &images, &ids, None);
    let after_checkpointed = buffers();
    let d = largest_relative_difference(&plain, &checkpointed);
    eprintln!(
        "tiny (ModifiedResNet, training mode): largest relative gradient difference {d:e} over {} parameters",
        plain.len()
    );
    assert!(d <= 1e-5, "tiny: gradients differ by {d:e} (relative)");
    for (name, a) in &after_plain {
        assert!(!a.equal(&initial[name]), "{name} did not move in training");
        assert!(
            a.equal(&after_checkpointed[name]),
            "{name}: running statistics differ from the plain step's"
        );
    }
}

#[test]
fn a_checkpointed_graph_keeps_no_block_activations_and_evaluation_is_unchanged() {
    let (vs, mut model, images, ids) = random_model("tiny-vit");
    let weight = vs
        .variables()
        .remove("visual.transformer.resblocks.0.mlp.c_fc.weight")
        .unwrap();
    // A plain graph saved the weight for its backward: changing it in place breaks that backward.
    // A checkpointed one saved the block's input alone and reads the weight again.
    for (on, backward_works) in [(false, false), (true, true)] {
        model.set_grad_checkpointing(on);
        let loss = loss(&model, &images, &ids, None);
        {
            let _guard = tch::no_grad_guard();
            let _ = weight.shallow_clone().g_mul_scalar_(1.0);
        }
        assert_eq!(
            loss.f_backward().is_ok(),
            backward_works,
            "checkpointing {on}"
        );
    }
    let _guard = tch::no_grad_guard();
    model.set_grad_checkpointing(false);
    let (image, text) = (model.encode_image(&images), model.encode_text(&ids));
    model.set_grad_checkpointing(true);
    assert!(model.encode_image(&images).equal(&image) && model.encode_text(&ids).equal(&text));
}
