//! Criterion benchmarks of the clip-rs crates (see `benches/`), and what the timing binaries in
//! `src/bin` share.

/// This process's peak resident set size in KiB (`getrusage`).
pub fn peak_rss_kb() -> i64 {
    // SAFETY: getrusage fills a zeroed struct we own.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage.ru_maxrss
    }
}

/// A preset by name, or an open_clip model-config file when `name` ends in `.json`, with fresh
/// random weights on `device`, after fixing torch's intra-op threads and seed.
pub fn random_model(
    name: &str,
    threads: i32,
    device: tch::Device,
) -> anyhow::Result<(clip_model::ClipConfig, tch::nn::VarStore, clip_model::ClipModel)> {
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let config = if name.ends_with(".json") {
        clip_model::ClipConfig::from_json(&std::fs::read_to_string(name)?)?
    } else {
        clip_model::ClipConfig::named(name)?
    };
    let vs = tch::nn::VarStore::new(device);
    let clip = clip_model::ClipModel::new(vs.root(), &config);
    Ok((config, vs, clip))
}

/// Random images `[batch, 3, s, s]` and token ids `[batch, context]` for `config`, on `device`.
/// Random ids put the end-of-text token (the largest id) anywhere, so the text tower runs on about
/// the whole context: the kernel-bound case, not the short-caption one.
pub fn random_inputs(config: &clip_model::ClipConfig, batch: i64, device: tch::Device) -> (tch::Tensor, tch::Tensor) {
    let s = config.vision.image_size();
    let images = tch::Tensor::randn([batch, 3, s, s], (tch::Kind::Float, device));
    let ids = tch::Tensor::randint(config.text.vocab_size, [batch, config.text.context_length], (tch::Kind::Int64, device));
    (images, ids)
}

/// The optional `[DEVICE [PRECISION]]` arguments: `cpu` and `fp32` when absent.
pub fn device_and_precision(args: &[String]) -> anyhow::Result<(tch::Device, clip_tensor::precision::Precision)> {
    anyhow::ensure!(args.len() <= 2, "unexpected arguments {args:?}");
    let device = args.first().map_or("cpu", String::as_str).parse::<clip_tensor::device::DeviceSpec>()?.resolve()?;
    let precision = args.get(1).map_or("fp32", String::as_str).parse()?;
    Ok((device, precision))
}

/// Waits for `device`'s queued work, so that a clock read afterwards times it.
pub fn synchronize(device: tch::Device) {
    if let tch::Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}
