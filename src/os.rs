//! The operating system calls playlista makes beyond std: signals, process priority, a worker's
//! resource limits, CPU clocks, file locks, free disk space, local time. Each is a small safe
//! function over one `libc` call; every
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

/// Keeps freed heap memory in this process for reuse instead of returning it to the kernel:
/// blocks up to 32 MB come from the heap, not their own mapping, and up to 64 MB of free heap
/// stays mapped. The network allocates its activations (a few MB) afresh for every patch;
/// with glibc's defaults each was a new mapping, unmapped at its end, and its pages were
/// faulted in and zeroed again and again: 700,000 page faults and a tenth of full mode's
/// CPU as system time over 12 real tracks, 10,000 and none with this (issue 20). For the
/// full-mode analysing processes (workers, `inspect --full`, `bench`'s full pass); fast mode
/// keeps glibc's defaults, whose small per-file peak the retained heap would double.
/// glibc only; elsewhere nothing.
pub fn keep_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters, which apply to later allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
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

/// Takes the exclusive advisory lock (`flock(LOCK_EX)`) on `file` if nobody holds it: true
/// when taken, false when another open file holds it. Released when the file is closed (also
/// by the kernel when the process dies).
pub fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes the descriptor of a file we own and plain flags.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether a process `pid` exists (one of another user's counts).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let alive = unsafe { libc::kill(pid, 0) == 0 };
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The bytes an unprivileged process may still write on the filesystem holding `dir`
/// (`statvfs`); None when it cannot be asked.
pub fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs reads the NUL-terminated path and writes into the struct we own.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Unix seconds as local time, `2025-05-01 14:03:07`; None when the C library cannot convert
/// them.
pub fn local_time(unix_s: i64) -> Option<String> {
    let t = libc::time_t::try_from(unix_s).ok()?;
    // SAFETY: tm is plain old data; all zeroes is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads the time we own and writes into the struct we own.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_lock_is_exclusive_until_its_file_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let (first, second) = (open(), open());
        assert!(super::try_lock(&first).unwrap());
        assert!(!super::try_lock(&second).unwrap(), "held by the first");
        drop(first);
        assert!(super::try_lock(&second).unwrap(), "released with its file");
    }

    #[test]
    fn this_process_exists_and_the_disk_has_room() {
        assert!(super::process_exists(std::process::id()));
        assert!(!super::process_exists(u32::MAX));
        assert!(super::free_bytes(std::path::Path::new("/")).is_some());
        assert!(super::free_bytes(std::path::Path::new("/no/such/folder")).is_none());
        let text = super::local_time(0).unwrap();
        assert_eq!(text.len(), "1970-01-01 00:00:00".len(), "{text}");
    }

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
