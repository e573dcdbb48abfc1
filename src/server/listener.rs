//! The TCP side of the service: a listener that caps how many connections are open at once,
//! and the HTTP/1 loop that serves them, so that a flood of idle or slow connections can
//! neither exhaust the box's memory or file descriptors nor lock clients out for good.
//!
//! In: an address, a cap and the router. Out: connections served until the shutdown signal,
//! then open requests finish. Each connection holds a permit that is given back when it
//! closes. Accept errors (too many open files, a reset) are logged and retried after a short
//! pause instead of stopping the server. A client must send each request head within
//! [`HEADER_READ_TIMEOUT`] of the server starting to wait for it (on a new connection and
//! between the requests of a kept-alive one), else the connection is closed: without this,
//! `max_connections` idle connections held every slot forever (`axum::serve` gives hyper no
//! timer, so hyper's own 30 s default never applied; measured by `tests/serve_hostile.rs`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
use tower::ServiceExt;

/// Longest wait for a request head. LAN clients send theirs in milliseconds; a kept-alive
/// connection idle for longer is closed and the client simply opens a new one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl Limited {
    pub async fn bind(addr: SocketAddr, max_connections: usize) -> io::Result<Limited> {
        Ok(Limited {
            inner: TcpListener::bind(addr).await?,
            permits: Arc::new(Semaphore::new(max_connections)),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The next connection, once a slot is free.
    async fn accept(&mut self) -> Connection {
        loop {
            // Wait for a free slot before accepting: excess connections wait in the kernel's
            // backlog instead of costing memory here.
            let permit = match self.permits.clone().acquire_owned().await {
                Ok(p) => p,
                // The semaphore is never closed; if it were, stop accepting.
                Err(_) => std::future::pending().await,
            };
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Connection {
                        stream,
                        peer,
                        _permit: permit,
                    };
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets the open
/// requests finish and closes idle connections.
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
        // Handlers that care who asks (the login back-off) read the peer from the request.
        let peer = ConnectInfo(connection.peer);
        let app = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(peer);
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
    graceful.shutdown().await;
}

/// An accepted connection and its slot.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
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
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
