use clip_tensor::seed::seed_everything;
use rand::Rng;
use tch::{Device, Kind, Tensor};

fn draw(seed: u64) -> (Vec<f32>, Vec<u64>) {
    let mut host = seed_everything(seed);
    let torch = Tensor::randn([16], (Kind::Float, Device::Cpu));
    let dropout = Tensor::ones([16], (Kind::Float, Device::Cpu)).dropout(0.5, true);
    let mut values: Vec<f32> = Vec::try_from(&torch).unwrap();
    values.extend(Vec::<f32>::try_from(&dropout).unwrap());
    let host_values = (0..8).map(|_| host.random::<u64>()).collect();
    (values, host_values)
}

#[test]
fn same_seed_same_draws_other_seed_other_draws() {
    let _generator = crate::generator();
    let first = draw(1234);
    let second = draw(1234);
    assert_eq!(first, second);
    let other = draw(1235);
    assert_ne!(first.0, other.0);
    assert_ne!(first.1, other.1);
}
