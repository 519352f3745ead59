//! Bulk import and export of the suppression list as CSV
//! (`address,reason,time,diagnostic`) or JSON lines. Exported CSV cells that a
//! spreadsheet would run as a formula (starting with `= + - @`, tab or CR) are
//! prefixed with `'`; import strips that prefix again.

use serde::Serialize;

use super::AdminError;
use super::suppressions::{parse_address, stage_add};
use crate::model::SuppressionReason;
use crate::relay::Relay;
use crate::store::WriteSet;
use crate::time::Timestamp;

/// Entries committed per write set during import.
const IMPORT_BATCH: usize = 500;
/// Most lines an import may carry.
const IMPORT_MAX: usize = 1_000_000;

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
            _ => Err(AdminError::bad("format", format!("{s:?} is not csv or jsonl"))),
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
pub fn export_suppressions(relay: &Relay, format: ExportFormat) -> Result<String, AdminError> {
    let mut out = String::new();
    if format == ExportFormat::Csv {
        out.push_str("address,reason,time,diagnostic\r\n");
    }
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = relay.store.suppressions(None, cursor.as_deref(), 1000)?;
        for s in &items {
            match format {
                ExportFormat::Csv => out.push_str(&csv_row(&[&s.address, s.reason.as_str(), &s.time.to_rfc3339(), s.diagnostic.as_deref().unwrap_or("")])),
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
    let c = if c.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{c}") } else { c.to_string() };
    if c.contains([',', '"', '\r', '\n']) || c.starts_with(' ') || c.ends_with(' ') {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

/// Splits CSV text into records of cells (RFC 4180 quoting; CRLF or LF line ends).
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted, mut was_quoted) = (Vec::new(), String::new(), false, false);
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
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
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(unneutralise(std::mem::take(&mut cell)));
                rows.push(std::mem::take(&mut row));
                was_quoted = false;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quoted cell in record {}", rows.len() + 1));
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(unneutralise(cell));
        rows.push(row);
    }
    Ok(rows)
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
    /// `line N: problem` for each record that was refused.
    pub errors: Vec<String>,
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
pub async fn import_suppressions(relay: &Relay, format: ExportFormat, text: &str) -> Result<ImportStats, AdminError> {
    let rows = match format {
        ExportFormat::Csv => csv_rows(text)?,
        ExportFormat::JsonLines => json_rows(text),
    };
    let mut stats = ImportStats::default();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let (mut ws, mut events) = (WriteSet::new(), Vec::new());
        for row in rows.by_ref().take(IMPORT_BATCH) {
            match row.and_then(|r| stage_row(relay, &mut ws, &mut events, r)) {
                Ok(true) => stats.added += 1,
                Ok(false) => stats.unchanged += 1,
                Err(e) => stats.errors.push(e),
            }
        }
        relay.commit(ws, &events).await?;
    }
    Ok(stats)
}

fn stage_row(relay: &Relay, ws: &mut WriteSet, events: &mut Vec<crate::model::Event>, r: Row) -> Result<bool, String> {
    let at = |m: String| format!("line {}: {m}", r.line);
    let address = parse_address("address", &r.address).map_err(|e| at(e.to_string()))?;
    let reason = match r.reason.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<SuppressionReason>().map_err(at)?,
        None => SuppressionReason::Manual,
    };
    let time = match r.time.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Timestamp::parse_rfc3339(s).ok_or_else(|| at(format!("bad time {s:?}")))?,
        None => relay.now(),
    };
    match stage_add(relay, ws, events, &address, reason, r.diagnostic.filter(|d| !d.is_empty()), false, time) {
        Ok((_, changed)) => Ok(changed),
        Err(AdminError::Refused { .. }) => Ok(false),
        Err(e) => Err(at(e.to_string())),
    }
}

fn csv_rows(text: &str) -> Result<Vec<Result<Row, String>>, AdminError> {
    let records = parse_csv(text).map_err(|e| AdminError::bad("body", e))?;
    if records.len() > IMPORT_MAX {
        return Err(AdminError::bad("body", format!("more than {IMPORT_MAX} records")));
    }
    let mut out = Vec::new();
    for (i, cells) in records.into_iter().enumerate() {
        let first = cells.first().map(|c| c.trim().to_ascii_lowercase()).unwrap_or_default();
        if (i == 0 && first == "address") || cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |n: usize| cells.get(n).map(|c| c.trim().to_string());
        out.push(Ok(Row { line: i + 1, address: cell(0).unwrap_or_default(), reason: cell(1), time: cell(2), diagnostic: cell(3) }));
    }
    Ok(out)
}

fn json_rows(text: &str) -> Vec<Result<Row, String>> {
    #[derive(serde::Deserialize)]
    struct J {
        address: String,
        reason: Option<String>,
        time: Option<String>,
        diagnostic: Option<String>,
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(IMPORT_MAX)
        .map(|(i, l)| {
            serde_json::from_str::<J>(l)
                .map(|j| Row { line: i + 1, address: j.address, reason: j.reason, time: j.time, diagnostic: j.diagnostic })
                .map_err(|e| format!("line {}: {e}", i + 1))
        })
        .collect()
}
