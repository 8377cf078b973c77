//! Running programs: the output sinks shared by `run`, `repl` and `tour`, and the map of the
//! part of an address space a program touched.

use crate::lang::interp::{error_text, CallEvent, Interp, Sink, Stop};
use crate::machine::Machine;
use crate::map::Map;
use crate::style::Style;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;

/// Exit codes.
pub mod code {
    /// The program does not compile (syntax or declaration errors).
    pub const COMPILE: i32 = 3;
    /// The program died of an unhandled exception (access violation, guard page...).
    pub const EXCEPTION: i32 = 4;
    /// Another runtime error (a wrong call, a refused native write, too many steps...).
    pub const RUNTIME: i32 = 5;
    /// The input file cannot be read.
    pub const NO_INPUT: i32 = 66;
    /// An output could not be written, or an invalid layout.
    pub const FAILURE: i32 = 1;
}

/// Shared state of an output sink: whether the last text ended a line.
#[derive(Default)]
pub struct Column {
    pub at_line_start: bool,
}

/// Program output to stdout; with `trace`, each Win32 call too (and optionally the map).
pub struct StdoutSink {
    pub style: Style,
    pub trace: bool,
    pub col: Rc<RefCell<Column>>,
}

impl Sink for StdoutSink {
    fn output(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        if !text.is_empty() {
            self.col.borrow_mut().at_line_start = text.ends_with('\n');
        }
    }

    fn call(&mut self, ev: &CallEvent) {
        if !self.trace {
            return;
        }
        let mut col = self.col.borrow_mut();
        let mut out = std::io::stdout().lock();
        if !col.at_line_start {
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "{}", trace_line(&self.style, ev));
        col.at_line_start = true;
    }
}

/// `[line 4] VirtualAlloc(0x40000000, 0x8000, MEM_RESERVE, PAGE_READWRITE) = 0x40000000`
/// and, for a failed call, its last error.
pub fn trace_line(st: &Style, ev: &CallEvent) -> String {
    let head = st.dim(&format!("[line {}]", ev.pos.line));
    let mut s = format!("{head} {}", st.cyan(&ev.call));
    if !ev.result.is_empty() {
        let r = if ev.failed {
            st.red(&ev.result)
        } else {
            st.green(&ev.result)
        };
        s.push_str(&format!(" = {r}"));
    }
    if ev.failed {
        s.push_str(&format!(
            "  {}",
            st.red(&format!("GetLastError() = {}", error_text(ev.last_error)))
        ));
    }
    s
}

/// What became of a program.
pub struct Outcome {
    pub code: i32,
    /// The message for stderr, if it did not end normally.
    pub message: Option<String>,
}

/// Reports how a program stopped: `file:line:col: kind: message` with the source line.
pub fn stop_outcome(stop: Stop, file: &str, src: &str, st: &Style, died: &str) -> Outcome {
    match stop {
        Stop::Exit(n) => Outcome {
            code: n,
            message: None,
        },
        Stop::Error(e) => Outcome {
            code: code::RUNTIME,
            message: Some(st.red(&e.render(file, src, "runtime error"))),
        },
        Stop::Exception { code: c, what, pos } => Outcome {
            code: code::EXCEPTION,
            message: Some(
                st.red(
                    &crate::lang::Error::new(pos, format!("unhandled exception {c:#010X}: {what}"))
                        .render(file, src, died),
                ),
            ),
        },
        Stop::Unwind { .. } => Outcome {
            code: code::RUNTIME,
            message: Some(format!(
                "{file}: internal error: an exception was not delivered to its handler\n"
            )),
        },
    }
}

/// Runs a whole program: its top-level statements, then `main`.
pub fn run_program(it: &mut Interp<'_>, src: &str, file: &str, st: &Style) -> Outcome {
    let items = match crate::lang::parse(src, &mut it.types) {
        Ok(items) => items,
        Err(e) => {
            return Outcome {
                code: code::COMPILE,
                message: Some(st.red(&e.render(file, src, "error"))),
            }
        }
    };
    if let Err(e) = it.check(&items) {
        return Outcome {
            code: code::COMPILE,
            message: Some(st.red(&e.render(file, src, "error"))),
        };
    }
    let r = it.load_items(&items).and_then(|_| it.run_main());
    match r {
        Ok(n) => Outcome {
            code: n & 0xFF,
            message: None,
        },
        Err(stop) => stop_outcome(stop, file, src, st, "the program died"),
    }
}

/// The map to show for a machine: a simulated space whole; the native process only around
/// virtmem's own allocations (`focus` adds more addresses to show around).
pub fn map_of(m: &Machine, focus: &[u64], whole_native: bool) -> Map {
    let l = m.layout();
    let title = match m {
        Machine::Sim { name, .. } => format!("simulated {name} process"),
        Machine::Native(_) => "this process (native, virtmem on real memory)".to_string(),
    };
    let page = l.page_size as u64;
    let regions = match m {
        Machine::Sim { .. } => m.regions(l.min_address, l.max_address + 1),
        Machine::Native(_) if whole_native => m.regions(l.min_address, l.max_address + 1),
        Machine::Native(_) => {
            let g = l.granularity;
            let mut ranges: Vec<(usize, usize)> = m
                .allocations()
                .iter()
                .map(|&(b, s, _)| (b.saturating_sub(g), b + s + g))
                .collect();
            for &f in focus {
                let f = f as usize & !(g - 1);
                ranges.push((f.saturating_sub(g), f + 2 * g));
            }
            ranges.sort();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for (s, e) in ranges {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            let mut out = Vec::new();
            for (s, e) in merged {
                // Whole regions around: start at the region holding `s`.
                let start = m.query(s).map(|i| i.base_address).unwrap_or(s);
                for r in m.regions(start, usize::MAX) {
                    if r.base_address >= e {
                        break;
                    }
                    if out
                        .last()
                        .is_some_and(|x: &virtmem::MemoryInfo| x.base_address >= r.base_address)
                    {
                        continue;
                    }
                    out.push(r);
                }
            }
            out
        }
    };
    let mut names: std::collections::HashMap<usize, String> = regions
        .iter()
        .filter(|r| r.kind == virtmem::RegionType::Mapped && r.state != virtmem::State::Free)
        .filter_map(|r| Some((r.allocation_base, m.view_name(r.allocation_base)?)))
        .collect();
    // Heap memory is labelled as VMMap labels it (issue 16 item 6).
    names.extend(m.heap_labels());
    Map {
        title,
        ptr: m.ptr_bytes(),
        page,
        regions,
        names,
    }
}

/// The map of another process (`virtmem map --pid`): its regions as VirtualQueryEx describes
/// them (through [`virtmem::Process`], the same answer), file mappings named from its
/// `/proc/<pid>/maps`. An error message when the process cannot be opened or read.
pub fn map_of_process(pid: u32) -> Result<Map, String> {
    use virtmem::win32::PROCESS_QUERY_INFORMATION;
    let p = virtmem::Process::open(pid, PROCESS_QUERY_INFORMATION)
        .map_err(|e| format!("cannot open process {pid}: {e}"))?;
    // The first query tells an unreadable process from an empty map.
    p.query(0)
        .map_err(|e| format!("cannot read the address space of process {pid}: {e}"))?;
    let regions: Vec<virtmem::MemoryInfo> = p.regions().collect();
    let paths: HashMap<usize, String> = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let start = usize::from_str_radix(f.next()?.split('-').next()?, 16).ok()?;
            let path = f.nth(4)?;
            Some((start, path.to_string()))
        })
        .collect();
    let names = regions
        .iter()
        .filter(|r| r.state != virtmem::State::Free)
        .filter_map(|r| Some((r.allocation_base, paths.get(&r.allocation_base)?.clone())))
        .collect();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let info = virtmem::system_info();
    Ok(Map {
        title: format!(
            "process {pid} ({}, native, as VirtualQueryEx sees it)",
            comm.trim()
        ),
        ptr: std::mem::size_of::<usize>() as u8,
        page: info.page_size as u64,
        regions,
        names,
    })
}
