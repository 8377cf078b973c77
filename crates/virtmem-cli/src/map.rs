//! The address-space map: a VMMap-like table, JSON, and an SVG / HTML picture.
//!
//! Views of sections are regions of type `mapped` (MEM_MAPPED); every format also names
//! them when there is a name: the file of a file-backed section, or the name a pagefile-backed
//! section was created or opened with (`Local\\name`). An unnamed pagefile section's views
//! have no name. Heap memory of a simulated process is labelled the same way, as VMMap does:
//! "heap (process)", "heap 0x…" (a private heap's handle), "heap handle table (Global/Local)".

use crate::style::Style;
use serde::Serialize;
use std::collections::HashMap;
use virtmem::win32::consts::*;
use virtmem::{MemoryInfo, RegionType, State};

/// "0x40000000" padded to the address width of the space (8 or 12 hex digits).
pub fn addr(a: u64, ptr: u8) -> String {
    let w = if ptr == 4 { 8 } else { 12 };
    format!("0x{a:0w$x}")
}

/// "32 KiB", "1 GiB", "1023.9 MiB".
pub fn human(n: u64) -> String {
    const U: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < U.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else if (v - v.round()).abs() < 0.05 {
        format!("{} {}", v.round() as u64, U[u])
    } else {
        format!("{v:.1} {}", U[u])
    }
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Free => "free",
        State::Reserve => "reserve",
        State::Commit => "commit",
    }
}

pub fn type_name(t: RegionType) -> &'static str {
    match t {
        RegionType::None => "",
        RegionType::Private => "private",
        RegionType::Mapped => "mapped",
        RegionType::Image => "image",
    }
}

/// A protection without the `PAGE_` prefixes: "READWRITE", "READONLY+GUARD".
pub fn short_protect(p: u32) -> String {
    crate::lang::names::protect_name(p)
        .replace("PAGE_", "")
        .replace('|', "+")
}

/// What a map shows: the regions and where they come from.
pub struct Map {
    pub title: String,
    pub ptr: u8,
    pub page: u64,
    pub regions: Vec<MemoryInfo>,
    /// The names of views and heap labels, by allocation base (see the module documentation).
    pub names: HashMap<usize, String>,
}

#[derive(Serialize)]
struct JsonMap<'a> {
    space: &'a str,
    pointer_size: u8,
    page_size: u64,
    regions: Vec<JsonRegion>,
}

#[derive(Serialize)]
struct JsonRegion {
    base: String,
    end: String,
    size: u64,
    state: &'static str,
    protect: Option<String>,
    protect_value: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    allocation_base: Option<String>,
    allocation_protect: Option<String>,
    managed: bool,
    /// A view's file or section name.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl Map {
    /// The name of the view or heap a region belongs to, if it has one.
    pub fn name(&self, r: &MemoryInfo) -> Option<&str> {
        if r.state == State::Free {
            return None;
        }
        self.names.get(&r.allocation_base).map(String::as_str)
    }

    pub fn json(&self) -> String {
        let m = JsonMap {
            space: &self.title,
            pointer_size: self.ptr,
            page_size: self.page,
            regions: self
                .regions
                .iter()
                .map(|r| JsonRegion {
                    base: format!("{:#x}", r.base_address),
                    end: format!("{:#x}", r.base_address as u64 + r.region_size as u64),
                    size: r.region_size as u64,
                    state: state_name(r.state),
                    protect: (r.state == State::Commit)
                        .then(|| crate::lang::names::protect_name(r.protect)),
                    protect_value: r.protect,
                    kind: match r.kind {
                        RegionType::None => "none",
                        k => type_name(k),
                    },
                    allocation_base: (r.state != State::Free)
                        .then(|| format!("{:#x}", r.allocation_base)),
                    allocation_protect: (r.state != State::Free)
                        .then(|| crate::lang::names::protect_name(r.allocation_protect)),
                    managed: r.managed,
                    name: self.name(r).map(str::to_string),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&m).expect("serializable") + "\n"
    }

    /// The table, one line per region, with a bar whose length grows with log2 of the size.
    pub fn table(&self, st: &Style, indent: &str) -> String {
        let aw = if self.ptr == 4 { 10 } else { 14 };
        let mut out = String::new();
        out.push_str(&format!(
            "{indent}{}\n",
            st.dim(&format!(
                "{:<aw$}  {:<aw$}  {:>10}  {:<7}  {:<18}  {:<7}  {:<aw$}  {:<18}  {}",
                "address",
                "size",
                "",
                "state",
                "protect",
                "type",
                "alloc base",
                "alloc protect",
                "log2 size"
            ))
        ));
        let bar_of = |r: &MemoryInfo| {
            let pages = (r.region_size as u64 / self.page.max(1)).max(1);
            ((64 - pages.leading_zeros()) as usize).min(40)
        };
        // Names of views go after the bars, in one column.
        let name_at = self.regions.iter().map(bar_of).max().unwrap_or(0);
        for r in &self.regions {
            let bar_len = bar_of(r);
            let protect = if r.state == State::Commit {
                short_protect(r.protect)
            } else {
                "-".into()
            };
            let (ab, ap) = if r.state == State::Free {
                ("".to_string(), "".to_string())
            } else {
                (
                    addr(r.allocation_base as u64, self.ptr),
                    short_protect(r.allocation_protect),
                )
            };
            let line = format!(
                "{:<aw$}  {:<aw$}  {:>10}  {:<7}  {:<18}  {:<7}  {:<aw$}  {:<18}  ",
                addr(r.base_address as u64, self.ptr),
                format!("{:#x}", r.region_size),
                human(r.region_size as u64),
                state_name(r.state),
                protect,
                type_name(r.kind),
                ab,
                ap,
            );
            let bar = st.bar(bar_len);
            out.push_str(indent);
            out.push_str(&st.region(r, &line));
            out.push_str(&st.region(r, &bar));
            if let Some(n) = self.name(r) {
                out.push_str(&" ".repeat(name_at - bar_len + 2));
                out.push_str(n);
            }
            out.push('\n');
        }
        // Trailing spaces would make the output awkward to compare.
        out.lines()
            .map(|l| l.trim_end().to_string() + "\n")
            .collect()
    }

    /// The picture: one band per region (height growing with log2 of the size, so a page
    /// stays visible next to a gigabyte), coloured by state and protection, allocations
    /// outlined, and a legend.
    pub fn svg(&self) -> String {
        let width = 940;
        let (x_band, w_band) = (150.0, 300.0);
        let top = 64.0;
        let mut y = top;
        let mut bands: Vec<(f64, f64)> = Vec::new();
        for r in &self.regions {
            let pages = (r.region_size as u64 / self.page.max(1)).max(1);
            let lg = (64 - pages.leading_zeros()) as f64;
            let h = (16.0 + 3.0 * lg).min(96.0);
            bands.push((y, h));
            y += h;
        }
        let bottom = y;
        let legend_y = bottom + 40.0;
        let height = legend_y + 110.0;
        let mut s = String::new();
        s.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height:.0}\" viewBox=\"0 0 {width} {height:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"12\">\n"
        ));
        s.push_str(&format!("<title>{}</title>\n", esc(&self.title)));
        s.push_str(&format!(
            "<rect class=\"background\" x=\"0\" y=\"0\" width=\"{width}\" height=\"{height:.0}\" fill=\"#ffffff\"/>\n"
        ));
        s.push_str(&format!(
            "<text x=\"16\" y=\"28\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
            esc(&self.title)
        ));
        s.push_str(&format!(
            "<text x=\"16\" y=\"48\" fill=\"#555555\">{} regions; band height grows with log2 of the size, so small regions stay visible</text>\n",
            self.regions.len()
        ));
        // Regions.
        s.push_str("<g class=\"regions\">\n");
        for (r, &(y, h)) in self.regions.iter().zip(&bands) {
            let (fill, label) = region_fill(r);
            s.push_str(&format!(
                "<rect class=\"region\" data-base=\"{:#x}\" data-size=\"{}\" data-state=\"{}\" x=\"{x_band}\" y=\"{y:.1}\" width=\"{w_band}\" height=\"{h:.1}\" fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"1\"><title>{}</title></rect>\n",
                r.base_address,
                r.region_size,
                state_name(r.state),
                esc(&format!(
                    "{} {} {} {}{}",
                    addr(r.base_address as u64, self.ptr),
                    human(r.region_size as u64),
                    state_name(r.state),
                    label,
                    if r.state == State::Free {
                        String::new()
                    } else {
                        format!(" (allocation {})", addr(r.allocation_base as u64, self.ptr))
                    }
                ))
            ));
        }
        s.push_str("</g>\n");
        // Labels: address on the left, state in the band, size and type on the right.
        s.push_str("<g class=\"labels\">\n");
        for (r, &(y, h)) in self.regions.iter().zip(&bands) {
            let (_, label) = region_fill(r);
            s.push_str(&format!(
                "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                x_band - 10.0,
                y + 11.0,
                addr(r.base_address as u64, self.ptr)
            ));
            if h >= 15.0 {
                s.push_str(&format!(
                    "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#222222\">{}</text>\n",
                    x_band + w_band / 2.0,
                    y + h / 2.0 + 4.0,
                    esc(format!("{} {}", state_name(r.state), label).trim())
                ));
            }
            let mut right = human(r.region_size as u64);
            if r.kind != RegionType::None {
                right.push_str(&format!(" · {}", type_name(r.kind)));
            }
            if let Some(n) = self.name(r) {
                right.push_str(&format!(" · {n}"));
            }
            s.push_str(&format!(
                "<text x=\"{:.0}\" y=\"{:.1}\" fill=\"#333333\">{}</text>\n",
                x_band + w_band + 16.0,
                y + h / 2.0 + 4.0,
                esc(&right)
            ));
        }
        s.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            x_band - 10.0,
            bottom + 4.0,
            self.regions
                .last()
                .map(|r| addr(r.base_address as u64 + r.region_size as u64, self.ptr))
                .unwrap_or_default()
        ));
        s.push_str("</g>\n");
        // Allocations: an outline around their regions, labelled with base and protection.
        s.push_str("<g class=\"allocations\">\n");
        let mut i = 0;
        while i < self.regions.len() {
            let r = &self.regions[i];
            if r.state == State::Free {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < self.regions.len()
                && self.regions[j + 1].state != State::Free
                && self.regions[j + 1].allocation_base == r.allocation_base
            {
                j += 1;
            }
            let (y0, _) = bands[i];
            let (y1, h1) = bands[j];
            s.push_str(&format!(
                "<rect class=\"allocation\" x=\"{:.0}\" y=\"{:.1}\" width=\"{:.0}\" height=\"{:.1}\" fill=\"none\" stroke=\"#1a237e\" stroke-width=\"2\"/>\n",
                x_band - 3.0,
                y0 + 1.0,
                w_band + 6.0,
                y1 + h1 - y0 - 2.0
            ));
            s.push_str(&format!(
                "<text x=\"{:.0}\" y=\"{:.1}\" fill=\"#1a237e\">allocation {}, {}</text>\n",
                x_band + w_band + 150.0,
                y0 + bands[i].1 / 2.0 + 4.0,
                addr(r.allocation_base as u64, self.ptr),
                esc(&short_protect(r.allocation_protect))
            ));
            i = j + 1;
        }
        s.push_str("</g>\n");
        // Legend.
        s.push_str("<g class=\"legend\">\n");
        let items = [
            ("#eeeeee", "free"),
            ("#f3d27a", "reserved"),
            ("#9e9e9e", "NOACCESS"),
            ("#90caf9", "READONLY"),
            ("#81c784", "READWRITE"),
            ("#e57373", "EXECUTE(_READ)"),
            ("#ba68c8", "EXECUTE_READWRITE"),
            ("#ffb74d", "+GUARD"),
        ];
        s.push_str(&format!(
            "<text x=\"16\" y=\"{:.0}\" font-weight=\"bold\">legend</text>\n",
            legend_y
        ));
        for (k, (c, n)) in items.iter().enumerate() {
            let x = 16.0 + (k % 4) as f64 * 220.0;
            let y = legend_y + 14.0 + (k / 4) as f64 * 24.0;
            s.push_str(&format!(
                "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"18\" height=\"14\" fill=\"{c}\" stroke=\"#888888\"/><text x=\"{:.0}\" y=\"{:.0}\">{}</text>\n",
                x + 26.0,
                y + 12.0,
                esc(n)
            ));
        }
        let y = legend_y + 14.0 + 2.0 * 24.0;
        s.push_str(&format!(
            "<rect x=\"16\" y=\"{y:.0}\" width=\"18\" height=\"14\" fill=\"none\" stroke=\"#1a237e\" stroke-width=\"2\"/><text x=\"42\" y=\"{:.0}\">an allocation (one VirtualAlloc reservation)</text>\n",
            y + 12.0
        ));
        s.push_str("</g>\n</svg>\n");
        s
    }

    /// A page with the picture and the table.
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for r in &self.regions {
            let (fill, _) = region_fill(r);
            rows.push_str(&format!(
                "<tr><td><span class=\"sw\" style=\"background:{fill}\"></span>{}</td><td>{:#x}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                addr(r.base_address as u64, self.ptr),
                r.region_size,
                human(r.region_size as u64),
                state_name(r.state),
                if r.state == State::Commit { short_protect(r.protect) } else { "-".into() },
                type_name(r.kind),
                if r.state == State::Free { String::new() } else { addr(r.allocation_base as u64, self.ptr) },
                esc(self.name(r).unwrap_or("")),
            ));
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\nbody {{ font-family: sans-serif; margin: 16px; color: #222; }}\ntable {{ border-collapse: collapse; font-family: monospace; font-size: 12px; margin-top: 16px; }}\ntd, th {{ padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }}\n.sw {{ display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; border: 1px solid #888; }}\n</style>\n</head>\n<body>\n{svg}<table>\n<tr><th>address</th><th>size</th><th></th><th>state</th><th>protect</th><th>type</th><th>allocation base</th><th>name</th></tr>\n{rows}</table>\n</body>\n</html>\n",
            t = esc(&self.title),
            svg = self.svg(),
        )
    }
}

/// The colour of a region and its protection label.
fn region_fill(r: &MemoryInfo) -> (&'static str, String) {
    match r.state {
        State::Free => ("#eeeeee", String::new()),
        State::Reserve => ("#f3d27a", String::new()),
        State::Commit => {
            let label = short_protect(r.protect);
            if r.protect & PAGE_GUARD != 0 {
                return ("#ffb74d", label);
            }
            let c = match r.protect & 0xFF {
                PAGE_READONLY => "#90caf9",
                PAGE_READWRITE | PAGE_WRITECOPY => "#81c784",
                PAGE_EXECUTE | PAGE_EXECUTE_READ => "#e57373",
                PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY => "#ba68c8",
                _ => "#9e9e9e",
            };
            (c, label)
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
