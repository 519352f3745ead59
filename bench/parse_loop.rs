//! Parses every `*.eml` under a directory repeatedly and prints messages per second (for profiling).

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/bounce".into());
    let mut msgs = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                msgs.extend(std::fs::read(&p).ok().filter(|m| m.len() < 100_000));
            }
        }
    }
    for m in &msgs {
        std::hint::black_box(rebound::bounce::parse(m)); // warm-up: regexes compiled once
    }
    // PASSES=N: exactly N passes after the warm-up (for instruction counts under callgrind:
    // `valgrind --tool=callgrind --toggle-collect='*timed_passes*'` counts only these).
    let passes: Option<usize> = std::env::var("PASSES").ok().and_then(|p| p.parse().ok());
    let start = std::time::Instant::now();
    let n = timed_passes(&msgs, passes, start);
    let secs = start.elapsed().as_secs_f64();
    println!("{n} messages in {secs:.3} s: {:.0} msgs/s", n as f64 / secs);
}

/// Parses `msgs` over and over: `passes` times, or for two seconds. Returns the messages parsed.
#[inline(never)]
fn timed_passes(msgs: &[Vec<u8>], passes: Option<usize>, start: std::time::Instant) -> usize {
    let mut n = 0usize;
    while passes.map_or(start.elapsed().as_secs_f64() < 2.0, |p| n < p * msgs.len()) {
        for m in msgs {
            std::hint::black_box(rebound::bounce::parse(m));
            n += 1;
        }
    }
    n
}
