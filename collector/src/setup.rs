//! `[collector.inputs.*]`, and turning it into scheduled tasks. (Being wired.)

use std::path::Path;

use hostscope_core::config::ConfigErrors;
use serde::Deserialize;

use crate::agent::Task;
use crate::inputs::HostPaths;

/// `[collector.inputs]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InputsConfig {}

impl InputsConfig {
    pub fn validate(&self, _key: &str, _errors: &mut ConfigErrors) {}
}

pub fn build_tasks(
    _config: &InputsConfig,
    _paths: &HostPaths,
    _state_dir: &Path,
) -> anyhow::Result<Vec<Task>> {
    Ok(Vec::new())
}
