//! `meshlab dashboard`: the browser opens the lab's dashboard with its token.
//!
//! The address carries the API token once; the page trades it for an `HttpOnly`
//! cookie and drops it from the address bar (see `meshlab_control::auth`).

use std::process::{Command, Stdio};

/// Opens `url` with `xdg-open` when it exists (and `no_browser` is not set), and
/// prints it in every case, so it can be copied when no browser opens.
pub fn open(url: &str, no_browser: bool) {
    let opened = !no_browser
        && Command::new("xdg-open")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    if opened {
        println!("Opened the dashboard in your browser: {url}");
    } else {
        println!("{url}");
    }
}
