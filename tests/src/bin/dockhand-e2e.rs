//! The dockhand CLI, built inside the test crate (see Cargo.toml).

fn main() -> std::process::ExitCode {
    dockhand::cli::main()
}
