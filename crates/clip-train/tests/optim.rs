use std::collections::BTreeMap;

use clip_train::config::OptimSection;
use clip_train::optim::{AdamW, exempt_from_decay, learning_rate};
use tch::Tensor;

#[test]
fn adamw_equals_torch_adamw() {
    // f32 parameters take the fused CPU pass; f64 ones torch's op sequence (as on a GPU).
    for kind in [tch::Kind::Float, tch::Kind::Double] {
        matches_the_torch_fixture(kind);
    }
}

fn matches_the_torch_fixture(kind: tch::Kind) {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/adamw.json")).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
    let tensor = |v: &serde_json::Value| Tensor::from_slice(&floats(v)).to_kind(kind);
    let w = tensor(&fixture["init"]["w"]).view([2, 3]).set_requires_grad(true);
    let b = tensor(&fixture["init"]["b"]).set_requires_grad(true);
    // Names put `w` in the decayed group and `b` (a bias) in the exempt one, as in the fixture.
    let params = BTreeMap::from([("layer.weight".to_owned(), w.shallow_clone()), ("layer.bias".to_owned(), b.shallow_clone())]);
    let config = OptimSection { beta1: 0.9, beta2: 0.98, eps: 1e-6, weight_decay: 0.2, ..OptimSection::default() };
    let mut optim = AdamW::new(params, &config).unwrap();
    assert_eq!(optim.groups(), (vec!["layer.weight"], vec!["layer.bias"]));
    for step in fixture["steps"].as_array().unwrap() {
        let (gw, gb) = (tensor(&step["gw"]).view([2, 3]), tensor(&step["gb"]));
        (&w * &gw).sum(kind).backward();
        (&b * &gb).sum(kind).backward();
        optim.step(step["lr"].as_f64().unwrap());
        optim.zero_grad();
        let (ew, eb) = (tensor(&step["w"]).view([2, 3]), tensor(&step["b"]));
        let diff = (&w - &ew).abs().max().double_value(&[]).max((&b - &eb).abs().max().double_value(&[]));
        assert!(diff < 1e-6, "{kind:?} step {}: max difference {diff}", optim.steps());
    }
    // The state round-trips into a fresh optimiser.
    let state = optim.state();
    let mut other = AdamW::new(
        BTreeMap::from([
            ("layer.weight".to_owned(), w.detach().copy().set_requires_grad(true)),
            ("layer.bias".to_owned(), b.detach().copy().set_requires_grad(true)),
        ]),
        &config,
    )
    .unwrap();
    other.load_state(state).unwrap();
    assert_eq!(other.steps(), 5);
    assert!(other.load_state(vec![("step".into(), Tensor::from(1i64))]).is_err());
}

#[test]
fn the_threaded_fused_pass_equals_the_op_sequence() {
    // Large enough for several threads, with the decayed/exempt boundary inside a thread's part:
    // f32 (fused, threaded) against f64 (torch's ops) from the same values and gradients.
    tch::set_num_threads(3);
    tch::manual_seed(0);
    let shapes: [(&str, &[i64]); 3] = [("a.weight", &[300, 301]), ("b.bias", &[70_001]), ("c.weight", &[7, 5])];
    let init: Vec<Tensor> = shapes.iter().map(|(_, s)| Tensor::randn(*s, (tch::Kind::Double, tch::Device::Cpu))).collect();
    let grads: Vec<Vec<Tensor>> = (0..3).map(|_| init.iter().map(|t| t.randn_like()).collect()).collect();
    let run = |kind: tch::Kind| {
        let params: Vec<Tensor> = init.iter().map(|t| t.to_kind(kind).copy().set_requires_grad(true)).collect();
        let named = shapes.iter().zip(&params).map(|((n, _), p)| ((*n).to_owned(), p.shallow_clone())).collect();
        let mut optim = AdamW::new(named, &OptimSection::default()).unwrap();
        for step in &grads {
            for (p, g) in params.iter().zip(step) {
                (p * g.to_kind(kind)).sum(kind).backward();
            }
            optim.step(1e-2);
            optim.zero_grad();
        }
        params.iter().map(|p| p.detach().to_kind(tch::Kind::Double)).collect::<Vec<_>>()
    };
    let (fused, ops) = (run(tch::Kind::Float), run(tch::Kind::Double));
    for ((name, _), (a, b)) in shapes.iter().zip(fused.iter().zip(&ops)) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: max difference {diff}");
    }
    assert!((&fused[0] - &init[0]).abs().max().double_value(&[]) > 1e-3, "the parameters should have moved");
}

#[test]
fn parameters_of_mixed_kinds_are_refused() {
    let params = BTreeMap::from([
        ("a.weight".to_owned(), Tensor::zeros([2, 2], (tch::Kind::Float, tch::Device::Cpu)).set_requires_grad(true)),
        ("b.weight".to_owned(), Tensor::zeros([2, 2], (tch::Kind::Double, tch::Device::Cpu)).set_requires_grad(true)),
    ]);
    let err = AdamW::new(params, &OptimSection::default()).err().expect("mixed kinds must be refused");
    assert!(err.to_string().contains("b.weight"), "{err}");
}

#[test]
fn token_embedding_updates_only_touched_rows_bit_for_bit() {
    // The same table under the token embedding's name (updated row by row, decayed whole) and
    // under another decayed name (updated whole), with gradients on a different few rows each
    // step, and a restore from saved state half-way: every value must agree exactly.
    tch::manual_seed(0);
    let init = Tensor::randn([50, 4], (tch::Kind::Float, tch::Device::Cpu));
    let config = OptimSection::default();
    let table = |name: &str| {
        let t = init.copy().set_requires_grad(true);
        (t.shallow_clone(), AdamW::new(BTreeMap::from([(name.to_owned(), t)]), &config).unwrap())
    };
    let (mut sparse, mut rows_only) = table("token_embedding.weight");
    let (dense, mut whole) = table("positional_embedding");
    for step in 0..8i64 {
        let ids = Tensor::from_slice(&[step, step + 3, 7, (step * 5) % 50]);
        let weights = Tensor::randn([4, 4], (tch::Kind::Float, tch::Device::Cpu));
        for (t, optim) in [(&sparse, &mut rows_only), (&dense, &mut whole)] {
            (t.index_select(0, &ids) * &weights).sum(tch::Kind::Float).backward();
            optim.step(1e-2);
            optim.zero_grad();
        }
        if step == 3 {
            sparse = sparse.detach().copy().set_requires_grad(true);
            let mut restored = AdamW::new(BTreeMap::from([("token_embedding.weight".to_owned(), sparse.shallow_clone())]), &config).unwrap();
            restored.load_state(rows_only.state()).unwrap();
            rows_only = restored;
        }
        assert!(sparse.equal(&dense), "step {step}: the tables differ");
    }
    assert!(!sparse.equal(&init), "the table should have moved");
    // A row never looked up only decays, step by step.
    let mut decayed = init.get(49);
    for _ in 0..8 {
        decayed *= 1.0 - 1e-2 * config.weight_decay;
    }
    assert!(sparse.get(49).equal(&decayed), "{:?} vs {:?}", sparse.get(49), decayed);
}

#[test]
fn open_clip_decay_groups() {
    let matrix = Tensor::zeros([4, 4], (tch::Kind::Float, tch::Device::Cpu));
    let vector = Tensor::zeros([4], (tch::Kind::Float, tch::Device::Cpu));
    assert!(!exempt_from_decay("visual.transformer.resblocks.0.attn.in_proj_weight", &matrix));
    assert!(!exempt_from_decay("text_projection", &matrix));
    assert!(!exempt_from_decay("token_embedding.weight", &matrix));
    assert!(!exempt_from_decay("positional_embedding", &matrix));
    assert!(exempt_from_decay("visual.class_embedding", &vector));
    assert!(exempt_from_decay("visual.ln_post.weight", &vector));
    assert!(exempt_from_decay("visual.transformer.resblocks.0.mlp.c_fc.bias", &vector));
    assert!(exempt_from_decay("logit_scale", &Tensor::from(1.0f32)));
}

#[test]
fn warmup_then_cosine_const_and_cooldown() {
    let mut c = OptimSection { lr: 1.0, warmup: 10, ..OptimSection::default() };
    assert_eq!(learning_rate(&c, 0, 110), 0.1);
    assert_eq!(learning_rate(&c, 9, 110), 1.0);
    assert!((learning_rate(&c, 10, 110) - 1.0).abs() < 1e-12);
    assert!((learning_rate(&c, 60, 110) - 0.5).abs() < 1e-12);
    assert!(learning_rate(&c, 109, 110) < 1e-3);
    c.schedule = "const".into();
    assert_eq!(learning_rate(&c, 100, 110), 1.0);
    c.schedule = "const-cooldown".into();
    c.cooldown = 20;
    assert_eq!(learning_rate(&c, 80, 110), 1.0);
    assert!((learning_rate(&c, 100, 110) - 0.5).abs() < 1e-12);
}
