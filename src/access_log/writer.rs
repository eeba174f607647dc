//! The access log writer: a thread of its own drains the queue into
//! `<dir>/YYYY-MM-DD.jsonl` (a file per UTC day), and a maintenance task
//! deletes files past the retention (at start, then hourly) and reports
//! lines dropped because the writer was behind.

use super::AccessLog;
use crate::config::Retention;
use chrono::{DateTime, NaiveDate, Utc};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// The writer's idea of now: the real clock, or a fake one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Lines that may wait for the writer before new ones are dropped.
pub const QUEUE_LINES: usize = 64 * 1024;
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Where an API's stage logs: `<config dir>/.wsgate/logs/<name>/<stage>/`.
pub fn log_dir(config_dir: &Path, name: &str, stage: &str) -> PathBuf {
    config_dir.join(".wsgate/logs").join(name).join(stage)
}

pub fn file_for(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!("{}.jsonl", day.format("%Y-%m-%d")))
}

/// The day a log file holds, from its name.
pub fn day_of(path: &Path) -> Option<NaiveDate> {
    let name = path.file_name()?.to_str()?.strip_suffix(".jsonl")?;
    NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()
}

/// Appends lines to the current day's file, moving to a new file when the
/// day changes.
pub struct Writer {
    dir: PathBuf,
    clock: Clock,
    open: Option<(NaiveDate, BufWriter<File>)>,
}

impl Writer {
    pub fn new(dir: PathBuf, clock: Clock) -> std::io::Result<Writer> {
        std::fs::create_dir_all(&dir)?;
        Ok(Writer {
            dir,
            clock,
            open: None,
        })
    }

    pub fn write(&mut self, line: &str) -> std::io::Result<()> {
        let today = (self.clock)().date_naive();
        if self.open.as_ref().is_none_or(|(day, _)| *day != today) {
            self.flush()?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(file_for(&self.dir, today))?;
            self.open = Some((today, BufWriter::with_capacity(64 * 1024, file)));
        }
        let (_, file) = self.open.as_mut().expect("opened above");
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.open {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Deletes the log files in `dir` older than `retention` on `today`;
/// returns what it deleted.
pub fn sweep(dir: &Path, retention: Retention, today: NaiveDate) -> Vec<PathBuf> {
    let Retention::Days(days) = retention else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let oldest_kept = today - chrono::Days::new(u64::from(days.saturating_sub(1)));
    let mut deleted = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if day_of(&path).is_some_and(|day| day < oldest_kept) && std::fs::remove_file(&path).is_ok()
        {
            deleted.push(path);
        }
    }
    deleted
}

/// Starts the writer thread and the maintenance task; returns the handle
/// the data plane logs through.
pub fn start(
    dir: PathBuf,
    retention: Retention,
    format: super::format::Format,
    clock: Clock,
) -> std::io::Result<AccessLog> {
    let mut writer = Writer::new(dir.clone(), Arc::clone(&clock))?;
    for path in sweep(&dir, retention, clock().date_naive()) {
        tracing::info!(file = %path.display(), "deleted an access log past its retention");
    }
    let (log, lines) = AccessLog::channel(format, QUEUE_LINES);
    let finished = Arc::new(AtomicBool::new(false));
    let thread_finished = Arc::clone(&finished);
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            drain(&mut writer, lines);
            thread_finished.store(true, Ordering::Relaxed);
        })?;
    tokio::spawn(maintain(
        dir,
        retention,
        clock,
        log.dropped_counter(),
        finished,
    ));
    Ok(log)
}

/// How long the writer sleeps when the queue is empty. It polls rather
/// than blocks: a blocked receiver makes every sender pay a thread wake-up,
/// which at tens of thousands of lines a second costs the data plane more
/// than the writing does.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// Writes until every handle is gone, flushing whenever the queue is empty.
fn drain(writer: &mut Writer, mut lines: mpsc::Receiver<String>) {
    use tokio::sync::mpsc::error::TryRecvError;
    let mut failed = false;
    loop {
        let mut result = Ok(());
        let mut wrote = false;
        let closed = loop {
            match lines.try_recv() {
                Ok(line) => {
                    wrote = true;
                    if result.is_ok() {
                        result = writer.write(&line);
                    }
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if wrote {
            let result = result.and_then(|()| writer.flush());
            // One error line per outage, not one per record.
            match (result, failed) {
                (Err(error), false) => {
                    tracing::error!(%error, "cannot write the access log");
                    failed = true;
                }
                (Ok(()), true) => failed = false,
                _ => {}
            }
        }
        if closed {
            let _ = writer.flush();
            return;
        }
        std::thread::sleep(IDLE_POLL);
    }
}

async fn maintain(
    dir: PathBuf,
    retention: Retention,
    clock: Clock,
    dropped: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
) {
    let mut sweep_timer = tokio::time::interval(SWEEP_EVERY);
    sweep_timer.tick().await;
    let mut report_timer = tokio::time::interval(REPORT_EVERY);
    let mut reported = 0;
    while !finished.load(Ordering::Relaxed) {
        tokio::select! {
            _ = sweep_timer.tick() => {
                let (dir, today) = (dir.clone(), clock().date_naive());
                if let Ok(deleted) = tokio::task::spawn_blocking(move || sweep(&dir, retention, today)).await {
                    for path in deleted {
                        tracing::info!(file = %path.display(), "deleted an access log past its retention");
                    }
                }
            }
            _ = report_timer.tick() => {
                let now = dropped.load(Ordering::Relaxed);
                if now > reported {
                    tracing::warn!(dropped = now - reported, total = now, "access log writer fell behind; lines dropped");
                    reported = now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn fake_clock(start: &str) -> (Clock, Arc<Mutex<DateTime<Utc>>>) {
        let now = Arc::new(Mutex::new(start.parse::<DateTime<Utc>>().unwrap()));
        let shared = Arc::clone(&now);
        (Arc::new(move || *shared.lock().unwrap()), now)
    }

    #[test]
    fn rotates_at_midnight_utc() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, now) = fake_clock("2026-11-25T23:59:59Z");
        let mut writer = Writer::new(dir.path().to_path_buf(), clock).unwrap();
        writer.write("one").unwrap();
        *now.lock().unwrap() = "2026-11-26T00:00:01Z".parse().unwrap();
        writer.write("two").unwrap();
        writer.write("three").unwrap();
        writer.flush().unwrap();
        let read =
            |day: &str| std::fs::read_to_string(dir.path().join(format!("{day}.jsonl"))).unwrap();
        assert_eq!(read("2026-11-25"), "one\n");
        assert_eq!(read("2026-11-26"), "two\nthree\n");
    }

    #[test]
    fn sweep_deletes_past_retention_only() {
        let dir = tempfile::tempdir().unwrap();
        for day in ["2026-10-01", "2026-11-18", "2026-11-19", "2026-11-25"] {
            std::fs::write(dir.path().join(format!("{day}.jsonl")), "x\n").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "keep").unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        // One week keeps 2026-11-19 ..= 2026-11-25.
        let mut deleted = sweep(dir.path(), Retention::Days(7), today);
        deleted.sort();
        let names: Vec<String> = deleted
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["2026-10-01.jsonl", "2026-11-18.jsonl"]);
        assert!(dir.path().join("2026-11-19.jsonl").exists());
        assert!(dir.path().join("notes.txt").exists());
        assert!(
            sweep(
                dir.path(),
                Retention::Forever,
                today + chrono::Days::new(9999)
            )
            .is_empty()
        );
    }

    #[tokio::test]
    async fn logging_never_waits_for_the_writer() {
        // No writer drains this queue: 10,000 lines arrive at once, the
        // queue keeps what fits and the rest are counted, none waited for.
        let (log, mut lines) = AccessLog::channel(super::super::format::Format::default(), 1000);
        let record = super::super::Record {
            event_type: "MESSAGE",
            ..Default::default()
        };
        for _ in 0..10_000 {
            log.log(&record);
        }
        assert_eq!(log.dropped(), 9_000);
        let mut queued = 0;
        while lines.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 1_000);
    }

    #[tokio::test]
    async fn starting_sweeps_by_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        for day in ["2026-11-01", "2026-11-24"] {
            std::fs::write(dir.path().join(format!("{day}.jsonl")), "x\n").unwrap();
        }
        // A fake "now" far from the real date: only the clock decides.
        let (clock, _) = fake_clock("2026-11-25T08:00:00Z");
        let log = start(
            dir.path().to_path_buf(),
            Retention::Days(3),
            super::super::format::Format::default(),
            clock,
        )
        .unwrap();
        assert!(!dir.path().join("2026-11-01.jsonl").exists());
        assert!(dir.path().join("2026-11-24.jsonl").exists());
        drop(log);
    }

    #[tokio::test]
    async fn a_burst_of_ten_thousand_lines_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, _) = fake_clock("2026-11-25T12:00:00Z");
        let log = start(
            dir.path().to_path_buf(),
            Retention::Days(1),
            super::super::format::Format::parse("$context.requestId").unwrap(),
            clock,
        )
        .unwrap();
        for i in 0..10_000 {
            log.log(&super::super::Record {
                request_id: format!("r{i}").into(),
                ..Default::default()
            });
        }
        assert_eq!(log.dropped(), 0, "the queue holds a 10k burst");
        drop(log);
        let file = dir.path().join("2026-11-25.jsonl");
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&file).unwrap_or_default();
            if text.lines().count() == 10_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert_eq!((lines[0], lines[9_999]), ("r0", "r9999"), "in order");
    }

    #[test]
    fn day_of_reads_file_names() {
        assert_eq!(
            day_of(Path::new("/x/2026-11-25.jsonl")),
            NaiveDate::from_ymd_opt(2026, 11, 25)
        );
        assert_eq!(day_of(Path::new("/x/2026-11-25.txt")), None);
        assert_eq!(day_of(Path::new("/x/latest.jsonl")), None);
    }
}
