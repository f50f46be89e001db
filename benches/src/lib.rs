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

/// A preset with fresh random weights on the CPU, after fixing torch's intra-op threads and seed.
pub fn random_model(name: &str, threads: i32) -> anyhow::Result<(clip_model::ClipConfig, tch::nn::VarStore, clip_model::ClipModel)> {
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let config = clip_model::ClipConfig::named(name)?;
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let clip = clip_model::ClipModel::new(vs.root(), &config);
    Ok((config, vs, clip))
}

/// Random images `[batch, 3, s, s]` and token ids `[batch, context]` for `config`.
pub fn random_inputs(config: &clip_model::ClipConfig, batch: i64) -> (tch::Tensor, tch::Tensor) {
    let (s, cpu) = (config.vision.image_size(), tch::Device::Cpu);
    let images = tch::Tensor::randn([batch, 3, s, s], (tch::Kind::Float, cpu));
    let ids = tch::Tensor::randint(config.text.vocab_size, [batch, config.text.context_length], (tch::Kind::Int64, cpu));
    (images, ids)
}
