fn main() -> std::process::ExitCode {
    engine_auth::cli::main()
}
