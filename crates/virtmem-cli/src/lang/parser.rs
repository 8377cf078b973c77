//! A recursive-descent parser for the C subset.

use super::ast::*;
use super::lexer::{Tok, Token};
use super::types::{Ty, TypeTable};
use super::{Error, Pos};
use std::rc::Rc;

pub struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    pub types: &'a mut TypeTable,
}

const TYPE_KEYWORDS: [&str; 15] = [
    "void", "char", "short", "int", "long", "signed", "unsigned", "const", "volatile", "static",
    "register", "extern", "struct", "float", "double",
];

const KEYWORDS: [&str; 16] = [
    "if", "else", "while", "do", "for", "break", "continue", "return", "switch", "case", "default",
    "sizeof", "typedef", "__try", "__except", "goto",
];

type PResult<T> = Result<T, Error>;

impl<'a> Parser<'a> {
    pub fn new(toks: Vec<Token>, types: &'a mut TypeTable) -> Parser<'a> {
        Parser { toks, i: 0, types }
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        let j = (self.i + k).min(self.toks.len() - 1);
        &self.toks[j].tok
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(q) if q == s)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.next();
            true
        } else {
            false
        }
    }

    fn eat_ident(&mut self, s: &str) -> bool {
        if self.is_ident(s) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str, what: &str) -> PResult<Pos> {
        if self.is_punct(p) {
            Ok(self.next().pos)
        } else {
            Err(Error::new(
                self.pos(),
                format!("expected '{p}' {what}, found {}", self.peek().describe()),
            ))
        }
    }

    /// Where a missing `;` belongs: just after the previous token, so the message points at
    /// the line that lacks it.
    fn expect_semi(&mut self, what: &str) -> PResult<()> {
        if self.eat_punct(";") {
            return Ok(());
        }
        let found = self.peek().describe();
        let pos = if self.i > 0 {
            let prev = &self.toks[self.i - 1];
            let here = self.pos();
            if prev.pos.line < here.line {
                Pos {
                    line: prev.pos.line,
                    col: prev.pos.col + tok_width(&prev.tok),
                }
            } else {
                here
            }
        } else {
            self.pos()
        };
        Err(Error::new(
            pos,
            format!("expected ';' {what}, found {found}"),
        ))
    }

    fn ident(&mut self, what: &str) -> PResult<(String, Pos)> {
        match self.peek().clone() {
            Tok::Ident(s)
                if !KEYWORDS.contains(&s.as_str()) && !TYPE_KEYWORDS.contains(&s.as_str()) =>
            {
                let p = self.next().pos;
                Ok((s, p))
            }
            t => Err(Error::new(
                self.pos(),
                format!("expected {what}, found {}", t.describe()),
            )),
        }
    }

    /// Whether the token `k` ahead starts a type.
    fn starts_type_at(&self, k: usize) -> bool {
        match self.peek_at(k) {
            Tok::Ident(s) => {
                TYPE_KEYWORDS.contains(&s.as_str()) || self.types.get(s).is_some() || s == "typedef"
            }
            _ => false,
        }
    }

    // ---- programs -------------------------------------------------------------------------

    pub fn program(&mut self) -> PResult<Vec<Item>> {
        let mut items = Vec::new();
        while *self.peek() != Tok::Eof {
            if let Some(f) = self.try_function()? {
                items.push(f);
                continue;
            }
            items.push(Item::Stmt(self.statement()?));
        }
        Ok(items)
    }

    /// A function definition (or a prototype, which is skipped) at the top level.
    fn try_function(&mut self) -> PResult<Option<Item>> {
        let start = self.i;
        let pos = self.pos();
        let ret = if self.starts_type_at(0) && !self.is_ident("typedef") {
            let base = self.base_type()?;
            self.pointers(base)
        } else {
            Ty::INT // `main()`: implicit int
        };
        let is_def = matches!(self.peek(), Tok::Ident(s) if !KEYWORDS.contains(&s.as_str()))
            && matches!(self.peek_at(1), Tok::Punct("("));
        if !is_def {
            self.i = start;
            return Ok(None);
        }
        // Find the matching ')' and look behind it.
        let mut depth = 0;
        let mut k = 1;
        loop {
            match self.peek_at(k) {
                Tok::Punct("(") => depth += 1,
                Tok::Punct(")") => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Eof => {
                    self.i = start;
                    return Ok(None);
                }
                _ => {}
            }
            k += 1;
        }
        let after = self.peek_at(k + 1).clone();
        let typed = start != self.i;
        match after {
            Tok::Punct("{") => {}
            Tok::Punct(";") if typed => {
                // A prototype: nothing to do.
                self.i += k + 2;
                return Ok(Some(Item::Stmt(Stmt {
                    kind: StmtKind::Empty,
                    pos,
                })));
            }
            _ => {
                self.i = start;
                return Ok(None);
            }
        }
        let (name, npos) = self.ident("a function name")?;
        self.expect("(", "after the function name")?;
        let mut params = Vec::new();
        if !(self.is_ident("void") && matches!(self.peek_at(1), Tok::Punct(")"))) {
            while !self.is_punct(")") {
                if self.eat_punct("...") {
                    continue;
                }
                let ppos = self.pos();
                if !self.starts_type_at(0) {
                    return Err(Error::new(
                        ppos,
                        format!(
                            "expected a parameter type, found {}",
                            self.peek().describe()
                        ),
                    ));
                }
                let base = self.base_type()?;
                let ty = self.pointers(base);
                let (pname, _) = if matches!(self.peek(), Tok::Ident(_)) {
                    self.ident("a parameter name")?
                } else {
                    (String::new(), ppos)
                };
                let mut ty = ty;
                while self.eat_punct("[") {
                    while !self.is_punct("]") && *self.peek() != Tok::Eof {
                        self.next();
                    }
                    self.expect("]", "to close the array parameter")?;
                    ty = Ty::ptr(ty);
                }
                params.push((pname, ty, ppos));
                if !self.eat_punct(",") {
                    break;
                }
            }
        } else {
            self.next();
        }
        self.expect(")", "to close the parameter list")?;
        let bpos = self.expect("{", "to open the function body")?;
        let body = self.block_rest(bpos)?;
        Ok(Some(Item::Function(Rc::new(Function {
            name,
            ret,
            params,
            body,
            pos: npos,
        }))))
    }

    // ---- types ----------------------------------------------------------------------------

    /// Declaration specifiers: `unsigned long`, `const char`, `DWORD`, `struct _X`...
    fn base_type(&mut self) -> PResult<Ty> {
        let pos = self.pos();
        let mut signed: Option<bool> = None;
        let mut longs = 0;
        let mut short = false;
        // "int", "char", "void", or a typedef / structure.
        let mut kw: Option<&'static str> = None;
        let mut named: Option<Ty> = None;
        let mut any = false;
        while let Tok::Ident(s) = self.peek().clone() {
            match s.as_str() {
                "const" | "volatile" | "static" | "register" | "extern" | "inline" => {}
                "signed" => signed = Some(true),
                "unsigned" => signed = Some(false),
                "long" => longs += 1,
                "short" => short = true,
                "int" if kw.is_none() && named.is_none() => kw = Some("int"),
                "char" if kw.is_none() && named.is_none() => kw = Some("char"),
                "void" if kw.is_none() && named.is_none() => kw = Some("void"),
                "struct" => {
                    self.next();
                    let (n, npos) = self.ident("a structure name")?;
                    let t = self.types.get_struct(&n).ok_or_else(|| {
                        Error::new(
                            npos,
                            format!(
                                "unknown structure 'struct {n}' (known: MEMORY_BASIC_INFORMATION, SYSTEM_INFO, WIN32_MEMORY_RANGE_ENTRY, MEM_ADDRESS_REQUIREMENTS, MEM_EXTENDED_PARAMETER)"
                            ),
                        )
                    })?;
                    named = Some(t);
                    any = true;
                    continue;
                }
                "float" | "double" => {
                    return Err(Error::new(
                        self.pos(),
                        "floating-point types are not supported (only integers and pointers)",
                    ))
                }
                n if kw.is_none()
                    && named.is_none()
                    && signed.is_none()
                    && longs == 0
                    && !short =>
                {
                    match self.types.get(n) {
                        Some(t) => named = Some(t.clone()),
                        None => break,
                    }
                }
                _ => break,
            }
            any = true;
            self.next();
        }
        if !any {
            return Err(Error::new(
                pos,
                format!("expected a type, found {}", self.peek().describe()),
            ));
        }
        if let Some(t) = named {
            return Ok(t);
        }
        Ok(match kw {
            Some("void") => Ty::Void,
            Some("char") => Ty::Int {
                size: 1,
                signed: signed.unwrap_or(true),
            },
            _ => Ty::Int {
                size: if short {
                    2
                } else if longs >= 2 {
                    8
                } else {
                    4
                },
                signed: signed.unwrap_or(true),
            },
        })
    }

    fn pointers(&mut self, mut t: Ty) -> Ty {
        loop {
            if self.eat_punct("*") {
                t = Ty::ptr(t);
            } else if self.eat_ident("const") || self.eat_ident("volatile") {
            } else {
                return t;
            }
        }
    }

    /// A type name in a cast or sizeof: specifiers and `*`s.
    fn type_name(&mut self) -> PResult<Ty> {
        let base = self.base_type()?;
        let mut t = self.pointers(base);
        while self.eat_punct("[") {
            let n = self.const_int("an array size")?;
            self.expect("]", "to close the array size")?;
            t = Ty::Array(Rc::new(t), n as usize);
        }
        Ok(t)
    }

    fn const_int(&mut self, what: &str) -> PResult<u64> {
        let pos = self.pos();
        let e = self.conditional()?;
        eval_const(&e).ok_or_else(|| Error::new(pos, format!("{what} must be a constant number")))
    }

    // ---- statements -----------------------------------------------------------------------

    fn block_rest(&mut self, open: Pos) -> PResult<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            if self.eat_punct("}") {
                return Ok(out);
            }
            if *self.peek() == Tok::Eof {
                return Err(Error::new(open, "this '{' is never closed (missing '}')"));
            }
            out.push(self.statement()?);
        }
    }

    pub fn statement(&mut self) -> PResult<Stmt> {
        let pos = self.pos();
        let kind = match self.peek().clone() {
            Tok::Punct("{") => {
                self.next();
                StmtKind::Block(self.block_rest(pos)?)
            }
            Tok::Punct(";") => {
                self.next();
                StmtKind::Empty
            }
            Tok::Ident(k) => match k.as_str() {
                "if" => {
                    self.next();
                    self.expect("(", "after 'if'")?;
                    let c = self.expression()?;
                    self.expect(")", "to close the condition of 'if'")?;
                    let then = self.statement()?;
                    let els = if self.eat_ident("else") {
                        Some(Box::new(self.statement()?))
                    } else {
                        None
                    };
                    StmtKind::If(c, Box::new(then), els)
                }
                "while" => {
                    self.next();
                    self.expect("(", "after 'while'")?;
                    let c = self.expression()?;
                    self.expect(")", "to close the condition of 'while'")?;
                    StmtKind::While(c, Box::new(self.statement()?))
                }
                "do" => {
                    self.next();
                    let body = self.statement()?;
                    if !self.eat_ident("while") {
                        return Err(Error::new(
                            self.pos(),
                            format!(
                                "expected 'while' after the body of 'do', found {}",
                                self.peek().describe()
                            ),
                        ));
                    }
                    self.expect("(", "after 'while'")?;
                    let c = self.expression()?;
                    self.expect(")", "to close the condition of 'while'")?;
                    self.expect_semi("after 'do ... while (...)'")?;
                    StmtKind::DoWhile(Box::new(body), c)
                }
                "for" => {
                    self.next();
                    self.expect("(", "after 'for'")?;
                    let init = if self.eat_punct(";") {
                        None
                    } else if self.starts_type_at(0) {
                        let dpos = self.pos();
                        let d = self.declaration()?;
                        Some(Box::new(Stmt { kind: d, pos: dpos }))
                    } else {
                        let e = self.expression()?;
                        self.expect_semi("after the first part of 'for'")?;
                        Some(Box::new(Stmt {
                            pos: e.pos,
                            kind: StmtKind::Expr(e),
                        }))
                    };
                    let cond = if self.is_punct(";") {
                        None
                    } else {
                        Some(self.expression()?)
                    };
                    self.expect_semi("after the condition of 'for'")?;
                    let step = if self.is_punct(")") {
                        None
                    } else {
                        Some(self.expression()?)
                    };
                    self.expect(")", "to close 'for (...)'")?;
                    StmtKind::For(init, cond, step, Box::new(self.statement()?))
                }
                "break" => {
                    self.next();
                    self.expect_semi("after 'break'")?;
                    StmtKind::Break
                }
                "continue" => {
                    self.next();
                    self.expect_semi("after 'continue'")?;
                    StmtKind::Continue
                }
                "return" => {
                    self.next();
                    let e = if self.is_punct(";") {
                        None
                    } else {
                        Some(self.expression()?)
                    };
                    self.expect_semi("after 'return'")?;
                    StmtKind::Return(e)
                }
                "switch" => {
                    self.next();
                    self.expect("(", "after 'switch'")?;
                    let e = self.expression()?;
                    self.expect(")", "to close the value of 'switch'")?;
                    let open = self.expect("{", "to open the body of 'switch'")?;
                    StmtKind::Switch(e, self.block_rest(open)?)
                }
                "case" => {
                    self.next();
                    let e = self.conditional()?;
                    self.expect(":", "after the value of 'case'")?;
                    StmtKind::Case(e)
                }
                "default" => {
                    self.next();
                    self.expect(":", "after 'default'")?;
                    StmtKind::Default
                }
                "__try" => {
                    self.next();
                    let open = self.expect("{", "after '__try'")?;
                    let body = Stmt {
                        kind: StmtKind::Block(self.block_rest(open)?),
                        pos: open,
                    };
                    if self.is_ident("__finally") {
                        return Err(Error::new(
                            self.pos(),
                            "__finally is not supported (use __except)",
                        ));
                    }
                    if !self.eat_ident("__except") {
                        return Err(Error::new(
                            self.pos(),
                            format!(
                                "expected '__except' after the '__try' block, found {}",
                                self.peek().describe()
                            ),
                        ));
                    }
                    self.expect("(", "after '__except'")?;
                    let filter = self.expression()?;
                    self.expect(")", "to close the filter of '__except'")?;
                    let hopen = self.expect("{", "to open the '__except' block")?;
                    let handler = Stmt {
                        kind: StmtKind::Block(self.block_rest(hopen)?),
                        pos: hopen,
                    };
                    StmtKind::Try(Box::new(body), Rc::new(filter), Box::new(handler))
                }
                "goto" => return Err(Error::new(pos, "'goto' is not supported")),
                "else" => return Err(Error::new(
                    pos,
                    "'else' without a matching 'if' (is there a ';' or '}' too many before it?)",
                )),
                "typedef" => {
                    self.next();
                    let base = self.base_type()?;
                    loop {
                        let t = self.pointers(base.clone());
                        let (name, _) = self.ident("the new type name")?;
                        self.types.names.insert(name, t);
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                    self.expect_semi("after 'typedef'")?;
                    StmtKind::Empty
                }
                _ if self.starts_type_at(0) => self.declaration()?,
                _ => {
                    let e = self.expression()?;
                    self.expect_semi("after the expression")?;
                    StmtKind::Expr(e)
                }
            },
            Tok::Eof => {
                return Err(Error::new(
                    pos,
                    "expected a statement, found the end of the program",
                ))
            }
            _ => {
                let e = self.expression()?;
                self.expect_semi("after the expression")?;
                StmtKind::Expr(e)
            }
        };
        Ok(Stmt { kind, pos })
    }

    fn declaration(&mut self) -> PResult<StmtKind> {
        let base = self.base_type()?;
        let mut decls = Vec::new();
        loop {
            let mut ty = self.pointers(base.clone());
            let (name, pos) = self.ident("a variable name")?;
            if self.is_punct("(") {
                return Err(Error::new(
                    pos,
                    format!("'{name}(...)': functions can only be defined at the top level"),
                ));
            }
            let mut dims = Vec::new();
            while self.eat_punct("[") {
                if self.eat_punct("]") {
                    dims.push(None);
                    continue;
                }
                let n = self.const_int("an array size")?;
                self.expect("]", "to close the array size")?;
                dims.push(Some(n as usize));
            }
            let init = if self.eat_punct("=") {
                Some(self.initializer()?)
            } else {
                None
            };
            for (k, d) in dims.iter().enumerate().rev() {
                let n = match d {
                    Some(n) => *n,
                    None if k == 0 => match &init {
                        Some(Init::List(v, _)) => v.len(),
                        Some(Init::Expr(Expr {
                            kind: ExprKind::Str(s),
                            ..
                        })) => s.len() + 1,
                        Some(Init::Expr(Expr {
                            kind: ExprKind::WStr(s),
                            ..
                        })) => super::ast::utf16(s).len() + 1,
                        _ => {
                            return Err(Error::new(
                                pos,
                                format!("the array '{name}' needs a size or an initializer"),
                            ))
                        }
                    },
                    None => {
                        return Err(Error::new(pos, format!("the array '{name}' needs a size")))
                    }
                };
                ty = Ty::Array(Rc::new(ty), n);
            }
            if ty == Ty::Void {
                return Err(Error::new(
                    pos,
                    format!("'{name}' cannot have type void (did you mean 'void *{name}'?)"),
                ));
            }
            decls.push(Declarator {
                name,
                ty,
                init,
                pos,
            });
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_semi("after the declaration")?;
        Ok(StmtKind::Decl(decls))
    }

    fn initializer(&mut self) -> PResult<Init> {
        if self.is_punct("{") {
            let pos = self.next().pos;
            let mut v = Vec::new();
            while !self.is_punct("}") {
                v.push(self.initializer()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect("}", "to close the initializer list")?;
            Ok(Init::List(v, pos))
        } else {
            Ok(Init::Expr(self.assignment()?))
        }
    }

    // ---- expressions ----------------------------------------------------------------------

    pub fn expression(&mut self) -> PResult<Expr> {
        let mut e = self.assignment()?;
        while self.is_punct(",") {
            let pos = self.next().pos;
            let r = self.assignment()?;
            e = Expr {
                kind: ExprKind::Comma(Box::new(e), Box::new(r)),
                pos,
            };
        }
        Ok(e)
    }

    fn assignment(&mut self) -> PResult<Expr> {
        let lhs = self.conditional()?;
        let op = match self.peek() {
            Tok::Punct("=") => None,
            Tok::Punct("+=") => Some(BinOp::Add),
            Tok::Punct("-=") => Some(BinOp::Sub),
            Tok::Punct("*=") => Some(BinOp::Mul),
            Tok::Punct("/=") => Some(BinOp::Div),
            Tok::Punct("%=") => Some(BinOp::Rem),
            Tok::Punct("<<=") => Some(BinOp::Shl),
            Tok::Punct(">>=") => Some(BinOp::Shr),
            Tok::Punct("&=") => Some(BinOp::BitAnd),
            Tok::Punct("|=") => Some(BinOp::BitOr),
            Tok::Punct("^=") => Some(BinOp::BitXor),
            _ => return Ok(lhs),
        };
        let pos = self.next().pos;
        let rhs = self.assignment()?;
        Ok(Expr {
            kind: ExprKind::Assign(op, Box::new(lhs), Box::new(rhs)),
            pos,
        })
    }

    fn conditional(&mut self) -> PResult<Expr> {
        let c = self.binary(0)?;
        if self.is_punct("?") {
            let pos = self.next().pos;
            let a = self.expression()?;
            self.expect(":", "in the conditional expression '?:'")?;
            let b = self.conditional()?;
            return Ok(Expr {
                kind: ExprKind::Cond(Box::new(c), Box::new(a), Box::new(b)),
                pos,
            });
        }
        Ok(c)
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        let Tok::Punct(p) = self.peek() else {
            return None;
        };
        Some(match *p {
            "||" => (BinOp::Or, 1),
            "&&" => (BinOp::And, 2),
            "|" => (BinOp::BitOr, 3),
            "^" => (BinOp::BitXor, 4),
            "&" => (BinOp::BitAnd, 5),
            "==" => (BinOp::Eq, 6),
            "!=" => (BinOp::Ne, 6),
            "<" => (BinOp::Lt, 7),
            ">" => (BinOp::Gt, 7),
            "<=" => (BinOp::Le, 7),
            ">=" => (BinOp::Ge, 7),
            "<<" => (BinOp::Shl, 8),
            ">>" => (BinOp::Shr, 8),
            "+" => (BinOp::Add, 9),
            "-" => (BinOp::Sub, 9),
            "*" => (BinOp::Mul, 10),
            "/" => (BinOp::Div, 10),
            "%" => (BinOp::Rem, 10),
            _ => return None,
        })
    }

    fn binary(&mut self, min: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.binop() {
            if prec <= min {
                break;
            }
            let pos = self.next().pos;
            let rhs = self.binary(prec)?;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                pos,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        let op = match self.peek() {
            Tok::Punct("-") => Some(UnOp::Neg),
            Tok::Punct("+") => Some(UnOp::Plus),
            Tok::Punct("!") => Some(UnOp::Not),
            Tok::Punct("~") => Some(UnOp::BitNot),
            Tok::Punct("*") => Some(UnOp::Deref),
            Tok::Punct("&") => Some(UnOp::AddrOf),
            Tok::Punct("++") => Some(UnOp::PreInc),
            Tok::Punct("--") => Some(UnOp::PreDec),
            _ => None,
        };
        if let Some(op) = op {
            self.next();
            let e = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::Unary(op, Box::new(e)),
                pos,
            });
        }
        if self.is_ident("sizeof") {
            self.next();
            if self.is_punct("(") && self.starts_type_at(1) {
                self.next();
                let t = self.type_name()?;
                self.expect(")", "to close 'sizeof(...)'")?;
                return Ok(Expr {
                    kind: ExprKind::SizeofType(t),
                    pos,
                });
            }
            let e = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::SizeofExpr(Box::new(e)),
                pos,
            });
        }
        if self.is_punct("(") && self.starts_type_at(1) {
            self.next();
            let t = self.type_name()?;
            self.expect(")", "to close the cast")?;
            let e = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::Cast(t, Box::new(e)),
                pos,
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = self.pos();
            if self.eat_punct("[") {
                let i = self.expression()?;
                self.expect("]", "to close the index")?;
                let pos = e.pos;
                e = Expr {
                    kind: ExprKind::Index(Box::new(e), Box::new(i)),
                    pos,
                };
            } else if self.is_punct(".") || self.is_punct("->") {
                let arrow = self.is_punct("->");
                self.next();
                let (f, _) = self.ident("a field name")?;
                e = Expr {
                    kind: ExprKind::Member(Box::new(e), f, arrow),
                    pos,
                };
            } else if self.eat_punct("++") {
                e = Expr {
                    kind: ExprKind::Unary(UnOp::PostInc, Box::new(e)),
                    pos,
                };
            } else if self.eat_punct("--") {
                e = Expr {
                    kind: ExprKind::Unary(UnOp::PostDec, Box::new(e)),
                    pos,
                };
            } else if self.is_punct("(") {
                let ExprKind::Ident(name) = &e.kind else {
                    return Err(Error::new(pos, "only named functions can be called"));
                };
                let name = name.clone();
                self.next();
                let mut args = Vec::new();
                while !self.is_punct(")") {
                    args.push(self.assignment()?);
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                self.expect(")", &format!("to close the call of {name}"))?;
                e = Expr {
                    kind: ExprKind::Call(name, args),
                    pos: e.pos,
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        let t = self.peek().clone();
        let kind = match t {
            Tok::Int {
                value,
                unsigned,
                longs,
                radix,
            } => {
                self.next();
                ExprKind::Int(value, literal_type(value, unsigned, longs, radix))
            }
            Tok::Char(v) => {
                self.next();
                ExprKind::Int(v & 0xFFFF_FFFF, Ty::INT)
            }
            Tok::Str(mut s) => {
                self.next();
                while let Tok::Str(more) = self.peek().clone() {
                    self.next();
                    s.extend(more);
                }
                ExprKind::Str(s)
            }
            Tok::WStr(mut s) => {
                self.next();
                while let Tok::WStr(more) = self.peek().clone() {
                    self.next();
                    s.extend(more);
                }
                ExprKind::WStr(s)
            }
            Tok::Ident(s)
                if KEYWORDS.contains(&s.as_str()) || TYPE_KEYWORDS.contains(&s.as_str()) =>
            {
                return Err(Error::new(
                    pos,
                    format!("expected an expression, found '{s}'"),
                ))
            }
            Tok::Ident(s) => {
                self.next();
                ExprKind::Ident(s)
            }
            Tok::Punct("(") => {
                self.next();
                let e = self.expression()?;
                self.expect(")", "to close the parenthesis")?;
                return Ok(e);
            }
            t => {
                return Err(Error::new(
                    pos,
                    format!("expected an expression, found {}", t.describe()),
                ))
            }
        };
        Ok(Expr { kind, pos })
    }
}

/// The width of a token as written (for pointing just after it).
fn tok_width(t: &Tok) -> u32 {
    match t {
        Tok::Ident(s) => s.chars().count() as u32,
        Tok::Punct(p) => p.len() as u32,
        Tok::Int { value, .. } => format!("{value}").len() as u32,
        Tok::Str(s) => String::from_utf8_lossy(s).chars().count() as u32 + 2,
        Tok::WStr(s) => String::from_utf8_lossy(s).chars().count() as u32 + 3,
        Tok::Char(_) => 3,
        Tok::Eof => 0,
    }
}

/// C's rule for the type of an integer literal (with Windows' 32-bit `long`).
fn literal_type(v: u64, unsigned: bool, longs: u8, radix: u32) -> Ty {
    let fits_int = v <= i32::MAX as u64;
    let fits_uint = v <= u32::MAX as u64;
    if longs >= 2 || !fits_uint {
        if unsigned || v > i64::MAX as u64 {
            return Ty::U64;
        }
        return Ty::I64;
    }
    if unsigned {
        return Ty::UINT;
    }
    if fits_int {
        Ty::INT
    } else if radix != 10 {
        Ty::UINT
    } else {
        Ty::I64
    }
}

/// The value of a constant expression made of literals (array sizes, `case` labels are
/// evaluated at run time).
pub fn eval_const(e: &Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::Int(v, _) => Some(*v),
        ExprKind::Binary(op, a, b) => {
            let (a, b) = (eval_const(a)?, eval_const(b)?);
            Some(match op {
                BinOp::Add => a.wrapping_add(b),
                BinOp::Sub => a.wrapping_sub(b),
                BinOp::Mul => a.wrapping_mul(b),
                BinOp::Div => a.checked_div(b)?,
                BinOp::Rem => a.checked_rem(b)?,
                BinOp::Shl => a.wrapping_shl(b as u32),
                BinOp::Shr => a.wrapping_shr(b as u32),
                BinOp::BitAnd => a & b,
                BinOp::BitOr => a | b,
                BinOp::BitXor => a ^ b,
                _ => return None,
            })
        }
        ExprKind::Ident(n) => super::names::constant(n).map(|(v, _)| v),
        ExprKind::Cast(_, e) => eval_const(e),
        _ => None,
    }
}
