//! Lighthouse on the page of `bench --serve`'s 100,000-track server: performance,
//! accessibility and best practices of `/`, `/#/search/…`, `/#/library/albums` and `/#/map`,
//! as a phone sees them (Lighthouse's mobile emulation and simulated throttling).
//!
//! In: the server's address; Lighthouse from npm (`tests/clients/node_modules`, installed by
//! `npm ci --prefix tests/clients`, or `PLAYLISTA_LIGHTHOUSE`), and Chromium (`chromium` on
//! the PATH, or `CHROME_PATH`). Out: a row per page with the three scores and the load's
//! figures (first and largest contentful paint, total blocking time, layout shift), and
//! whether every score is at least [`BUDGET`]. Without the tools: a line saying so, and an
//! error under `CI=true`.
//!
//! Chromium is kept off the network as in the tests: every host name but 127.0.0.1 fails to
//! resolve, and background services, sync and updates are off.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Each score must be at least this.
pub const BUDGET: f64 = 0.95;
const CATEGORIES: [&str; 3] = ["performance", "accessibility", "best-practices"];
const PAGES: [&str; 4] = ["/", "/#/search/artist+12", "/#/library/albums", "/#/map"];
const CHROME_FLAGS: &str = "--headless=new --no-sandbox --disable-gpu --no-first-run \
     --disable-background-networking --disable-component-update --disable-sync \
     --disable-default-apps --disable-breakpad --disable-domain-reliability --no-pings \
     --disable-extensions --mute-audio \
     --host-resolver-rules=\"MAP * ~NOTFOUND , EXCLUDE 127.0.0.1\"";

fn tool(env: &str, fallback: PathBuf) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .or(Some(fallback))
        .filter(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROME_PATH")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join("chromium"))
                .find(|p| p.is_file())
        })
}

/// The table, or a line saying what is missing (an error under `CI=true`).
pub fn table(addr: SocketAddr, scratch: &Path) -> Result<String> {
    let lighthouse = tool(
        "PLAYLISTA_LIGHTHOUSE",
        PathBuf::from("tests/clients/node_modules/lighthouse/cli/index.js"),
    );
    let (Some(lighthouse), Some(chromium)) = (lighthouse, chromium()) else {
        let why = "Lighthouse skipped: needs `npm ci --prefix tests/clients` and chromium";
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("CI=true and {why}");
        }
        return Ok(format!("{why}\n"));
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Lighthouse (mobile, simulated throttling) on the same server: {:<14} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6}",
        "page", "perf", "a11y", "best", "FCP ms", "LCP ms", "TBT ms", "CLS"
    );
    let mut worst = 1.0f64;
    for (k, page) in PAGES.iter().enumerate() {
        let report = scratch.join(format!("lighthouse-{k}.json"));
        let status = Command::new("node")
            .arg(&lighthouse)
            .arg(format!("http://{addr}{page}"))
            .args([
                "--output=json",
                "--quiet",
                "--form-factor=mobile",
                "--max-wait-for-load=30000",
            ])
            .arg(format!("--only-categories={}", CATEGORIES.join(",")))
            .arg(format!("--output-path={}", report.display()))
            .arg(format!("--chrome-flags={CHROME_FLAGS}"))
            .env("CHROME_PATH", &chromium)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("running Lighthouse under node")?;
        if !status.status.success() {
            bail!(
                "Lighthouse failed on {page}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
        }
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
        let score = |c: &str| json["categories"][c]["score"].as_f64().unwrap_or(0.0);
        let audit = |a: &str| {
            json["audits"][a]["numericValue"]
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        for c in CATEGORIES {
            worst = worst.min(score(c));
        }
        let failing: Vec<String> = json["audits"]
            .as_object()
            .into_iter()
            .flat_map(|a| a.iter())
            .filter(|(_, v)| {
                v["score"].as_f64().is_some_and(|s| s < 0.9) && v["scoreDisplayMode"] == "binary"
            })
            .map(|(k, _)| k.clone())
            .collect();
        let _ = writeln!(
            out,
            "{:<62} {:>6.2} {:>6.2} {:>6.2} {:>7.0} {:>7.0} {:>6.0} {:>6.3}{}",
            page,
            score("performance"),
            score("accessibility"),
            score("best-practices"),
            audit("first-contentful-paint"),
            audit("largest-contentful-paint"),
            audit("total-blocking-time"),
            audit("cumulative-layout-shift"),
            if failing.is_empty() {
                String::new()
            } else {
                format!("  failing: {}", failing.join(", "))
            }
        );
    }
    let _ = writeln!(
        out,
        "budget: every score >= {BUDGET} {} (worst {worst:.2})",
        if worst >= BUDGET { "met" } else { "MISSED" }
    );
    Ok(out)
}
