//! printf's formatting: flags, width, precision, C and Microsoft length modifiers
//! (`hh h l ll z j t I I32 I64`), and `d i u x X o c s p %`.

use super::interp::{Interp, Stop, Value};
use super::{Error, Pos};

pub fn format(it: &mut Interp<'_>, fmt: &[u8], args: &[Value], pos: Pos) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::new();
    let mut next = 0usize;
    let mut i = 0;
    let mut take = |what: &str| -> Result<Value, Stop> {
        let v = args.get(next).cloned().ok_or_else(|| {
            Stop::Error(Error::new(
                pos,
                format!("printf: the format has more conversions than arguments (missing the one for {what})"),
            ))
        })?;
        next += 1;
        Ok(v)
    };
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        if i < fmt.len() && fmt[i] == b'%' {
            out.push(b'%');
            i += 1;
            continue;
        }
        let start = i - 1;
        let (mut left, mut plus, mut space, mut alt, mut zero) =
            (false, false, false, false, false);
        while i < fmt.len() {
            match fmt[i] {
                b'-' => left = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => alt = true,
                b'0' => zero = true,
                _ => break,
            }
            i += 1;
        }
        let mut width: Option<usize> = None;
        if i < fmt.len() && fmt[i] == b'*' {
            i += 1;
            let v = take("*")?;
            let w = it.as_i64(&v);
            if w < 0 {
                left = true;
            }
            width = Some(w.unsigned_abs() as usize);
        } else {
            let mut w = 0usize;
            let mut any = false;
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                w = w * 10 + (fmt[i] - b'0') as usize;
                any = true;
                i += 1;
            }
            if any {
                width = Some(w);
            }
        }
        let mut prec: Option<usize> = None;
        if i < fmt.len() && fmt[i] == b'.' {
            i += 1;
            if i < fmt.len() && fmt[i] == b'*' {
                i += 1;
                let v = take(".*")?;
                prec = Some(it.as_i64(&v).max(0) as usize);
            } else {
                let mut p = 0usize;
                while i < fmt.len() && fmt[i].is_ascii_digit() {
                    p = p * 10 + (fmt[i] - b'0') as usize;
                    i += 1;
                }
                prec = Some(p);
            }
        }
        // Length: the size of the argument in bytes (0: int, i.e. 4).
        let ptr = it.ptr as u32;
        let mut bytes = 4u32;
        loop {
            if i >= fmt.len() {
                break;
            }
            let rest = &fmt[i..];
            if rest.starts_with(b"hh") {
                bytes = 1;
                i += 2;
            } else if rest.starts_with(b"ll") || rest.starts_with(b"I64") {
                bytes = 8;
                i += if rest[0] == b'I' { 3 } else { 2 };
            } else if rest.starts_with(b"I32") {
                bytes = 4;
                i += 3;
            } else {
                match rest[0] {
                    b'h' => bytes = 2,
                    b'l' | b'L' => bytes = 4,
                    b'z' | b'j' | b't' | b'I' => bytes = if rest[0] == b'j' { 8 } else { ptr },
                    _ => break,
                }
                i += 1;
                continue;
            }
        }
        if i >= fmt.len() {
            return Err(Stop::Error(Error::new(
                pos,
                format!(
                    "printf: incomplete conversion '{}' at the end of the format",
                    String::from_utf8_lossy(&fmt[start..])
                ),
            )));
        }
        let conv = fmt[i];
        i += 1;
        let mut sign = String::new();
        let body: Vec<u8> = match conv {
            b'd' | b'i' => {
                let v = take("%d")?;
                let n = sext(v.bits, bytes);
                if n < 0 {
                    sign.push('-');
                } else if plus {
                    sign.push('+');
                } else if space {
                    sign.push(' ');
                }
                digits(n.unsigned_abs().to_string(), prec)
            }
            b'u' | b'x' | b'X' | b'o' => {
                let v = take("%u")?;
                let n = trunc(v.bits, bytes);
                let s = match conv {
                    b'u' => n.to_string(),
                    b'x' => format!("{n:x}"),
                    b'X' => format!("{n:X}"),
                    _ => format!("{n:o}"),
                };
                if alt && n != 0 {
                    sign.push_str(match conv {
                        b'x' => "0x",
                        b'X' => "0X",
                        b'o' => "0",
                        _ => "",
                    });
                }
                digits(s, prec)
            }
            b'c' => {
                let v = take("%c")?;
                vec![v.bits as u8]
            }
            b's' => {
                let v = take("%s")?;
                let mut s = if v.bits == 0 {
                    b"(null)".to_vec()
                } else {
                    it.read_cstr(v.bits, pos)?
                };
                if let Some(p) = prec {
                    s.truncate(p);
                }
                s
            }
            b'p' => {
                let v = take("%p")?;
                if v.bits == 0 {
                    b"(nil)".to_vec()
                } else {
                    format!("{:#x}", v.bits).into_bytes()
                }
            }
            b'n' => {
                return Err(Stop::Error(Error::new(pos, "printf: %n is not supported")));
            }
            c => {
                return Err(Stop::Error(Error::new(
                    pos,
                    format!(
                        "printf: unknown conversion '%{}' (floating point is not supported)",
                        c as char
                    ),
                )))
            }
        };
        let len = sign.len() + body.len();
        let pad = width.unwrap_or(0).saturating_sub(len);
        let numeric = matches!(conv, b'd' | b'i' | b'u' | b'x' | b'X' | b'o');
        if left {
            out.extend_from_slice(sign.as_bytes());
            out.extend_from_slice(&body);
            out.extend(std::iter::repeat_n(b' ', pad));
        } else if zero && numeric && prec.is_none() {
            out.extend_from_slice(sign.as_bytes());
            out.extend(std::iter::repeat_n(b'0', pad));
            out.extend_from_slice(&body);
        } else {
            out.extend(std::iter::repeat_n(b' ', pad));
            out.extend_from_slice(sign.as_bytes());
            out.extend_from_slice(&body);
        }
    }
    Ok(out)
}

fn digits(s: String, prec: Option<usize>) -> Vec<u8> {
    match prec {
        Some(0) if s == "0" => Vec::new(),
        Some(p) if p > s.len() => {
            let mut v = vec![b'0'; p - s.len()];
            v.extend_from_slice(s.as_bytes());
            v
        }
        _ => s.into_bytes(),
    }
}

fn trunc(bits: u64, bytes: u32) -> u64 {
    if bytes >= 8 {
        bits
    } else {
        bits & ((1u64 << (bytes * 8)) - 1)
    }
}

fn sext(bits: u64, bytes: u32) -> i64 {
    if bytes >= 8 {
        return bits as i64;
    }
    let shift = 64 - bytes * 8;
    ((bits << shift) as i64) >> shift
}
