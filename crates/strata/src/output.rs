//! Output as Docker prints it: aligned tables, sizes in decimal units with
//! three significant digits, "N units ago".

use std::io::{self, Write};

/// A table whose columns are padded to line up, as Docker's are.
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
                    // Docker's tabwriter: three spaces apart, and no
                    // column narrower than ten.
                    let width = (widths[c] + 3).max(10);
                    line.push_str(&" ".repeat(width - cell.chars().count()));
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

/// A time as Docker's lists print it (Go's `time.Time.String()` in the
/// local zone): `2026-11-24 15:59:51 +0000 UTC`; as given if it is not
/// RFC 3339.
pub fn docker_time(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(t) => t
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %z %Z")
            .to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

/// Labels as Docker's lists show them: `k=v,k2=v2`.
pub fn labels_text<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let pairs: Vec<String> = labels
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.join(",")
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
            v = v.get(key).ok_or_else(|| {
                let there = match v.as_object() {
                    Some(o) => {
                        let keys: Vec<&str> = o.keys().map(String::as_str).collect();
                        format!("the fields are {}", keys.join(", "))
                    }
                    None => format!("{v} has no fields"),
                };
                anyhow::anyhow!("template '{tpl}': no field '{key}' ({there})")
            })?;
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

/// `--format` of a list (`ps`, `images`, `volume ls`), as Docker takes it:
/// `table` (the command's own columns), `json` (each row a JSON object),
/// or a template applied to each row (`{{.Names}}`), lined up under a
/// header when it starts with `table `. `\t` and `\n` in a template are a
/// tab and a newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Template { table: bool, body: String },
}

impl ListFormat {
    /// Parses `--format`'s value (for clap).
    pub fn parse(value: &str) -> Result<ListFormat, String> {
        let value = value.trim();
        let unescape = |t: &str| t.trim().replace("\\t", "\t").replace("\\n", "\n");
        Ok(match value {
            "" | "table" => ListFormat::Table,
            "json" => ListFormat::Json,
            _ => match value.strip_prefix("table ") {
                Some(body) => ListFormat::Template {
                    table: true,
                    body: unescape(body),
                },
                None => ListFormat::Template {
                    table: false,
                    body: unescape(value),
                },
            },
        })
    }
}

/// A list's columns: each field of its rows with Docker's header for it,
/// and which of them its table shows by default.
pub struct Columns<'a> {
    pub headers: &'a [(&'a str, &'a str)],
    pub default: &'a [&'a str],
}

/// Prints a list's `rows` (JSON objects with Docker's field names) as
/// `format` asks.
pub fn print_list(
    format: &ListFormat,
    columns: &Columns,
    rows: &[serde_json::Value],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let default;
    let (table, body) = match format {
        ListFormat::Json => {
            for row in rows {
                writeln!(out, "{row}")?;
            }
            return Ok(());
        }
        ListFormat::Table => {
            let fields: Vec<String> = columns
                .default
                .iter()
                .map(|f| format!("{{{{.{f}}}}}"))
                .collect();
            default = fields.join("\t");
            (true, default.as_str())
        }
        ListFormat::Template { table, body } => (*table, body.as_str()),
    };
    let lines = rows
        .iter()
        .map(|row| template(body, row))
        .collect::<anyhow::Result<Vec<String>>>()?;
    if !table {
        for line in lines {
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let headers: serde_json::Map<String, serde_json::Value> = columns
        .headers
        .iter()
        .map(|(field, header)| ((*field).to_owned(), (*header).into()))
        .collect();
    let cells = |line: &str| line.split('\t').map(str::to_owned).collect();
    let mut t = Table {
        rows: vec![cells(&template(body, &headers.into())?)],
    };
    for line in &lines {
        t.row(cells(line));
    }
    t.print(out)?;
    Ok(())
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
                .contains("no field 'Nope' (the fields are Config, Id, Size)")
        );
    }

    #[test]
    fn list_formats_parse_as_docker_takes_them() {
        let check = |value: &str, expected: ListFormat| {
            assert_eq!(ListFormat::parse(value), Ok(expected), "{value}");
        };
        let template = |table: bool, body: &str| ListFormat::Template {
            table,
            body: body.into(),
        };
        check("table", ListFormat::Table);
        check("", ListFormat::Table);
        check("json", ListFormat::Json);
        check(" json ", ListFormat::Json);
        check("{{.Names}}", template(false, "{{.Names}}"));
        check(
            "table {{.ID}}\\t{{.Names}}",
            template(true, "{{.ID}}\t{{.Names}}"),
        );
        check("{{.ID}}\\n", template(false, "{{.ID}}\n"));
        check("tables", template(false, "tables"));
        check("{{json .}}", template(false, "{{json .}}"));
    }

    /// What a list of two rows prints with `--format value`.
    fn check_list(value: &str, expected: &str) {
        let columns = Columns {
            headers: &[
                ("ID", "CONTAINER ID"),
                ("Names", "NAMES"),
                ("State", "STATE"),
            ],
            default: &["ID", "Names"],
        };
        let rows = [
            serde_json::json!({"ID": "abc", "Names": "web", "State": "running"}),
            serde_json::json!({"ID": "defdefdefdefdef", "Names": "db", "State": "exited"}),
        ];
        let mut out = Vec::new();
        let format = ListFormat::parse(value).unwrap();
        print_list(&format, &columns, &rows, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{value}");
    }

    #[test]
    fn lists_print_as_docker_prints_them() {
        check_list(
            "table",
            "CONTAINER ID      NAMES\n\
             abc               web\n\
             defdefdefdefdef   db\n",
        );
        check_list(
            "table {{.Names}}\\t{{.State}}",
            "NAMES     STATE\nweb       running\ndb        exited\n",
        );
        check_list("{{.Names}}\\t{{.ID}}", "web\tabc\ndb\tdefdefdefdefdef\n");
        check_list("{{.Names}} is {{.State}}", "web is running\ndb is exited\n");
        check_list(
            "json",
            "{\"ID\":\"abc\",\"Names\":\"web\",\"State\":\"running\"}\n\
             {\"ID\":\"defdefdefdefdef\",\"Names\":\"db\",\"State\":\"exited\"}\n",
        );
    }
}
