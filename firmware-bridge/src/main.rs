//! `firmware-bridge`: one serial scanner or scale on a remote host, bridged to the gateway's
//! MQTT broker. The program lives in the library ([`firmware_bridge::bridge`]) so the end-to-end
//! tests can build it as their own binary.

fn main() -> std::process::ExitCode {
    firmware_bridge::bridge::main()
}
