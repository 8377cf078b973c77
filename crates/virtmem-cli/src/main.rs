//! `virtmem`: the Windows virtual-memory model, on a simulated process or on this one.
//!
//! * `virtmem tour`: the course's exercises step by step, with the map after each call (and a
//!   third: two processes sharing memory through a named section).
//! * `virtmem run FILE`: runs a program in a small C-like language (the seeds verbatim).
//! * `virtmem repl`: the same language interactively (`map`, `help`).
//! * `virtmem map`: the address-space map as a table, JSON, SVG or HTML.

mod lang;
mod machine;
mod map;
mod repl;
mod session;
// `virtmem status` (issue 15 item 6).
mod status;
mod style;
mod tour;

use clap::{Args, Parser, Subcommand, ValueEnum};
use machine::Machine;
use session::{code, StdoutSink};
use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::rc::Rc;
use style::Style;
use virtmem::Layout;

#[derive(Parser)]
#[command(
    name = "virtmem",
    version,
    about = "The Windows virtual-memory model (VirtualAlloc, VirtualFree, VirtualProtect, VirtualQuery...) on a simulated process or on this Linux process",
    after_help = "Exit codes: 0 success (or the program's own exit code), 2 bad command line, 3 the program does not compile, 4 the program died of an unhandled exception (access violation, guard page), 5 another runtime error, 66 the input file cannot be read, 1 anything else.\n\nStart with: virtmem tour"
)]
struct Cli {
    /// Never colour the output (also: the NO_COLOR environment variable, or output that is not a terminal).
    #[arg(long, global = true)]
    no_color: bool,
    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Cmd {
    /// The course's two exercises, step by step: each call, its result, GetLastError and the
    /// address-space map, in a simulated 32-bit process and on this process; then a third,
    /// two processes sharing memory through a named section.
    Tour {
        /// Only the simulated process (the output is then the same on every machine).
        #[arg(long)]
        sim_only: bool,
    },
    /// Runs a program in the C-like language (Win32 memory functions and constants, integer
    /// and pointer arithmetic, if/else, while/for, switch, __try/__except, printf...).
    Run {
        /// The program (`-` reads standard input).
        file: String,
        #[command(flatten)]
        space: SpaceArgs,
        /// Print every Win32 call with its result (and GetLastError when it fails).
        #[arg(long)]
        trace: bool,
        /// Print the address-space map when the program ends.
        #[arg(long)]
        map: bool,
        /// Stop after this many steps (0: never).
        #[arg(long, default_value_t = 0)]
        max_steps: u64,
    },
    /// The language interactively: statements run as you type them; `map` shows the address
    /// space, `help` lists what there is.
    Repl {
        #[command(flatten)]
        space: SpaceArgs,
    },
    /// The address-space map: this process, or a simulated one after running a script.
    Map {
        /// Run this program first, in a simulated process (or on this one with --native), and
        /// show the map it leaves.
        #[arg(long, value_name = "FILE")]
        script: Option<String>,
        /// table (VMMap-like), json, svg (a picture) or html (picture and table).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<String>,
        /// The native map: only the regions around virtmem's allocations.
        #[arg(long)]
        around_allocations: bool,
        /// Another process's address space (a Linux pid), as VirtualQueryEx describes it.
        #[arg(long, value_name = "PID", conflicts_with_all = ["script", "around_allocations"])]
        pid: Option<u32>,
        #[command(flatten)]
        space: SpaceArgs,
    },
    /// The machine's memory (GlobalMemoryStatusEx) and this process's: GetProcessMemoryInfo,
    /// the working-set limits (the minimum is the VirtualLock quota), memory resource
    /// notifications and DEP.
    Status {
        /// table (readable) or json.
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
}

/// `virtmem status` output formats.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum StatusFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Svg,
    Html,
}

#[derive(Args, Clone)]
struct SpaceArgs {
    /// A simulated process: win32 (2 GiB, the default for run and repl), win64, win32-3gb,
    /// or custom (win32 changed by the options below).
    #[arg(long, value_name = "PRESET")]
    sim: Option<String>,
    /// This Linux process, on real memory (accesses are checked first: a bad one is reported,
    /// never a crash of the tool). The program may change only memory it allocated: any other
    /// VirtualProtect, VirtualFree, commit, lock, reset, UnmapViewOfFile... fails with
    /// ERROR_INVALID_ADDRESS (487), and any handle it did not open with ERROR_INVALID_HANDLE
    /// (6), so it cannot touch the tool's own pages; queries of any address work.
    #[arg(long, conflicts_with = "sim")]
    native: bool,
    /// Page size of a simulated process (e.g. 4096, 0x4000).
    #[arg(long, value_parser = parse_num, value_name = "BYTES")]
    page_size: Option<usize>,
    /// Allocation granularity of a simulated process (e.g. 0x10000).
    #[arg(long, value_parser = parse_num, value_name = "BYTES")]
    granularity: Option<usize>,
    /// Lowest usable address of a simulated process.
    #[arg(long, value_parser = parse_num, value_name = "ADDRESS")]
    min_address: Option<usize>,
    /// Highest usable address of a simulated process (inclusive, e.g. 0x7FFEFFFF).
    #[arg(long, value_parser = parse_num, value_name = "ADDRESS")]
    max_address: Option<usize>,
}

fn parse_num(s: &str) -> Result<usize, String> {
    let t = s.replace('_', "");
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        usize::from_str_radix(h, 16)
    } else {
        t.parse()
    };
    r.map_err(|_| format!("'{s}' is not a number (decimal or 0x hexadecimal)"))
}

impl SpaceArgs {
    /// The machine asked for; `default_native` when neither --sim nor --native was given.
    fn machine(&self, default_native: bool) -> Result<Machine, String> {
        let custom = self.page_size.is_some()
            || self.granularity.is_some()
            || self.min_address.is_some()
            || self.max_address.is_some();
        if self.native || (self.sim.is_none() && !custom && default_native) {
            if custom {
                return Err("--page-size, --granularity, --min-address and --max-address are for simulated processes".into());
            }
            return Ok(Machine::native());
        }
        let name = self.sim.clone().unwrap_or_else(|| {
            if custom {
                "custom".to_string()
            } else {
                "win32".to_string()
            }
        });
        let base = match name.as_str() {
            "custom" => Layout::WIN32,
            n => virtmem::sim::preset(n).ok_or_else(|| {
                format!(
                    "unknown --sim '{n}': use one of {}, or custom",
                    virtmem::sim::PRESETS.join(", ")
                )
            })?,
        };
        let l = Layout {
            page_size: self.page_size.unwrap_or(base.page_size),
            granularity: self.granularity.unwrap_or(base.granularity),
            min_address: self.min_address.unwrap_or(base.min_address),
            max_address: self.max_address.unwrap_or(base.max_address),
            large_page_size: base.large_page_size,
        };
        let l = Layout {
            large_page_size: if l.large_page_size % l.page_size == 0 {
                l.large_page_size
            } else {
                0
            },
            ..l
        };
        virtmem::sim::check_layout(&l).map_err(|e| format!("invalid layout: {e}"))?;
        let name = if custom && name != "custom" {
            format!("{name} (custom)")
        } else {
            name
        };
        Ok(Machine::sim(l, &name))
    }
}

fn read_source(file: &str) -> Result<String, String> {
    let bytes = if file == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
    } else {
        std::fs::read(file)
    }
    .map_err(|e| format!("cannot read {file}: {e}"))?;
    // Course notes come in every encoding: invalid UTF-8 is read as Latin-1.
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    })
}

fn fail(st: &Style, code: i32, msg: &str) -> i32 {
    eprintln!("{} {msg}", st.red("virtmem:"));
    code
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = !cli.no_color
        && match cli.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
            }
        };
    let st = Style { color };
    let code = match cli.cmd {
        Cmd::Tour { sim_only } => {
            print!("{}", tour::tour(st, sim_only));
            0
        }
        Cmd::Run {
            file,
            space,
            trace,
            map,
            max_steps,
        } => run(st, &file, &space, trace, map, max_steps),
        Cmd::Repl { space } => match space.machine(false) {
            Ok(m) => repl::repl(&m, st),
            Err(e) => fail(&st, 2, &e),
        },
        Cmd::Map {
            script,
            format,
            output,
            around_allocations,
            pid,
            space,
        } => match pid {
            // ---- map --pid: another process ----
            Some(pid) => match session::map_of_process(pid) {
                Ok(mp) => emit_map(st, &mp, format, output.as_deref()),
                Err(e) => fail(&st, code::FAILURE, &e),
            },
            None => map_cmd(
                st,
                script.as_deref(),
                format,
                output.as_deref(),
                around_allocations,
                &space,
            ),
        },
        Cmd::Status { format } => status::status(&st, format == StatusFormat::Json),
    };
    ExitCode::from((code & 0xFF) as u8)
}

fn run(st: Style, file: &str, space: &SpaceArgs, trace: bool, map: bool, max_steps: u64) -> i32 {
    let m = match space.machine(false) {
        Ok(m) => m,
        Err(e) => return fail(&st, 2, &e),
    };
    let src = match read_source(file) {
        Ok(s) => s,
        Err(e) => return fail(&st, code::NO_INPUT, &e),
    };
    let col = Rc::new(RefCell::new(session::Column {
        at_line_start: true,
    }));
    let sink = StdoutSink {
        style: st,
        trace,
        col: col.clone(),
    };
    let mut it = lang::interp::Interp::new(&m, Box::new(sink));
    it.max_steps = max_steps;
    let o = session::run_program(&mut it, &src, file, &st);
    drop(it);
    if !col.borrow().at_line_start {
        println!();
    }
    if map {
        let mp = session::map_of(&m, &[], false);
        println!();
        print!("{}", mp.table(&st, ""));
    }
    let _ = std::io::stdout().flush();
    if let Some(msg) = o.message {
        eprint!("{msg}");
    }
    o.code
}

fn map_cmd(
    st: Style,
    script: Option<&str>,
    format: Format,
    output: Option<&str>,
    around: bool,
    space: &SpaceArgs,
) -> i32 {
    let m = match space.machine(script.is_none()) {
        Ok(m) => m,
        Err(e) => return fail(&st, 2, &e),
    };
    if let Some(file) = script {
        let src = match read_source(file) {
            Ok(s) => s,
            Err(e) => return fail(&st, code::NO_INPUT, &e),
        };
        // The script's own output goes to stderr: stdout is the map.
        struct ErrSink;
        impl lang::interp::Sink for ErrSink {
            fn output(&mut self, text: &str) {
                eprint!("{text}");
            }
        }
        let mut it = lang::interp::Interp::new(&m, Box::new(ErrSink));
        let o = session::run_program(&mut it, &src, file, &st);
        drop(it);
        if let Some(msg) = o.message {
            eprint!("{msg}");
            if o.code == code::COMPILE {
                return o.code;
            }
        }
    }
    let mp = session::map_of(&m, &[], !around || !m.is_native());
    emit_map(st, &mp, format, output)
}

/// Writes a map in `format` to `output` (or standard output).
fn emit_map(st: Style, mp: &map::Map, format: Format, output: Option<&str>) -> i32 {
    let text = match format {
        Format::Table => {
            let st = if output.is_some() {
                Style { color: false }
            } else {
                st
            };
            format!("{}\n{}", st.bold(&mp.title), mp.table(&st, ""))
        }
        Format::Json => mp.json(),
        Format::Svg => mp.svg(),
        Format::Html => mp.html(),
    };
    match output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => 0,
            Err(e) => fail(&st, code::FAILURE, &format!("cannot write {path}: {e}")),
        },
        None => {
            print!("{text}");
            0
        }
    }
}
