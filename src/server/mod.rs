//! `playlista serve`: the LAN face of the box. One process serves HTTP (web page, JSON API,
//! M3U8, streams, Subsonic, metrics), keeps the library analysed in the background and
//! announces itself over mDNS.
//!
//! In: the resolved [`Config`] and [`Options`]. Out: a running service until SIGTERM/SIGINT,
//! then a graceful stop (mDNS goodbye, the analysis finishes its batch, open requests end).
//!
//! - [`catalog`]: the immutable snapshot of the database every request reads.
//! - [`api`]: `/api/v1/*` JSON and `/playlists/{id}.m3u8`.
//! - [`rendered`]: big answers kept as bytes per catalog snapshot.
//! - [`stream`]: `/stream/{id}`, the original file with Range.
//! - [`subsonic`]: `/rest/*`, the OpenSubsonic subset phone apps use.
//! - [`web`]: `/`, the embedded mobile web page.
//! - [`metrics`]: request counters, latency histograms, `/metrics`.
//! - [`background`]: file events, periodic rescans, low-priority analysis, playlist updates.
//! - [`mdns`]: the `_playlista._tcp` / `_http._tcp` announcement and `NAME.local`.
//! - [`listener`]: the TCP listener that caps open connections, and the HTTP/1 loop with its
//!   header read timeout.
//! - [`systemd`]: `sd_notify` READY/STATUS/STOPPING.

pub mod api;
pub mod background;
pub mod catalog;
pub mod listener;
pub mod mdns;
pub mod metrics;
pub mod rendered;
pub mod stream;
pub mod subsonic;
pub mod systemd;
pub mod web;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::config::Config;
use background::Activity;
use catalog::Shared;
use metrics::{Metrics, Route};

/// Default listening address: every interface, a port no common NAS service uses.
pub const DEFAULT_BIND: &str = "0.0.0.0:8420";
const DEFAULT_NAME: &str = "playlista";
const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Longest time a handler may take to produce a response head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request body accepted (the API is read-only: bodies are tiny or absent).
const MAX_BODY: usize = 64 << 10;

/// What `serve` was asked for on its command line (the config file fills the rest).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub bind: Option<SocketAddr>,
    pub name: Option<String>,
    pub no_mdns: bool,
}

/// The Subsonic account.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// Everything a request may read, shared by all of them.
pub struct Server {
    pub catalog: Shared,
    pub metrics: Metrics,
    pub activity: Activity,
    /// The mDNS name (`NAME.local`) and the name shown in apps.
    pub name: String,
    /// This installation's stable id (the TXT `id`, Subsonic `serverId`).
    pub id: String,
    pub subsonic: Option<Credentials>,
    /// The address the server listens on, for URLs when a request names no usable host.
    pub local: SocketAddr,
}

pub type AppState = Arc<Server>;

/// Every route of the service, with the limits and the request accounting.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(subsonic::routes())
        .merge(web::routes())
        .route("/metrics", axum::routing::get(api::metrics))
        .layer(axum::middleware::from_fn_with_state(state.clone(), account))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Counts every request by route class, status and time to the response head.
async fn account(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = Route::of(req.uri().path());
    let started = Instant::now();
    s.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = next.run(req).await;
    s.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    s.metrics
        .record(route, response.status().as_u16(), started.elapsed());
    response
}

/// Set by SIGTERM/SIGINT: the background analysis finishes its batch and stops.
static STOP: AtomicBool = AtomicBool::new(false);

/// Runs the service until SIGTERM or SIGINT.
pub fn run(config: Config, opts: Options) -> Result<()> {
    let bind: SocketAddr = match opts.bind {
        Some(b) => b,
        None => config
            .server
            .bind
            .as_deref()
            .unwrap_or(DEFAULT_BIND)
            .parse()
            .context("[server] bind: expected ADDR:PORT, e.g. 0.0.0.0:8420")?,
    };
    let name = opts
        .name
        .clone()
        .or(config.server.name.clone())
        .unwrap_or_else(|| DEFAULT_NAME.into());
    mdns::check_name(&name)?;
    let methods = background::methods(&config)?;
    std::fs::create_dir_all(&config.cache_dir)
        .with_context(|| format!("cannot create {}", config.cache_dir.display()))?;
    // Opening for writing creates and migrates the database before anyone reads it.
    drop(crate::store::Store::open(&config.db_path(), config.tuning)?);
    let catalog = Shared::open(config.db_path(), config.tuning)?;
    let subsonic = match (&config.subsonic.user, &config.subsonic.password) {
        (Some(user), Some(password)) if !password.is_empty() => Some(Credentials {
            user: user.clone(),
            password: password.clone(),
        }),
        _ => {
            tracing::warn!(
                "no [subsonic] user and password in the config file: /rest answers every \
                 request with the Subsonic authentication error"
            );
            None
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let max_connections = config
            .server
            .max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            .max(1);
        let listener = listener::Limited::bind(bind, max_connections)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let local = listener.local_addr()?;
        let state = Arc::new(Server {
            catalog,
            metrics: Metrics::default(),
            activity: Activity::default(),
            name: name.clone(),
            id: instance_id(&config.cache_dir)?,
            subsonic,
            local,
        });
        tracing::info!(
            "serving http://{local}/ (database {})",
            config.db_path().display()
        );
        let announcer = if opts.no_mdns {
            None
        } else {
            match mdns::Announcer::start(&name, local.port(), &state.id) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!("mDNS announcement failed ({e:#}); serving without it");
                    None
                }
            }
        };
        let analysis = background::spawn(state.clone(), config.clone(), methods, &STOP)?;
        // The front panel (src/board): the LED follows the background, the button asks it
        // for a run. Dropped after the analysis stops: the LED goes off.
        let rescan = analysis.rescanner();
        let _panel = crate::board::start(&config.board, state.activity.led.clone(), move |p| {
            rescan.request(crate::job::asked_by(p))
        });
        systemd::notify(&format!(
            "READY=1\nSTATUS=serving on {local}, {} tracks",
            state.catalog.get().lib.len()
        ));
        let app = router(state.clone());
        listener::serve(listener, app, async move {
            shutdown_signal().await;
            // The goodbye goes out now, not after the open streams end.
            if let Some(a) = announcer {
                let _ = tokio::task::spawn_blocking(move || a.stop()).await;
            }
        })
        .await;
        systemd::notify("STOPPING=1\nSTATUS=stopping: finishing the current batch");
        analysis.stop();
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on the first SIGTERM or SIGINT (and sets [`STOP`]); a second one exits at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: open requests finish, the analysis commits its batch");
    STOP.store(true, Ordering::Relaxed);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
}

/// A random id made once per installation and kept beside the database.
fn instance_id(cache_dir: &Path) -> Result<String> {
    let file = cache_dir.join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim();
        if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_string());
        }
    }
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("cannot read /dev/urandom")?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&file, format!("{id}\n"))
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(id)
}
