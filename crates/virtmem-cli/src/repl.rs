//! `virtmem repl`: statements run as they are typed. Every Win32 call is shown with its
//! result; an expression shows its value; `map` shows the address space.

use crate::lang::interp::{Interp, Stop};
use crate::lang::lexer::{lex, Tok};
use crate::lang::names;
use crate::machine::Machine;
use crate::session::{self, code, StdoutSink};
use crate::style::Style;
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;

const HELP: &str = "\
Type C statements; they run at once. Declarations stay (`void *p;`), functions can be defined.
  p = VirtualAlloc((void *)0x40000000, 8*4096, MEM_RESERVE, PAGE_READWRITE);
  VirtualAlloc(p, 4096, MEM_COMMIT, PAGE_READWRITE);
  *(int *)p = 5;   p[4]   printf(\"%p\\n\", p);   mbi   GetLastError()
A missing final ';' is added. An expression shows its value.
Commands:
  map [json|svg|html]   the address space (a simulated process whole; this process around
                        virtmem's allocations)
  functions             the Win32 and C functions there are
  constants [PREFIX]    the constants (e.g. `constants PAGE_`)
  help                  this text
  quit                  leave (also Ctrl-D)";

fn balanced(src: &str) -> bool {
    // Count brackets outside strings and comments (via the lexer when it can).
    match lex(src) {
        Ok(toks) => {
            let mut depth = 0i32;
            for t in toks {
                match t.tok {
                    Tok::Punct("{") | Tok::Punct("(") | Tok::Punct("[") => depth += 1,
                    Tok::Punct("}") | Tok::Punct(")") | Tok::Punct("]") => depth -= 1,
                    _ => {}
                }
            }
            depth <= 0
        }
        Err(e) => !e.msg.contains("never closed"),
    }
}

pub fn repl(m: &Machine, st: Style) -> i32 {
    let interactive = std::io::stdin().is_terminal();
    let col = Rc::new(RefCell::new(session::Column {
        at_line_start: true,
    }));
    let sink = StdoutSink {
        style: st,
        trace: true,
        col: col.clone(),
    };
    let mut it = Interp::new(m, Box::new(sink));
    it.repl = true;
    if interactive {
        println!("virtmem repl: {}", m.describe());
        println!("Type `help` for help, `quit` to leave.");
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut buf = String::new();
    let mut chunk_line = 1u32;
    let mut line_no = 0u32;
    loop {
        if interactive {
            print!(
                "{}",
                if buf.is_empty() {
                    "virtmem> "
                } else {
                    "     ...> "
                }
            );
            let _ = std::io::stdout().flush();
        }
        let Some(Ok(line)) = lines.next() else {
            break;
        };
        line_no += 1;
        if buf.is_empty() {
            chunk_line = line_no;
            let cmd = line.trim();
            let mut words = cmd.split_whitespace();
            match words.next() {
                Some("quit") | Some("exit") | Some(".q") if words.next().is_none() => break,
                Some("help") if cmd == "help" => {
                    println!("{HELP}");
                    continue;
                }
                Some("map") if !cmd.contains('=') && !cmd.contains('(') && !cmd.contains(';') => {
                    let mp = session::map_of(m, &[], false);
                    match words.next() {
                        Some("json") => print!("{}", mp.json()),
                        Some("svg") => print!("{}", mp.svg()),
                        Some("html") => print!("{}", mp.html()),
                        _ => print!("{}", mp.table(&st, "")),
                    }
                    continue;
                }
                Some("functions") if cmd == "functions" => {
                    let w: Vec<&str> = names::WIN32.iter().map(|s| s.name).collect();
                    println!("Win32: {}", w.join(", "));
                    println!("C: {}", names::LIBC.join(", "));
                    continue;
                }
                Some("constants") if !cmd.contains(';') && !cmd.contains('=') => {
                    let prefix = words.next().unwrap_or("");
                    let v: Vec<&str> = names::constant_names()
                        .filter(|n| n.starts_with(prefix))
                        .collect();
                    println!("{}", v.join(" "));
                    continue;
                }
                Some(_) => {}
                None => continue,
            }
        }
        buf.push_str(&line);
        buf.push('\n');
        if !balanced(&buf) {
            continue;
        }
        // Positions count from the chunk's first line in the session.
        let src = format!(
            "{}{}",
            "\n".repeat(chunk_line as usize - 1),
            std::mem::take(&mut buf)
        );
        let parsed = match crate::lang::parse(&src, &mut it.types) {
            Ok(items) => Ok(items),
            Err(e) if e.msg.starts_with("expected ';'") && e.msg.contains("end of the program") => {
                let fixed = format!("{};\n", src.trim_end());
                crate::lang::parse(&fixed, &mut it.types)
            }
            Err(e) => Err(e),
        };
        let items = match parsed.and_then(|items| it.check(&items).map(|()| items)) {
            Ok(items) => items,
            Err(e) => {
                eprint!("{}", st.red(&e.render("input", &src, "error")));
                continue;
            }
        };
        let r = it.load_items(&items);
        if !col.borrow().at_line_start {
            println!();
            col.borrow_mut().at_line_start = true;
        }
        match r {
            Ok(Some((v, true))) => {
                let d = it.describe(&v);
                println!("= {d}");
            }
            Ok(_) => {}
            Err(Stop::Exit(n)) => return n,
            Err(stop) => {
                let o = session::stop_outcome(stop, "input", &src, &st, "exception");
                if let Some(msg) = o.message {
                    eprint!("{msg}");
                }
            }
        }
        let _ = std::io::stdout().flush();
    }
    if !buf.trim().is_empty() {
        eprintln!(
            "{}",
            st.red("input: error: the last statement is incomplete")
        );
        return code::COMPILE;
    }
    0
}
