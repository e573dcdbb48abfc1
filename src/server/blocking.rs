//! Blocking work of requests, bounded per route: each route class runs at most a fixed number
//! of jobs on tokio's blocking threads at once, and the requests beyond wait their turn
//! without holding an async worker. So a burst of one kind of request (100 radios, a grid of
//! covers, a slow network disk under the streams) can neither exhaust the blocking pool nor
//! starve the other routes.
//!
//! In: a closure and the [`Work`] class it belongs to. Out: its result, or `None` when the
//! job panicked or the server is stopping.

use std::sync::OnceLock;

use tokio::sync::Semaphore;

/// The kinds of blocking work, each with its own slots.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    /// Radio and path computations of the JSON API: CPU, one per core.
    Compute,
    /// Subsonic answers (lists, searches, radios): CPU, two per core.
    Subsonic,
    /// Opening a file to stream it: a few syscalls, unless a disk is slow to answer.
    Open,
    /// Probing files for cover art: reads of up to a few MB each.
    Cover,
}

impl Work {
    const ALL: [Work; 4] = [Work::Compute, Work::Subsonic, Work::Open, Work::Cover];

    fn slots(self) -> &'static Semaphore {
        static SLOTS: [OnceLock<Semaphore>; 4] = [const { OnceLock::new() }; 4];
        SLOTS[self as usize].get_or_init(|| {
            // Asked once per process (it reads the cgroup's CPU quota from /proc): at
            // [`prepare`], so that no request ever makes the server open a file of its own.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Semaphore::new(match self {
                Work::Compute => cores,
                Work::Subsonic => 2 * cores,
                Work::Open => 32,
                Work::Cover => 4,
            })
        })
    }
}

/// Sizes every class's slots, before the server takes its first request.
pub fn prepare() {
    for work in Work::ALL {
        work.slots();
    }
}

/// Runs `f` on a blocking thread once a slot of `work` is free.
pub async fn run<T: Send + 'static>(
    work: Work,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let _slot = work.slots().acquire().await.ok()?;
    match tokio::task::spawn_blocking(f).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!("a {work:?} job failed: {e}");
            None
        }
    }
}
