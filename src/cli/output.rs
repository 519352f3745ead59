//! How admin results are printed: aligned human tables by default, or one
//! JSON object per line with `--json`.

use std::io::Write;

use serde_json::Value;

/// Where and how to print.
pub struct Out<'a> {
    pub json: bool,
    pub w: &'a mut dyn Write,
}

impl Out<'_> {
    /// One JSON object per line (each item of a list on its own line).
    pub fn json_lines(&mut self, items: &[Value]) {
        for v in items {
            let _ = writeln!(self.w, "{v}");
        }
    }

    pub fn line(&mut self, s: &str) {
        let _ = writeln!(self.w, "{s}");
    }

    /// Prints `items` as a table with `cols` (header, JSON field).
    pub fn table(&mut self, cols: &[(&str, &str)], items: &[Value]) {
        if self.json {
            return self.json_lines(items);
        }
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|it| cols.iter().map(|(_, f)| cell(&it[*f])).collect())
            .collect();
        self.grid(
            &cols.iter().map(|(h, _)| h.to_string()).collect::<Vec<_>>(),
            &rows,
        );
    }

    /// Prints rows under headers, columns padded to their widest cell (the last one unpadded).
    pub fn grid(&mut self, headers: &[String], rows: &[Vec<String>]) {
        let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for r in rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let fmt = |cells: &[String]| {
            let n = cells.len();
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == n {
                        c.clone()
                    } else {
                        format!("{c:<w$}", w = width[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        let _ = writeln!(self.w, "{}", fmt(headers).trim_end());
        for r in rows {
            let _ = writeln!(self.w, "{}", fmt(r).trim_end());
        }
    }

    /// Prints one object: `key: value` lines, or one JSON line.
    pub fn object(&mut self, v: &Value, keys: &[&str]) {
        if self.json {
            return self.json_lines(std::slice::from_ref(v));
        }
        for k in keys {
            if !v[*k].is_null() {
                let _ = writeln!(self.w, "{k:<14} {}", cell(&v[*k]));
            }
        }
    }
}

/// A JSON value as a table cell: strings bare, null as `-`, control characters made visible.
pub fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    };
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
