//! The real `agenthost` binary, built inside the tests crate so its integration tests
//! can start it as a process (`CARGO_BIN_EXE_agenthost-e2e`) for restart and crash tests.

fn main() -> std::process::ExitCode {
    agenthost::cli::main()
}
