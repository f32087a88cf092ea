//! The firmware-bridge program, built inside the test package so tests can start it
//! (`CARGO_BIN_EXE_firmware-bridge-e2e`).

fn main() -> std::process::ExitCode {
    firmware_bridge::bridge::main()
}
