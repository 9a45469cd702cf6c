//! Line-protocol encoding throughput, with a memcpy floor measured in the same run.
//!
//! `cargo bench -p hostscope-core --bench encode`
//!
//! - `encode/one_point`: one realistic `cpu` point (3 tags, 8 float fields, ns timestamp)
//!   into a reused, cleared buffer.
//! - `encode/batch_1000`: 1000 such points with varying values and timestamps, one
//!   buffer per batch (what a collector flush does).
//! - `memcpy_floor/*`: `extend_from_slice` of the same lines already encoded: the cost
//!   of just producing the bytes, so the encode figures can be read as a ratio on a
//!   noisy shared machine.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hostscope_core::lineproto::{encode, encode_all, Precision};
use hostscope_core::Point;

const FIELDS: [&str; 8] = [
    "usage_idle",
    "usage_iowait",
    "usage_irq",
    "usage_nice",
    "usage_softirq",
    "usage_steal",
    "usage_system",
    "usage_user",
];

const BATCH: usize = 1000;

/// A cpu point like the collector makes: percentages computed from jiffy deltas, so
/// most have the full 16-17 significant digits.
fn cpu_point(i: usize) -> Point {
    let total = 40_000.0 + (i % 97) as f64;
    let mut b = Point::builder("cpu")
        .tag("host", "web-01.example.com")
        .tag("cpu", format!("cpu{}", i % 8))
        .tag("dc", "eu-west-1")
        .timestamp(1_763_700_000_000_000_000 + i as i64 * 10_000_000_000);
    for (k, name) in FIELDS.iter().enumerate() {
        let jiffies = ((i * 31 + k * 977) % 4_000) as f64;
        b = b.field(*name, 100.0 * jiffies / total);
    }
    b.build()
        .unwrap_or_else(|e| panic!("benchmark point is invalid: {e}"))
}

fn bench(c: &mut Criterion) {
    let one = cpu_point(1);
    let batch: Vec<Point> = (0..BATCH).map(cpu_point).collect();

    let mut one_line = Vec::new();
    encode(&one, Precision::Nanoseconds, &mut one_line);
    let mut batch_lines = Vec::new();
    encode_all(&batch, Precision::Nanoseconds, &mut batch_lines);
    let batch_line_refs: Vec<&[u8]> = batch_lines.split_inclusive(|&b| b == b'\n').collect();

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("one_point", |b| {
        b.iter(|| {
            buf.clear();
            encode(black_box(&one), Precision::Nanoseconds, &mut buf);
            black_box(buf.len())
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut buf = Vec::with_capacity(batch_lines.len());
    g.bench_function("batch_1000", |b| {
        b.iter(|| {
            buf.clear();
            encode_all(black_box(&batch), Precision::Nanoseconds, &mut buf);
            black_box(buf.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("memcpy_floor");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("one_point", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&one_line));
            black_box(buf.len())
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut buf = Vec::with_capacity(batch_lines.len());
    g.bench_function("batch_1000", |b| {
        b.iter(|| {
            buf.clear();
            for line in black_box(&batch_line_refs) {
                buf.extend_from_slice(line);
            }
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
