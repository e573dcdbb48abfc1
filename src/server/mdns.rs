//! mDNS announcement (being built: see the serve issue). Placeholder that announces nothing.

use anyhow::Result;

pub fn check_name(_name: &str) -> Result<()> {
    Ok(())
}

pub struct Announcer;

impl Announcer {
    pub fn start(_name: &str, _port: u16, _id: &str) -> Result<Announcer> {
        anyhow::bail!("mDNS is not built yet")
    }

    pub fn stop(self) {}
}
