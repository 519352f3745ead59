//! Intake latency client: C concurrent SMTP sessions submit N messages in all
//! (one message per connection, like smtp-source without -d) and record, per
//! message, the time from the final "." to the "250" (storage plus group-commit
//! fsync) and the whole connect-to-250 time. Prints p50/p90/p99/max of both.
//!
//! `cargo run --release --example smtp_latency -- HOST:PORT [MESSAGES] [CLIENTS] [SIZE]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Reads one (possibly multi-line) reply; returns its code.
async fn reply(r: &mut BufReader<TcpStream>, line: &mut String) -> Result<u16, Error> {
    loop {
        line.clear();
        if r.read_line(line).await? == 0 {
            return Err("connection closed".into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or("bad reply")?);
        }
    }
}

async fn expect(r: &mut BufReader<TcpStream>, line: &mut String, want: u16) -> Result<(), Error> {
    match reply(r, line).await? {
        c if c == want => Ok(()),
        _ => Err(format!("expected {want}, got {}", line.trim_end()).into()),
    }
}

/// One message on a fresh connection: (end-of-data to 250, connect to 250).
async fn one(addr: SocketAddr, body: &[u8]) -> Result<(Duration, Duration), Error> {
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await?;
    // Without this, Nagle holds the final "." behind the body until the server's delayed ACK (~40 ms).
    stream.set_nodelay(true)?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    expect(&mut r, &mut line, 220).await?;
    r.get_mut().write_all(b"EHLO latency.test\r\n").await?;
    expect(&mut r, &mut line, 250).await?;
    r.get_mut()
        .write_all(b"MAIL FROM:<bench@app.test>\r\n")
        .await?;
    expect(&mut r, &mut line, 250).await?;
    r.get_mut()
        .write_all(b"RCPT TO:<rcpt@sink.test>\r\n")
        .await?;
    expect(&mut r, &mut line, 250).await?;
    r.get_mut().write_all(b"DATA\r\n").await?;
    expect(&mut r, &mut line, 354).await?;
    r.get_mut().write_all(body).await?;
    let dot = Instant::now();
    r.get_mut().write_all(b".\r\n").await?;
    expect(&mut r, &mut line, 250).await?;
    let done = Instant::now();
    r.get_mut().write_all(b"QUIT\r\n").await?;
    let _ = reply(&mut r, &mut line).await;
    Ok((done - dot, done - start))
}

fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: bench@app.test\r\nTo: rcpt@sink.test\r\nSubject: latency\r\n\r\n".to_vec();
    while b.len() + 2 < size {
        b.extend_from_slice(
            b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n",
        );
    }
    b
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

fn show(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(pct(&v, 0.5)),
        ms(pct(&v, 0.9)),
        ms(pct(&v, 0.99)),
        ms(pct(&v, 1.0))
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let Some(addr) = args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: smtp_latency HOST:PORT [MESSAGES] [CLIENTS] [SIZE]");
        std::process::exit(2);
    };
    let n: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let c: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(50);
    let body = Arc::new(body(
        args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(4096),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (next, body) = (next.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (Vec::new(), 0usize);
            while next.fetch_add(1, Ordering::Relaxed) < n {
                match one(addr, &body).await {
                    Ok(t) => ok.push(t),
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let (mut commit, mut whole, mut failed) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (ok, f) = t.await?;
        failed += f;
        for (a, b) in ok {
            commit.push(a);
            whole.push(b);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} messages ({} failed) with {c} clients in {secs:.2} s: {:.0} msg/s",
        commit.len(),
        failed,
        commit.len() as f64 / secs
    );
    show("end of data -> 250", commit);
    show("connect -> 250   ", whole);
    Ok(())
}
