//! Fits hostscope's isolation forest on one CSV of feature vectors and scores another,
//! for the comparison with scikit-learn in `bench/iforest/` (not a shipped binary).
//!
//! `cargo run --release -p hostscope-core --example iforest_score -- --train A.csv
//! [--test B.csv] [--out SCORES] [--trees 100] [--sample-size 256] [--seed 42]
//! [--threads 1] [--repeat 1]`
//!
//! The CSVs have a header row and numeric columns only, the same in both files. The
//! test file defaults to the training file. Each repeat fits a new forest (same seed) and
//! scores every test row, and prints one line of JSON with the wall times of the two
//! steps in seconds, measured in this process (reading the CSVs is not timed). `--out`
//! gets the last repeat's scores, the paper's s(x) = 2^(-E[h(x)]/c(ψ)), one per line.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use hostscope_core::detect::{IsolationForest, IsolationForestConfig};

struct Args {
    train: String,
    test: Option<String>,
    out: Option<String>,
    config: IsolationForestConfig,
    threads: usize,
    repeat: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        train: String::new(),
        test: None,
        out: None,
        config: IsolationForestConfig::default(),
        threads: 1,
        repeat: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--train" => a.train = value()?,
            "--test" => a.test = Some(value()?),
            "--out" => a.out = Some(value()?),
            "--trees" => a.config.trees = whole(&flag, value()?)?,
            "--sample-size" => a.config.sample_size = whole(&flag, value()?)?,
            "--seed" => a.config.seed = whole(&flag, value()?)?,
            "--threads" => a.threads = whole::<usize>(&flag, value()?)?.max(1),
            "--repeat" => a.repeat = whole::<usize>(&flag, value()?)?.max(1),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.train.is_empty() {
        return Err("--train FILE is required".into());
    }
    if let Some((key, problem)) = a.config.problems().into_iter().next() {
        return Err(format!("{key}: {problem}"));
    }
    Ok(a)
}

fn whole<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
}

/// The rows of a numeric CSV with a header.
fn read_csv(path: &str) -> Result<Vec<Vec<f64>>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{path}: {e}"))?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{path}: {e}"))?;
        let row = record
            .iter()
            .enumerate()
            .map(|(col, v)| {
                v.trim().parse::<f64>().map_err(|_| {
                    format!(
                        "{path}: data row {}, column {}: {v:?} is not a number",
                        i + 1,
                        col + 1
                    )
                })
            })
            .collect::<Result<Vec<f64>, String>>()?;
        rows.push(row);
    }
    Ok(rows)
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let train = read_csv(&a.train)?;
    let test = match &a.test {
        Some(path) => read_csv(path)?,
        None => train.clone(),
    };
    let mut scores = Vec::new();
    for repeat in 1..=a.repeat {
        let start = Instant::now();
        let forest =
            IsolationForest::fit(&train, &a.config).map_err(|e| format!("{}: {e}", a.train))?;
        let fitted = Instant::now();
        scores = forest.score_batch(&test, a.threads);
        let scored = Instant::now();
        println!(
            "{{\"repeat\": {repeat}, \"threads\": {}, \"train_rows\": {}, \"test_rows\": {}, \"fit_s\": {:.6}, \"score_s\": {:.6}}}",
            a.threads,
            train.len(),
            test.len(),
            (fitted - start).as_secs_f64(),
            (scored - fitted).as_secs_f64(),
        );
    }
    if let Some(path) = &a.out {
        let mut text = String::with_capacity(scores.len() * 20);
        for s in &scores {
            let _ = writeln!(text, "{s}");
        }
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iforest_score: {e}");
            ExitCode::FAILURE
        }
    }
}
