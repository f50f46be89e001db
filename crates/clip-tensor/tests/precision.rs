use clip_tensor::precision::{Precision, autocast};
use tch::{Device, Kind, Tensor};

#[test]
fn parses_precisions() {
    assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert_eq!("amp_bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert_eq!("FP32".parse::<Precision>().unwrap(), Precision::Fp32);
    assert!("int8".parse::<Precision>().is_err());
    assert_eq!(Precision::Bf16.autocast_kind(), Some(Kind::BFloat16));
    assert_eq!(Precision::Fp32.autocast_kind(), None);
}

#[test]
fn autocast_region_computes_matmul_in_bf16_and_restores() {
    let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
    assert_eq!(a.matmul(&b).kind(), Kind::Float);

    let inside = autocast(Device::Cpu, Precision::Bf16, || {
        // Nested regions keep the outer one's state when they end.
        let nested = autocast(Device::Cpu, Precision::Bf16, || a.matmul(&b).kind()).unwrap();
        (a.matmul(&b).kind(), nested, a.matmul(&b).kind())
    })
    .unwrap();
    assert_eq!(inside, (Kind::BFloat16, Kind::BFloat16, Kind::BFloat16));

    // Outside the region, fp32 again.
    assert_eq!(a.matmul(&b).kind(), Kind::Float);
    // fp32 precision never touches autocast.
    assert_eq!(autocast(Device::Cpu, Precision::Fp32, || a.matmul(&b).kind()).unwrap(), Kind::Float);
}

#[test]
fn autocast_state_is_restored_after_a_panic() {
    let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
    let result = std::panic::catch_unwind(|| {
        autocast(Device::Cpu, Precision::Bf16, || panic!("inside the region")).unwrap()
    });
    assert!(result.is_err());
    assert_eq!(a.matmul(&a).kind(), Kind::Float);
}
