//! The TCP side of the service: a listener that caps how many connections are open at once,
//! and the HTTP/1 loop that serves them, so that a flood of idle, slow or stalled connections
//! can neither exhaust the box's memory or file descriptors nor lock clients out.
//!
//! In: an address, `max_connections` and the router. Out: connections served until the
//! shutdown signal, then open requests finish. The limits, each measured by
//! `tests/serve_hostile.rs`:
//! - **Slots.** At most `max_connections` connections stream a file ([`Slot::claim_stream`],
//!   held until the connection closes), and [`reserve`] more are open to everything else, so
//!   `max_connections` stalled stream readers still leave the page and the API room. A stream
//!   asked for when none is free is refused at once (503, connection closed).
//! - **Per address.** One client address holds at most `max_connections` connections and
//!   three quarters of the stream slots, so one device can neither take every slot nor, by
//!   stalling streams, lock itself out of the page. A connection over the cap gets a bare 503.
//! - **Time.** A client must send each request head within [`HEADER_READ_TIMEOUT`] (on a new
//!   connection and between the requests of a kept-alive one), and must read what the server
//!   writes: a write that makes no progress for [`WRITE_STALL_TIMEOUT`] closes the connection.
//!   (`axum::serve` gives hyper no timer, so without these `max_connections` idle or stalled
//!   connections held every slot forever.)
//!
//! Each connection holds its slots until it closes. Accept errors (too many open files, a
//! reset) are logged and retried after a short pause instead of stopping the server.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tower::ServiceExt;

/// Longest wait for a request head. LAN clients send theirs in milliseconds; a kept-alive
/// connection idle for longer is closed and the client simply opens a new one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a write may wait for the client to read. A paused player stops reading; its
/// connection closes and it asks again with a Range when it resumes, as players do.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stop waits for open requests to finish.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Connections kept, beyond `max_connections`, for requests that are not streams.
pub fn reserve(max_connections: usize) -> usize {
    (max_connections / 4).clamp(2, 32)
}

/// What a bare refusal says (the connection is over its address's cap, before HTTP).
const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

/// The slots of the whole server and of each client address.
struct Slots {
    connections: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, Held>>,
    connections_per_address: usize,
    streams_per_address: usize,
}

/// What one client address holds.
#[derive(Default)]
struct Held {
    connections: usize,
    streams: usize,
}

impl Slots {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Held>> {
        // The map stays consistent under a panic elsewhere: every change is one statement.
        self.per_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One connection's share of the slots, given back when the connection closes. Handlers
/// find it among the request's extensions.
pub struct Slot {
    slots: Arc<Slots>,
    peer: IpAddr,
    stream: Mutex<Option<OwnedSemaphorePermit>>,
    _connection: OwnedSemaphorePermit,
}

impl Slot {
    /// Makes this a streaming connection, if a stream slot is free for it (true when it
    /// already is one).
    pub fn claim_stream(&self) -> bool {
        let mut stream = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stream.is_some() {
            return true;
        }
        let mut held = self.slots.held();
        let mine = held.entry(self.peer).or_default();
        if mine.streams >= self.slots.streams_per_address {
            return false;
        }
        let Ok(permit) = self.slots.streams.clone().try_acquire_owned() else {
            return false;
        };
        mine.streams += 1;
        *stream = Some(permit);
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let streamed = self.stream.get_mut().is_ok_and(|s| s.take().is_some());
        let mut held = self.slots.held();
        if let Some(mine) = held.get_mut(&self.peer) {
            mine.connections = mine.connections.saturating_sub(1);
            if streamed {
                mine.streams = mine.streams.saturating_sub(1);
            }
            if mine.connections == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

pub struct Limited {
    inner: TcpListener,
    slots: Arc<Slots>,
}

impl Limited {
    /// Listens on `addr`: `max_connections` streaming connections at most, and
    /// [`reserve`] more for everything else.
    pub async fn bind(addr: SocketAddr, max_connections: usize) -> io::Result<Limited> {
        let streams = max_connections.max(1);
        Ok(Limited {
            inner: TcpListener::bind(addr).await?,
            slots: Arc::new(Slots {
                connections: Arc::new(Semaphore::new(streams + reserve(streams))),
                streams: Arc::new(Semaphore::new(streams)),
                per_address: Mutex::default(),
                connections_per_address: streams,
                streams_per_address: (streams * 3 / 4).max(1),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The next connection, once a slot is free; one over its address's cap is refused.
    async fn accept(&mut self) -> Connection {
        loop {
            // Wait for a free slot before accepting: excess connections wait in the kernel's
            // backlog instead of costing memory here.
            let permit = match self.slots.connections.clone().acquire_owned().await {
                Ok(p) => p,
                // The semaphore is never closed; if it were, stop accepting.
                Err(_) => std::future::pending().await,
            };
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            {
                let mut held = self.slots.held();
                let mine = held.entry(peer.ip()).or_default();
                if mine.connections >= self.slots.connections_per_address {
                    drop(held);
                    tracing::debug!("{peer}: over the per-address connection cap");
                    let _ = stream.try_write(OVER_CAP);
                    continue;
                }
                mine.connections += 1;
            }
            let _ = stream.set_nodelay(true);
            let slot = Arc::new(Slot {
                slots: self.slots.clone(),
                peer: peer.ip(),
                stream: Mutex::new(None),
                _connection: permit,
            });
            return Connection {
                stream,
                peer,
                slot,
                stall: None,
            };
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets the open
/// requests finish (for [`STOP_GRACE`] at most) and closes idle connections.
pub async fn serve(mut listener: Limited, app: Router, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        // Handlers that care who asks (the login back-off) read the peer from the request;
        // streams claim their slot from it.
        let peer = ConnectInfo(connection.peer);
        let slot = connection.slot.clone();
        let app = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(peer);
            req.extensions_mut().insert(slot.clone());
            req
        });
        let served = http.serve_connection(TokioIo::new(connection), TowerToHyperService::new(app));
        let served = graceful.watch(served);
        tokio::spawn(async move {
            // Resets, timeouts and malformed requests end here; hyper has answered what it could.
            if let Err(e) = served.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
    drop(listener);
    // Open requests may finish; a client that stalls a stream does not hold the stop up.
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("stopping with connections still open");
    }
}

/// An accepted connection and its slots.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    slot: Arc<Slot>,
    /// Running while a write waits for the client to read.
    stall: Option<Pin<Box<Sleep>>>,
}

impl Connection {
    /// Turns a write's outcome into an error once writes have waited for
    /// [`WRITE_STALL_TIMEOUT`] without progress.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stall = None;
            return polled;
        }
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
