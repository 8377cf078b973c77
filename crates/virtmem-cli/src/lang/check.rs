//! Checks before running: every name is declared (a variable in scope, a constant, a
//! function) and every call has the right number of arguments, so a typo is reported before
//! the program changes anything.

use super::ast::*;
use super::names;
use super::Error;
use std::collections::{HashMap, HashSet};

struct Checker<'a> {
    funcs: &'a HashMap<String, usize>,
    scopes: Vec<HashSet<String>>,
}

/// Checks `items`; `globals` are the names already declared (the REPL's earlier input) and
/// `funcs` the user functions already known with their parameter counts.
pub fn check(
    items: &[Item],
    globals: &HashSet<String>,
    known_funcs: &HashMap<String, usize>,
) -> Result<(), Error> {
    let mut funcs = known_funcs.clone();
    for it in items {
        if let Item::Function(f) = it {
            funcs.insert(f.name.clone(), f.params.len());
        }
    }
    let mut c = Checker {
        funcs: &funcs,
        scopes: vec![globals.clone()],
    };
    // Top-level declarations are visible in every function, in order.
    for it in items {
        match it {
            Item::Stmt(s) => c.stmt(s)?,
            Item::Function(_) => {}
        }
    }
    for it in items {
        if let Item::Function(f) = it {
            c.scopes
                .push(f.params.iter().map(|p| p.0.clone()).collect());
            for s in &f.body {
                c.stmt(s)?;
            }
            c.scopes.pop();
        }
    }
    Ok(())
}

impl Checker<'_> {
    fn declared(&self, n: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(n))
    }

    fn block(&mut self, b: &[Stmt]) -> Result<(), Error> {
        self.scopes.push(HashSet::new());
        let r = b.iter().try_for_each(|s| self.stmt(s));
        self.scopes.pop();
        r
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), Error> {
        match &s.kind {
            StmtKind::Empty | StmtKind::Break | StmtKind::Continue | StmtKind::Default => Ok(()),
            StmtKind::Expr(e) | StmtKind::Case(e) => self.expr(e),
            StmtKind::Decl(ds) => {
                for d in ds {
                    // The name is in scope in its own initializer (as in C).
                    self.scopes
                        .last_mut()
                        .expect("a scope")
                        .insert(d.name.clone());
                    if let Some(i) = &d.init {
                        self.init(i)?;
                    }
                }
                Ok(())
            }
            StmtKind::Block(b) => self.block(b),
            StmtKind::If(c, a, b) => {
                self.expr(c)?;
                self.stmt(a)?;
                if let Some(b) = b {
                    self.stmt(b)?;
                }
                Ok(())
            }
            StmtKind::While(c, b) | StmtKind::DoWhile(b, c) => {
                self.expr(c)?;
                self.stmt(b)
            }
            StmtKind::For(i, c, st, b) => {
                self.scopes.push(HashSet::new());
                let r = (|| {
                    if let Some(i) = i {
                        self.stmt(i)?;
                    }
                    if let Some(c) = c {
                        self.expr(c)?;
                    }
                    if let Some(st) = st {
                        self.expr(st)?;
                    }
                    self.stmt(b)
                })();
                self.scopes.pop();
                r
            }
            StmtKind::Return(e) => e.as_ref().map_or(Ok(()), |e| self.expr(e)),
            StmtKind::Switch(e, b) => {
                self.expr(e)?;
                self.block(b)
            }
            StmtKind::Try(b, f, h) => {
                self.stmt(b)?;
                self.expr(f)?;
                self.stmt(h)
            }
        }
    }

    fn init(&mut self, i: &Init) -> Result<(), Error> {
        match i {
            Init::Expr(e) => self.expr(e),
            Init::List(v, _) => v.iter().try_for_each(|i| self.init(i)),
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<(), Error> {
        match &e.kind {
            ExprKind::Int(..) | ExprKind::Str(_) | ExprKind::WStr(_) | ExprKind::SizeofType(_) => {
                Ok(())
            }
            ExprKind::Ident(n) => {
                if self.declared(n)
                    || names::constant(n).is_some()
                    || names::pointer_constant(n).is_some()
                {
                    return Ok(());
                }
                if self.funcs.contains_key(n) || names::win32(n).is_some() {
                    return Err(Error::new(
                        e.pos,
                        format!("'{n}' is a function: call it, e.g. {n}(...)"),
                    ));
                }
                Err(Error::new(e.pos, self.unknown(n, false)))
            }
            ExprKind::Unary(_, x) | ExprKind::Cast(_, x) | ExprKind::SizeofExpr(x) => self.expr(x),
            ExprKind::Member(x, _, _) => self.expr(x),
            ExprKind::Binary(_, a, b)
            | ExprKind::Assign(_, a, b)
            | ExprKind::Comma(a, b)
            | ExprKind::Index(a, b) => {
                self.expr(a)?;
                self.expr(b)
            }
            ExprKind::Cond(c, a, b) => {
                self.expr(c)?;
                self.expr(a)?;
                self.expr(b)
            }
            ExprKind::Call(n, args) => {
                let want = if let Some(&k) = self.funcs.get(n) {
                    Some(k)
                } else if let Some(sig) = names::win32(n) {
                    Some(sig.params.len())
                } else if names::LIBC.contains(&n.as_str()) {
                    None
                } else if self.declared(n) {
                    return Err(Error::new(
                        e.pos,
                        format!("'{n}' is a variable, not a function"),
                    ));
                } else {
                    return Err(Error::new(e.pos, self.unknown(n, true)));
                };
                if let Some(k) = want {
                    if k != args.len() {
                        return Err(Error::new(
                            e.pos,
                            format!("{n} takes {k} argument(s), {} given", args.len()),
                        ));
                    }
                }
                args.iter().try_for_each(|a| self.expr(a))
            }
        }
    }

    fn unknown(&self, name: &str, call: bool) -> String {
        let mut cands: Vec<String> = Vec::new();
        if call {
            cands.extend(names::WIN32.iter().map(|s| s.name.to_string()));
            cands.extend(names::LIBC.iter().map(|s| s.to_string()));
            cands.extend(self.funcs.keys().cloned());
        } else {
            cands.extend(names::constant_names().map(String::from));
            for s in &self.scopes {
                cands.extend(s.iter().cloned());
            }
        }
        let best = cands
            .iter()
            .map(|c| (edit_distance(&c.to_lowercase(), &name.to_lowercase()), c))
            .filter(|(d, c)| *d <= 2.max(name.len() / 4) && c.as_str() != name)
            .min();
        match (best, call) {
            (Some((_, c)), true) => format!("unknown function '{name}' (did you mean '{c}'?)"),
            (None, true) => format!("unknown function '{name}'"),
            (Some((_, c)), false) => format!("unknown name '{name}' (did you mean '{c}'?)"),
            (None, false) => {
                format!("unknown name '{name}': declare it first (e.g. 'void *{name};')")
            }
        }
    }
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let c = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + c);
        }
        prev = cur;
    }
    prev[b.len()]
}
