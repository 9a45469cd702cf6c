#[test]
fn command_line_contract() {
    hostscope_tests::cli::standard_checks(env!("CARGO_BIN_EXE_hostscope-collector"));
}

/// Collector sections: every bad value is reported with its key, at once.
#[test]
fn collector_config_errors_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[collector]
interval = "soon"
[collector.inputs]
only = ["cpu", "gpu"]
[collector.inputs.cpu]
percpu = ["yes"]
[[collector.inputs.logmatch]]
files = ["/var/log/*.log"]
rules = [{ name = "error", regex = "ERROR(" }]
[[collector.inputs.http]]
name = "shop"
url = "not a url"
[[collector.inputs.procstat]]
pattern = "["
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hostscope-collector"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "collector.interval: invalid duration \"soon\"",
        "collector.inputs.only: unknown input \"gpu\"",
        "collector.inputs.cpu.percpu:",
        "collector.inputs.logmatch[0].rules[0].regex",
        "collector.inputs.http[0].url",
        "collector.inputs.procstat[0]",
    ] {
        assert!(err.contains(key), "missing {key:?} in:\n{err}");
    }
}
