//! Criterion benchmark: bounce parsing throughput over the fixtures (and the corpus directory named
//! by `REBOUND_CORPUS`, if set), reported as messages per second.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Every `*.eml` under `dir`, recursively.
fn load(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            load(&p, out);
        } else if p.extension().is_some_and(|x| x == "eml")
            && let Ok(raw) = std::fs::read(&p)
        {
            out.push(raw);
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut sets: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    let mut fixtures = Vec::new();
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounce"),
        &mut fixtures,
    );
    fixtures.retain(|m| m.len() < 100_000); // the huge-header fixture measures something else
    sets.push(("fixtures", fixtures));
    if let Some(dir) = std::env::var_os("REBOUND_CORPUS") {
        let mut corpus = Vec::new();
        load(Path::new(&dir), &mut corpus);
        sets.push(("corpus", corpus));
    }
    let mut group = c.benchmark_group("bounce_parse");
    for (name, msgs) in &sets {
        if msgs.is_empty() {
            continue;
        }
        group.throughput(Throughput::Elements(msgs.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                for m in msgs {
                    std::hint::black_box(rebound::bounce::parse(std::hint::black_box(m)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
