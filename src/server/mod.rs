//! `playlista serve`: the LAN face of the box. One process serves HTTP (web page, JSON API,
//! M3U8, streams, Subsonic, metrics), keeps the library analysed in the background and
//! announces itself over mDNS.
//!
//! In: the resolved [`Config`] and [`Options`]. Out: a running service until SIGTERM/SIGINT,
//! then a graceful stop (mDNS goodbye, the analysis finishes its batch, open requests end).
//!
//! Shaped like mini-redis: [`open`] builds the listener and the state from the config,
//! [`serve`] is the async loop that serves them until a shutdown future resolves (tests call
//! the two in-process on `127.0.0.1:0`), and [`run`], the blocking wrapper, owns the runtime,
//! the signals, mDNS, the board and the background analysis, and hands the background the
//! stop flag it sets on SIGTERM/SIGINT. [`Running`] is `open` + `serve` on a runtime of its
//! own, stopped when dropped, for callers that are not async (`bench --serve`, the tests).
//!
//! - [`catalog`]: the immutable snapshot of the database every request reads.
//! - [`api`]: `/api/v1/*` JSON and `/playlists/{id}.m3u8`.
//! - [`library_api`]: `/api/v1/` search, artists, albums, genres, folders, a track's
//!   analysis, cover art; [`search`] its word index, [`map`] the map of the library.
//! - [`rendered`]: big answers kept as bytes per catalog snapshot.
//! - [`builders`]: `/api/v1/` radio from anything, DJ mix, a list from words.
//! - [`blocking`]: the blocking work of requests, bounded per route.
//! - [`stream`]: `/stream/{id}`, the original file with Range.
//! - [`cover`]: cover art from the files, for the page and Subsonic.
//! - [`files`]: opening library files for a request, only while they are what was analysed.
//! - [`subsonic`]: `/rest/*`, the OpenSubsonic API phone apps use.
//! - [`listening`]: what each account's listener did (stars, plays, skips, queue, own
//!   playlists), in memory and written behind to SQLite.
//! - [`logins`]: per-address back-off on wrong passwords.
//! - [`web`]: `/`, the embedded mobile web page.
//! - [`guard`]: the Host allowlist (421 for names the box does not go by).
//! - [`index`]: artists, albums, genres and folders of a snapshot, for browsing.
//! - [`private`]: private mode: an account on every route, the login page, signed URLs.
//! - [`metrics`]: request counters, latency histograms, `/metrics`.
//! - [`background`]: file events, periodic rescans, low-priority analysis, playlist updates.
//! - [`mdns`]: the `_playlista._tcp` / `_http._tcp` announcement and `NAME.local`.
//! - [`listener`]: the TCP listener that caps open connections (in all, per address, and
//!   for streams, with slots kept for the page), and the HTTP/1 loop with its timeouts.
//! - [`systemd`]: `sd_notify` READY/STATUS/STOPPING.

pub mod api;
pub mod background;
pub mod blocking;
pub mod builders;
pub mod catalog;
pub mod cover;
pub mod files;
pub mod guard;
pub mod index;
pub mod library_api;
pub mod listener;
pub mod listening;
pub mod logins;
pub mod map;
pub mod mdns;
pub mod metrics;
pub mod private;
pub mod rendered;
pub mod search;
pub mod stream;
pub mod subsonic;
pub mod systemd;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio_util::sync::CancellationToken;

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
/// How long a dropped [`Running`] waits for open requests.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What `serve` was asked for on its command line (the config file fills the rest).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub bind: Option<SocketAddr>,
    pub name: Option<String>,
    pub no_mdns: bool,
}

/// A Subsonic account.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// May browse and play, not write (stars, ratings, plays, queue, playlists).
    pub read_only: bool,
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
    /// The Subsonic accounts (none: every `/rest` call fails with error 40).
    pub accounts: Vec<Credentials>,
    /// What each account's listener did.
    pub listening: listening::Listening,
    /// Where playlists are written (the listeners' own under `users/`).
    pub output_dir: std::path::PathBuf,
    /// The address the server listens on, for URLs when a request names no usable host.
    pub local: SocketAddr,
    /// The library folders: the only place files are served from ([`files`]).
    pub library: Arc<[std::path::PathBuf]>,
    /// Host names accepted beside the box's own ([`guard`]).
    pub allowed_hosts: Vec<String>,
    /// Private mode's keys (`[server] private = true`), `None` when the box is open.
    pub private: Option<private::Keys>,
    /// Wrong logins by client address, and the waits they earn.
    pub logins: logins::Logins,
}

pub type AppState = Arc<Server>;

/// Every route of the service, with the limits and the request accounting.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(library_api::routes())
        .merge(builders::routes())
        .merge(subsonic::routes())
        .merge(web::routes())
        .merge(private::routes())
        .route("/metrics", axum::routing::get(api::metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            private::require,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check_host,
        ))
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

/// Where and under which name the service listens: the command line over the config file
/// over the defaults.
#[derive(Debug, Clone)]
pub struct Listen {
    pub bind: SocketAddr,
    /// Checked as an mDNS name ([`mdns::check_name`]).
    pub name: String,
}

impl Listen {
    pub fn resolve(config: &Config, opts: &Options) -> Result<Listen> {
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
        Ok(Listen { bind, name })
    }
}

/// Opens the database (creating and migrating it), binds the listener with the config's
/// connection cap and builds the state every request reads: what [`run`] does before it
/// serves, and what tests call to serve in-process.
pub async fn open(config: &Config, listen: &Listen) -> Result<(listener::Limited, AppState)> {
    blocking::prepare();
    std::fs::create_dir_all(&config.cache_dir)
        .with_context(|| format!("cannot create {}", config.cache_dir.display()))?;
    // Opening for writing creates and migrates the database before anyone reads it.
    drop(crate::store::Store::open(&config.db_path(), config.tuning)?);
    let plan = (config.workers, config.mode != crate::analysis::Mode::Fast);
    let catalog = Shared::open(config.db_path(), config.tuning, plan)?;
    let accounts: Vec<Credentials> = config
        .subsonic
        .accounts()
        .into_iter()
        .map(|a| Credentials {
            user: a.user,
            password: a.password,
            read_only: a.read_only,
        })
        .collect();
    if accounts.is_empty() {
        tracing::warn!(
            "no [subsonic] user and password in the config file: /rest answers every request \
             with the Subsonic authentication error"
        );
    }
    let names: Vec<&str> = accounts.iter().map(|a| a.user.as_str()).collect();
    let listening = listening::Listening::open(&config.db_path(), config.tuning, &names)?;
    let max_connections = config
        .server
        .max_connections
        .unwrap_or(DEFAULT_MAX_CONNECTIONS)
        .max(1);
    let bind = listen.bind;
    let listener = listener::Limited::bind(bind, max_connections)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let state = Arc::new(Server {
        catalog,
        metrics: Metrics::default(),
        activity: Activity::default(),
        name: listen.name.clone(),
        id: instance_id(&config.cache_dir)?,
        accounts,
        listening,
        output_dir: config.output_dir.clone(),
        local: listener.local_addr()?,
        library: config.library.clone().into(),
        allowed_hosts: config.server.allowed_hosts.clone().unwrap_or_default(),
        logins: logins::Logins::default(),
        private: private_keys(config)?,
    });
    Ok((listener, state))
}

/// Serves every route on `listener` until `shutdown` resolves; then stops accepting, lets
/// the open requests finish and returns. Nothing else: no signals, no mDNS, no background
/// analysis (those are [`run`]'s).
pub async fn serve(
    listener: listener::Limited,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) {
    listener::serve(listener, router(state), shutdown).await;
}

/// [`serve`] on a runtime of its own, for callers that are not async (the serve benchmark,
/// the tests): no signals, no mDNS, no background analysis. Stops when dropped: open
/// requests get a moment to finish, then the runtime goes.
pub struct Running {
    pub state: AppState,
    stop: CancellationToken,
    served: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Running {
    /// Opens and binds as [`run`] does ([`open`]) and serves on `threads` runtime workers,
    /// named [`Running::THREAD`].
    pub fn start(config: &Config, listen: &Listen, threads: usize) -> Result<Running> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(Running::THREAD)
            .enable_all()
            .build()?;
        let (listener, state) = runtime.block_on(open(config, listen))?;
        let stop = CancellationToken::new();
        let served = runtime.spawn(serve(
            listener,
            state.clone(),
            stop.clone().cancelled_owned(),
        ));
        Ok(Running {
            state,
            stop,
            served: Some(served),
            runtime: Some(runtime),
        })
    }

    /// The name of every thread of the runtime (so that a panic in a handler can be told
    /// from one in the caller).
    pub const THREAD: &str = "playlista-serve";

    pub fn addr(&self) -> SocketAddr {
        self.state.local
    }

    /// False once the serving task ended (it ends only when stopped, or by a panic).
    pub fn serving(&self) -> bool {
        self.served.as_ref().is_some_and(|s| !s.is_finished())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if let Some(served) = self.served.take() {
            // The timer is made inside the runtime: it needs its time driver.
            let _ = runtime.block_on(async { tokio::time::timeout(STOP_GRACE, served).await });
        }
        runtime.shutdown_timeout(STOP_GRACE);
    }
}

/// Runs the service until SIGTERM or SIGINT: the runtime, the signals, mDNS, the board's
/// panel and the background analysis around [`serve`].
pub fn run(config: Config, opts: Options) -> Result<()> {
    let listen = Listen::resolve(&config, &opts)?;
    let methods = background::methods(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        let (listener, state) = open(&config, &listen).await?;
        let local = state.local;
        tracing::info!(
            "serving http://{local}/ (database {})",
            config.db_path().display()
        );
        let announcer = if opts.no_mdns {
            None
        } else {
            match mdns::Announcer::start(&listen.name, local.port(), &state.id) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!("mDNS announcement failed ({e:#}); serving without it");
                    None
                }
            }
        };
        // Set by SIGTERM/SIGINT: the background analysis finishes its batch and stops.
        let stop = Arc::new(AtomicBool::new(false));
        let analysis = background::spawn(state.clone(), config.clone(), methods, stop.clone())?;
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
        serve(listener, state, async move {
            shutdown_signal().await;
            stop.store(true, Ordering::Relaxed);
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
    });
    // A request's blocking work stuck in the kernel (a hung network disk) does not keep the
    // process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
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
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
}

/// Private mode's keys, when `[server] private` is on; it needs an account to sign in with.
fn private_keys(config: &Config) -> Result<Option<private::Keys>> {
    if !config.server.private {
        return Ok(None);
    }
    anyhow::ensure!(
        !config.subsonic.accounts().is_empty(),
        "[server] private = true needs an account to sign in with: set [subsonic] user and \
         password (or accounts)"
    );
    private::Keys::load(&config.cache_dir).map(Some)
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
