fn main() -> std::process::ExitCode {
    seer::cli::main()
}
