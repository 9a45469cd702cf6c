#[test]
fn command_line_contract() {
    hostscope_tests::cli::standard_checks(env!("CARGO_BIN_EXE_hostscope-analyzer"));
}
