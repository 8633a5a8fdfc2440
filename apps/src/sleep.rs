//! `sleep`, as the curl and sleep samples' `command: ["/bin/sleep", "infinity"]` uses
//! it, and as the idle process of a pod's network-namespace holder.
//!
//! Images link `/bin/sleep` to the meshlab binary so that those manifests run
//! unchanged. It accepts what coreutils' sleep accepts for the cases that matter
//! here: `infinity`, and numbers with an optional `s`, `m`, `h` or `d` suffix (summed
//! when several are given). It stops at once, with status 0, on SIGTERM or SIGINT: as
//! PID 1 in a container nothing else would end it before Docker's grace period.

use std::ffi::OsString;
use std::time::Duration;

/// Runs `sleep` with `args` (without the program name); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let total = match parse(args) {
        Ok(total) => total,
        Err(message) => {
            eprintln!("sleep: {message}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("sleep: cannot start: {err}");
            return 1;
        }
    };
    runtime.block_on(async {
        match total {
            Some(duration) => {
                tokio::select! {
                    () = tokio::time::sleep(duration) => {}
                    () = crate::server::shutdown_signal() => {}
                }
            }
            None => crate::server::shutdown_signal().await,
        }
    });
    0
}

/// The total duration, `None` for infinity.
fn parse(args: Vec<OsString>) -> Result<Option<Duration>, String> {
    if args.is_empty() {
        return Err("missing operand".to_owned());
    }
    let mut total = Duration::ZERO;
    for arg in args {
        let arg = arg.to_string_lossy();
        if arg == "infinity" || arg == "inf" {
            return Ok(None);
        }
        let (number, unit) = match arg.strip_suffix(['s', 'm', 'h', 'd']) {
            Some(number) => (number, arg.chars().last().unwrap_or('s')),
            None => (arg.as_ref(), 's'),
        };
        let seconds: f64 = number
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| format!("invalid time interval '{arg}'"))?;
        let factor = match unit {
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            _ => 1.0,
        };
        total += Duration::from_secs_f64(seconds * factor);
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests;
