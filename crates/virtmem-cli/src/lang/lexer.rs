//! Tokens of the C-like language. Lenient where text copied from course notes differs from
//! C: typographic quotes (“…”, ‘…’) delimit strings and characters, typographic minus signs
//! are minus, non-breaking spaces are spaces, `#include` lines are ignored and object-like
//! `#define`s are expanded.

use super::{Error, Pos};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// An integer literal: value, has a `u` suffix, number of `l` suffixes, written in hex /
    /// octal (which lets an int-sized literal be unsigned).
    Int {
        value: u64,
        unsigned: bool,
        longs: u8,
        radix: u32,
    },
    Char(u64),
    Str(Vec<u8>),
    /// A wide string (`L"..."`), as UTF-8 text.
    WStr(Vec<u8>),
    Punct(&'static str),
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Int { value, .. } => format!("the number {value}"),
            Tok::Char(_) => "a character constant".into(),
            Tok::Str(_) => "a string".into(),
            Tok::WStr(_) => "a wide string".into(),
            Tok::Punct(p) => format!("'{p}'"),
            Tok::Eof => "the end of the program".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

const PUNCTS: [&str; 48] = [
    "<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=",
    "-=", "*=", "/=", "%=", "&=", "|=", "^=", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!",
    "=", "<", ">", "?", ":", ";", ",", ".", "(", ")", "[", "]", "{", "}", "#", "\\",
];

struct Lexer<'a> {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    line_start: bool,
    _src: &'a str,
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
            self.line_start = true;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Quotes that open a string: ASCII and typographic.
fn string_open(c: char) -> bool {
    matches!(c, '"' | '“' | '”' | '„' | '«' | '″')
}

fn string_close(open: char, c: char) -> bool {
    if open == '"' {
        c == '"'
    } else {
        matches!(c, '"' | '“' | '”' | '»' | '″')
    }
}

fn char_open(c: char) -> bool {
    matches!(c, '\'' | '‘' | '’' | '′')
}

fn char_close(open: char, c: char) -> bool {
    if open == '\'' {
        c == '\''
    } else {
        matches!(c, '\'' | '‘' | '’' | '′')
    }
}

/// Splits `src` into tokens (with `#define`s expanded). The last token is [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let mut lx = Lexer {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        line_start: true,
        _src: src,
    };
    let mut out: Vec<Token> = Vec::new();
    let mut defines: HashMap<String, Vec<Token>> = HashMap::new();
    // Whitespace and comments first.
    while let Some(c) = lx.peek(0) {
        if c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}' {
            lx.bump();
            continue;
        }
        if c == '/' && lx.peek(1) == Some('/') {
            while let Some(c) = lx.peek(0) {
                if c == '\n' {
                    break;
                }
                lx.bump();
            }
            continue;
        }
        if c == '/' && lx.peek(1) == Some('*') {
            let pos = lx.pos();
            lx.bump();
            lx.bump();
            loop {
                match lx.peek(0) {
                    None => {
                        return Err(Error::new(pos, "this comment is never closed (missing */)"))
                    }
                    Some('*') if lx.peek(1) == Some('/') => {
                        lx.bump();
                        lx.bump();
                        break;
                    }
                    _ => {
                        lx.bump();
                    }
                }
            }
            continue;
        }
        let pos = lx.pos();
        if c == '#' && lx.line_start {
            // A preprocessor line: `#define NAME tokens` is kept, the rest ignored.
            let mut text = String::new();
            while let Some(c) = lx.peek(0) {
                if c == '\n' {
                    if text.ends_with('\\') {
                        text.pop();
                        lx.bump();
                        continue;
                    }
                    break;
                }
                text.push(c);
                lx.bump();
            }
            let body = text[1..].trim_start();
            if let Some(rest) = body.strip_prefix("define") {
                let rest = rest.trim_start();
                let name: String = rest.chars().take_while(|&c| is_ident_char(c)).collect();
                if name.is_empty() {
                    return Err(Error::new(pos, "#define needs a name"));
                }
                let value = &rest[name.len()..];
                if value.starts_with('(') {
                    return Err(Error::new(
                        pos,
                        format!("#define {name}(...): macros with parameters are not supported"),
                    ));
                }
                let mut toks = lex(value).map_err(|e| Error::new(pos, e.msg))?;
                toks.pop(); // Eof
                for t in &mut toks {
                    t.pos = pos;
                }
                defines.insert(name, toks);
            }
            continue;
        }
        lx.line_start = false;
        // `L"..."`: a wide string (UTF-16 for the W functions).
        let wide = c == 'L' && lx.peek(1).is_some_and(string_open);
        let c = if wide {
            lx.bump();
            lx.peek(0).unwrap_or(c)
        } else {
            c
        };
        if !wide && is_ident_start(c) {
            let mut s = String::new();
            while let Some(c) = lx.peek(0) {
                if !is_ident_char(c) {
                    break;
                }
                s.push(c);
                lx.bump();
            }
            if let Some(toks) = defines.get(&s) {
                // Expand (once: a macro naming itself is left alone).
                for t in toks {
                    let t = match &t.tok {
                        Tok::Ident(n) if n != &s && defines.contains_key(n) => {
                            let mut v = defines[n].clone();
                            for x in &mut v {
                                x.pos = pos;
                            }
                            out.extend(v);
                            continue;
                        }
                        other => Token {
                            tok: other.clone(),
                            pos,
                        },
                    };
                    out.push(t);
                }
                continue;
            }
            out.push(Token {
                tok: Tok::Ident(s),
                pos,
            });
            continue;
        }
        if c.is_ascii_digit() {
            out.push(Token {
                tok: number(&mut lx, pos)?,
                pos,
            });
            continue;
        }
        if string_open(c) {
            lx.bump();
            let mut bytes = Vec::new();
            loop {
                match lx.peek(0) {
                    None | Some('\n') => {
                        return Err(Error::new(pos, "this string is never closed (missing \")"))
                    }
                    Some(q) if string_close(c, q) => {
                        lx.bump();
                        break;
                    }
                    Some('\\') => {
                        lx.bump();
                        escape(&mut lx, &mut bytes, pos)?;
                    }
                    Some(ch) => {
                        lx.bump();
                        let mut b = [0u8; 4];
                        bytes.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
            out.push(Token {
                tok: if wide {
                    Tok::WStr(bytes)
                } else {
                    Tok::Str(bytes)
                },
                pos,
            });
            continue;
        }
        if char_open(c) {
            lx.bump();
            let mut bytes = Vec::new();
            loop {
                match lx.peek(0) {
                    None | Some('\n') => {
                        return Err(Error::new(
                            pos,
                            "this character constant is never closed (missing ')",
                        ))
                    }
                    Some(q) if char_close(c, q) => {
                        lx.bump();
                        break;
                    }
                    Some('\\') => {
                        lx.bump();
                        escape(&mut lx, &mut bytes, pos)?;
                    }
                    Some(ch) => {
                        lx.bump();
                        let mut b = [0u8; 4];
                        bytes.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
            if bytes.len() != 1 {
                return Err(Error::new(
                    pos,
                    "a character constant holds exactly one (ASCII) character",
                ));
            }
            out.push(Token {
                tok: Tok::Char(bytes[0] as i8 as i64 as u64),
                pos,
            });
            continue;
        }
        // Typographic minus signs.
        let c = match c {
            '−' | '–' | '‐' | '‑' => '-',
            c => c,
        };
        let mut matched = None;
        for p in PUNCTS {
            let pc: Vec<char> = p.chars().collect();
            let ok = pc.iter().enumerate().all(|(k, &x)| {
                let y = if k == 0 { Some(c) } else { lx.peek(k) };
                let y = y.map(|y| match y {
                    '−' | '–' | '‐' | '‑' => '-',
                    y => y,
                });
                y == Some(x)
            });
            if ok {
                matched = Some(p);
                break;
            }
        }
        match matched {
            Some("#") | Some("\\") | None => {
                return Err(Error::new(pos, format!("unexpected character '{c}'")))
            }
            Some(p) => {
                for _ in 0..p.chars().count() {
                    lx.bump();
                }
                out.push(Token {
                    tok: Tok::Punct(p),
                    pos,
                });
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: lx.pos(),
    });
    Ok(out)
}

fn number(lx: &mut Lexer<'_>, pos: Pos) -> Result<Tok, Error> {
    let mut digits = String::new();
    let mut radix = 10;
    if lx.peek(0) == Some('0') && matches!(lx.peek(1), Some('x') | Some('X')) {
        lx.bump();
        lx.bump();
        radix = 16;
    } else if lx.peek(0) == Some('0') && matches!(lx.peek(1), Some('b') | Some('B')) {
        lx.bump();
        lx.bump();
        radix = 2;
    } else if lx.peek(0) == Some('0') && lx.peek(1).is_some_and(|c| c.is_ascii_digit()) {
        lx.bump();
        radix = 8;
    }
    while let Some(c) = lx.peek(0) {
        if c.is_digit(radix) || (c == '\'' && lx.peek(1).is_some_and(|d| d.is_digit(radix))) {
            if c != '\'' {
                digits.push(c);
            }
            lx.bump();
        } else {
            break;
        }
    }
    if matches!(lx.peek(0), Some('.') | Some('e') | Some('E')) && radix == 10 {
        return Err(Error::new(
            pos,
            "floating-point numbers are not supported (only integers and pointers)",
        ));
    }
    if digits.is_empty() {
        if radix == 8 {
            digits.push('0');
        } else {
            return Err(Error::new(pos, "a number needs digits"));
        }
    }
    let value = u64::from_str_radix(&digits, radix)
        .map_err(|_| Error::new(pos, "this number does not fit in 64 bits"))?;
    let mut unsigned = false;
    let mut longs = 0u8;
    while let Some(c) = lx.peek(0) {
        match c {
            'u' | 'U' if !unsigned => unsigned = true,
            'l' | 'L' if longs < 2 => longs += 1,
            c if is_ident_char(c) => {
                return Err(Error::new(pos, format!("invalid suffix '{c}' on a number")))
            }
            _ => break,
        }
        lx.bump();
    }
    Ok(Tok::Int {
        value,
        unsigned,
        longs,
        radix,
    })
}

fn escape(lx: &mut Lexer<'_>, out: &mut Vec<u8>, pos: Pos) -> Result<(), Error> {
    let Some(c) = lx.bump() else {
        return Err(Error::new(pos, "a backslash ends the program"));
    };
    let b = match c {
        'n' => b'\n',
        't' => b'\t',
        'r' => b'\r',
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match lx.peek(0).and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        lx.bump();
                    }
                    None => break,
                }
            }
            v as u8
        }
        'x' => {
            let mut v = 0u32;
            let mut n = 0;
            while let Some(d) = lx.peek(0).and_then(|d| d.to_digit(16)) {
                v = (v * 16 + d) & 0xFF;
                n += 1;
                lx.bump();
            }
            if n == 0 {
                return Err(Error::new(pos, "\\x needs hexadecimal digits"));
            }
            v as u8
        }
        'a' => 7,
        'b' => 8,
        'f' => 12,
        'v' => 11,
        'e' => 27,
        '\\' | '\'' | '"' | '?' => c as u8,
        c if string_open(c) || char_open(c) => {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            return Ok(());
        }
        c => return Err(Error::new(pos, format!("unknown escape sequence '\\{c}'"))),
    };
    out.push(b);
    Ok(())
}
