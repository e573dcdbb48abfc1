//! `sd_notify` for systemd's `Type=notify` services: READY when serving, STATUS lines,
//! STOPPING on shutdown.
//!
//! In: a message such as `READY=1\nSTATUS=...`. Out: one datagram to `$NOTIFY_SOCKET` (a path,
//! or an abstract socket when it starts with `@`). Without the variable (not under systemd)
//! nothing happens; failures are logged, never fatal.

use std::os::unix::net::UnixDatagram;

pub fn notify(message: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket, message) {
        tracing::warn!("sd_notify: {e}");
    }
}

fn send(socket: &std::ffi::OsStr, message: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    let out = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            out.send_to_addr(message.as_bytes(), &addr)?;
        }
        None => {
            out.send_to(message.as_bytes(), socket)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1\nSTATUS=serving").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }
}
