//! Progress output: a live view of the steps on a terminal (indicatif), one
//! plain line per event otherwise (logs, CI, pipes).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::engine::Reporter;
use crate::graph::Step;
use crate::plan::duration::format_duration;
use crate::steps::StepFailure;

/// One line per event on stderr, with the time since the run started.
pub struct Lines {
    start: Instant,
    budget: Option<Duration>,
}

impl Lines {
    /// Starts the clock; `budget` is the RTO shown beside elapsed time.
    pub fn new(budget: Option<Duration>) -> Self {
        Self {
            start: Instant::now(),
            budget,
        }
    }

    fn stamp(&self) -> String {
        let e = self.start.elapsed();
        match self.budget {
            Some(b) => format!("[{:>6.1}s / RTO {}]", e.as_secs_f64(), format_duration(b)),
            None => format!("[{:>6.1}s]", e.as_secs_f64()),
        }
    }
}

fn first_line(e: &StepFailure) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl Reporter for Lines {
    fn started(&self, step: &Step) {
        eprintln!("{} start  {}: {}", self.stamp(), step.id, step.description);
    }
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration) {
        match result {
            Ok(_) => eprintln!(
                "{} done   {} ({:.1}s)",
                self.stamp(),
                step.id,
                elapsed.as_secs_f64()
            ),
            Err(e) => eprintln!(
                "{} FAILED {} ({:.1}s): {}",
                self.stamp(),
                step.id,
                elapsed.as_secs_f64(),
                first_line(e)
            ),
        }
    }
    fn note(&self, text: &str) {
        eprintln!("{} note   {text}", self.stamp());
    }
}

/// A live view: one spinner line per running step, a ✓/✗ line when it ends,
/// and a header with elapsed time against the RTO budget.
pub struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    start: Instant,
    budget: Option<Duration>,
}

impl Live {
    /// Starts the view.
    pub fn new(budget: Option<Duration>) -> Self {
        let multi = MultiProgress::new();
        let header = multi.add(ProgressBar::new_spinner());
        header.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        header.enable_steady_tick(Duration::from_millis(120));
        let me = Self {
            multi,
            header,
            bars: Mutex::new(BTreeMap::new()),
            start: Instant::now(),
            budget,
        };
        me.tick();
        me
    }

    fn tick(&self) {
        let e = self.start.elapsed();
        let msg = match self.budget {
            Some(b) => format!(
                "elapsed {} of RTO budget {}",
                format_duration(Duration::from_secs(e.as_secs())),
                format_duration(b)
            ),
            None => format!(
                "elapsed {}",
                format_duration(Duration::from_secs(e.as_secs()))
            ),
        };
        self.header.set_message(msg);
    }
}

impl Reporter for Live {
    fn started(&self, step: &Step) {
        self.tick();
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{}: {}", step.id, step.description));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(step.id.clone(), bar);
        }
    }
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration) {
        self.tick();
        let bar = self.bars.lock().ok().and_then(|mut b| b.remove(&step.id));
        let line = match result {
            Ok(_) => format!("  ✓ {:>5.1}s {}", elapsed.as_secs_f64(), step.id),
            Err(e) => format!(
                "  ✗ {:>5.1}s {}: {}",
                elapsed.as_secs_f64(),
                step.id,
                first_line(e)
            ),
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let _ = self.multi.println(line);
    }
    fn note(&self, text: &str) {
        let _ = self.multi.println(format!("  • {text}"));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.header.finish_and_clear();
    }
}
