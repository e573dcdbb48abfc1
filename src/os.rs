//! The operating system calls playlista makes beyond std: signals, process priority, a worker's
//! resource limits, CPU clocks. Each is a small safe function over one `libc` call; every
//! `unsafe` block is here, with the reason it holds. (The memory map's SIGBUS guard stays with
//! the mapping, in `audio::mapped`.)
//!
//! In: what to set. Out: the call's effect on this process or thread; failures are logged at
//! debug level or ignored where the call is best-effort, as its doc says.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT or SIGTERM after [`stop_on_signals`]. A signal handler can reach
/// nothing but a static.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C: the user means it. Committed batches are safe in the WAL.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Ctrl-C or SIGTERM (a service stop) sets the returned flag: the run finishes the files in
/// hand, commits and exits. A second one exits at once with status 130.
pub fn stop_on_signals() -> &'static AtomicBool {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    &STOP
}

/// The lowest CPU priority and the idle I/O class for the calling thread and the processes it
/// starts afterwards (both are inherited on Linux). Best-effort: a refusal leaves the priority
/// as it was.
pub fn lower_thread_priority() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // SAFETY: setpriority takes plain integers and changes only the thread named.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) } != 0 {
        tracing::debug!("setpriority failed: {}", std::io::Error::last_os_error());
    }
    // ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE << 13).
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    // SAFETY: ioprio_set takes plain integers and changes only the thread named.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
            IOPRIO_CLASS_IDLE << 13,
        )
    };
    if rc != 0 {
        tracing::debug!("ioprio_set failed: {}", std::io::Error::last_os_error());
    }
}

/// Asks the kernel to kill this process when its parent dies. Best-effort.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes only this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// This process's parent process id.
pub fn parent_pid() -> i32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// Caps this process's data segment (RLIMIT_DATA: brk and private anonymous mappings) at
/// `bytes`, soft and hard. Best-effort.
pub fn limit_data(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we own; it affects this process only.
    unsafe {
        libc::setrlimit(libc::RLIMIT_DATA, &lim);
    }
}

/// CPU seconds used so far by the calling thread (`thread`) or the whole process.
pub fn cpu_seconds(thread: bool) -> f64 {
    let id = if thread {
        libc::CLOCK_THREAD_CPUTIME_ID
    } else {
        libc::CLOCK_PROCESS_CPUTIME_ID
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_clocks_advance() {
        let before = super::cpu_seconds(true);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(super::cpu_seconds(true) >= before);
        assert!(super::cpu_seconds(false) >= super::cpu_seconds(true) - 1e-3);
    }
}
