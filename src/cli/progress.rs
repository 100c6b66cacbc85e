//! Progress output: a live view of the steps on a terminal (indicatif), one
//! plain line per event otherwise (logs, CI, pipes). Step descriptions
//! quote the plans and errors quote the clouds: both views clean what they
//! show for the terminal (`errln!`, [`clean`]), while indicatif draws with
//! its own sequences.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use drctl::engine::Reporter;
use drctl::plan::duration::format_duration;
use drctl::steps::StepFailure;
use drctl::steps::graph::Step;

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
    e.summary()
}

/// Text for the live view, cleaned as every printed line is.
fn clean(text: String) -> String {
    drctl::escape::terminal(&text).into_owned()
}

impl Reporter for Lines {
    fn started(&self, step: &Step) {
        super::errln!("{} start  {}: {}", self.stamp(), step.id, step.description);
    }
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration) {
        match result {
            Ok(_) => super::errln!(
                "{} done   {} ({:.1}s)",
                self.stamp(),
                step.id,
                elapsed.as_secs_f64()
            ),
            Err(e) => super::errln!(
                "{} FAILED {} ({:.1}s): {}",
                self.stamp(),
                step.id,
                elapsed.as_secs_f64(),
                first_line(e)
            ),
        }
    }
    fn note(&self, text: &str) {
        super::errln!("{} note   {text}", self.stamp());
    }
    fn waiting(&self, step: &Step, what: &str) {
        super::errln!("{} wait   {}: waiting for {what}", self.stamp(), step.id);
    }
}

/// A live view: one spinner line per running step, a ✓/✗ line when it ends,
/// and a header with elapsed time against the RTO budget.
pub struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    bars: Mutex<BTreeMap<drctl::steps::graph::StepId, ProgressBar>>,
}

impl Live {
    /// Starts the view.
    pub fn new(budget: Option<Duration>) -> Self {
        let multi = MultiProgress::new();
        // The header's clock is the bar's own `{elapsed}`, redrawn by the
        // steady tick: it moves while every step is waiting.
        let header = multi.add(ProgressBar::new_spinner());
        header.set_style(
            ProgressStyle::with_template("{spinner} elapsed {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        header.set_message(match budget {
            Some(b) => format!("of RTO budget {}", format_duration(b)),
            None => String::new(),
        });
        header.enable_steady_tick(Duration::from_millis(120));
        Self {
            multi,
            header,
            bars: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Live {
    /// Runs `f` (a prompt) with the view hidden, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }
}

impl Reporter for Live {
    fn started(&self, step: &Step) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(clean(format!("{}: {}", step.id, step.description)));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(step.id.clone(), bar);
        }
    }
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration) {
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
        let _ = self.multi.println(clean(line));
    }
    fn note(&self, text: &str) {
        let _ = self.multi.println(clean(format!("  • {text}")));
    }
    fn waiting(&self, step: &Step, what: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(&step.id).cloned()) {
            bar.set_message(clean(format!("{}: waiting for {what}", step.id)));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.header.finish_and_clear();
    }
}
