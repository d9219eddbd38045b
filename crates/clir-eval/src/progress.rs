//! Progress of long work: an indicatif bar on a terminal, plain lines anywhere else.
//!
//! indicatif draws nothing when stderr is not a terminal, so a Slurm job's or a CI log would
//! show no progress at all. A [`Progress`] is the bar on a terminal; elsewhere it writes one
//! line to stderr each [`LINE_PERCENT`] % of the work or each [`LINE_INTERVAL`], whichever
//! comes first, and a final line when finished, e.g.
//!
//! ```text
//! train: 38/150 steps (25%), loss 0.6512, 210 tok/s, 2.10 steps/s, elapsed 18s, ETA 53s
//! train: finished 150/150 steps (100%), loss 0.4127, 198 tok/s, 2.10 steps/s, elapsed 1m11s
//! ```
//!
//! A hidden one (progress not asked for) prints nothing. This is the one progress type of
//! the workspace: clir-eval is the lowest crate every user of it depends on.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A line is written each time the work passes another multiple of this percentage…
pub const LINE_PERCENT: u64 = 5;
/// …or when this long has passed since the last line, whichever comes first.
pub const LINE_INTERVAL: Duration = Duration::from_secs(30);

/// Time since some fixed instant; injectable so that tests need not sleep.
pub type Clock = Box<dyn FnMut() -> Duration + Send>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    let start = Instant::now();
    Box::new(move || start.elapsed())
}

/// A progress bar of `len` steps labelled `label` (hidden when `show` is false), as the
/// evaluations draw it.
pub fn bar(len: u64, label: &str, show: bool) -> Progress {
    Progress::task(label, len)
        .template("{prefix:>14} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})")
        .show(show)
}

/// Progress of a task: an indicatif bar on a terminal, plain lines elsewhere, or nothing.
/// Shared by reference between threads (`inc` from a rayon loop is fine).
pub struct Progress(Kind);

enum Kind {
    Hidden,
    Bar(ProgressBar),
    Lines(Box<Mutex<Lines>>),
}

/// What a [`Progress`] shows, before it is decided where: see [`Progress::task`].
#[must_use]
pub struct ProgressSpec {
    task: String,
    /// None for a spinner.
    len: Option<u64>,
    unit: String,
    template: Option<String>,
}

impl Progress {
    /// Progress of `task` over `len` steps.
    pub fn task(task: impl Into<String>, len: u64) -> ProgressSpec {
        ProgressSpec {
            task: task.into(),
            len: Some(len),
            unit: String::new(),
            template: None,
        }
    }

    /// A spinner for `task`, of unknown length: on a terminal it turns, elsewhere a line is
    /// written when it starts and when it finishes.
    pub fn spinner(task: impl Into<String>) -> ProgressSpec {
        ProgressSpec {
            task: task.into(),
            len: None,
            unit: String::new(),
            template: None,
        }
    }

    /// Progress that shows nothing.
    pub fn hidden() -> Self {
        Progress(Kind::Hidden)
    }

    pub fn is_hidden(&self) -> bool {
        matches!(self.0, Kind::Hidden)
    }

    /// Whether this is an indicatif bar (on a terminal).
    pub fn is_bar(&self) -> bool {
        matches!(self.0, Kind::Bar(_))
    }

    /// The message shown after the counts (the bar's `{msg}`).
    pub fn set_message(&self, msg: impl Into<Cow<'static, str>>) {
        match &self.0 {
            Kind::Hidden => {}
            Kind::Bar(b) => b.set_message(msg),
            Kind::Lines(l) => lock(l).msg = msg.into().into_owned(),
        }
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        match &self.0 {
            Kind::Hidden => {}
            Kind::Bar(b) => b.inc(n),
            Kind::Lines(l) => {
                let mut l = lock(l);
                l.pos += n;
                l.moved = true;
                l.tick();
            }
        }
    }

    /// Moves to step `pos`. Before any [`inc`](Self::inc) (a resumed run), rates count from
    /// there and no line is written.
    pub fn set_position(&self, pos: u64) {
        match &self.0 {
            Kind::Hidden => {}
            Kind::Bar(b) => b.set_position(pos),
            Kind::Lines(l) => {
                let mut l = lock(l);
                l.pos = pos;
                if l.moved {
                    l.tick();
                } else {
                    l.base = pos;
                    l.bucket = l.bucket_of(pos);
                }
            }
        }
    }

    /// Changes the number of steps.
    pub fn set_length(&self, len: u64) {
        match &self.0 {
            Kind::Hidden => {}
            Kind::Bar(b) => b.set_length(len),
            Kind::Lines(l) => {
                let mut l = lock(l);
                l.len = Some(len);
                l.bucket = l.bucket_of(l.pos);
            }
        }
    }

    /// Ends the progress: the bar is cleared, or the final line written.
    pub fn finish_and_clear(&self) {
        match &self.0 {
            Kind::Hidden => {}
            Kind::Bar(b) => b.finish_and_clear(),
            Kind::Lines(l) => lock(l).finish(),
        }
    }

    /// Ends the progress leaving `msg` shown (a spinner's summary): on a terminal the bar
    /// stays with `msg`, elsewhere `msg` and the time taken are written.
    pub fn finish_with_message(&self, msg: impl Into<Cow<'static, str>>) {
        match &self.0 {
            Kind::Hidden => {}
            Kind::Bar(b) => b.finish_with_message(msg),
            Kind::Lines(l) => {
                let mut l = lock(l);
                if l.finished {
                    return;
                }
                l.finished = true;
                let elapsed = l.elapsed();
                let line = format!("{} (elapsed {})", msg.into(), duration(elapsed));
                l.write(&line);
            }
        }
    }

    /// Runs `f` (which may print) with the bar out of the way; elsewhere just runs it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Kind::Bar(b) => b.suspend(f),
            _ => f(),
        }
    }
}

impl ProgressSpec {
    /// What a step is, plural ("steps", "sentences"): named in lines and rates.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = unit.to_string();
        self
    }

    /// indicatif's template for the bar on a terminal; `{prefix}` is the task.
    pub fn template(mut self, template: &str) -> Self {
        self.template = Some(template.to_string());
        self
    }

    /// Hidden unless `show`; otherwise a bar if stderr is a terminal, else lines on stderr.
    pub fn show(self, show: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        self.build(show, terminal, Box::new(std::io::stderr()), wall_clock())
    }

    /// [`show`](Self::show) with the terminal decision, the line writer and the clock given.
    pub fn build(
        self,
        show: bool,
        terminal: bool,
        out: Box<dyn Write + Send>,
        clock: Clock,
    ) -> Progress {
        if !show {
            return Progress::hidden();
        }
        if terminal {
            return Progress(Kind::Bar(self.indicatif()));
        }
        let mut lines = Lines {
            task: self.task,
            len: self.len,
            unit: self.unit,
            pos: 0,
            base: 0,
            moved: false,
            msg: String::new(),
            start: Duration::ZERO,
            last_line: Duration::ZERO,
            bucket: 0,
            finished: false,
            out,
            clock,
        };
        lines.start = (lines.clock)();
        lines.last_line = lines.start;
        if lines.len.is_none() {
            let line = format!("{}: started", lines.task);
            lines.write(&line);
        }
        Progress(Kind::Lines(Box::new(Mutex::new(lines))))
    }

    fn indicatif(self) -> ProgressBar {
        let Some(len) = self.len else {
            let template = self
                .template
                .as_deref()
                .unwrap_or("{spinner} {msg} [{elapsed}]");
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template(template).expect("valid progress template"));
            b.enable_steady_tick(Duration::from_millis(120));
            b.set_message(self.task);
            return b;
        };
        let template = self
            .template
            .as_deref()
            .unwrap_or("{prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}");
        let b = ProgressBar::new(len);
        b.set_style(ProgressStyle::with_template(template).expect("valid progress template"));
        b.set_prefix(self.task);
        b
    }
}

/// The state of progress reported in lines.
struct Lines {
    task: String,
    len: Option<u64>,
    unit: String,
    pos: u64,
    /// The position rates count from.
    base: u64,
    /// Whether `inc` was called.
    moved: bool,
    msg: String,
    start: Duration,
    last_line: Duration,
    /// The last `LINE_PERCENT` step a line was written for.
    bucket: u64,
    finished: bool,
    out: Box<dyn Write + Send>,
    clock: Clock,
}

fn lock(l: &Mutex<Lines>) -> std::sync::MutexGuard<'_, Lines> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lines {
    fn bucket_of(&self, pos: u64) -> u64 {
        match self.len {
            Some(len) if len > 0 => pos.min(len) * (100 / LINE_PERCENT) / len,
            _ => 0,
        }
    }

    fn elapsed(&mut self) -> Duration {
        (self.clock)().saturating_sub(self.start)
    }

    /// Writes a line if another `LINE_PERCENT` was passed or `LINE_INTERVAL` went by; the
    /// end itself is left to the final line.
    fn tick(&mut self) {
        if self.finished {
            return;
        }
        let now = (self.clock)();
        let bucket = self.bucket_of(self.pos);
        let at_end = self.len.is_some_and(|len| self.pos >= len);
        let due = bucket > self.bucket || now.saturating_sub(self.last_line) >= LINE_INTERVAL;
        if due && !at_end {
            self.bucket = bucket;
            self.last_line = now;
            let line = self.line(now.saturating_sub(self.start), false);
            self.write(&line);
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.elapsed();
        let line = self.line(elapsed, true);
        self.write(&line);
    }

    /// `task: [finished ]pos/len unit (pct%)[, msg][, rate unit/s], elapsed …[, ETA …]`.
    fn line(&self, elapsed: Duration, last: bool) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let mut s = format!("{}: ", self.task);
        if last {
            s.push_str("finished ");
        }
        match self.len {
            Some(len) => {
                let pct = (self.pos.min(len) * 100).checked_div(len).unwrap_or(100);
                s.push_str(&format!("{}/{len}{unit} ({pct}%)", self.pos));
            }
            None => s.push_str(&format!("{}{unit}", self.pos)),
        }
        if !self.msg.is_empty() {
            s.push_str(&format!(", {}", self.msg));
        }
        let done = self.pos.saturating_sub(self.base);
        let secs = elapsed.as_secs_f64();
        let rate = (done > 0 && secs > 0.0).then(|| done as f64 / secs);
        if let Some(r) = rate {
            s.push_str(&format!(", {}{unit}/s", number(r)));
        }
        s.push_str(&format!(", elapsed {}", duration(elapsed)));
        if !last && let (Some(r), Some(len)) = (rate, self.len) {
            let left = len.saturating_sub(self.pos) as f64 / r;
            s.push_str(&format!(
                ", ETA {}",
                duration(Duration::from_secs_f64(left))
            ));
        }
        s
    }

    fn write(&mut self, line: &str) {
        // Progress is best effort: a closed stderr must not stop the work.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }
}

/// A rate with about three significant digits.
fn number(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// `45s`, `3m07s`, `2h05m`.
fn duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    /// A clock the test moves, in milliseconds.
    fn clock() -> (Arc<AtomicU64>, Clock) {
        let ms = Arc::new(AtomicU64::new(1_000));
        let c = ms.clone();
        (
            ms,
            Box::new(move || Duration::from_millis(c.load(Ordering::SeqCst))),
        )
    }

    fn lines_of(spec: ProgressSpec) -> (Buf, Arc<AtomicU64>, Progress) {
        let buf = Buf::default();
        let (ms, c) = clock();
        let p = spec.build(true, false, Box::new(buf.clone()), c);
        assert!(!p.is_hidden() && !p.is_bar());
        (buf, ms, p)
    }

    #[test]
    fn a_line_each_five_percent_and_a_final_line() {
        let (buf, ms, p) = lines_of(Progress::task("train", 100).unit("steps"));
        for step in 1..=100u64 {
            ms.fetch_add(500, Ordering::SeqCst);
            p.set_message(format!("loss {:.4}", 1.0 / step as f64));
            p.inc(1);
        }
        p.finish_and_clear();
        p.finish_and_clear();
        let lines = buf.lines();
        // 5 %, 10 %, …, 95 %, then the final line (100 % is left to it).
        assert_eq!(lines.len(), 20, "{lines:#?}");
        assert_eq!(
            lines[0],
            "train: 5/100 steps (5%), loss 0.2000, 2.00 steps/s, elapsed 3s, ETA 48s"
        );
        assert_eq!(
            lines[18],
            "train: 95/100 steps (95%), loss 0.0105, 2.00 steps/s, elapsed 48s, ETA 3s"
        );
        assert_eq!(
            lines[19],
            "train: finished 100/100 steps (100%), loss 0.0100, 2.00 steps/s, elapsed 50s"
        );
        for (i, l) in lines[..19].iter().enumerate() {
            let pct = 5 * (i + 1);
            assert!(
                l.starts_with(&format!("train: {pct}/100 steps ({pct}%)")),
                "{l}"
            );
        }
    }

    #[test]
    fn slow_work_writes_a_line_every_thirty_seconds() {
        let (buf, ms, p) = lines_of(Progress::task("teacher states", 1000).unit("sentences"));
        // 1 sentence per 10 s: 5 % (50 sentences) would take 500 s.
        for _ in 0..10 {
            ms.fetch_add(10_000, Ordering::SeqCst);
            p.inc(1);
        }
        let lines = buf.lines();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!(
            lines[0],
            "teacher states: 3/1000 sentences (0%), 0.100 sentences/s, elapsed 30s, ETA 2h46m"
        );
        assert!(lines[2].starts_with("teacher states: 9/1000 sentences (0%)"));
        drop(p);
        assert_eq!(buf.lines().len(), 3, "dropping writes nothing");
    }

    #[test]
    fn a_resumed_run_counts_its_rate_from_where_it_resumed() {
        let (buf, ms, p) = lines_of(Progress::task("train", 20).unit("steps"));
        p.set_position(10);
        assert!(buf.lines().is_empty());
        ms.fetch_add(4_000, Ordering::SeqCst);
        p.inc(2);
        ms.fetch_add(1_000, Ordering::SeqCst);
        p.finish_and_clear();
        assert_eq!(
            buf.lines(),
            [
                "train: 12/20 steps (60%), 0.500 steps/s, elapsed 4s, ETA 16s",
                "train: finished 12/20 steps (60%), 0.400 steps/s, elapsed 5s",
            ]
        );
    }

    #[test]
    fn hidden_progress_is_silent() {
        let buf = Buf::default();
        let (ms, c) = clock();
        let p = Progress::task("train", 10).build(false, false, Box::new(buf.clone()), c);
        assert!(p.is_hidden());
        for _ in 0..10 {
            ms.fetch_add(60_000, Ordering::SeqCst);
            p.set_message("loss 1");
            p.inc(1);
        }
        p.finish_and_clear();
        assert_eq!(p.suspend(|| 7), 7);
        assert!(buf.lines().is_empty());
        assert!(Progress::hidden().is_hidden());
        // Without `show` even a terminal gets nothing.
        assert!(bar(10, "bm25", false).is_hidden());
    }

    #[test]
    fn a_terminal_gets_the_indicatif_bar_not_lines() {
        let buf = Buf::default();
        let (_, c) = clock();
        let p = Progress::task("cells", 3)
            .template("cells {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}")
            .build(true, true, Box::new(buf.clone()), c);
        assert!(p.is_bar());
        p.inc(3);
        p.finish_and_clear();
        assert!(buf.lines().is_empty());
    }

    #[test]
    fn a_spinner_writes_when_it_starts_and_finishes() {
        let (buf, ms, p) = lines_of(Progress::spinner("documents"));
        ms.fetch_add(65_000, Ordering::SeqCst);
        p.finish_with_message("documents: 31 in swh");
        assert_eq!(
            buf.lines(),
            ["documents: started", "documents: 31 in swh (elapsed 1m05s)"]
        );
    }

    #[test]
    fn lines_without_a_unit_and_of_no_work() {
        let (buf, ms, p) = lines_of(Progress::task("bm25", 4));
        ms.fetch_add(2_000, Ordering::SeqCst);
        p.inc(1);
        p.inc(3);
        p.finish_and_clear();
        let (empty, _, q) = lines_of(Progress::task("evaluate", 0));
        q.finish_and_clear();
        assert_eq!(
            buf.lines(),
            [
                "bm25: 1/4 (25%), 0.500/s, elapsed 2s, ETA 6s",
                "bm25: finished 4/4 (100%), 2.00/s, elapsed 2s",
            ]
        );
        assert_eq!(empty.lines(), ["evaluate: finished 0/0 (100%), elapsed 0s"]);
    }

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(duration(Duration::from_secs(59)), "59s");
        assert_eq!(duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(duration(Duration::from_secs(7500)), "2h05m");
    }
}
