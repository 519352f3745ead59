//! `rebound sink`: a tiny SMTP server for trying rebound out offline. It answers
//! like a recipient's mail server would, prints one line per message it accepts
//! (envelope sender, recipients, size, Subject), and refuses the addresses given
//! with `--unknown` as `550 5.1.1` at RCPT, so a quick start can show a delivered
//! message and a bounced one without the Internet. Nothing is stored.

use std::io::Write as _;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Longest command line or message the sink reads (it is for trying things out).
const MAX_LINE: usize = 4096;
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// Runs the sink until interrupted; returns the process exit code.
pub fn run(listen: SocketAddr, unknown: Vec<String>) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rebound sink: {e}");
            return 1;
        }
    };
    let unknown: Vec<String> = unknown
        .into_iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    rt.block_on(async move {
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rebound sink: cannot listen on {listen}: {e}");
                return 1;
            }
        };
        println!(
            "rebound sink: listening on {}, accepting every recipient but {:?}",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            unknown
        );
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return 0,
                accepted = listener.accept() => {
                    let Ok((sock, _)) = accepted else { continue };
                    let unknown = unknown.clone();
                    tokio::spawn(async move {
                        let _ = session(sock, &unknown).await;
                    });
                }
            }
        }
    })
}

/// The envelope of the transaction in progress.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    rcpts: Vec<String>,
}

async fn session(sock: TcpStream, unknown: &[String]) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.rebound.test ESMTP rebound sink\r\n")
        .await?;
    let mut env = Envelope::default();
    loop {
        let Some(line) = read_line(&mut r).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-sink.rebound.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8".to_string()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 2.0.0 OK".into()
        } else if upper.starts_with("MAIL FROM:") {
            env = Envelope {
                from: Some(path_of(&line[10..])),
                rcpts: Vec::new(),
            };
            "250 2.1.0 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            rcpt(&mut env, &path_of(&line[8..]), unknown)
        } else if upper == "DATA" {
            data(&mut r, &mut w, &mut env).await?
        } else if upper == "RSET" {
            env = Envelope::default();
            "250 2.0.0 OK".into()
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.1 Not implemented".into()
        };
        w.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

fn rcpt(env: &mut Envelope, addr: &str, unknown: &[String]) -> String {
    if env.from.is_none() {
        return "503 5.5.1 MAIL first".into();
    }
    if unknown.iter().any(|u| u.eq_ignore_ascii_case(addr)) {
        return format!("550 5.1.1 <{addr}>: Recipient address rejected: User unknown");
    }
    env.rcpts.push(addr.to_string());
    "250 2.1.5 OK".into()
}

async fn data<R: AsyncBufReadExt + Unpin, W: AsyncWriteExt + Unpin>(
    r: &mut R,
    w: &mut W,
    env: &mut Envelope,
) -> std::io::Result<String> {
    if env.rcpts.is_empty() {
        return Ok("503 5.5.1 RCPT first".into());
    }
    w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        .await?;
    let (mut size, mut subject) = (0usize, None);
    let mut in_headers = true;
    loop {
        let Some(line) = read_line(r).await? else {
            return Ok("451 4.3.0 Connection lost".into());
        };
        if line == "." {
            break;
        }
        size += line.len() + 2;
        if in_headers && line.is_empty() {
            in_headers = false;
        }
        if in_headers && subject.is_none() && line.to_ascii_lowercase().starts_with("subject:") {
            subject = Some(line[8..].trim().to_string());
        }
        if size > MAX_MESSAGE {
            return Ok("552 5.3.4 Message too big for the sink".into());
        }
    }
    let from = env.from.take().unwrap_or_default();
    let rcpts = std::mem::take(&mut env.rcpts);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "delivered: from <{from}> to {} ({size} bytes) subject {:?}",
        rcpts
            .iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(", "),
        subject.unwrap_or_default()
    );
    let _ = out.flush();
    Ok("250 2.0.0 Ok: delivered to the sink".into())
}

/// The address inside `<...>` (parameters after it ignored).
fn path_of(arg: &str) -> String {
    let arg = arg.trim();
    match arg.strip_prefix('<').and_then(|a| a.split_once('>')) {
        Some((addr, _)) => addr.to_string(),
        None => arg.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// One line without its CRLF; `None` at end of stream. Longer lines are cut.
async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(None);
    }
    buf.truncate(MAX_LINE);
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn paths_are_read_from_angle_brackets() {
        assert_eq!(path_of("<a@b.test> SIZE=10"), "a@b.test");
        assert_eq!(path_of("<>"), "");
        assert_eq!(path_of(" a@b.test"), "a@b.test");
    }
}
