//! `virtmem tour`: the course's two exercises, step by step, in a simulated 32-bit Windows
//! process and on this Linux process, with every call, its result, GetLastError and the map
//! of the address space after each step; then a third exercise in their spirit
//! (`examples/c/ejercicio3.c`): two processes sharing memory through a named section.
//!
//! The third exercise is one program run twice. In the simulator the two runs are two
//! simulated 32-bit processes on one simulated machine ([`virtmem::sim::SimMachine`]: the
//! section names and contents are the machine's, so B opens by name what A created): A runs
//! until it waits for a key (`getchar`), then B runs from start to end, then A goes on. On
//! this Linux process both runs are programs in this one process (each may touch only its own
//! memory), so the name is found in the process itself.

use crate::lang::interp::{error_text, CallEvent, Interp, Sink};
use crate::machine::Machine;
use crate::session::{self, map_of};
use crate::style::Style;
use std::cell::RefCell;
use std::rc::Rc;
use virtmem::Layout;

pub const RESERVA: &str = include_str!("../programs/reserva.c");
pub const LIBERACION: &str = include_str!("../programs/liberacion.c");
pub const COMPARTIDA: &str = include_str!("../../../examples/c/ejercicio3.c");

/// What runs while a program waits for a key.
type OnKey<'m> = Box<dyn FnMut() + 'm>;

struct TourSink<'m> {
    m: &'m Machine,
    st: Style,
    out: Rc<RefCell<String>>,
    step: usize,
    /// Program output not yet printed.
    pending: String,
    /// The process's name when several take turns ("A", "B").
    label: Option<&'static str>,
    /// Other processes whose maps are drawn too after a call that changes this one's.
    others: Vec<(&'static str, &'m Machine)>,
    /// Runs (once) when the program waits for a key.
    on_key: Option<OnKey<'m>>,
}

impl<'m> TourSink<'m> {
    fn new(m: &'m Machine, st: Style, out: &Rc<RefCell<String>>) -> TourSink<'m> {
        TourSink {
            m,
            st,
            out: out.clone(),
            step: 0,
            pending: String::new(),
            label: None,
            others: Vec::new(),
            on_key: None,
        }
    }
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
        let step = match self.label {
            Some(l) => format!("{l}: step {}", self.step),
            None => format!("step {}", self.step),
        };
        o.push_str(&format!(
            "  {} {} {}\n",
            st.bold(&step),
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
        if self.label.is_some() && !ev.changes_map {
            // Handles and names: the maps stay as they were.
            return;
        }
        let focus: Vec<u64> = ev.focus.iter().copied().collect();
        let map = map_of(self.m, &focus, false);
        let what = match (self.m.is_native(), self.label) {
            (true, _) => "the address space around it".to_string(),
            (false, None) => "the whole address space".to_string(),
            (false, Some(l)) => format!("the address space of process {l}"),
        };
        o.push_str(&format!("    {}:\n", st.dim(&what)));
        o.push_str(&map.table(&st, "      "));
        for (l, other) in &self.others {
            if other.is_native() {
                continue; // the same process: the map above shows it
            }
            let map = map_of(other, &[], false);
            o.push_str(&format!(
                "    {}:\n",
                st.dim(&format!("and the address space of process {l}"))
            ));
            o.push_str(&map.table(&st, "      "));
        }
    }

    fn key(&mut self) -> i32 {
        self.flush_output();
        match self.on_key.take() {
            Some(mut f) => {
                f();
                i32::from(b'\n')
            }
            None => -1,
        }
    }
}

/// Runs one exercise on one machine, appending to `out`.
fn exercise(m: &Machine, src: &str, st: Style, out: &Rc<RefCell<String>>) {
    out.borrow_mut().push_str(&format!(
        "\n  {} {}\n",
        st.bold("▶"),
        st.bold(&m.describe())
    ));
    let sink = TourSink::new(m, st, out);
    let o = run_in(m, src, sink, st);
    finish(m, o, "the program", st, out);
}

/// Runs the shared-memory exercise as two processes `a` and `b`: A runs until it waits for a
/// key, then B runs to its end, then A goes on (see the module documentation).
fn exercise_shared(a: &Machine, b: &Machine, src: &str, st: Style, out: &Rc<RefCell<String>>) {
    let what = if a.is_native() {
        format!("{}; processes A and B are two programs in it", a.describe())
    } else {
        let d = a
            .describe()
            .replacen(" process:", " processes on one simulated machine:", 1);
        format!("processes A and B, two {d}")
    };
    out.borrow_mut()
        .push_str(&format!("\n  {} {}\n", st.bold("▶"), st.bold(&what)));
    let run_b = move || {
        out.borrow_mut().push_str(&format!(
            "  {}\n",
            st.dim("process A waits for a key: process B runs now")
        ));
        let mut sink = TourSink::new(b, st, out);
        sink.label = Some("B");
        sink.others = vec![("A", a)];
        let o = run_in(b, src, sink, st);
        finish(b, o, "process B", st, out);
        out.borrow_mut().push_str(&format!(
            "  {}\n",
            st.dim("a key is pressed: process A goes on")
        ));
    };
    let mut sink = TourSink::new(a, st, out);
    sink.label = Some("A");
    sink.on_key = Some(Box::new(run_b));
    let o = run_in(a, src, sink, st);
    finish(a, o, "process A", st, out);
}

/// Runs `src` on `m`, reporting to `sink`.
fn run_in<'m>(m: &'m Machine, src: &str, sink: TourSink<'m>, st: Style) -> session::Outcome {
    let mut it = Interp::new(m, Box::new(sink));
    session::run_program(&mut it, src, "exercise.c", &st)
}

/// What the tour says when a program ends.
fn finish(m: &Machine, o: session::Outcome, who: &str, st: Style, out: &Rc<RefCell<String>>) {
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
            "{who} ends with exit code {}{}",
            o.code,
            if m.is_native() {
                "; its allocations are released, as when a Windows process exits"
            } else {
                ""
            }
        ))
    ));
}

/// The listing of `src` from its first line starting with `from`, numbered as in the file.
fn listing_from(src: &str, from: &str, st: Style) -> String {
    let mut s = String::new();
    let first = src.lines().position(|l| l.starts_with(from)).unwrap_or(0);
    for (i, l) in src.lines().enumerate().skip(first) {
        s.push_str(&format!("  {} {}\n", st.dim(&format!("{:>2} │", i + 1)), l));
    }
    s
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
    let title = "Exercise 3: two processes share memory through a named section";
    push(format!(
        "\n{}\n{}\n",
        st.bold(title),
        "─".repeat(title.chars().count())
    ));
    push(
        "A third exercise in the course's spirit (examples/c/ejercicio3.c, whose opening comment\n\
         states it in Spanish). One program, run twice: the first run (process A) creates a\n\
         section named Local\\MemoriaCompartida backed by the paging file, maps a view of it\n\
         (MapViewOfFile) and writes a message; while A waits for a key, the second run\n\
         (process B) opens the section by its name, maps a view of its own and reads the\n\
         message. Both views are regions of type mapped (MEM_MAPPED), named after the section.\n"
            .to_string(),
    );
    push(listing_from(COMPARTIDA, "#include", st));
    let machine = virtmem::sim::SimMachine::new();
    let a = Machine::sim_on(&machine, Layout::WIN32, "win32");
    let b = Machine::sim_on(&machine, Layout::WIN32, "win32");
    exercise_shared(&a, &b, COMPARTIDA, st, &out);
    if !sim_only {
        exercise_shared(&Machine::native(), &Machine::native(), COMPARTIDA, st, &out);
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
