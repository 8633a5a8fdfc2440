//! The `meshlab` binary: the learner's CLI and, inside containers, every role.
//!
//! It is also `curl`, `sleep` and `fortio` when invoked under those names, so images
//! offer the commands Istio's samples and tasks use (`curl …`, `/bin/sleep infinity`,
//! `/usr/bin/fortio load …`) with links to this one file.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    match invoked_as.as_str() {
        "curl" => {
            args.remove(0);
            exit_code(meshlab_apps::curl::main(args))
        }
        "sleep" => {
            args.remove(0);
            exit_code(meshlab_apps::sleep::main(args))
        }
        "fortio" => {
            args.remove(0);
            exit_code(meshlab_apps::fortio::main(args))
        }
        _ => meshlab::main(args),
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
