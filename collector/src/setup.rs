//! `[collector.inputs.*]`, and turning it into scheduled tasks.
//!
//! System inputs each run as their own task. The inputs that walk `/proc/<pid>`
//! (processes, procstat_top, procstat, listen) share one task and one scan of the
//! process table per cycle, so the per-process cost is paid once.

use std::path::Path;

use hostscope_core::config::ConfigErrors;
use serde::Deserialize;

use crate::agent::{AsyncInput, BlockingInput, Task};
use crate::inputs::procscan::Scanner;
use crate::inputs::{
    cpu, disk, diskio, http, listen, logmatch, mem, net, processes, procstat, procstat_top, system,
    Accumulator, HostPaths, InputError,
};

/// Every input name `only` accepts.
pub const INPUT_NAMES: &[&str] = &[
    "cpu",
    "mem",
    "disk",
    "diskio",
    "net",
    "system",
    "processes",
    "procstat_top",
    "listen",
    "procstat",
    "logmatch",
    "http",
];

/// `[collector.inputs]`. System inputs, processes, procstat_top and listen are on by
/// default (`enabled = false` turns one off); procstat, logmatch and http run once
/// per `[[collector.inputs.<name>]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InputsConfig {
    /// Gather only these inputs, like `telegraf --input-filter`; empty means every
    /// enabled input.
    pub only: Vec<String>,
    /// `cpu`: usage per core and in total.
    pub cpu: cpu::Config,
    /// `mem` and `swap`.
    pub mem: mem::Config,
    /// `disk`: usage per mounted filesystem.
    pub disk: disk::Config,
    /// `diskio`: I/O counters per block device.
    pub diskio: diskio::Config,
    /// `net`: counters per interface.
    pub net: net::Config,
    /// `system`: load, CPUs, uptime.
    pub system: system::Config,
    /// `processes`: processes by state.
    pub processes: processes::Config,
    /// `procstat_top`: the top processes by CPU and by memory.
    pub procstat_top: procstat_top::Config,
    /// `listen`: listening sockets and expected ports.
    pub listen: listen::Config,
    /// `procstat`: watched processes.
    pub procstat: Vec<procstat::Config>,
    /// `logmatch`: keyword matches in log files.
    pub logmatch: Vec<logmatch::Config>,
    /// `http`: business metrics from HTTP endpoints.
    pub http: Vec<http::Config>,
}

impl InputsConfig {
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        for name in &self.only {
            if !INPUT_NAMES.contains(&name.as_str()) {
                errors.push(
                    format!("{key}.only"),
                    format!(
                        "unknown input {name:?}; expected some of {}",
                        INPUT_NAMES.join(", ")
                    ),
                );
            }
        }
        self.cpu.validate(&format!("{key}.cpu"), errors);
        self.mem.validate(&format!("{key}.mem"), errors);
        self.disk.validate(&format!("{key}.disk"), errors);
        self.diskio.validate(&format!("{key}.diskio"), errors);
        self.net.validate(&format!("{key}.net"), errors);
        self.system.validate(&format!("{key}.system"), errors);
        self.processes.validate(&format!("{key}.processes"), errors);
        self.procstat_top
            .validate(&format!("{key}.procstat_top"), errors);
        self.listen.validate(&format!("{key}.listen"), errors);
        for (i, c) in self.procstat.iter().enumerate() {
            c.validate(&format!("{key}.procstat[{i}]"), errors);
        }
        for (i, c) in self.logmatch.iter().enumerate() {
            c.validate(&format!("{key}.logmatch[{i}]"), errors);
            // Each logmatch keeps its read offsets in a state file named after its
            // `name`, or else its files and rules: two alike would share one.
            let identity = |c: &logmatch::Config| match &c.name {
                Some(n) => n.clone(),
                None => format!(
                    "{:?}{:?}",
                    c.files,
                    c.rules
                        .iter()
                        .map(|r| (&r.name, &r.regex))
                        .collect::<Vec<_>>()
                ),
            };
            if let Some(j) = self.logmatch[..i]
                .iter()
                .position(|o| identity(o) == identity(c))
            {
                errors.push(
                    format!("{key}.logmatch[{i}]"),
                    format!("is the same input as logmatch[{j}] (same name, or same files and rules); give each a distinct `name`"),
                );
            }
        }
        for (i, c) in self.http.iter().enumerate() {
            c.validate(&format!("{key}.http[{i}]"), errors);
        }
    }

    /// Whether `name` runs: enabled, and selected by `only` when that is set.
    fn wanted(&self, name: &str, enabled: bool) -> bool {
        enabled && (self.only.is_empty() || self.only.iter().any(|o| o == name))
    }
}

macro_rules! blocking_input {
    ($($module:ident),*) => {$(
        impl BlockingInput for $module::Input {
            fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
                $module::Input::gather(self, acc)
            }
        }
    )*};
}
blocking_input!(cpu, mem, disk, diskio, net, system, logmatch);

impl AsyncInput for http::Input {
    fn gather<'a>(
        &'a mut self,
        acc: &'a mut Accumulator,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), InputError>> + Send + 'a>>
    {
        Box::pin(http::Input::gather(self, acc))
    }
}

/// The inputs that read the process table, fed by one scan per cycle.
struct ProcessInputs {
    scanner: Scanner,
    processes: Option<processes::Input>,
    top: Option<procstat_top::Input>,
    procstat: Vec<procstat::Input>,
    listen: Option<listen::Input>,
}

impl BlockingInput for ProcessInputs {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let table = self.scanner.scan()?;
        // One consumer failing costs none of the others their points.
        let mut failures = Vec::new();
        let s = &mut self.scanner;
        if let Some(i) = self.processes.as_mut() {
            i.gather(s, &table, acc)
                .unwrap_or_else(|e| failures.push(format!("processes: {e:#}")));
        }
        if let Some(i) = self.top.as_mut() {
            i.gather(s, &table, acc)
                .unwrap_or_else(|e| failures.push(format!("procstat_top: {e:#}")));
        }
        for i in &mut self.procstat {
            i.gather(s, &table, acc)
                .unwrap_or_else(|e| failures.push(format!("procstat: {e:#}")));
        }
        if let Some(i) = self.listen.as_mut() {
            i.gather(s, &table, acc)
                .unwrap_or_else(|e| failures.push(format!("listen: {e:#}")));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(failures.join("; ")))
        }
    }
}

/// Build the tasks the agent schedules, in a stable order.
pub fn build_tasks(
    config: &InputsConfig,
    paths: &HostPaths,
    state_dir: &Path,
) -> anyhow::Result<Vec<Task>> {
    let c = config;
    let mut tasks = Vec::new();
    if c.wanted("cpu", c.cpu.enabled) {
        tasks.push(Task::blocking("cpu", cpu::Input::new(&c.cpu, paths)));
    }
    if c.wanted("mem", c.mem.enabled) {
        tasks.push(Task::blocking("mem", mem::Input::new(&c.mem, paths)));
    }
    if c.wanted("disk", c.disk.enabled) {
        tasks.push(Task::blocking("disk", disk::Input::new(&c.disk, paths)));
    }
    if c.wanted("diskio", c.diskio.enabled) {
        tasks.push(Task::blocking(
            "diskio",
            diskio::Input::new(&c.diskio, paths),
        ));
    }
    if c.wanted("net", c.net.enabled) {
        tasks.push(Task::blocking("net", net::Input::new(&c.net, paths)));
    }
    if c.wanted("system", c.system.enabled) {
        tasks.push(Task::blocking(
            "system",
            system::Input::new(&c.system, paths),
        ));
    }
    let group = ProcessInputs {
        scanner: Scanner::new(paths),
        processes: c
            .wanted("processes", c.processes.enabled)
            .then(|| processes::Input::new(&c.processes, paths)),
        top: c
            .wanted("procstat_top", c.procstat_top.enabled)
            .then(|| procstat_top::Input::new(&c.procstat_top, paths)),
        procstat: if c.wanted("procstat", true) {
            c.procstat
                .iter()
                .map(|p| procstat::Input::new(p, paths))
                .collect()
        } else {
            Vec::new()
        },
        listen: c
            .wanted("listen", c.listen.enabled)
            .then(|| listen::Input::new(&c.listen, paths)),
    };
    if group.processes.is_some()
        || group.top.is_some()
        || !group.procstat.is_empty()
        || group.listen.is_some()
    {
        tasks.push(Task::blocking("process_table", group));
    }
    if c.wanted("logmatch", true) {
        let dir = state_dir.join("logmatch");
        for (i, l) in c.logmatch.iter().enumerate() {
            let input = logmatch::Input::new(l, &dir)
                .map_err(|e| anyhow::anyhow!("collector.inputs.logmatch[{i}]: {e:#}"))?;
            tasks.push(Task::blocking(format!("logmatch[{i}]"), input));
        }
    }
    if c.wanted("http", true) {
        for (i, h) in c.http.iter().enumerate() {
            let input = http::Input::new(h)
                .map_err(|e| anyhow::anyhow!("collector.inputs.http[{i}]: {e:#}"))?;
            tasks.push(Task::asynchronous(format!("http[{i}]"), input));
        }
    }
    Ok(tasks)
}
