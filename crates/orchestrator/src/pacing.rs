//! Adaptive concurrency in the process (issue 23): one [`Aimd`] per backfill this process
//! drives, fed by every execution's outcome and read by every claim, so a backfill whose
//! executor (or PSA) throttles runs with fewer in flight instead of burning its retries.
//!
//! The limit is this process's: each replica adapts to what it sees, and together they back
//! off the way independent TCP senders share a link (the store's `max_in_flight` still caps
//! them all). What a process adapted to is written to the backfill row for reads (at most
//! once a second per backfill, and never while it stays at `max_in_flight`); the gauges
//! `neo_effective_max_in_flight` and `neo_max_in_flight` sum the limits of the backfills this
//! process drives, `neo_backfills_adapted` counts those below their `max_in_flight`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use neo_domain::pacing::{Aimd, Feedback};

/// How often a backfill's adapted limit is written to its row, at most.
pub const SHOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Paced {
    aimd: Aimd,
    /// Executions of this backfill running in this process.
    running: usize,
    /// What its row says (`None`: `max_in_flight`), and when that was written.
    shown: Option<u32>,
    shown_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Pacing {
    per: Mutex<HashMap<String, Paced>>,
}

/// One running execution's place under its backfill's limit; released when finished, or when
/// dropped unfinished (an aborted execution gives its place back too).
#[derive(Debug)]
pub struct Place {
    pacing: Arc<Pacing>,
    backfill_id: String,
    /// Still held (not yet given back by [`Place::finished`]).
    held: bool,
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.held {
            self.release(|_| {});
        }
    }
}

impl Place {
    /// Gives the place back and tells the backfill's limit what this execution said (one lock).
    pub fn finished(mut self, feedback: Feedback, started_at: Timestamp, now: Timestamp) {
        self.release(|p| p.aimd.observe(feedback, started_at, now));
    }

    fn release(&mut self, f: impl FnOnce(&mut Paced)) {
        self.held = false;
        let mut per = self.pacing.per.lock().expect("poisoned");
        if let Some(p) = per.get_mut(&self.backfill_id) {
            p.running = p.running.saturating_sub(1);
            f(p);
        }
    }
}

impl Pacing {
    /// How many more executions of `backfill_id` may start here now, under its adapted limit
    /// (which follows `max_in_flight`).
    pub fn room(&self, backfill_id: &str, max_in_flight: i64) -> usize {
        let max = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
        let mut per = self.per.lock().expect("poisoned");
        let p = per.entry(backfill_id.to_owned()).or_insert_with(|| Paced {
            aimd: Aimd::new(max),
            running: 0,
            shown: None,
            shown_at: None,
        });
        if p.aimd.max() != max {
            p.aimd.set_max(max);
        }
        (p.aimd.limit() as usize).saturating_sub(p.running)
    }

    /// An execution of `backfill_id` starts: its place, to finish or drop.
    pub fn start(self: &Arc<Self>, backfill_id: &str) -> Place {
        if let Some(p) = self.per.lock().expect("poisoned").get_mut(backfill_id) {
            p.running += 1;
        }
        Place {
            pacing: self.clone(),
            backfill_id: backfill_id.to_owned(),
            held: true,
        }
    }

    /// The adapted limit of `backfill_id`, if this process drives it.
    pub fn limit(&self, backfill_id: &str) -> Option<u32> {
        self.per
            .lock()
            .expect("poisoned")
            .get(backfill_id)
            .map(|p| p.aimd.limit())
    }

    /// Forgets the backfills no longer driven here (nothing of theirs running): a paused
    /// backfill starts afresh at `max_in_flight` when it resumes. Then returns the limits to
    /// write to the backfill rows (`None`: back at `max_in_flight`, or forgotten), marked as
    /// written, and sets the process's gauges (one series each, not one per backfill).
    pub fn to_show(
        &self,
        driven: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Vec<(String, Option<i64>)> {
        let mut out = Vec::new();
        let mut per = self.per.lock().expect("poisoned");
        per.retain(|id, p| {
            let keep = p.running > 0 || driven(id);
            if !keep && p.shown.is_some() {
                out.push((id.clone(), None));
            }
            keep
        });
        let (mut adapted, mut effective, mut max) = (0u64, 0u64, 0u64);
        for (id, p) in per.iter_mut() {
            let limit = p.aimd.limit();
            effective += u64::from(limit);
            max += u64::from(p.aimd.max());
            let show = (limit != p.aimd.max()).then_some(limit);
            adapted += u64::from(show.is_some());
            if show == p.shown
                || p.shown_at
                    .is_some_and(|t| now.duration_since(t) < SHOW_EVERY)
            {
                continue;
            }
            p.shown = show;
            p.shown_at = Some(now);
            out.push((id.clone(), show.map(i64::from)));
        }
        metrics::gauge!("neo_backfills_adapted").set(adapted as f64);
        metrics::gauge!("neo_effective_max_in_flight").set(effective as f64);
        metrics::gauge!("neo_max_in_flight").set(max as f64);
        out
    }
}
