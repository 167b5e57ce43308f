//! The standard Prometheus process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_threads`,
//! `process_start_time_seconds`) and `tideline_build_info`, read from `/proc/self` when
//! `/metrics` is scraped. Elsewhere than Linux only the build info is reported.

use std::sync::OnceLock;

/// This binary's version and commit, set once by the server at start.
static BUILD: OnceLock<(String, String)> = OnceLock::new();

/// Records the version and commit `tideline_build_info` carries (the first call wins).
pub fn set_build(version: &str, commit: &str) {
    let _ = BUILD.set((version.to_string(), commit.to_string()));
}

pub(crate) fn describe() {
    use metrics::{describe_gauge, Unit};
    // A gauge, not a counter: the `metrics` facade's counters are whole numbers.
    describe_gauge!("process_cpu_seconds_total", Unit::Seconds, "User and system CPU time of this process");
    describe_gauge!("process_resident_memory_bytes", Unit::Bytes, "Resident memory of this process");
    describe_gauge!("process_open_fds", "Open file descriptors");
    describe_gauge!("process_max_fds", "The limit on open file descriptors");
    describe_gauge!("process_threads", "Threads of this process");
    describe_gauge!("process_start_time_seconds", Unit::Seconds, "Start time of this process, Unix seconds");
}

/// Sets every gauge to its value now.
pub(crate) fn refresh() {
    if let Some((version, commit)) = BUILD.get() {
        metrics::gauge!("tideline_build_info", "version" => version.clone(), "commit" => commit.clone()).set(1.0);
    }
    #[cfg(target_os = "linux")]
    if let Some(p) = linux::read() {
        metrics::gauge!("process_cpu_seconds_total").set(p.cpu_seconds);
        metrics::gauge!("process_resident_memory_bytes").set(p.resident_bytes as f64);
        metrics::gauge!("process_open_fds").set(p.open_fds as f64);
        if let Some(max) = p.max_fds {
            metrics::gauge!("process_max_fds").set(max as f64);
        }
        metrics::gauge!("process_threads").set(p.threads as f64);
        metrics::gauge!("process_start_time_seconds").set(p.start_time_seconds);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// What `/proc/self` says about this process.
    pub(super) struct Process {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
        pub open_fds: usize,
        pub max_fds: Option<u64>,
        pub threads: u64,
        pub start_time_seconds: f64,
    }

    /// Clock ticks per second of `/proc/*/stat` times: 100 on every Linux architecture Rust
    /// targets (the kernel's USER_HZ, fixed in its ABI).
    const USER_HZ: f64 = 100.0;
    /// Bytes per page of `statm`'s counts on the architectures we ship (x86_64, aarch64 with
    /// 4 KiB pages).
    const PAGE_BYTES: u64 = 4096;

    pub(super) fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after "pid (comm) ", which may itself hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state): utime is field 14, stime 15, num_threads 20, starttime 22.
        let num = |field: usize| f.get(field - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu_seconds = (num(14)? + num(15)?) as f64 / USER_HZ;
        let threads = num(20)?;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok()))?;
        let start_time_seconds = boot as f64 + num(22)? as f64 / USER_HZ;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let resident_bytes = statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * PAGE_BYTES;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        });
        Some(Process { cpu_seconds, resident_bytes, open_fds, max_fds, threads, start_time_seconds })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn reads_this_process() {
            let p = super::read().expect("/proc/self is readable");
            assert!(p.threads >= 1);
            assert!(p.resident_bytes > 0);
            assert!(p.open_fds >= 3, "stdin, stdout, stderr at least");
            assert!(p.start_time_seconds > 1.6e9, "after 2020: {}", p.start_time_seconds);
        }
    }
}
