use clip_tensor::device::DeviceSpec;
use clip_tensor::Error;
use tch::{Cuda, Device};

#[test]
fn parses_what_users_write() {
    assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
    assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
    assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(None));
    assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(Some(3)));
    for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
        let err = bad.parse::<DeviceSpec>().unwrap_err();
        assert!(matches!(err, Error::InvalidDevice(_)), "{bad:?} gave {err:?}");
    }
    assert_eq!(DeviceSpec::Cuda(Some(2)).to_string(), "cuda:2");
}

#[test]
fn resolves_and_fails_loudly_without_cuda() {
    assert_eq!(DeviceSpec::Cpu.resolve().unwrap(), Device::Cpu);
    if Cuda::is_available() {
        assert_eq!(DeviceSpec::Auto.resolve().unwrap(), Device::Cuda(0));
        let count = Cuda::device_count() as usize;
        let err = DeviceSpec::Cuda(Some(count)).resolve().unwrap_err();
        assert!(matches!(err, Error::NoSuchCudaDevice { .. }), "{err:?}");
    } else {
        assert_eq!(DeviceSpec::Auto.resolve().unwrap(), Device::Cpu);
        let err = DeviceSpec::Cuda(Some(0)).resolve().unwrap_err();
        assert!(matches!(err, Error::CudaUnavailable(_)), "{err:?}");
        assert!(err.to_string().contains("cuda:0"));
    }
}
