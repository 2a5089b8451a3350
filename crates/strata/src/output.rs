//! Output as Docker prints it: aligned tables, sizes in decimal units with
//! three significant digits, "N units ago".

use std::io::{self, Write};

/// A table whose columns are padded to line up, three spaces apart.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `4.26MB`, as Docker's `HumanSizeWithPrecision(size, 3)`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(v, 3), UNITS[unit])
}

/// `%.3g` without exponent: three significant digits, trailing zeros cut.
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// "3 weeks", as Docker's `HumanDuration`.
pub fn duration(seconds: i64) -> String {
    let hours = ((seconds as f64) / 3600.0 + 0.5) as i64;
    let minutes = seconds / 60;
    match seconds {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// "3 weeks ago" for an RFC 3339 time; "N/A" if there is none.
pub fn ago(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => format!(
            "{} ago",
            duration(jiff::Timestamp::now().as_second() - t.as_second())
        ),
        None => "N/A".into(),
    }
}

/// Docker's `--format '{{.A.B}}'`, for the fields of a JSON value: each
/// `{{.Path}}` becomes the value there (strings bare, the rest as JSON),
/// `{{json .Path}}` always JSON.
pub fn template(tpl: &str, value: &serde_json::Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("template '{tpl}': unclosed '{{{{'"))?;
        let expr = rest[start + 2..start + end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').ok_or_else(|| {
            anyhow::anyhow!("template '{tpl}': '{expr}' is not a field like .Id or .Config.Cmd")
        })?;
        let mut v = value;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            v = v
                .get(key)
                .ok_or_else(|| anyhow::anyhow!("template '{tpl}': no field '{key}'"))?;
        }
        match (as_json, v) {
            (false, serde_json::Value::String(s)) => out.push_str(s),
            (false, serde_json::Value::Null) => out.push_str("<no value>"),
            _ => out.push_str(&v.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// JSON indented with four spaces, as `docker inspect` prints it.
pub fn pretty_json(value: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(value, &mut ser).expect("json values serialize");
    String::from_utf8(buf).expect("json is utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        for (bytes, expected) in [
            (0, "0B"),
            (512, "512B"),
            (1234, "1.23kB"),
            (2_180_000, "2.18MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (1_000_000_000, "1GB"),
            (4_261_000, "4.26MB"),
        ] {
            assert_eq!(size(bytes), expected, "{bytes}");
        }
    }

    #[test]
    fn durations_like_docker() {
        for (s, expected) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (600, "10 minutes"),
            (3600, "About an hour"),
            (3 * 3600, "3 hours"),
            (3 * 86400, "3 days"),
            (20 * 86400, "2 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(duration(s), expected, "{s}");
        }
    }

    #[test]
    fn templates() {
        let v = serde_json::json!({"Id": "sha256:abc", "Config": {"Cmd": ["sh"]}, "Size": 3});
        assert_eq!(template("{{.Id}} {{.Size}}", &v).unwrap(), "sha256:abc 3");
        assert_eq!(template("{{json .Config.Cmd}}", &v).unwrap(), r#"["sh"]"#);
        assert!(
            template("{{.Nope}}", &v)
                .unwrap_err()
                .to_string()
                .contains("no field 'Nope'")
        );
    }
}
