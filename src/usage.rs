//! Resource use of this process, read from the kernel: CPU time and peak resident memory.
//! Used by the benchmarks and by the pipeline's PERF lines.

/// Which CPU clock to read.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Thread,
    Process,
}

/// CPU seconds used so far by this thread or this process.
pub fn cpu_s(clock: Clock) -> f64 {
    crate::os::cpu_seconds(matches!(clock, Clock::Thread))
}

/// Starts a new peak-memory measurement (resets VmHWM to the current RSS).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set (VmHWM) in KiB since start or the last reset.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
