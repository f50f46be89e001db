//! Tokenizer throughput on caption-like text, one thread and the rayon pool.
//!
//! `benches/scripts/bench_tokenizer.py` runs the side-by-side comparison with open_clip and Hugging Face
//! `tokenizers` on the same captions; this measures the library alone.

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use clip_tokenizer::{DEFAULT_CONTEXT_LENGTH, Tokenizer};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Deterministic captions with a varied vocabulary (a linear congruential generator, no deps).
fn captions(n: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "a", "the", "photo", "of", "dog", "cat", "man", "woman", "riding", "bicycle", "street", "red", "blue",
        "sitting", "on", "bench", "park", "sunset", "beach", "mountain", "snowy", "two", "three", "children",
        "playing", "with", "ball", "kitchen", "table", "plate", "pizza", "coffee", "city", "night", "lights",
        "old", "building", "river", "bridge", "car", "parked", "near", "tree", "flowers", "garden", "café",
        "close-up", "portrait", "smiling", "black", "white", "train", "station", "airplane", "sky", "clouds",
    ];
    let mut state = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = 6 + (state >> 60) as usize;
            (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    WORDS[(state >> 33) as usize % WORDS.len()]
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let tokenizer = Tokenizer::get();
    let texts = captions(10_000);
    let mut group = c.benchmark_group("tokenize");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function(BenchmarkId::new("captions", "1-thread"), |b| {
        b.iter(|| {
            for text in &texts {
                std::hint::black_box(tokenizer.tokenize(text, DEFAULT_CONTEXT_LENGTH).unwrap());
            }
        })
    });
    group.bench_function(BenchmarkId::new("captions", "rayon-batch"), |b| {
        b.iter(|| std::hint::black_box(tokenizer.tokenize_batch(&texts, DEFAULT_CONTEXT_LENGTH).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
