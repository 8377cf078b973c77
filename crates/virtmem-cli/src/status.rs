//! `virtmem status`: the machine's memory (GlobalMemoryStatusEx) and this process's
//! (GetProcessMemoryInfo, the working-set limits, memory resource notifications, DEP), as a
//! table or as JSON.

use crate::style::Style;
use serde_json::json;

/// Bytes as a short human figure (KiB, MiB, GiB, TiB).
fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Everything `status` shows, gathered once.
struct Report {
    m: virtmem::MemoryStatus,
    c: virtmem::ProcessCounters,
    w: virtmem::WorkingSetLimits,
    r: virtmem::MemoryResourceState,
    d: virtmem::DepStatus,
}

fn gather() -> Result<Report, virtmem::Error> {
    Ok(Report {
        m: virtmem::memory_status()?,
        c: virtmem::process_memory_counters()?,
        w: virtmem::working_set_limits(),
        r: virtmem::memory_resource_state()?,
        d: virtmem::dep_status(),
    })
}

fn flags_text(f: u32) -> String {
    let min = if f & 0x1 != 0 {
        "hard minimum"
    } else {
        "soft minimum"
    };
    let max = if f & 0x4 != 0 {
        "hard maximum"
    } else {
        "soft maximum"
    };
    format!("{min}, {max} (flags {f:#x})")
}

fn table(st: &Style, r: &Report) -> String {
    let mut out = String::new();
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<26} {v}\n"));
    let b = |v: u64| format!("{} ({v})", human(v));
    let mut text = format!("{}\n", st.bold("System memory (GlobalMemoryStatusEx)"));
    row("memory load", format!("{} %", r.m.load));
    row("physical total", b(r.m.total_phys));
    row("physical available", b(r.m.avail_phys));
    row("commit limit", b(r.m.total_page_file));
    row("commit available", b(r.m.avail_page_file));
    row("virtual total", b(r.m.total_virtual));
    row("virtual available", b(r.m.avail_virtual));
    let cond = if r.r.low {
        "low"
    } else if r.r.high {
        "high"
    } else {
        "neither low nor high"
    };
    row(
        "resource notification",
        format!(
            "{cond} (low below {}, high above {})",
            human(r.r.low_threshold),
            human(r.r.high_threshold)
        ),
    );
    text.push_str(&std::mem::take(&mut out));
    text.push_str(&format!(
        "{}\n",
        st.bold("This process (GetProcessMemoryInfo)")
    ));
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<26} {v}\n"));
    row("page faults", r.c.page_faults.to_string());
    row("working set", b(r.c.working_set));
    row("peak working set", b(r.c.peak_working_set));
    row("paged pool", b(r.c.paged_pool));
    row("non-paged pool (PTEs)", b(r.c.nonpaged_pool));
    row("private usage", b(r.c.private_usage));
    row("peak private usage", b(r.c.peak_private_usage));
    row(
        "working set minimum",
        format!("{} (the VirtualLock quota)", b(r.w.minimum as u64)),
    );
    row("working set maximum", b(r.w.maximum as u64));
    row("working set flags", flags_text(r.w.flags));
    row(
        "DEP",
        format!(
            "{} (nx {}, READ_IMPLIES_EXEC {})",
            if r.d.enforced() {
                "enabled"
            } else {
                "disabled"
            },
            if r.d.nx { "yes" } else { "no" },
            if r.d.read_implies_exec { "yes" } else { "no" }
        ),
    );
    text.push_str(&out);
    text
}

fn json_of(r: &Report) -> serde_json::Value {
    json!({
        "system": {
            "memory_load": r.m.load,
            "total_phys": r.m.total_phys,
            "avail_phys": r.m.avail_phys,
            "total_page_file": r.m.total_page_file,
            "avail_page_file": r.m.avail_page_file,
            "total_virtual": r.m.total_virtual,
            "avail_virtual": r.m.avail_virtual,
            "low_memory": r.r.low,
            "high_memory": r.r.high,
            "low_threshold": r.r.low_threshold,
            "high_threshold": r.r.high_threshold,
        },
        "process": {
            "page_fault_count": r.c.page_faults,
            "working_set_size": r.c.working_set,
            "peak_working_set_size": r.c.peak_working_set,
            "quota_paged_pool_usage": r.c.paged_pool,
            "quota_peak_paged_pool_usage": r.c.peak_paged_pool,
            "quota_non_paged_pool_usage": r.c.nonpaged_pool,
            "quota_peak_non_paged_pool_usage": r.c.peak_nonpaged_pool,
            "private_usage": r.c.private_usage,
            "peak_private_usage": r.c.peak_private_usage,
            "working_set_minimum": r.w.minimum,
            "working_set_maximum": r.w.maximum,
            "working_set_flags": r.w.flags,
            "dep": {
                "enabled": r.d.enforced(),
                "nx": r.d.nx,
                "read_implies_exec": r.d.read_implies_exec,
            },
        },
    })
}

/// Prints the status; returns the exit code.
pub fn status(st: &Style, as_json: bool) -> i32 {
    match gather() {
        Ok(r) => {
            if as_json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json_of(&r)).unwrap_or_default()
                );
            } else {
                print!("{}", table(st, &r));
            }
            0
        }
        Err(e) => crate::fail(st, crate::session::code::FAILURE, &format!("status: {e}")),
    }
}
