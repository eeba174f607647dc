//! `wsgate logs`: reads a stage's access log files in day order, filters
//! lines, prints them for people (or as they are, `--json`), and follows
//! new lines across the daily rotation.

use super::format::Format;
use super::writer::day_of;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--status`: `5xx` (a class) or `404` (one status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Class(u16),
    Exact(u16),
}

pub fn parse_status(text: &str) -> Result<StatusFilter, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx")
        && let Ok(digit @ 1..=5) = class.parse::<u16>()
    {
        return Ok(StatusFilter::Class(digit));
    }
    match text.parse::<u16>() {
        Ok(status @ 100..=599) => Ok(StatusFilter::Exact(status)),
        _ => Err(format!("\"{text}\" is not a status such as 5xx or 404")),
    }
}

/// `--since`: `90s`, `15m`, `1h`, `2d`, or SST's `"1 hour"` form.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let short = |suffix: char, seconds: u64| {
        text.strip_suffix(suffix)
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| n.checked_mul(seconds))
            .map(Duration::from_secs)
    };
    short('s', 1)
        .or_else(|| short('m', 60))
        .or_else(|| short('h', 3600))
        .or_else(|| short('d', 86_400))
        .map(Ok)
        .unwrap_or_else(|| crate::config::parse_duration(text))
        .map_err(|_| format!("\"{text}\" is not a duration such as 30m, 1h or 2d"))
}

/// Which lines `wsgate logs` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub route: Option<String>,
    pub connection: Option<String>,
    pub status: Option<StatusFilter>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.since.is_none()
            && self.route.is_none()
            && self.connection.is_none()
            && self.status.is_none()
    }

    /// Whether a line passes; lines of custom formats lacking a field a
    /// filter needs do not.
    pub fn matches(&self, line: &Value) -> bool {
        let text = |key: &str| line.get(key).and_then(Value::as_str);
        if let Some(route) = &self.route
            && text("routeKey") != Some(route.as_str())
        {
            return false;
        }
        if let Some(connection) = &self.connection
            && text("connectionId") != Some(connection.as_str())
        {
            return false;
        }
        if let Some(filter) = self.status {
            let status = line
                .get("status")
                .and_then(|s| s.as_u64().or_else(|| s.as_str()?.parse().ok()));
            let Some(status) = status else { return false };
            let passes = match filter {
                StatusFilter::Class(class) => status / 100 == u64::from(class),
                StatusFilter::Exact(exact) => status == u64::from(exact),
            };
            if !passes {
                return false;
            }
        }
        if let Some(since) = self.since {
            return request_time(line).is_none_or(|time| time >= since);
        }
        true
    }
}

fn request_time(line: &Value) -> Option<DateTime<Utc>> {
    let text = line.get("requestTime")?.as_str()?;
    DateTime::<FixedOffset>::parse_from_str(text, "%d/%b/%Y:%H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One line for people: time, event, route, status, latency, connection,
/// caller. `None` when the line is not JSON (it is then shown as it is).
pub fn human(line: &Value, color: bool) -> String {
    let text = |key: &str| -> String {
        match line.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "-".into(),
            Some(other) => other.to_string(),
        }
    };
    let time = request_time(line)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| text("requestTime"));
    let status = text("status");
    let status = match (color, status.chars().next()) {
        (true, Some('2')) => format!("\x1b[32m{status}\x1b[0m"),
        (true, Some('4')) => format!("\x1b[33m{status}\x1b[0m"),
        (true, Some('5')) => format!("\x1b[31m{status}\x1b[0m"),
        _ => status,
    };
    let latency = match text("integrationLatency").as_str() {
        "-" => "-".to_string(),
        ms => format!("{ms} ms"),
    };
    format!(
        "{time}  {:<10} {:<16} {status}  {latency:>7}  {}  {}",
        text("eventType"),
        text("routeKey"),
        text("connectionId"),
        text("ip"),
    )
}

/// The log files of `dir`, oldest day first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| day_of(p).is_some())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Reads the log files in order and then, when following, what is
/// appended to them, moving on when a new day's file appears.
pub struct Tail {
    dir: PathBuf,
    /// The file being read and how far.
    current: Option<(PathBuf, u64)>,
    /// Files before this day are skipped (`--since`).
    first_day: Option<chrono::NaiveDate>,
}

impl Tail {
    pub fn new(dir: PathBuf, since: Option<DateTime<Utc>>) -> Tail {
        Tail {
            dir,
            current: None,
            first_day: since.map(|s| s.date_naive()),
        }
    }

    /// Complete lines not read yet, across every file up to the newest.
    pub fn poll(&mut self) -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let files = files(&self.dir);
            let next = match &self.current {
                None => files.into_iter().find(|f| {
                    self.first_day
                        .is_none_or(|d| day_of(f).is_some_and(|day| day >= d))
                }),
                Some((path, _)) => {
                    let path = path.clone();
                    self.read_new(&path, &mut lines)?;
                    files.into_iter().find(|f| *f > path)
                }
            };
            match next {
                Some(path) => self.current = Some((path, 0)),
                None => return Ok(lines),
            }
        }
    }

    fn read_new(&mut self, path: &Path, lines: &mut Vec<String>) -> std::io::Result<()> {
        let Some((_, offset)) = &mut self.current else {
            return Ok(());
        };
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(*offset))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        // A line still being written waits for its newline.
        let complete = text.rfind('\n').map_or(0, |end| end + 1);
        lines.extend(text[..complete].lines().map(str::to_string));
        *offset += complete as u64;
        Ok(())
    }
}

/// How `print` shows lines.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// As stored, instead of for people.
    pub json: bool,
    /// ANSI colours on statuses (for a terminal).
    pub color: bool,
}

/// A stored line as `wsgate logs` shows it, or `None` when `filter` drops
/// it. The line is read back with the API's `format` (any custom format
/// too), else as JSON (lines written before the format changed); a line
/// read neither way is shown as it is, and only when nothing filters.
pub fn show(line: &str, format: &Format, filter: &Filter, shown: Shown) -> Option<String> {
    let fields = format.read(line).map(Value::Object).or_else(|| {
        serde_json::from_str::<Value>(line)
            .ok()
            .filter(Value::is_object)
    });
    match fields {
        Some(fields) if !filter.matches(&fields) => None,
        Some(fields) if !shown.json => Some(human(&fields, shown.color)),
        Some(_) => Some(line.to_string()),
        None if filter.is_empty() => Some(line.to_string()),
        None => None,
    }
}

/// Prints the lines of `dir` that pass `filter`; with `follow`, keeps
/// printing new ones until the output is closed.
pub fn print(
    dir: &Path,
    format: &Format,
    filter: &Filter,
    shown: Shown,
    follow: bool,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut tail = Tail::new(dir.to_path_buf(), filter.since);
    loop {
        for line in tail.poll().unwrap_or_default() {
            let Some(text) = show(&line, format, filter, shown) else {
                continue;
            };
            if writeln!(out, "{text}").is_err() {
                // The reader went away (e.g. `| head`): done, not an error.
                return Ok(());
            }
        }
        if !follow {
            return Ok(());
        }
        out.flush()?;
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(300);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(route: &str, status: u16, time: &str) -> Value {
        json!({"requestTime": time, "routeKey": route, "status": status, "connectionId": "c1=", "eventType": "MESSAGE"})
    }

    #[test]
    fn filters() {
        let error = line("send", 502, "25/Nov/2026:19:30:00 +0000");
        let ok = line("echo", 200, "25/Nov/2026:17:00:00 +0000");
        let filter = Filter {
            status: Some(parse_status("5xx").unwrap()),
            ..Filter::default()
        };
        assert!(filter.matches(&error) && !filter.matches(&ok));
        let filter = Filter {
            route: Some("echo".into()),
            connection: Some("c1=".into()),
            ..Filter::default()
        };
        assert!(filter.matches(&ok) && !filter.matches(&error));
        let filter = Filter {
            since: Some("2026-11-25T18:00:00Z".parse().unwrap()),
            status: Some(StatusFilter::Exact(502)),
            ..Filter::default()
        };
        assert!(filter.matches(&error) && !filter.matches(&ok));
        assert_eq!(parse_status("4XX"), Ok(StatusFilter::Class(4)));
        assert!(parse_status("6xx").is_err() && parse_status("abc").is_err());
        assert_eq!(parse_since("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_since("2 hours"), Ok(Duration::from_secs(7200)));
        assert!(parse_since("soon").is_err());
        assert!(
            parse_since("999999999999999999d").is_err(),
            "overflow is an error"
        );
    }

    #[test]
    fn human_lines_and_colour() {
        let text = human(&line("send", 502, "25/Nov/2026:19:30:00 +0000"), false);
        assert!(
            text.starts_with("2026-11-25 19:30:00  MESSAGE    send"),
            "{text}"
        );
        assert!(text.contains(" 502 "), "{text}");
        let coloured = human(&line("send", 502, "25/Nov/2026:19:30:00 +0000"), true);
        assert!(coloured.contains("\x1b[31m502\x1b[0m"), "{coloured}");
    }

    #[test]
    fn tail_follows_appends_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let day1 = dir.path().join("2026-11-25.jsonl");
        std::fs::write(&day1, "a\nb\npartial").unwrap();
        let mut tail = Tail::new(dir.path().to_path_buf(), None);
        assert_eq!(tail.poll().unwrap(), ["a", "b"]);
        assert!(tail.poll().unwrap().is_empty());
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&day1)
            .unwrap();
        file.write_all(b" line\nc\n").unwrap();
        std::fs::write(dir.path().join("2026-11-26.jsonl"), "d\n").unwrap();
        assert_eq!(tail.poll().unwrap(), ["partial line", "c", "d"]);
        let mut since = Tail::new(
            dir.path().to_path_buf(),
            Some("2026-11-26T00:00:00Z".parse().unwrap()),
        );
        assert_eq!(since.poll().unwrap(), ["d"]);
    }
}
