//! Terminal colours (ANSI), off with `--no-color`, `NO_COLOR`, or when the output is not a
//! terminal.

use virtmem::win32::consts::*;
use virtmem::{MemoryInfo, State};

#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }

    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }

    pub fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }

    /// A bar of `n` cells.
    pub fn bar(&self, n: usize) -> String {
        if self.color {
            "█".repeat(n)
        } else {
            "#".repeat(n)
        }
    }

    /// `s` coloured like the region: free dim, reserved yellow, committed by protection.
    pub fn region(&self, r: &MemoryInfo, s: &str) -> String {
        let code = match r.state {
            State::Free => "2",
            State::Reserve => "33",
            State::Commit if r.protect & PAGE_GUARD != 0 => "1;33",
            State::Commit => match r.protect & 0xFF {
                PAGE_READONLY => "36",
                PAGE_READWRITE | PAGE_WRITECOPY => "32",
                PAGE_EXECUTE | PAGE_EXECUTE_READ => "31",
                PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY => "35",
                _ => "90",
            },
        };
        self.paint(code, s)
    }
}
