//! The schedule: one cycle every `interval`, aligned to the wall clock, each input in
//! its own task with a timeout, so a slow or stuck input never delays the others or
//! the next cycle (a still-running input is skipped, not stacked).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hostscope_core::Point;
use tracing::{debug, warn};

use crate::inputs::{Accumulator, InputError};
use crate::output::OutputStats;

/// An input gathered in a blocking thread (file reads under /proc and /sys).
pub trait BlockingInput: Send {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError>;
}

/// An input gathered on the async runtime (HTTP).
pub trait AsyncInput: Send {
    fn gather<'a>(
        &'a mut self,
        acc: &'a mut Accumulator,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), InputError>> + Send + 'a>>;
}

enum Kind {
    Blocking(Arc<std::sync::Mutex<Box<dyn BlockingInput>>>),
    Async(Arc<tokio::sync::Mutex<Box<dyn AsyncInput>>>),
}

/// One scheduled input and its running totals.
pub struct Task {
    name: String,
    kind: Kind,
    errors: u64,
}

impl Task {
    pub fn blocking(name: impl Into<String>, input: impl BlockingInput + 'static) -> Self {
        Task {
            name: name.into(),
            kind: Kind::Blocking(Arc::new(std::sync::Mutex::new(Box::new(input)))),
            errors: 0,
        }
    }
    pub fn asynchronous(name: impl Into<String>, input: impl AsyncInput + 'static) -> Self {
        Task {
            name: name.into(),
            kind: Kind::Async(Arc::new(tokio::sync::Mutex::new(Box::new(input)))),
            errors: 0,
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What one input did in one cycle.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    Failed(String),
    TimedOut,
    StillRunning,
}

/// How one input did in one cycle, for self-metrics.
#[derive(Debug)]
pub struct InputReport {
    pub name: String,
    pub outcome: Outcome,
    pub duration: Duration,
    pub points: usize,
    pub invalid: u64,
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The next multiple of `interval` after `now_ns`.
pub fn next_tick(now_ns: i64, interval: Duration) -> i64 {
    let step = interval.as_nanos().max(1) as i64;
    (now_ns.div_euclid(step) + 1) * step
}

/// Gather every task once, concurrently, each within `timeout`.
pub async fn gather_all(
    tasks: &mut [Task],
    timestamp_ns: i64,
    tags: &Arc<BTreeMap<String, String>>,
    timeout: Duration,
) -> (Vec<Point>, Vec<InputReport>) {
    let mut running = Vec::with_capacity(tasks.len());
    for task in tasks.iter() {
        let mut acc = Accumulator::new(timestamp_ns, tags.clone());
        let started = Instant::now();
        let handle = match &task.kind {
            Kind::Blocking(input) => {
                let input = input.clone();
                tokio::task::spawn_blocking(move || {
                    let Ok(mut input) = input.try_lock() else {
                        return (None, acc);
                    };
                    let result = input.gather(&mut acc);
                    (Some(result), acc)
                })
            }
            Kind::Async(input) => {
                let input = input.clone();
                tokio::spawn(async move {
                    let Ok(mut input) = input.try_lock() else {
                        return (None, acc);
                    };
                    let result = input.gather(&mut acc).await;
                    (Some(result), acc)
                })
            }
        };
        running.push((started, handle));
    }
    let mut points = Vec::new();
    let mut reports = Vec::with_capacity(tasks.len());
    let deadline = tokio::time::Instant::now() + timeout;
    for (task, (started, mut handle)) in tasks.iter_mut().zip(running) {
        let joined = tokio::time::timeout_at(deadline, &mut handle).await;
        let (outcome, n, invalid) = match joined {
            Err(_) => {
                // Async inputs can be cancelled; a blocking one finishes on its own
                // and is skipped while it does.
                handle.abort();
                (Outcome::TimedOut, 0, 0)
            }
            Ok(Err(join_error)) => (
                Outcome::Failed(format!("the input panicked or was cancelled: {join_error}")),
                0,
                0,
            ),
            Ok(Ok((None, _))) => (Outcome::StillRunning, 0, 0),
            Ok(Ok((Some(result), acc))) => {
                let invalid = acc.invalid;
                let got = acc.into_points();
                let n = got.len();
                // Even a failing input keeps what it gathered before failing.
                points.extend(got);
                match result {
                    Ok(()) => (Outcome::Ok, n, invalid),
                    Err(e) => (Outcome::Failed(format!("{e:#}")), n, invalid),
                }
            }
        };
        match &outcome {
            Outcome::Ok => {}
            Outcome::Failed(error) => {
                task.errors += 1;
                warn!(message = "input failed this cycle", input = %task.name, %error);
            }
            Outcome::TimedOut => {
                task.errors += 1;
                warn!(message = "input timed out this cycle", input = %task.name, timeout = ?timeout);
            }
            Outcome::StillRunning => {
                task.errors += 1;
                warn!(message = "input still running from an earlier cycle; skipped", input = %task.name);
            }
        }
        reports.push(InputReport {
            name: task.name.clone(),
            outcome,
            duration: started.elapsed(),
            points: n,
            invalid,
        });
    }
    (points, reports)
}

/// `hostscope_internal` points for one cycle: one per input and one for the collector.
pub fn self_metrics(
    tasks: &[Task],
    reports: &[InputReport],
    stats: &OutputStats,
    gathered: usize,
    cycle: Duration,
    acc: &mut Accumulator,
) {
    for (task, report) in tasks.iter().zip(reports) {
        acc.add(
            Point::builder("hostscope_internal")
                .tag("component", "input")
                .tag("input", task.name.clone())
                .field("gather_time_ms", report.duration.as_secs_f64() * 1e3)
                .field("points", report.points as i64)
                .field("invalid_points", report.invalid as i64)
                .field("errors", task.errors as i64)
                .field("ok", matches!(report.outcome, Outcome::Ok)),
        );
    }
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as i64;
    acc.add(
        Point::builder("hostscope_internal")
            .tag("component", "collector")
            .field("gathered", gathered as i64)
            .field("cycle_time_ms", cycle.as_secs_f64() * 1e3)
            .field("written", load(&stats.written))
            .field("rejected", load(&stats.rejected))
            .field("spooled", load(&stats.spooled))
            .field("dropped", load(&stats.dropped))
            .field("write_errors", load(&stats.write_errors))
            .field(
                "write_time_ms",
                stats.last_write_micros.load(Ordering::Relaxed) as f64 / 1e3,
            )
            .field("buffered", load(&stats.buffered))
            .field("spool_points", load(&stats.spool_points)),
    );
    debug!(
        message = "cycle done",
        gathered,
        cycle_ms = cycle.as_millis() as u64
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(usize);
    impl BlockingInput for Fixed {
        fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
            for i in 0..self.0 {
                acc.add(Point::builder("fixed").field("i", i as i64));
            }
            Ok(())
        }
    }
    struct Failing;
    impl BlockingInput for Failing {
        fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
            acc.add(Point::builder("partial").field("i", 1i64));
            anyhow::bail!("cannot read /proc/nothing")
        }
    }
    struct Slow;
    impl BlockingInput for Slow {
        fn gather(&mut self, _acc: &mut Accumulator) -> Result<(), InputError> {
            std::thread::sleep(Duration::from_millis(400));
            Ok(())
        }
    }

    #[test]
    fn ticks_align_to_the_interval() {
        let s = 1_000_000_000;
        assert_eq!(next_tick(0, Duration::from_secs(10)), 10 * s);
        assert_eq!(next_tick(10 * s, Duration::from_secs(10)), 20 * s);
        assert_eq!(next_tick(10 * s + 1, Duration::from_secs(10)), 20 * s);
        assert_eq!(next_tick(19 * s + 999, Duration::from_secs(10)), 20 * s);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_slow_input_never_costs_the_others() {
        let tags = Arc::new(BTreeMap::from([("host".to_owned(), "h".to_owned())]));
        let mut tasks = vec![
            Task::blocking("fixed", Fixed(3)),
            Task::blocking("failing", Failing),
            Task::blocking("slow", Slow),
        ];
        let (points, reports) = gather_all(&mut tasks, 42, &tags, Duration::from_millis(100)).await;
        // fixed's 3 points and failing's one partial point; slow timed out.
        assert_eq!(points.len(), 4);
        assert!(points
            .iter()
            .all(|p| p.timestamp() == Some(42) && p.tag("host") == Some("h")));
        assert!(matches!(reports[0].outcome, Outcome::Ok));
        assert!(matches!(&reports[1].outcome, Outcome::Failed(e) if e.contains("/proc/nothing")));
        assert!(matches!(reports[2].outcome, Outcome::TimedOut));
        // Next cycle, right away: slow is still running and is skipped, not stacked.
        let (_, reports) = gather_all(&mut tasks, 43, &tags, Duration::from_millis(100)).await;
        assert!(matches!(reports[2].outcome, Outcome::StillRunning));
        assert_eq!(tasks[2].errors, 2);
        // Once it has finished, it runs again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, reports) = gather_all(&mut tasks, 44, &tags, Duration::from_secs(2)).await;
        assert!(matches!(reports[2].outcome, Outcome::Ok));
    }
}
