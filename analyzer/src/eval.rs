//! `hostscope-analyzer eval`: run one detector over a folder of labelled series and
//! write an anomaly score per row, the input of an offline scorer such as NAB's.
//!
//! Input: `<input>/<category>/<name>.csv` (and `<input>/<name>.csv`), each with a
//! header naming the columns `timestamp` and `value`. Timestamps are
//! `YYYY-MM-DD HH:MM:SS[.fff]` (a `T` instead of the space and a trailing `Z` are
//! accepted), UTC, never decreasing (repeats, as around a clock change, are kept in row order). An empty value or `NaN` is a gap.
//! Output: `<output>/<category>/<name>.csv` with `timestamp,anomaly_score`, one row per
//! input row in the same order, the score in [0, 1]. Each series is read strictly in
//! time order: a row's score depends only on that row and the ones before it.

use std::fmt;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hostscope_core::calendar::days_from_civil;
use hostscope_core::config::{self, Sources};
use hostscope_core::detect::{
    DetectorConfig, EwmaConfig, LaggedForest, LaggedForestConfig, NoveltyConfig, QuantileConfig,
    SigmaConfig,
};
use serde::de::DeserializeOwned;

/// The detectors `eval` can run, by their command-line names.
pub const DETECTOR_NAMES: &[&str] = &["novelty", "ewma", "3sigma", "quantile", "iforest"];

/// A detector and its parameters.
#[derive(Debug, Clone)]
pub enum EvalDetector {
    /// The production detector (shape novelty); the default.
    Novelty(NoveltyConfig),
    Ewma(EwmaConfig),
    Sigma(SigmaConfig),
    Quantile(QuantileConfig),
    /// Isolation forest over lagged values, retrained on the past.
    IsolationForest(LaggedForestConfig),
}

impl EvalDetector {
    /// The detector called `name` with its parameters from the TOML file `config`
    /// (the detector's keys at top level), or its defaults.
    pub fn from_name(name: &str, config: Option<&Path>) -> Result<Self, EvalError> {
        let d = match name {
            "novelty" | "default" => {
                EvalDetector::Novelty(load_or(config, NoveltyConfig::default)?)
            }
            "ewma" => EvalDetector::Ewma(load_or(config, || EwmaConfig::new(0.1, 3.0))?),
            "3sigma" | "sigma" => {
                EvalDetector::Sigma(load_or(config, || SigmaConfig::new(60, 3.0))?)
            }
            "quantile" => {
                EvalDetector::Quantile(load_or(config, || QuantileConfig::tukey(60, 1.5))?)
            }
            "iforest" => {
                EvalDetector::IsolationForest(load_or(config, LaggedForestConfig::default)?)
            }
            other => {
                return Err(EvalError::Detector(format!(
                    "unknown detector {other:?}; one of {}",
                    DETECTOR_NAMES.join(", ")
                )))
            }
        };
        let problems = d.problems();
        if problems.is_empty() {
            Ok(d)
        } else {
            Err(EvalError::Detector(
                problems
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
    }

    fn problems(&self) -> Vec<(String, String)> {
        match self {
            EvalDetector::Novelty(c) => c.problems(),
            EvalDetector::Ewma(c) => c.problems(),
            EvalDetector::Sigma(c) => c.problems(),
            EvalDetector::Quantile(c) => c.problems(),
            EvalDetector::IsolationForest(c) => c.problems(),
        }
    }

    /// Scores for one series, one per point, each in [0, 1].
    pub fn score(&self, times: &[i64], values: &[Option<f64>]) -> Vec<f64> {
        // Unbounded distances (band widths, standard deviations) become d / (1 + d):
        // monotone, so a threshold on one is a threshold on the other.
        let squash = |d: f64| {
            if d.is_nan() || d <= 0.0 {
                0.0
            } else if d.is_infinite() {
                1.0
            } else {
                d / (1.0 + d)
            }
        };
        let run = |cfg: DetectorConfig, bounded: bool| {
            let mut det = cfg.build();
            times
                .iter()
                .zip(values)
                .map(|(t, v)| {
                    det.update_at(*t, *v).map_or(0.0, |v| {
                        if bounded {
                            v.score.clamp(0.0, 1.0)
                        } else {
                            squash(v.score)
                        }
                    })
                })
                .collect()
        };
        match self {
            EvalDetector::Novelty(c) => run(DetectorConfig::Novelty(c.clone()), true),
            EvalDetector::Ewma(c) => run(DetectorConfig::Ewma(c.clone()), false),
            EvalDetector::Sigma(c) => run(DetectorConfig::Sigma(c.clone()), false),
            EvalDetector::Quantile(c) => run(DetectorConfig::Quantile(c.clone()), false),
            EvalDetector::IsolationForest(c) => {
                let mut f = LaggedForest::new(c.clone());
                values
                    .iter()
                    .map(|v| {
                        v.and_then(|x| f.update(x))
                            .map_or(0.0, |s| s.clamp(0.0, 1.0))
                    })
                    .collect()
            }
        }
    }
}

fn load_or<T: DeserializeOwned>(
    path: Option<&Path>,
    default: impl FnOnce() -> T,
) -> Result<T, EvalError> {
    match path {
        None => Ok(default()),
        Some(p) => config::load::<T>(&Sources {
            file: Some(p.to_path_buf()),
            env: Some(Vec::new()),
        })
        .map_err(|e| EvalError::Detector(e.to_string())),
    }
}

/// What went wrong, naming the file (and line) at fault.
#[derive(Debug)]
pub enum EvalError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Input {
        path: PathBuf,
        line: u64,
        message: String,
    },
    NoInput {
        dir: PathBuf,
    },
    Detector(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            EvalError::Input {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            EvalError::NoInput { dir } => write!(f, "{}: no .csv files found", dir.display()),
            EvalError::Detector(m) => write!(f, "detector: {m}"),
        }
    }
}

impl std::error::Error for EvalError {}

/// One input series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Path relative to the input folder, e.g. `realTweets/Twitter_volume_AAPL.csv`.
    pub relative: PathBuf,
    /// The timestamps as written, echoed to the output.
    pub stamps: Vec<String>,
    /// Milliseconds since the epoch.
    pub times: Vec<i64>,
    pub values: Vec<Option<f64>>,
}

/// Read and check one CSV series.
pub fn read_series(path: &Path, relative: PathBuf) -> Result<Series, EvalError> {
    let input = |line: u64, message: String| EvalError::Input {
        path: path.to_path_buf(),
        line,
        message,
    };
    let file = fs::File::open(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let headers = rdr
        .headers()
        .map_err(|e| input(1, format!("cannot read the header: {e}")))?
        .clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(input(1, "empty file: no header".into()));
    }
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            input(
                1,
                format!(
                    "no {name:?} column (the header has: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let (ti, vi) = (col("timestamp")?, col("value")?);
    let mut s = Series {
        relative,
        stamps: Vec::new(),
        times: Vec::new(),
        values: Vec::new(),
    };
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            input(line, e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        let (Some(ts), Some(v)) = (rec.get(ti), rec.get(vi)) else {
            return Err(input(
                line,
                format!("{} fields, the header has {}", rec.len(), headers.len()),
            ));
        };
        let t = parse_timestamp(ts)
            .ok_or_else(|| input(line, format!("timestamp {ts:?} is not YYYY-MM-DD HH:MM:SS")))?;
        if let Some(prev) = s.times.last() {
            if t < *prev {
                return Err(input(
                    line,
                    format!("timestamp {ts:?} is before the previous row's"),
                ));
            }
        }
        let value = if v.is_empty() || v.eq_ignore_ascii_case("nan") {
            None
        } else {
            Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| input(line, format!("value {v:?} is not a number")))?,
            )
        };
        s.stamps.push(ts.to_owned());
        s.times.push(t);
        s.values.push(value);
    }
    if s.values.is_empty() {
        return Err(input(2, "no data rows".into()));
    }
    Ok(s)
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.fff][Z]` (UTC) to milliseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut ms = 0;
    if b.len() > 19 {
        let frac = s.get(20..)?;
        if b[19] != b'.' || frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = digits.parse().ok()?;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

/// The `.csv` files directly in `dir` and one level of folders below, sorted.
pub fn list_inputs(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Io { path, source }
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let p = entry.map_err(io(dir))?.path();
        if p.is_dir() {
            for e in fs::read_dir(&p).map_err(io(&p))? {
                let q = e.map_err(io(&p))?.path();
                if q.is_file() && q.extension().is_some_and(|x| x == "csv") {
                    out.push(q);
                }
            }
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(EvalError::NoInput {
            dir: dir.to_path_buf(),
        });
    }
    Ok(out)
}

fn write_scores(path: &Path, s: &Series, scores: &[f64]) -> Result<(), EvalError> {
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut w = BufWriter::new(fs::File::create(path).map_err(io)?);
    writeln!(w, "timestamp,anomaly_score").map_err(io)?;
    for (ts, score) in s.stamps.iter().zip(scores) {
        writeln!(w, "{ts},{score}").map_err(io)?;
    }
    w.flush().map_err(io)
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub files: usize,
    pub rows: usize,
    pub elapsed: Duration,
}

/// Score every series under `input` into `output`, on up to `threads` threads.
pub fn run(
    input: &Path,
    output: &Path,
    detector: &EvalDetector,
    threads: usize,
) -> Result<Summary, EvalError> {
    let start = Instant::now();
    let files = list_inputs(input)?;
    let next = AtomicUsize::new(0);
    let rows = AtomicUsize::new(0);
    let first_error: Mutex<Option<(usize, EvalError)>> = Mutex::new(None);
    let job = |i: usize| -> Result<(), EvalError> {
        let path = &files[i];
        let relative = path.strip_prefix(input).unwrap_or(path).to_path_buf();
        let series = read_series(path, relative)?;
        let scores = detector.score(&series.times, &series.values);
        rows.fetch_add(series.values.len(), Ordering::Relaxed);
        write_scores(&output.join(&series.relative), &series, &scores)
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, files.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= files.len() {
                    break;
                }
                if let Err(e) = job(i) {
                    if let Ok(mut slot) = first_error.lock() {
                        // Report the error of the first file in order, whatever the threads did.
                        if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                            *slot = Some((i, e));
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(Summary {
        files: files.len(),
        rows: rows.into_inner(),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
        p
    }

    /// `n` rows, 5 minutes apart, a spike at row `spike`.
    fn series(n: usize, spike: usize) -> String {
        let mut s = String::from("timestamp,value\n");
        for i in 0..n {
            let t = 1_396_310_400 + 300 * i as i64; // 2014-04-01 00:00:00
            let (d, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
            let day = d - 16_161; // days after 2014-04-01
            let v = if i == spike {
                500.0
            } else {
                20.0 + (i % 7) as f64
            };
            s += &format!(
                "2014-04-{:02} {:02}:{:02}:00,{v}\n",
                day + 1,
                rem / 3600,
                rem % 3600 / 60
            );
        }
        s
    }

    fn error_of(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c/bad.csv", text);
        match read_series(&p, PathBuf::from("c/bad.csv")) {
            Ok(_) => panic!("accepted: {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn scores_every_row_with_a_header_for_every_detector() {
        let input = tempfile::tempdir().unwrap();
        write(input.path(), "catA/one.csv", &series(700, 600));
        write(input.path(), "catB/two.csv", &series(300, 9999));
        for name in DETECTOR_NAMES {
            let output = tempfile::tempdir().unwrap();
            let d = EvalDetector::from_name(name, None).unwrap();
            let summary = run(input.path(), output.path(), &d, 2).unwrap();
            assert_eq!((summary.files, summary.rows), (2, 1000), "{name}");
            for (rel, rows) in [("catA/one.csv", 700), ("catB/two.csv", 300)] {
                let text = fs::read_to_string(output.path().join(rel)).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines[0], "timestamp,anomaly_score", "{name}");
                assert_eq!(lines.len(), rows + 1, "{name} {rel}");
                assert!(lines[1].starts_with("2014-04-01 00:00:00,"), "{}", lines[1]);
                for l in &lines[1..] {
                    let s: f64 = l.rsplit(',').next().unwrap().parse().unwrap();
                    assert!((0.0..=1.0).contains(&s), "{name}: {l}");
                }
            }
        }
    }

    #[test]
    fn the_production_detector_flags_the_spike() {
        let input = tempfile::tempdir().unwrap();
        let output = tempfile::tempdir().unwrap();
        write(input.path(), "c/s.csv", &series(700, 600));
        let d = EvalDetector::from_name("novelty", None).unwrap();
        run(input.path(), output.path(), &d, 1).unwrap();
        let text = fs::read_to_string(output.path().join("c/s.csv")).unwrap();
        let scores: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        let top = (0..scores.len())
            .max_by(|a, b| scores[*a].total_cmp(&scores[*b]))
            .unwrap();
        assert!((600..602).contains(&top), "{top}: {}", scores[top]);
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let cases = [
            ("", "c/bad.csv:1: empty file"),
            (
                "time,value\n2014-04-01 00:00:00,1\n",
                "c/bad.csv:1: no \"timestamp\" column",
            ),
            ("timestamp,val\n", "c/bad.csv:1: no \"value\" column"),
            ("timestamp,value\n", "c/bad.csv:2: no data rows"),
            (
                "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n",
                "c/bad.csv:3: value \"abc\" is not a number",
            ),
            (
                "timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n",
                "c/bad.csv:3: timestamp \"yesterday\" is not YYYY-MM-DD HH:MM:SS",
            ),
            (
                "timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n",
                "c/bad.csv:3: timestamp \"2014-04-01 00:00:00\" is before the previous row's",
            ),
            (
                "timestamp,value\n2014-04-01 00:00:00\n",
                "c/bad.csv:2: 1 fields, the header has 2",
            ),
        ];
        for (text, want) in cases {
            let got = error_of(text);
            assert!(got.contains(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn gaps_and_repeated_times_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "x.csv",
            "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:00:00,\n2014-04-01T00:05:00Z,NaN\n",
        );
        let s = read_series(&p, PathBuf::from("x.csv")).unwrap();
        assert_eq!(s.values, vec![Some(1.0), None, None]);
        assert_eq!(s.times[2] - s.times[0], 300_000);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2014-04-01 00:00:00"),
            Some(1_396_310_400_000)
        );
        assert_eq!(
            parse_timestamp("2000-02-29T12:30:15.25Z"),
            Some(951_827_415_250)
        );
        assert_eq!(parse_timestamp("2014-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp("2014-04-01"), None);
        assert_eq!(parse_timestamp("2014-04-01 00:00:00.x"), None);
    }

    #[test]
    fn unknown_detectors_and_bad_parameters_are_errors() {
        let e = EvalDetector::from_name("magic", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown detector \"magic\""), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "d.toml", "threshold = 2.0\n");
        let e = EvalDetector::from_name("novelty", Some(&p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("threshold"), "{e}");
        let p = write(dir.path(), "e.toml", "treshold = 0.2\n");
        let e = EvalDetector::from_name("novelty", Some(&p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("treshold"), "{e}");
        let e = run(
            dir.path().join("none").as_path(),
            dir.path(),
            &EvalDetector::from_name("ewma", None).unwrap(),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("none"), "{e}");
    }
}
