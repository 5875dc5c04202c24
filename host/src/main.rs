fn main() -> std::process::ExitCode {
    agenthost::cli::main()
}
