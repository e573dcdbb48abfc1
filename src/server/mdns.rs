//! The mDNS announcement: how a phone on the LAN finds the box without typing an address.
//!
//! In: the name (`NAME.local`, checked by [`check_name`]), the HTTP port and the instance id.
//! Out: two DNS-SD services on the host name `NAME.local.`, both instance `NAME`:
//! - `_playlista._tcp.local.` with TXT `path=/`, `api=/api/v1`, `version=<crate version>`,
//!   `id=<instance id>`, for apps that know playlista;
//! - `_http._tcp.local.` with TXT `path=/`, so any mDNS browser lists the web page.
//!
//! The [`mdns_sd`] daemon runs its own thread and does the protocol: probing for the names,
//! announcing, answering queries, goodbyes. This module decides where it speaks and watches
//! what it reports:
//! - Only on LAN addresses ([`is_lan`]): never loopback, never link-local, never the bridges
//!   that container and VM managers create on the host (`docker0`, `br-…`, `virbr0`, …).
//!   The filter is a daemon-wide interface selection, so the daemon neither announces nor
//!   answers there. Host-side `veth…` ends of container links are not filtered by name
//!   (a LAN link may itself be a veth, e.g. in a network namespace); they carry no address
//!   of their own, and the daemon works per address, so they stay silent anyway.
//! - Address changes: the daemon lists the interfaces every [`IP_CHECK_SECS`] s, applies the
//!   filter again, announces the services on an address that appears (the services follow
//!   the addresses: `enable_addr_auto`) and drops the ones that go. Logged at info.
//! - Name conflicts: the daemon probes before announcing; if `NAME.local` (or the instance
//!   name) is taken on a link, it picks `NAME-2.local` (`NAME (2)`) there. Logged as a
//!   warning with the name it took, since phones will then see that name.
//! - No LAN address at start: a warning, and the service keeps serving HTTP; an address
//!   that appears later is announced.
//! - [`Announcer::stop`] unregisters both services (the daemon sends the goodbye, TTL 0,
//!   twice), then shuts the daemon down, each step waiting for its confirmation for a
//!   bounded time.

use std::collections::HashSet;
use std::net::IpAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mdns_sd::{
    DaemonEvent, IfKind, IfPredicate, Receiver, ServiceDaemon, ServiceInfo, UnregisterStatus,
};

/// The service apps that know playlista browse for.
pub const SERVICE_TYPE: &str = "_playlista._tcp.local.";
/// The service generic browsers list, for the web page.
pub const HTTP_TYPE: &str = "_http._tcp.local.";
/// How often the daemon looks for address changes (its default, set explicitly because
/// announcing on a new interface depends on it).
pub const IP_CHECK_SECS: u32 = 5;
/// Longest wait for the daemon's confirmations when stopping, in all.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// The daemon repeats a goodbye 120 ms after the first one; it must still run by then.
const GOODBYE_REPEAT: Duration = Duration::from_millis(250);

/// Name prefixes of the bridges that container and VM managers create on the host: the
/// phones are not behind them.
const BRIDGE_PREFIXES: [&str; 8] = [
    "docker", "br-", "virbr", "cni", "flannel", "podman", "lxcbr", "lxdbr",
];

/// Checks that `name` can be the host name `NAME.local`: one DNS label, 1 to 63 ASCII
/// letters, digits and hyphens, not starting or ending with a hyphen.
pub fn check_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > 63 {
        Some(format!("it has {} characters", name.len()))
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        Some(format!("it contains {c:?}"))
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it starts or ends with a hyphen".to_string())
    } else {
        None
    };
    match why {
        Some(why) => bail!(
            "invalid name {name:?}: {why}; the box answers as NAME.local, so the name must be \
             1 to 63 letters, digits and hyphens, not starting or ending with a hyphen \
             (e.g. --name living-room)"
        ),
        None => Ok(()),
    }
}

/// Whether mDNS speaks on the address `ip` of the interface `ifname`: not loopback, not
/// link-local (169.254/16, fe80::/10), not a container or VM bridge.
pub fn is_lan(ifname: &str, ip: IpAddr) -> bool {
    if ifname == "lo" || BRIDGE_PREFIXES.iter().any(|p| ifname.starts_with(p)) {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => {
            let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
            !(v6.is_loopback() || link_local || v6.is_unspecified())
        }
    }
}

/// The LAN addresses the daemon will use now, as `ifname address` (its own filter, up and
/// not point-to-point, then [`is_lan`]).
fn lan_addresses() -> Vec<String> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.is_oper_up() && !i.is_p2p() && is_lan(&i.name, i.ip()))
        .map(|i| format!("{} {}", i.name, i.ip()))
        .collect()
}

/// A running announcement; [`Announcer::stop`] withdraws it.
pub struct Announcer {
    daemon: ServiceDaemon,
    /// The full names of the registered services, for unregistering.
    fullnames: Vec<String>,
    /// Logs what the daemon reports; ends when the daemon shuts down.
    monitor: JoinHandle<()>,
}

impl Announcer {
    /// Starts the daemon and announces `NAME.local` and both services on port `port`.
    pub fn start(name: &str, port: u16, id: &str) -> Result<Announcer> {
        check_name(name)?;
        let daemon = ServiceDaemon::new().context("cannot start the mDNS daemon")?;
        daemon
            .disable_interface(IfKind::Predicate(IfPredicate::new(|intf| {
                !is_lan(&intf.name, intf.ip())
            })))
            .context("cannot select the mDNS interfaces")?;
        daemon
            .set_ip_check_interval(IP_CHECK_SECS)
            .context("cannot set the mDNS address check interval")?;
        let events = daemon.monitor().context("cannot watch the mDNS daemon")?;
        let monitor = std::thread::Builder::new()
            .name("mdns-monitor".into())
            .spawn(move || watch(events))
            .context("cannot start the mDNS monitor thread")?;

        let host = format!("{name}.local.");
        let version = env!("CARGO_PKG_VERSION");
        let services = [
            (
                SERVICE_TYPE,
                vec![
                    ("path", "/"),
                    ("api", "/api/v1"),
                    ("version", version),
                    ("id", id),
                ],
            ),
            (HTTP_TYPE, vec![("path", "/")]),
        ];
        let mut fullnames = Vec::new();
        for (ty, txt) in services {
            // No addresses given: the daemon fills them from the selected interfaces and
            // keeps them up to date.
            let info = ServiceInfo::new(ty, name, &host, (), port, &txt[..])
                .with_context(|| format!("invalid mDNS service {ty}"))?
                .enable_addr_auto();
            fullnames.push(info.get_fullname().to_string());
            daemon
                .register(info)
                .with_context(|| format!("cannot register {ty}"))?;
        }

        let addresses = lan_addresses();
        if addresses.is_empty() {
            tracing::warn!(
                "mDNS: no LAN address (only loopback, link-local or container bridges); \
                 {name}.local is announced once one appears, HTTP serves meanwhile"
            );
        } else {
            tracing::info!(
                "mDNS: announcing {name}.local port {port} ({SERVICE_TYPE}, {HTTP_TYPE}) on {}",
                addresses.join(", ")
            );
        }
        Ok(Announcer {
            daemon,
            fullnames,
            monitor,
        })
    }

    /// Withdraws the services (goodbye packets) and stops the daemon, waiting at most
    /// [`STOP_TIMEOUT`] for its confirmations.
    pub fn stop(self) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        for fullname in &self.fullnames {
            let confirmed = self
                .daemon
                .unregister(fullname)
                .map_err(|e| e.to_string())
                .and_then(|status| status.recv_deadline(deadline).map_err(|e| e.to_string()));
            match confirmed {
                Ok(UnregisterStatus::OK) => {}
                Ok(UnregisterStatus::NotFound) => {
                    tracing::warn!("mDNS: {fullname} was not registered")
                }
                Err(e) => tracing::warn!("mDNS: no goodbye for {fullname} ({e})"),
            }
        }
        std::thread::sleep(GOODBYE_REPEAT);
        let stopped = self
            .daemon
            .shutdown()
            .map_err(|e| e.to_string())
            .and_then(|status| status.recv_deadline(deadline).map_err(|e| e.to_string()));
        match stopped {
            Ok(_) => {
                // The daemon dropped its event senders: the monitor thread is ending.
                if self.monitor.join().is_err() {
                    tracing::warn!("mDNS: the monitor thread panicked");
                }
                tracing::info!("mDNS: goodbye sent, daemon stopped");
            }
            Err(e) => tracing::warn!("mDNS: the daemon did not confirm its shutdown ({e})"),
        }
    }
}

/// Logs what the daemon reports until it shuts down: name conflicts (once per name and
/// interface: the daemon reports one per record) and errors as warnings, address changes
/// and announcements at info, the rest (every response sent) not at all.
fn watch(events: Receiver<DaemonEvent>) {
    let mut renamed = HashSet::new();
    while let Ok(event) = events.recv() {
        match event {
            DaemonEvent::NameChange(change)
                if renamed.insert((change.new_name.clone(), change.intf_name.clone())) =>
            {
                tracing::warn!(
                    "mDNS: {} is taken on {}; announcing as {} there (choose another --name \
                     to avoid it)",
                    change.original,
                    change.intf_name,
                    change.new_name
                )
            }
            DaemonEvent::Error(e) => tracing::warn!("mDNS: {e}"),
            DaemonEvent::IpAdd(ip) => {
                tracing::info!("mDNS: new address {ip}, announcing there")
            }
            DaemonEvent::IpDel(ip) => {
                tracing::info!("mDNS: address {ip} gone, no longer announced there")
            }
            DaemonEvent::Announce(service, place) => {
                tracing::info!("mDNS: announced {service} ({place})")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_dns_label() {
        for good in ["playlista", "living-room", "Box2", "a", &"x".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-box",
            "box-",
            "my_box",
            "my box",
            "box.local",
            "bôx",
            &"x".repeat(64),
        ] {
            let e = check_name(bad).expect_err(bad).to_string();
            assert!(e.contains("invalid name") && e.contains("1 to 63"), "{e}");
        }
    }

    #[test]
    fn only_lan_addresses_are_used() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (name, addr) in [
            ("eth0", "192.168.1.20"),
            ("wlan0", "10.0.0.5"),
            ("enp3s0", "2001:db8::5"),
            ("end0", "fd00::1"),
            ("veth0", "10.77.1.1"),
            ("bridge0", "192.168.1.2"),
        ] {
            assert!(is_lan(name, ip(addr)), "{name} {addr}");
        }
        for (name, addr) in [
            ("lo", "127.0.0.1"),
            ("lo", "::1"),
            ("eth0", "127.0.0.2"),
            ("eth0", "169.254.10.1"),
            ("eth0", "fe80::1"),
            ("wlan0", "febf::1"),
            ("eth0", "0.0.0.0"),
            ("docker0", "172.17.0.1"),
            ("br-3f2a9c", "172.18.0.1"),
            ("virbr0", "192.168.122.1"),
            ("cni0", "10.88.0.1"),
            ("flannel.1", "10.244.0.0"),
            ("podman0", "10.88.0.1"),
            ("lxdbr0", "10.1.1.1"),
        ] {
            assert!(!is_lan(name, ip(addr)), "{name} {addr}");
        }
    }
}
