//! The `meshlab` binary: the learner's CLI and, inside containers, every role.
//!
//! It is also `curl` when invoked under that name, so images can offer the command
//! Istio's tasks type (`kubectl exec … -- curl …`) with a link to this one file.

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
    if invoked_as == "curl" {
        args.remove(0);
        return exit_code(meshlab_apps::curl::main(args));
    }
    meshlab::main(args)
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
