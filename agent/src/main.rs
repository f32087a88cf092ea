//! The `dockhand` binary: all logic lives in the library; see `dockhand --help`.

fn main() -> std::process::ExitCode {
    dockhand::cli::main()
}
