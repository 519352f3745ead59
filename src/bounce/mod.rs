//! Bounce parser placeholder (replaced by the `bounce` branch).
use std::io::{Read, Write};

/// `rebound parse FILE... | -`.
pub fn run_parse_command(paths: &[String], stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let _ = (paths, stdin, out);
    let _ = writeln!(err, "parse: not built yet");
    2
}
