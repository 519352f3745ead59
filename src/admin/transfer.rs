//! Bulk import and export of the suppression list as CSV
//! (`address,reason,time,diagnostic`) or JSON lines. Exported CSV cells that a
//! spreadsheet would run as a formula (starting with `= + - @`, tab or CR) are
//! prefixed with `'`; import strips that prefix again.

use serde::Serialize;

use super::AdminError;
use super::suppressions::{parse_address, stage_add};
use crate::daemon::state::Daemon;
use crate::model::SuppressionReason;
use crate::model::time::Timestamp;
use crate::store::WriteSet;

/// Entries committed per write set during import.
const IMPORT_BATCH: usize = 500;
/// Most lines an import may carry.
const IMPORT_MAX: usize = 1_000_000;
/// At most this many refused records are named in an import's answer; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 100;

/// Export/import formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<ExportFormat, AdminError> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "json" | "ndjson" => Ok(ExportFormat::JsonLines),
            _ => Err(AdminError::bad(
                "format",
                format!("{s:?} is not csv or jsonl"),
            )),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/x-ndjson",
        }
    }
}

/// The whole list in one document.
pub fn export_suppressions(daemon: &Daemon, format: ExportFormat) -> Result<String, AdminError> {
    let mut out = String::new();
    if format == ExportFormat::Csv {
        out.push_str("address,reason,time,diagnostic\r\n");
    }
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = daemon.store.suppressions(None, cursor.as_deref(), 1000)?;
        for s in &items {
            match format {
                ExportFormat::Csv => out.push_str(&csv_row(&[
                    &s.address,
                    s.reason.as_str(),
                    &s.time.to_rfc3339(),
                    s.diagnostic.as_deref().unwrap_or(""),
                ])),
                ExportFormat::JsonLines => {
                    out.push_str(&serde_json::to_string(s).unwrap_or_default());
                    out.push('\n');
                }
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

fn csv_row(cells: &[&str]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    format!("{}\r\n", cells.join(","))
}

/// Quotes a cell when needed and neutralises formula starts.
pub fn csv_cell(c: &str) -> String {
    let c = if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{c}")
    } else {
        c.to_string()
    };
    if c.contains([',', '"', '\r', '\n']) || c.starts_with(' ') || c.ends_with(' ') {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

/// Splits CSV text into records of cells (RFC 4180 quoting; CRLF or LF line ends).
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    check_quotes(text)?;
    Ok(CsvRecords::new(text).collect())
}

/// Fails on an unterminated quoted cell, without building any record (so an import can be
/// refused before anything is written, and then read lazily).
fn check_quotes(text: &str) -> Result<(), String> {
    let (mut quoted, mut at_cell_start, mut records) = (false, true, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, _) => {}
            (false, '"') if at_cell_start => quoted = true,
            (false, ',') => at_cell_start = true,
            (false, '\n') => {
                records += 1;
                at_cell_start = true;
            }
            (false, _) => at_cell_start = false,
        }
        if ch == '"' && !quoted {
            at_cell_start = false;
        }
    }
    if quoted {
        return Err(format!(
            "unterminated quoted cell in record {}",
            records + 1
        ));
    }
    Ok(())
}

/// CSV records read one at a time (RFC 4180 quoting; the export's formula guard removed).
pub struct CsvRecords<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> CsvRecords<'a> {
    pub fn new(text: &'a str) -> Self {
        CsvRecords {
            chars: text.chars().peekable(),
        }
    }
}

impl Iterator for CsvRecords<'_> {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        let (mut row, mut cell, mut quoted, mut was_quoted) =
            (Vec::new(), String::new(), false, false);
        let mut any = false;
        while let Some(ch) = self.chars.next() {
            any = true;
            match (quoted, ch) {
                (true, '"') if self.chars.peek() == Some(&'"') => {
                    self.chars.next();
                    cell.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => cell.push(c),
                (false, '"') if cell.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                (false, ',') => {
                    row.push(unneutralise(std::mem::take(&mut cell)));
                    was_quoted = false;
                }
                (false, '\r') if self.chars.peek() == Some(&'\n') => {}
                (false, '\n') => {
                    row.push(unneutralise(cell));
                    return Some(row);
                }
                (false, c) => cell.push(c),
            }
        }
        if !any || (cell.is_empty() && row.is_empty()) {
            return None;
        }
        row.push(unneutralise(cell));
        Some(row)
    }
}

fn unneutralise(c: String) -> String {
    match c.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_string(),
        _ => c,
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportStats {
    pub added: usize,
    /// Already on the list with the same reason, or a consent entry that import does not replace.
    pub unchanged: usize,
    /// `line N: problem` for each record that was refused (the first [`MAX_LISTED_ERRORS`]).
    pub errors: Vec<String>,
    /// Refused records beyond those listed.
    #[serde(default)]
    pub more_errors: usize,
}

/// One record to import.
struct Row {
    line: usize,
    address: String,
    reason: Option<String>,
    time: Option<String>,
    diagnostic: Option<String>,
}

/// Imports entries; bad records are listed in `errors` and the rest still imported.
/// Existing complaint/unsubscribe entries are never replaced by an import.
pub async fn import_suppressions(
    daemon: &Daemon,
    format: ExportFormat,
    text: &str,
) -> Result<ImportStats, AdminError> {
    let rows = match format {
        ExportFormat::Csv => csv_rows(text)?,
        ExportFormat::JsonLines => json_rows(text),
    };
    let mut stats = ImportStats::default();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let (mut ws, mut events) = (WriteSet::new(), Vec::new());
        for row in rows.by_ref().take(IMPORT_BATCH) {
            match row.and_then(|r| stage_row(daemon, &mut ws, &mut events, r)) {
                Ok(true) => stats.added += 1,
                Ok(false) => stats.unchanged += 1,
                Err(e) if stats.errors.len() < MAX_LISTED_ERRORS => stats.errors.push(e),
                Err(_) => stats.more_errors += 1,
            }
        }
        daemon.commit(ws, &events).await?;
    }
    Ok(stats)
}

fn stage_row(
    daemon: &Daemon,
    ws: &mut WriteSet,
    events: &mut Vec<crate::model::Event>,
    r: Row,
) -> Result<bool, String> {
    let at = |m: String| format!("line {}: {m}", r.line);
    let address = parse_address("address", &r.address).map_err(|e| at(e.to_string()))?;
    let reason = match r.reason.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<SuppressionReason>().map_err(at)?,
        None => SuppressionReason::Manual,
    };
    let time = match r.time.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Timestamp::parse_rfc3339(s).ok_or_else(|| at(format!("bad time {s:?}")))?,
        None => daemon.now(),
    };
    match stage_add(
        daemon,
        ws,
        events,
        &address,
        reason,
        r.diagnostic.filter(|d| !d.is_empty()),
        false,
        time,
    ) {
        Ok((_, changed)) => Ok(changed),
        Err(AdminError::Refused { .. }) => Ok(false),
        Err(e) => Err(at(e.to_string())),
    }
}

fn csv_rows(
    text: &str,
) -> Result<Box<dyn Iterator<Item = Result<Row, String>> + Send + '_>, AdminError> {
    check_quotes(text).map_err(|e| AdminError::bad("body", e))?;
    if memchr::memchr_iter(b'\n', text.as_bytes()).count() > IMPORT_MAX {
        return Err(AdminError::bad(
            "body",
            format!("more than {IMPORT_MAX} records"),
        ));
    }
    let rows = CsvRecords::new(text).enumerate().filter_map(|(i, cells)| {
        let first = cells
            .first()
            .map(|c| c.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if (i == 0 && first == "address") || cells.iter().all(|c| c.trim().is_empty()) {
            return None;
        }
        let cell = |n: usize| cells.get(n).map(|c| c.trim().to_string());
        Some(Ok(Row {
            line: i + 1,
            address: cell(0).unwrap_or_default(),
            reason: cell(1),
            time: cell(2),
            diagnostic: cell(3),
        }))
    });
    Ok(Box::new(rows))
}

fn json_rows(text: &str) -> Box<dyn Iterator<Item = Result<Row, String>> + Send + '_> {
    #[derive(serde::Deserialize)]
    struct J {
        address: String,
        reason: Option<String>,
        time: Option<String>,
        diagnostic: Option<String>,
    }
    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(IMPORT_MAX)
        .map(|(i, l)| {
            serde_json::from_str::<J>(l)
                .map(|j| Row {
                    line: i + 1,
                    address: j.address,
                    reason: j.reason,
                    time: j.time,
                    diagnostic: j.diagnostic,
                })
                .map_err(|e| format!("line {}: {e}", i + 1))
        });
    Box::new(rows)
}
