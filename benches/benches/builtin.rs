//! Rendering speed of the built-in dataset (issue 6's bar: 5,000 64×64 samples per second per core).

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use clip_data::builtin::BuiltinDataset;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let data = BuiltinDataset::new(0, 64);
    let mut group = c.benchmark_group("builtin");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("render_64px_x1000", |b| {
        let mut start = 0u64;
        b.iter(|| {
            for i in start..start + 1000 {
                std::hint::black_box(data.sample(i));
            }
            start += 1000;
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
