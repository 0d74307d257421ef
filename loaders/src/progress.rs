//! Progress output of long transfers on stderr: a redrawn bar with rows/s on a terminal,
//! a plain line every few seconds otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a plain progress line is written when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// How often the bar is redrawn on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Progress of one transfer.
#[derive(Debug)]
pub struct Progress {
    what: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last: Instant,
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// Progress of `what`, out of `total` rows when known. `quiet` prints nothing.
    pub fn new(what: impl Into<String>, total: Option<u64>, quiet: bool) -> Self {
        let now = Instant::now();
        Progress {
            what: what.into(),
            total,
            done: 0,
            started: now,
            last: now,
            terminal: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// Rows done so far.
    pub fn rows(&self) -> u64 {
        self.done
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// `rows` more are done.
    pub fn add(&mut self, rows: u64) {
        self.done += rows;
        if self.quiet {
            return;
        }
        let every = if self.terminal {
            REDRAW_EVERY
        } else {
            LINE_EVERY
        };
        if self.last.elapsed() >= every {
            self.last = Instant::now();
            self.draw(false);
        }
    }

    /// Start over (a retry).
    pub fn restart(&mut self) {
        self.done = 0;
        self.started = Instant::now();
    }

    /// The final line.
    pub fn finish(&mut self, outcome: &str) {
        if !self.quiet {
            self.draw(true);
            let _ = writeln!(std::io::stderr(), "{}: {outcome}", self.what);
        }
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// The progress text: `persons: 450 000 / 1 000 000 rows (45 %), 210 000 rows/s`.
    pub fn line(&self) -> String {
        let mut s = format!("{}: {} ", self.what, thousands(self.done));
        if let Some(t) = self.total {
            let pct = if t == 0 {
                100.0
            } else {
                self.done as f64 * 100.0 / t as f64
            };
            s.push_str(&format!("/ {} rows ({pct:.0} %)", thousands(t)));
        } else {
            s.push_str("rows");
        }
        s.push_str(&format!(", {} rows/s", thousands(self.rate() as u64)));
        s
    }

    fn draw(&self, last: bool) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let bar = match self.total {
                Some(t) if t > 0 => {
                    let filled = ((self.done.min(t) * 30) / t) as usize;
                    format!("[{}{}] ", "#".repeat(filled), ".".repeat(30 - filled))
                }
                _ => String::new(),
            };
            let _ = write!(err, "\r\x1b[2K{bar}{}", self.line());
            if last {
                let _ = writeln!(err);
            }
        } else if !last || self.done > 0 {
            let _ = writeln!(err, "{}", self.line());
        }
    }
}

/// `1234567` as `1 234 567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_well() {
        assert_eq!(thousands(1_234_567), "1 234 567");
        assert_eq!(thousands(12), "12");
        let mut p = Progress::new("persons", Some(1000), true);
        p.add(450);
        assert!(
            p.line().starts_with("persons: 450 / 1 000 rows (45 %)"),
            "{}",
            p.line()
        );
    }
}
