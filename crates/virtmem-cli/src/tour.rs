//! `virtmem tour`: the course's two exercises, step by step, in a simulated 32-bit Windows
//! process and on this Linux process, with every call, its result, GetLastError and the map
//! of the address space after each step.

use crate::lang::interp::{error_text, CallEvent, Interp, Sink};
use crate::machine::Machine;
use crate::session::{self, map_of};
use crate::style::Style;
use std::cell::RefCell;
use std::rc::Rc;
use virtmem::Layout;

pub const RESERVA: &str = include_str!("../programs/reserva.c");
pub const LIBERACION: &str = include_str!("../programs/liberacion.c");

struct TourSink<'m> {
    m: &'m Machine,
    st: Style,
    out: Rc<RefCell<String>>,
    step: usize,
    /// Program output not yet printed.
    pending: String,
}

impl TourSink<'_> {
    fn flush_output(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.pending);
        let mut o = self.out.borrow_mut();
        for line in text.lines() {
            o.push_str(&format!(
                "    {} {}\n",
                self.st.dim("output:"),
                self.st.bold(line)
            ));
        }
    }
}

impl Drop for TourSink<'_> {
    fn drop(&mut self) {
        self.flush_output();
    }
}

impl Sink for TourSink<'_> {
    fn output(&mut self, text: &str) {
        self.pending.push_str(text);
    }

    fn call(&mut self, ev: &CallEvent) {
        self.flush_output();
        self.step += 1;
        let st = self.st;
        let mut o = self.out.borrow_mut();
        o.push_str(&format!(
            "  {} {} {}\n",
            st.bold(&format!("step {}", self.step)),
            st.dim(&format!("(line {})", ev.pos.line)),
            st.cyan(&ev.call)
        ));
        let result = if ev.failed {
            st.red(&ev.result)
        } else {
            st.green(&ev.result)
        };
        let le = error_text(ev.last_error);
        let le = if ev.failed { st.red(&le) } else { le };
        o.push_str(&format!("    returns {result}, GetLastError() = {le}\n"));
        if ev.failed {
            o.push_str("    the call failed: the address space is unchanged\n");
            return;
        }
        let focus: Vec<u64> = ev.focus.iter().copied().collect();
        let map = map_of(self.m, &focus, false);
        let what = if self.m.is_native() {
            "the address space around it"
        } else {
            "the whole address space"
        };
        o.push_str(&format!("    {}:\n", st.dim(what)));
        o.push_str(&map.table(&st, "      "));
    }
}

/// Runs one exercise on one machine, appending to `out`.
fn exercise(m: &Machine, src: &str, st: Style, out: &Rc<RefCell<String>>) {
    out.borrow_mut().push_str(&format!(
        "\n  {} {}\n",
        st.bold("▶"),
        st.bold(&m.describe())
    ));
    let sink = TourSink {
        m,
        st,
        out: out.clone(),
        step: 0,
        pending: String::new(),
    };
    let mut it = Interp::new(m, Box::new(sink));
    let o = session::run_program(&mut it, src, "exercise.c", &st);
    drop(it);
    // The sink is gone: flush what the program printed last.
    {
        let mut tail = String::new();
        if let Some(msg) = &o.message {
            tail.push_str(msg);
        }
        out.borrow_mut().push_str(&tail);
    }
    // The program ends: Windows frees its address space. Do the same for what it made.
    m.release_program_memory();
    out.borrow_mut().push_str(&format!(
        "  {}\n",
        st.dim(&format!(
            "the program ends with exit code {}{}",
            o.code,
            if m.is_native() {
                "; its allocations are released, as when a Windows process exits"
            } else {
                ""
            }
        ))
    ));
}

fn listing(src: &str, st: Style) -> String {
    let mut s = String::new();
    for (i, l) in src.lines().enumerate() {
        s.push_str(&format!("  {} {}\n", st.dim(&format!("{:>2} │", i + 1)), l));
    }
    s
}

pub fn tour(st: Style, sim_only: bool) -> String {
    let out = Rc::new(RefCell::new(String::new()));
    let push = |s: String| out.borrow_mut().push_str(&s);
    push(format!(
        "{}\n\n",
        st.bold("virtmem tour: the Windows virtual-memory model, step by step")
    ));
    push(
        "Every page of a Windows process's address space is free, reserved (address space\n\
         set aside, nothing behind it yet) or committed (backed by memory, with a protection\n\
         such as PAGE_READWRITE). VirtualAlloc reserves ranges that start on 64 KiB\n\
         boundaries and commits whole pages; VirtualFree decommits or releases them;\n\
         VirtualQuery describes any address. Below, the course's two exercises run exactly\n\
         as written: first in a simulated 32-bit Windows process (what a student sees on\n\
         Windows), then on this Linux process through virtmem. After each call: its result,\n\
         GetLastError(), and the map of the address space (one line per region, as\n\
         VirtualQuery reports it; the bar grows with log2 of the size).\n"
            .to_string(),
    );
    let exercises = [
        (
            "Exercise 1: reserve 8 pages at 0x40000000, readable and writable, and say where",
            RESERVA,
        ),
        (
            "Exercise 2: reserve 4 pages at 0x01000000, then release them completely",
            LIBERACION,
        ),
    ];
    for (title, src) in exercises {
        push(format!(
            "\n{}\n{}\n",
            st.bold(title),
            "─".repeat(title.chars().count())
        ));
        push(listing(src, st));
        let sim = Machine::sim(Layout::WIN32, "win32");
        exercise(&sim, src, st, &out);
        if !sim_only {
            exercise(&Machine::native(), src, st, &out);
        }
    }
    push(format!("\n{}\n", st.bold("Next")));
    push(
        "  virtmem run crates/virtmem-cli/programs/guard.c   run a program (C-like; the seeds run verbatim)\n\
         \x20 virtmem run --trace --map FILE                    ... showing every Win32 call and the final map\n\
         \x20 virtmem repl                                      type statements, `map` shows the address space\n\
         \x20 virtmem map --format html > map.html              a picture of this process's address space\n\
         \x20 virtmem --help                                    everything else\n"
            .to_string(),
    );
    let s = out.borrow().clone();
    s
}
