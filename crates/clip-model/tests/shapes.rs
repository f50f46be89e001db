use clip_model::{ClipConfig, ClipModel};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Parameter count and key layout of a preset, without running it (full-size models are big).
#[test]
fn presets_have_openai_parameter_counts_and_keys() {
    // Parameter counts of the released models (open_clip's model cards / the checkpoints).
    for (name, millions) in [("ViT-B-32", 151.28), ("RN50", 102.01)] {
        let vs = VarStore::new(Device::Cpu);
        let _model = ClipModel::new(vs.root(), &ClipConfig::named(name).unwrap());
        let count: i64 = vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum();
        assert!((count as f64 / 1e6 - millions).abs() < 0.01, "{name}: {count} parameters");
        let keys = vs.variables();
        for key in ["visual.conv1.weight", "token_embedding.weight", "ln_final.bias", "text_projection", "logit_scale"] {
            assert!(keys.contains_key(key), "{name}: no {key}");
        }
    }
}

#[test]
fn random_init_runs_both_towers_with_the_right_shapes() {
    for json in [include_str!("fixtures/tiny-vit.json"), include_str!("fixtures/tiny-rn.json")] {
        let config = ClipConfig::from_json(json).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let model = ClipModel::new(vs.root(), &config);
        let s = config.vision.image_size();
        let images = Tensor::randn([2, 3, s, s], (Kind::Float, Device::Cpu));
        let ids = Tensor::randint(config.text.vocab_size, [4, config.text.context_length], (Kind::Int64, Device::Cpu));
        let out = model.forward(&images, &ids);
        assert_eq!(out.image_features.size(), vec![2, config.embed_dim]);
        assert_eq!(out.text_features.size(), vec![4, config.embed_dim]);
        // The temperature starts at 1/0.07.
        assert!((f64::try_from(&out.logit_scale).unwrap() - 1.0 / 0.07).abs() < 1e-3);
    }
}

#[test]
fn resnet_batch_norm_uses_batch_statistics_only_in_training_mode() {
    let config = ClipConfig::from_json(include_str!("fixtures/tiny-rn.json")).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config);
    let s = config.vision.image_size();
    let images = Tensor::randn([4, 3, s, s], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
    let running = || vs.variables()["visual.bn1.running_mean"].copy();
    let _guard = tch::no_grad_guard();
    // Inference (the default): running statistics, left as they are.
    let before = running();
    let eval = model.encode_image(&images);
    assert!(running().equal(&before));
    // Training: the batch's statistics normalise, and the running ones move towards them.
    model.set_training(true);
    let train = model.encode_image(&images);
    assert!(!running().equal(&before), "running mean not updated in training mode");
    assert!((&train - &eval).abs().max().double_value(&[]) > 1e-4, "training mode gave the inference output");
    // Back to inference: the same batch gives the same output twice.
    model.set_training(false);
    let (a, b) = (model.encode_image(&images), model.encode_image(&images));
    assert!(a.equal(&b));
}
