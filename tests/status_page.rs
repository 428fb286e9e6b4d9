//! The status page at `GET /` loads in a real headless browser (Chromium)
//! with the RPC credentials in the URL, and shows the node's tip height.
//!
//! Without `chromium` the test is skipped with a message, unless `CI` is
//! set (`.ci/run` installs it): then it fails. `STATUS_PAGE_SCREENSHOT=PATH`
//! also saves a screenshot (how `docs/status_page.png` is made).

mod node_support;

use node_support::*;
use serde_json::json;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use timecoin::types::Amount;

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium (.ci/run installs it)"
        );
        eprintln!("SKIPPED: no chromium on this machine: apt-get install -y chromium");
    }
    found
}

/// Runs headless Chromium with `args`, killed if it outlives a deadline.
fn headless(browser: &str, profile: &std::path::Path, args: &[String]) -> Output {
    let child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the child this test spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("headless chromium did not finish within 60 s");
        }
    }
}

#[test]
fn status_page_loads_headless_and_shows_the_tip_height() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path());
    let tx = pay(
        genesis_coin(),
        address_of("page"),
        Amount::from_time(5).unwrap(),
    );
    let txid = node.submit(&tx).unwrap();
    node.wait_finalized(&[txid]);
    let before = node.call("getblockcount", json!([])).as_u64().unwrap();
    let url = node.url_with_credentials();
    let profile = dir.path().join("chromium");
    let output = headless(browser, &profile, &["--dump-dom".into(), url.clone()]);
    let dom = String::from_utf8_lossy(&output.stdout);
    let after = node.call("getblockcount", json!([])).as_u64().unwrap();
    let marker = "id=\"tip-height\">";
    let shown: u64 = dom
        .split_once(marker)
        .and_then(|(_, rest)| rest.split('<').next())
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no tip height in the DOM:\n{dom}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        (before..=after).contains(&shown),
        "page shows height {shown}, the node was at {before}..={after}"
    );
    assert!(
        dom.contains(&txid.to_string()),
        "the finalized tx is listed"
    );
    if let Some(path) = std::env::var_os("STATUS_PAGE_SCREENSHOT") {
        let shot = headless(
            browser,
            &profile,
            &[
                format!("--screenshot={}", std::path::Path::new(&path).display()),
                "--window-size=1200,1000".into(),
                "--hide-scrollbars".into(),
                url,
            ],
        );
        assert!(shot.status.success(), "screenshot failed");
    }
}
