//! The production detector: shape novelty against a memory of the series' own past.
//!
//! (The file keeps the name of the design it started from, Numenta's "anomaly
//! likelihood": a Gaussian tail probability of recent prediction errors. Measured on
//! labelled data it lost to this detector; `BENCHMARKS.md` has the numbers.)
//!
//! How a point is judged:
//!
//! 1. **Shapes.** Points are averaged in blocks of `block`; the last `shape_len` block
//!    means form the current shape (with the defaults, the last 8 points). Blocks are
//!    formed at every alignment (offsets 0 .. `block`) and the novelties averaged, so
//!    the score does not depend on where the first block happened to start.
//! 2. **Scale.** The shape is compared in units of the series' robust range: the spread
//!    between the `range_quantile` and `1 - range_quantile` quantiles of the last
//!    `range_window` block means (never less than 0.1% of the current level, so a flat
//!    series is not made infinitely sensitive).
//! 3. **Novelty.** The score is the mean absolute distance, in those units, from the
//!    current shape to the nearest shape in memory. A shape farther than `radius` from
//!    every remembered one is remembered too (at most `memory`, the oldest replaced
//!    first), so what has happened before (a daily spike, a new level after a shift)
//!    stops being novel: a sustained level shift fires once and is then the new
//!    baseline, without a reset.
//! 4. **Seasonality.** When timestamps are given and the series is regular, the same
//!    is done for the difference from the same time the day before, but only while
//!    that difference is much tighter than the values themselves (its range below
//!    `season_gate` times theirs): a daily pattern that is missing or changed is then
//!    novel even where the value alone looks ordinary.
//! 5. **Falling back.** While the value is the lowest of the current shape's points
//!    the novelty is multiplied by `falling_factor`: a series falling back after a
//!    burst draws shapes it has not seen in that order, but going back to normal is
//!    rarely the incident. A large fall still fires, and a new lowest value is a
//!    record.
//! 6. **Records.** A value beyond the highest or lowest seen so far, by more than
//!    `record_margin` of the spread seen so far (highest − lowest), is a detection
//!    however familiar its shape: a second, larger spike is news even though the
//!    memory already holds a spike. Records count once `record_warmup` values have
//!    been seen. In a rule, "so far" is the rule's window.
//! 7. **Debounce.** A score of at least `threshold` is a detection; for the next
//!    `suppress` points scores are multiplied by `suppress_factor`, so one incident
//!    gives one alert, not a run of them. A record is never damped, and it starts the
//!    quiet period again.
//!
//! Pure and streaming: a point's score uses only that point and the past; the same
//! input gives the same scores. NaN and gaps are skipped and change nothing.

use std::collections::VecDeque;

use serde::Deserialize;

use super::window::Window;
use super::{round, Severity, Verdict};

const DAY_MS: i64 = 86_400_000;
/// Intervals looked at to learn the sampling step.
const STEP_SAMPLES: usize = 16;
/// The longest day (in points) kept for the seasonal comparison.
const MAX_DAY_POINTS: i64 = 20_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoveltyConfig {
    /// Block means per shape. Default 4.
    #[serde(default = "default_shape_len")]
    pub shape_len: usize,
    /// Points averaged into one block. Default 2.
    #[serde(default = "default_block")]
    pub block: usize,
    /// A shape farther than this (in ranges) from every remembered one is remembered.
    /// Default 0.05.
    #[serde(default = "default_radius")]
    pub radius: f64,
    /// Shapes remembered at most. Default 1000.
    #[serde(default = "default_memory")]
    pub memory: usize,
    /// Block means the range is measured over. Default 3000.
    #[serde(default = "default_range_window")]
    pub range_window: usize,
    /// The range is between this quantile and its complement. Default 0.001.
    #[serde(default = "default_range_quantile")]
    pub range_quantile: f64,
    /// The day-over-day comparison counts while its range is below this fraction of
    /// the values' range; 0 turns it off. Default 0.5.
    #[serde(default = "default_season_gate")]
    pub season_gate: f64,
    /// A score at least this is a detection. Default 0.1 (a shape a tenth of the
    /// range away from anything seen before).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Points after a detection whose scores are damped. Default 150.
    #[serde(default = "default_suppress")]
    pub suppress: usize,
    /// What damped scores are multiplied by. Default 0.2.
    #[serde(default = "default_suppress_factor")]
    pub suppress_factor: f64,
    /// Points learned before the first score. Default 300. White noise keeps making
    /// the odd never-seen shape for a few thousand points more: the memory covers its
    /// range gradually.
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// The novelty is multiplied by this while the value is the lowest of the current
    /// shape's points (falling back). Default 0.7; 1 turns it off.
    #[serde(default = "default_falling_factor")]
    pub falling_factor: f64,
    /// Whether a new highest or lowest value is a detection of its own. Default true.
    #[serde(default = "default_records")]
    pub records: bool,
    /// How far beyond the highest (lowest) value so far a record must be, as a
    /// fraction of the spread seen so far. Default 0.05.
    #[serde(default = "default_record_margin")]
    pub record_margin: f64,
    /// Values seen before records count. Default 150.
    #[serde(default = "default_record_warmup")]
    pub record_warmup: usize,
    /// Severity of a detection. Default warning.
    #[serde(default)]
    pub severity: Severity,
}

fn default_shape_len() -> usize {
    4
}
fn default_block() -> usize {
    2
}
fn default_radius() -> f64 {
    0.05
}
fn default_memory() -> usize {
    1000
}
fn default_range_window() -> usize {
    3000
}
fn default_range_quantile() -> f64 {
    0.001
}
fn default_season_gate() -> f64 {
    0.5
}
fn default_threshold() -> f64 {
    0.1
}
fn default_suppress() -> usize {
    150
}
fn default_suppress_factor() -> f64 {
    0.2
}
fn default_warmup() -> usize {
    300
}
fn default_falling_factor() -> f64 {
    0.7
}
fn default_records() -> bool {
    true
}
fn default_record_margin() -> f64 {
    0.05
}
fn default_record_warmup() -> usize {
    150
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        NoveltyConfig {
            shape_len: default_shape_len(),
            block: default_block(),
            radius: default_radius(),
            memory: default_memory(),
            range_window: default_range_window(),
            range_quantile: default_range_quantile(),
            season_gate: default_season_gate(),
            threshold: default_threshold(),
            suppress: default_suppress(),
            suppress_factor: default_suppress_factor(),
            warmup: default_warmup(),
            falling_factor: default_falling_factor(),
            records: default_records(),
            record_margin: default_record_margin(),
            record_warmup: default_record_warmup(),
            severity: Severity::Warning,
        }
    }
}

impl NoveltyConfig {
    /// Problems with the parameters, each naming its key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut between = |key: &str, v: usize, min: usize, max: usize| {
            if v < min {
                p.push((key.to_owned(), format!("{v} is too small; at least {min}")));
            } else if v > max {
                p.push((key.to_owned(), format!("{v} is too large; at most {max}")));
            }
        };
        between("shape_len", self.shape_len, 1, 64);
        between("block", self.block, 1, 1440);
        between("memory", self.memory, 1, 100_000);
        between("range_window", self.range_window, 2, 1_000_000);
        between("suppress", self.suppress, 0, 1_000_000);
        between("warmup", self.warmup, 0, 1_000_000);
        between("record_warmup", self.record_warmup, 0, 1_000_000);
        let mut within = |key: &str, v: f64, lo: f64, hi: f64| {
            if !(v >= lo && v <= hi) {
                p.push((key.to_owned(), format!("{v} is not in [{lo}, {hi}]")));
            }
        };
        within("radius", self.radius, 0.0, 1.0);
        within("range_quantile", self.range_quantile, 0.0, 0.25);
        within("season_gate", self.season_gate, 0.0, 1.0);
        within("threshold", self.threshold, f64::MIN_POSITIVE, 1.0);
        within("suppress_factor", self.suppress_factor, 0.0, 1.0);
        within("falling_factor", self.falling_factor, 0.0, 1.0);
        within("record_margin", self.record_margin, 0.0, 10.0);
        p
    }
}

/// The robust spread of recent block means.
#[derive(Debug, Clone)]
struct Range {
    w: Window,
    q: f64,
}

impl Range {
    fn new(cap: usize, q: f64) -> Self {
        Range {
            w: Window::new(cap),
            q,
        }
    }

    fn get(&self) -> f64 {
        if self.w.len() == 0 {
            0.0
        } else {
            self.w.quantile(1.0 - self.q) - self.w.quantile(self.q)
        }
    }
}

/// A shape's novelty.
#[derive(Debug, Clone, Copy)]
struct Judged {
    novelty: f64,
    /// The last block mean of the nearest remembered shape.
    nearest: Option<f64>,
}

/// Block means at one alignment, the current shape, and the memory of shapes.
#[derive(Debug, Clone)]
struct Shapes {
    len: usize,
    block: usize,
    /// Points still to skip: this alignment's offset.
    skip: usize,
    acc: f64,
    in_block: usize,
    recent: VecDeque<f64>,
    /// Remembered shapes, `len` values each, one after the other.
    memory: Vec<f64>,
    cap: usize,
    next_replace: usize,
    range: Range,
    /// The range before the latest block (floored), the unit of its novelty.
    last_range: f64,
    judged: usize,
    latest: Option<Judged>,
}

impl Shapes {
    fn new(c: &NoveltyConfig, offset: usize) -> Self {
        Shapes {
            len: c.shape_len.max(1),
            block: c.block.max(1),
            skip: offset,
            acc: 0.0,
            in_block: 0,
            recent: VecDeque::with_capacity(c.shape_len + 1),
            memory: Vec::new(),
            cap: c.memory.max(1),
            next_replace: 0,
            range: Range::new(c.range_window.max(2), c.range_quantile),
            last_range: 0.0,
            judged: 0,
            latest: None,
        }
    }

    /// Add a point; after a full block, judge the shape (in `units`, or in this
    /// series' own range) and remember it if it is new.
    fn add(&mut self, x: f64, units: Option<f64>, radius: f64) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        self.acc += x;
        self.in_block += 1;
        if self.in_block < self.block {
            return;
        }
        let m = self.acc / self.in_block as f64;
        self.acc = 0.0;
        self.in_block = 0;
        self.recent.push_back(m);
        if self.recent.len() > self.len {
            self.recent.pop_front();
        }
        self.last_range = self.range.get().max(1e-3 * m.abs()).max(1e-9);
        self.range.w.push(m);
        if self.recent.len() == self.len {
            self.latest = Some(self.judge(units.unwrap_or(self.last_range), radius));
            self.judged += 1;
        }
    }

    fn judge(&mut self, range: f64, radius: f64) -> Judged {
        let shape: Vec<f64> = self.recent.iter().copied().collect();
        let mut best = f64::INFINITY;
        let mut nearest = None;
        for known in self.memory.chunks_exact(self.len) {
            let mut d = 0.0;
            for (a, b) in known.iter().zip(&shape) {
                d += (a - b).abs();
                if d >= best {
                    break;
                }
            }
            if d < best {
                best = d;
                nearest = Some(known[self.len - 1]);
            }
        }
        let novelty = if best.is_finite() && range > 0.0 {
            best / self.len as f64 / range
        } else {
            0.0
        };
        if !best.is_finite() || novelty > radius {
            if self.memory.len() / self.len < self.cap {
                self.memory.extend_from_slice(&shape);
            } else {
                let k = self.next_replace % self.cap;
                self.next_replace = self.next_replace.wrapping_add(1);
                self.memory[k * self.len..(k + 1) * self.len].copy_from_slice(&shape);
            }
        }
        Judged { novelty, nearest }
    }
}

/// One signal seen at every block alignment (offsets 0 .. block), so that the score
/// does not depend on where the blocks happen to start: novelty is their mean.
#[derive(Debug, Clone)]
struct Channel {
    alignments: Vec<Shapes>,
}

impl Channel {
    fn new(c: &NoveltyConfig) -> Self {
        Channel {
            alignments: (0..c.block.max(1)).map(|k| Shapes::new(c, k)).collect(),
        }
    }

    fn add(&mut self, x: f64, units: Option<f64>, radius: f64) {
        for a in &mut self.alignments {
            a.add(x, units, radius);
        }
    }

    /// The mean novelty over the alignments judged so far.
    fn latest(&self) -> Option<Judged> {
        let judged: Vec<Judged> = self.alignments.iter().filter_map(|a| a.latest).collect();
        let first = judged.first()?;
        Some(Judged {
            novelty: judged.iter().map(|j| j.novelty).sum::<f64>() / judged.len() as f64,
            nearest: first.nearest,
        })
    }

    /// The mean range of the alignments.
    fn range(&self) -> f64 {
        self.alignments.iter().map(|a| a.last_range).sum::<f64>()
            / self.alignments.len().max(1) as f64
    }

    fn judged(&self) -> usize {
        self.alignments.first().map_or(0, |a| a.judged)
    }
}

/// The highest and lowest values seen so far.
#[derive(Debug, Clone, Copy, Default)]
struct Extremes {
    seen: usize,
    lo: f64,
    hi: f64,
}

/// A value beyond the extremes seen before it.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// The previous highest (or lowest) value.
    previous: f64,
    /// How far beyond it, as a fraction of the spread seen before.
    excess: f64,
    /// What was not a record: the extremes seen before, widened by the margin.
    lower: f64,
    upper: f64,
}

impl Extremes {
    /// Whether `x` is a record by more than `margin` after `warmup` values, then
    /// take it in.
    fn see(&mut self, x: f64, margin: f64, warmup: usize) -> Option<Record> {
        // Floored like the shapes' range: wiggles on a flat line are not records.
        let spread = (self.hi - self.lo).max(1e-3 * self.hi.abs().max(self.lo.abs()));
        let record = if self.seen >= warmup.max(1) && spread > 0.0 {
            let (previous, excess) = if x > self.hi {
                (self.hi, (x - self.hi) / spread)
            } else {
                (self.lo, (self.lo - x) / spread)
            };
            let pad = margin * spread;
            (excess > margin).then_some(Record {
                previous,
                excess,
                lower: self.lo - pad,
                upper: self.hi + pad,
            })
        } else {
            None
        };
        if self.seen == 0 {
            (self.lo, self.hi) = (x, x);
        } else {
            self.lo = self.lo.min(x);
            self.hi = self.hi.max(x);
        }
        self.seen += 1;
        record
    }
}

/// A past point, for the day-over-day comparison.
#[derive(Debug, Clone, Copy)]
struct Past {
    t: i64,
    x: f64,
}

/// The running detector.
#[derive(Debug, Clone)]
pub struct Novelty {
    c: NoveltyConfig,
    values: Channel,
    daily: Channel,
    /// Whether the day-over-day difference counted at its latest block.
    regular: bool,
    past: VecDeque<Past>,
    steps: Vec<i64>,
    step: Option<i64>,
    last_t: Option<i64>,
    extremes: Extremes,
    /// The values before the latest, as many as a shape spans less one.
    before: VecDeque<f64>,
    suppress_left: usize,
}

impl Novelty {
    pub fn new(c: NoveltyConfig) -> Self {
        Novelty {
            values: Channel::new(&c),
            daily: Channel::new(&c),
            regular: false,
            past: VecDeque::new(),
            steps: Vec::with_capacity(STEP_SAMPLES),
            step: None,
            last_t: None,
            extremes: Extremes::default(),
            before: VecDeque::new(),
            suppress_left: 0,
            c,
        }
    }

    /// Judge the next value, without time: no day-over-day comparison.
    pub fn update(&mut self, x: f64) -> Option<Verdict> {
        self.judge(None, x)
    }

    /// Judge the value taken at `t_ms` (milliseconds since the epoch). A time before
    /// the previous one is ignored, as a gap; equal times are taken in order.
    pub fn update_at(&mut self, t_ms: i64, x: f64) -> Option<Verdict> {
        if self.last_t.is_some_and(|last| t_ms < last) {
            return None;
        }
        self.judge(Some(t_ms), x)
    }

    /// The sampling step once learnt (the median of the first intervals).
    pub fn step_ms(&self) -> Option<i64> {
        self.step
    }

    fn learn_step(&mut self, t: i64) {
        if let (None, Some(last)) = (self.step, self.last_t) {
            if t > last {
                self.steps.push(t - last);
                if self.steps.len() >= STEP_SAMPLES {
                    self.steps.sort_unstable();
                    self.step = Some(self.steps[self.steps.len() / 2]);
                    self.steps = Vec::new();
                }
            }
        }
        self.last_t = Some(t);
    }

    /// The value a day before `t`, if a point was taken within half a step of it.
    fn day_before(&self, t: i64) -> Option<f64> {
        let step = self.step?;
        let tol = (step / 2).max(1);
        let at = t - DAY_MS;
        let i = self.past.partition_point(|p| p.t < at - tol);
        self.past.get(i).filter(|p| p.t <= at + tol).map(|p| p.x)
    }

    fn remember(&mut self, t: i64, x: f64) {
        let Some(step) = self.step.filter(|s| *s > 0) else {
            return;
        };
        if DAY_MS / step > MAX_DAY_POINTS || self.c.season_gate <= 0.0 {
            return;
        }
        self.past.push_back(Past { t, x });
        while self.past.front().is_some_and(|p| p.t < t - DAY_MS - step) {
            self.past.pop_front();
        }
    }

    fn judge(&mut self, t: Option<i64>, x: f64) -> Option<Verdict> {
        if !x.is_finite() {
            return None;
        }
        if let Some(t) = t {
            self.learn_step(t);
        }
        let yesterday = t.and_then(|t| self.day_before(t));
        self.values.add(x, None, self.c.radius);
        if let Some(y) = yesterday {
            // Day over day, in the values' units; it counts only while it is much
            // tighter than the values themselves.
            let units = self.values.range();
            let before = self.daily.judged();
            self.daily.add(x - y, Some(units), self.c.radius);
            if self.daily.judged() != before {
                self.regular = self.daily.range() < self.c.season_gate * units;
            }
        }
        if let Some(t) = t {
            self.remember(t, x);
        }
        let record = if self.c.records {
            let (margin, warmup) = (self.c.record_margin, self.c.record_warmup);
            self.extremes.see(x, margin, warmup)
        } else {
            None
        };
        // At or below every point before it, and below one of them: a stuck or flat
        // stretch is not falling.
        let falling = self.before.iter().all(|b| x <= *b) && self.before.iter().any(|b| x < *b);
        self.before.push_back(x);
        if self.before.len() >= self.c.shape_len * self.c.block {
            self.before.pop_front();
        }
        let learnt = self.values.judged() * self.c.block.max(1) >= self.c.warmup.max(1);
        let novel = if learnt { self.novelty() } else { None };
        let novel = novel.map(|j| Judged {
            novelty: if falling {
                j.novelty * self.c.falling_factor
            } else {
                j.novelty
            },
            ..j
        });
        if novel.is_none() && record.is_none() {
            self.suppress_left = self.suppress_left.saturating_sub(1);
            return None;
        }
        let mut score = novel.map_or(0.0, |j| j.novelty.clamp(0.0, 1.0));
        let mut fired = false;
        if self.suppress_left > 0 {
            self.suppress_left -= 1;
            score *= self.c.suppress_factor;
        } else if novel.is_some() && score >= self.c.threshold {
            fired = true;
            self.suppress_left = self.c.suppress;
        }
        if let Some(r) = record {
            // Never damped, and the quiet period starts again.
            fired = true;
            self.suppress_left = self.c.suppress;
            score = score.max((0.5 + r.excess).clamp(self.c.threshold, 1.0));
        }
        let range = self.values.range();
        let half = self.c.threshold * range;
        let expected = novel.and_then(|j| j.nearest).unwrap_or(x);
        let (lower, upper) = match record {
            Some(r) => (r.lower, r.upper),
            None => (expected - half, expected + half),
        };
        let reason = match (fired, record, novel) {
            (false, _, _) => String::new(),
            (true, Some(r), _) => format!(
                "the value {} is {} than any seen before: {}% of their spread beyond the previous {} ({})",
                round(x),
                if x > r.previous { "higher" } else { "lower" },
                round(100.0 * r.excess),
                if x > r.previous { "highest" } else { "lowest" },
                round(r.previous)
            ),
            (true, None, j) => format!(
                "the last {} points are {}% of the usual range ({}) away from every shape seen before (value {}, nearest known {})",
                self.c.shape_len * self.c.block,
                round(100.0 * j.map_or(0.0, |j| j.novelty)),
                round(range),
                round(x),
                round(expected)
            ),
        };
        Some(Verdict {
            value: x,
            severity: fired.then_some(self.c.severity),
            lower: Some(lower),
            upper: Some(upper),
            score,
            reason,
        })
    }

    /// The latest shape's novelty: by value, or day over day when that counts and is
    /// more novel.
    fn novelty(&self) -> Option<Judged> {
        let by_value = self.values.latest()?;
        Some(match self.daily.latest().filter(|_| self.regular) {
            Some(d) if d.novelty > by_value.novelty => Judged {
                novelty: d.novelty,
                nearest: by_value.nearest,
            },
            _ => by_value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::noisy;
    use crate::detect::{Detector, DetectorConfig};

    /// Points after which white noise has been learnt (see `warmup`).
    const LEARNT: usize = 3000;

    fn detector() -> Detector {
        DetectorConfig::Novelty(NoveltyConfig::default()).build()
    }

    /// Indices that fired and the scores of the points judged, points 5 minutes
    /// apart, with the defaults.
    fn run(values: &[f64]) -> (Vec<usize>, Vec<f64>) {
        run_with(NoveltyConfig::default(), values)
    }

    fn run_with(c: NoveltyConfig, values: &[f64]) -> (Vec<usize>, Vec<f64>) {
        let mut d = DetectorConfig::Novelty(c).build();
        let mut fired = Vec::new();
        let mut scores = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = d.update_at(i as i64 * 300_000, Some(*v)) {
                if v.is_anomaly() {
                    fired.push(i);
                }
                scores.push(v.score);
            }
        }
        (fired, scores)
    }

    fn after_learning(fired: &[usize]) -> Vec<usize> {
        fired.iter().copied().filter(|i| *i >= LEARNT).collect()
    }

    /// A deterministic bell-shaped noise: `level ± 3·sd`, the sum of six uniforms.
    fn bell(n: usize, level: f64, sd: f64) -> Vec<f64> {
        let u = noisy(6 * n, 0.5, 0.5);
        u.chunks(6)
            .map(|c| level + sd * 2.0_f64.sqrt() * (c.iter().sum::<f64>() - 3.0))
            .collect()
    }

    #[test]
    fn a_constant_series_stays_quiet() {
        for level in [42.0, 0.0, -1e9] {
            let (fired, scores) = run(&vec![level; 2000]);
            assert!(fired.is_empty(), "{fired:?}");
            assert!(scores.iter().all(|s| *s == 0.0), "{level}");
        }
    }

    #[test]
    fn a_flat_series_ignores_wiggles_but_not_changes() {
        let mut series = vec![100.0; LEARNT];
        series.extend([100.00001, 99.99999, 100.0, 100.00002]);
        series.extend([100.0; 300]);
        assert_eq!(run(&series).0, Vec::<usize>::new());
        let mut series = vec![100.0; LEARNT];
        series.extend([130.0; 300]);
        let (fired, _) = run(&series);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!((LEARNT..LEARNT + 2).contains(&fired[0]), "{fired:?}");
    }

    #[test]
    fn learnt_noise_stays_quiet() {
        let (fired, _) = run(&noisy(20_000, 50.0, 5.0));
        assert!(fired.len() <= 6, "while learning: {fired:?}");
        assert_eq!(after_learning(&fired), Vec::<usize>::new());
        // Bell-shaped noise has rarer tail shapes still, and the odd new extreme: now
        // and then one fires, ever more rarely.
        let (fired, _) = run(&bell(20_000, 50.0, 3.0));
        let after = after_learning(&fired);
        assert!(after.len() <= 3, "{fired:?}");
        assert!(after.iter().all(|i| *i < 10_000), "{fired:?}");
    }

    #[test]
    fn a_spike_fires_once_then_is_debounced() {
        let mut series = noisy(LEARNT + 1000, 50.0, 2.0);
        series[LEARNT + 500] = 90.0;
        series[LEARNT + 550] = 88.0;
        let (fired, _) = run(&series);
        assert_eq!(after_learning(&fired), vec![LEARNT + 500]);
    }

    #[test]
    fn a_level_shift_fires_once_and_becomes_the_baseline() {
        let mut series = noisy(LEARNT + 3000, 20.0, 1.0);
        for v in &mut series[LEARNT + 500..] {
            *v += 30.0;
        }
        let (fired, _) = run(&series);
        let after = after_learning(&fired);
        assert_eq!(after.len(), 1, "{fired:?}");
        assert!(
            (LEARNT + 500..LEARNT + 504).contains(&after[0]),
            "{fired:?}"
        );
    }

    #[test]
    fn a_missing_daily_peak_fires() {
        // 5-minute points, a daily peak from 10:00 to 12:00, small noise.
        let day = 288;
        let mut series: Vec<f64> = noisy(day * 16, 0.0, 0.5)
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                n + if (120..144).contains(&(i % day)) {
                    50.0
                } else {
                    10.0
                }
            })
            .collect();
        let (fired, _) = run(&series);
        assert_eq!(
            after_learning(&fired),
            Vec::<usize>::new(),
            "a regular peak is no news"
        );
        // On day 14 the peak does not come: only the day-over-day shape sees it.
        for v in &mut series[day * 14 + 120..day * 14 + 144] {
            *v -= 40.0;
        }
        let (fired, _) = run(&series);
        let after = after_learning(&fired);
        assert_eq!(after.len(), 1, "{after:?}");
        assert!(
            (day * 14 + 120..day * 14 + 124).contains(&after[0]),
            "{after:?}"
        );
        // Without the day-over-day shape it goes unseen.
        let no_season = NoveltyConfig {
            season_gate: 0.0,
            ..Default::default()
        };
        let (fired, _) = run_with(no_season, &series);
        assert_eq!(after_learning(&fired), Vec::<usize>::new());
    }

    #[test]
    fn gaps_and_nan_are_skipped() {
        let series = noisy(600, 10.0, 1.0);
        let mut a = detector();
        let mut b = detector();
        for (i, v) in series.iter().enumerate() {
            let t = i as i64 * 60_000;
            let clean = a.update_at(t, Some(*v));
            assert_eq!(b.update_at(t, None), None);
            assert_eq!(b.update_at(t, Some(f64::NAN)), None);
            assert_eq!(clean, b.update_at(t, Some(*v)));
        }
    }

    #[test]
    fn scores_are_in_the_unit_interval_and_repeat() {
        let mut series = noisy(4000, 1e6, 3e5);
        series[2500] = 1e12;
        series[3000] = -1e12;
        let (fired, first) = run(&series);
        let (_, second) = run(&series);
        assert!(first.len() > 3000);
        assert!(first.iter().all(|s| (0.0..=1.0).contains(s)), "{first:?}");
        assert!(fired.contains(&2500), "{fired:?}");
        assert_eq!(first, second);
    }

    #[test]
    fn without_time_it_still_judges() {
        let mut d = detector();
        let mut series = noisy(LEARNT + 800, 5.0, 0.5);
        series[LEARNT + 700] = 50.0;
        let fired: Vec<usize> = series
            .iter()
            .enumerate()
            .filter_map(|(i, v)| d.update(Some(*v)).filter(Verdict::is_anomaly).map(|_| i))
            .collect();
        assert_eq!(after_learning(&fired), vec![LEARNT + 700]);
    }

    #[test]
    fn times_going_back_are_ignored() {
        let mut d = Novelty::new(NoveltyConfig::default());
        for i in 0..100 {
            d.update_at(i * 1000, 1.0);
        }
        assert_eq!(d.update_at(5, 1.0), None);
        assert_eq!(d.step_ms(), Some(1000));
    }

    #[test]
    fn configured_by_name() {
        let c: DetectorConfig =
            serde_json::from_str(r#"{"type": "novelty", "threshold": 0.2}"#).unwrap();
        let want = NoveltyConfig {
            threshold: 0.2,
            ..Default::default()
        };
        assert_eq!(c, DetectorConfig::Novelty(want));
        let typo = r#"{"type": "novelty", "treshold": 0.2}"#;
        assert!(serde_json::from_str::<DetectorConfig>(typo).is_err());
    }

    #[test]
    fn bad_parameters_are_named() {
        let c = NoveltyConfig {
            block: 0,
            threshold: 0.0,
            ..Default::default()
        };
        let keys: Vec<String> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["block", "threshold"]);
        assert!(NoveltyConfig::default().problems().is_empty());
        // Sizes that would exhaust memory or overflow are refused too.
        let c = NoveltyConfig {
            range_window: usize::MAX,
            shape_len: 1000,
            record_margin: -1.0,
            ..Default::default()
        };
        let problems = c.problems();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["shape_len", "range_window", "record_margin"]);
        assert!(problems[0].1.contains("at most 64"), "{problems:?}");
    }

    fn shapes_only() -> NoveltyConfig {
        NoveltyConfig {
            records: false,
            ..Default::default()
        }
    }

    /// The reason of the last detection in `series`.
    fn last_reason(c: NoveltyConfig, series: &[f64]) -> String {
        let mut d = DetectorConfig::Novelty(c).build();
        series
            .iter()
            .enumerate()
            .filter_map(|(i, v)| d.update_at(i as i64 * 1000, Some(*v)))
            .filter(Verdict::is_anomaly)
            .last()
            .map(|v| v.reason)
            .unwrap_or_default()
    }

    #[test]
    fn the_reason_says_why() {
        let mut series = noisy(LEARNT + 800, 5.0, 0.5);
        series[LEARNT + 700] = 50.0;
        let reason = last_reason(NoveltyConfig::default(), &series);
        assert!(
            reason.contains("the value 50 is higher than any seen before"),
            "{reason}"
        );
        let reason = last_reason(shapes_only(), &series);
        assert!(
            reason.contains("away from every shape seen before"),
            "{reason}"
        );
        assert!(reason.contains("value 50"), "{reason}");
    }

    #[test]
    fn a_new_extreme_fires_however_familiar_its_shape() {
        // A spike every 100 points is learnt; then one a quarter higher comes, too
        // little to be a new shape.
        let mut series = noisy(LEARNT + 1000, 10.0, 1.0);
        for i in (50..series.len()).step_by(100) {
            series[i] += 40.0;
        }
        let (fired, _) = run(&series);
        assert_eq!(after_learning(&fired), Vec::<usize>::new());
        series[LEARNT + 550] += 10.0;
        let (fired, scores) = run(&series);
        assert_eq!(after_learning(&fired), vec![LEARNT + 550]);
        let at = scores.len() - (series.len() - (LEARNT + 550));
        assert!(scores[at] >= 0.5, "{}", scores[at]);
        // Its band is the extremes before it, which the value is outside.
        let mut d = detector();
        let v = series
            .iter()
            .enumerate()
            .filter_map(|(i, v)| d.update_at(i as i64 * 300_000, Some(*v)).map(|v| (i, v)))
            .find(|(i, _)| *i == LEARNT + 550)
            .map(|(_, v)| v)
            .unwrap();
        assert!(v.upper.unwrap() < v.value, "{v:?}");
        // So does a new lowest value, but not one within the margin.
        let mut low = series.clone();
        low[LEARNT + 550] = -10.0;
        assert_eq!(after_learning(&run(&low).0), vec![LEARNT + 550]);
        let mut close = series.clone();
        close[LEARNT + 550] = 10.0 + 40.0 + 1.0 + 0.02 * 42.0;
        assert_eq!(after_learning(&run(&close).0), Vec::<usize>::new());
        // Without records the memory has seen that spike before.
        let (fired, _) = run_with(shapes_only(), &series);
        assert_eq!(after_learning(&fired), Vec::<usize>::new());
    }

    #[test]
    fn falling_back_is_damped_but_a_large_fall_fires() {
        // Scores with and without the damping, no debounce and no records.
        let scores = |falling_factor: f64, series: &[f64]| -> Vec<f64> {
            let c = NoveltyConfig {
                falling_factor,
                suppress_factor: 1.0,
                ..shapes_only()
            };
            run_with(c, series).1
        };
        let series = bell(4000, 50.0, 3.0);
        let (plain, damped) = (scores(1.0, &series), scores(0.5, &series));
        // Both judge the same points, the last ones.
        assert_eq!(plain.len(), damped.len());
        let first = series.len() - plain.len();
        let (plain, damped) = (
            [vec![0.0; first], plain].concat(),
            [vec![0.0; first], damped].concat(),
        );
        let mut seen = 0;
        for i in 8..series.len() {
            let lowest = series[i - 7..i].iter().all(|b| series[i] <= *b);
            let want = if lowest { 0.5 * plain[i] } else { plain[i] };
            assert!(
                (damped[i] - want).abs() < 1e-12,
                "{i}: {} {want}",
                damped[i]
            );
            seen += usize::from(lowest && plain[i] > 0.0);
        }
        assert!(seen > 100, "{seen}");
        // A level shift down is a fall like any other, and far beyond the damping
        // (records off: the new low would fire anyway).
        let mut series = noisy(LEARNT + 1000, 50.0, 1.0);
        for v in &mut series[LEARNT + 500..] {
            *v -= 30.0;
        }
        let fired = after_learning(&run_with(shapes_only(), &series).0);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(
            (LEARNT + 500..LEARNT + 504).contains(&fired[0]),
            "{fired:?}"
        );
    }

    #[test]
    fn records_wait_for_their_warmup() {
        let mut series = noisy(1000, 10.0, 1.0);
        series[100] = 30.0;
        series[200] = 50.0;
        // The first is too early; the second fires before the shapes' warm-up ends.
        let (fired, _) = run(&series);
        assert_eq!(fired.first(), Some(&200), "{fired:?}");
        // Its band is what would not have been a record: the extremes before it,
        // widened by the margin.
        let mut d = detector();
        let v = series
            .iter()
            .enumerate()
            .filter_map(|(i, v)| d.update_at(i as i64 * 300_000, Some(*v)))
            .find(Verdict::is_anomaly)
            .unwrap();
        let upper = v.upper.unwrap();
        let lower = v.lower.unwrap();
        assert!(30.0 < upper && upper < 32.0, "{upper}");
        assert!(7.0 < lower && lower < 9.0, "{lower}");
        assert!(v.score >= 0.5, "{}", v.score);
    }
}
