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

/// `for_weights` draws nothing: every randomly initialised parameter is zero, the constant ones
/// are as `new` sets them; `new` draws again after it. (The global RNG is shared with the tests
/// running beside this one, so the builds use different seeds rather than compare its state.)
#[test]
fn for_weights_builds_without_drawing() {
    let configs = [
        ClipConfig::from_json(include_str!("fixtures/tiny-vit.json")).unwrap(),
        ClipConfig::from_json(include_str!("fixtures/tiny-rn.json")).unwrap(),
        crate::families::config("siglip"),
    ];
    for config in configs {
        let build = |seed: i64, for_weights: bool| {
            tch::manual_seed(seed);
            let vs = VarStore::new(Device::Cpu);
            let _model = if for_weights { ClipModel::for_weights(vs.root(), &config) } else { ClipModel::new(vs.root(), &config) };
            vs.variables()
        };
        let (drawn, zeros, again) = (build(1, false), build(2, true), build(3, false));
        let keys = |v: &std::collections::HashMap<String, Tensor>| v.keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(keys(&drawn), keys(&zeros));
        let is_zero = |t: &Tensor| t.abs().max().double_value(&[]) == 0.0;
        let (mut random, mut all) = (0, 0);
        for (name, value) in &drawn {
            all += value.numel();
            if !zeros[name].equal(value) {
                assert!(is_zero(&zeros[name]), "{name}: neither drawn nor zero");
                assert!(!is_zero(&again[name]) && !again[name].equal(value), "{name}: new did not draw after for_weights");
                random += value.numel();
            }
        }
        assert!(random as f64 > 0.9 * all as f64, "only {random} of {all} values were drawn by new");
    }
}
