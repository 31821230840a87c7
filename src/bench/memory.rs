//! Peak resident memory of this process (Linux `VmHWM`), and resetting it so that each measurement
//! reports its own peak rather than the largest one so far.

/// The resident-set high-water mark in bytes, where `/proc/self/status` exists.
pub fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// Resets the high-water mark to the current resident set (Linux ≥ 4.0: writing 5 to
/// `/proc/self/clear_refs`); returns whether it could.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
