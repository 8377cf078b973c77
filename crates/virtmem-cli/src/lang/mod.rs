//! The C-like language of `virtmem run` and `virtmem repl`.

pub mod ast;
pub mod check;
pub mod interp;
pub mod lexer;
pub mod names;
pub mod parser;
pub mod printf;
pub mod types;
pub mod win32;

use std::fmt;

/// A place in the source: line and column, from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// An error at a place in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub pos: Pos,
    pub msg: String,
}

impl Error {
    pub fn new(pos: Pos, msg: impl Into<String>) -> Error {
        Error {
            pos,
            msg: msg.into(),
        }
    }

    /// `file:line:col: error: message`, the source line and a caret under the column.
    pub fn render(&self, file: &str, src: &str, kind: &str) -> String {
        let mut s = format!(
            "{file}:{}:{}: {kind}: {}\n",
            self.pos.line, self.pos.col, self.msg
        );
        if let Some(line) = src.lines().nth(self.pos.line.saturating_sub(1) as usize) {
            let shown: String = line
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let n = format!("{}", self.pos.line);
            s.push_str(&format!(" {n} | {shown}\n"));
            let pad = " ".repeat(n.len());
            let caret = " ".repeat(self.pos.col.saturating_sub(1) as usize);
            s.push_str(&format!(" {pad} | {caret}^\n"));
        }
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.pos.line, self.pos.col, self.msg
        )
    }
}

/// Parses a whole program.
pub fn parse(src: &str, types: &mut types::TypeTable) -> Result<Vec<ast::Item>, Error> {
    let toks = lexer::lex(src)?;
    parser::Parser::new(toks, types).program()
}
