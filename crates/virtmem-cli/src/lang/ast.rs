//! The syntax tree.

use super::types::Ty;
use super::Pos;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
    BitNot,
    Deref,
    AddrOf,
    PreInc,
    PreDec,
    PostInc,
    PostDec,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    /// An integer literal and its type.
    Int(u64, Ty),
    Str(Vec<u8>),
    /// A wide string literal (`L"..."`), as UTF-8 text.
    WStr(Vec<u8>),
    Ident(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Assign(Option<BinOp>, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Member(Box<Expr>, String, bool),
    Cast(Ty, Box<Expr>),
    SizeofType(Ty),
    SizeofExpr(Box<Expr>),
}

#[derive(Clone, Debug)]
pub enum Init {
    Expr(Expr),
    List(Vec<Init>, Pos),
}

#[derive(Clone, Debug)]
pub struct Declarator {
    pub name: String,
    pub ty: Ty,
    pub init: Option<Init>,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    Empty,
    Expr(Expr),
    Decl(Vec<Declarator>),
    Block(Vec<Stmt>),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    DoWhile(Box<Stmt>, Expr),
    For(Option<Box<Stmt>>, Option<Expr>, Option<Expr>, Box<Stmt>),
    Break,
    Continue,
    Return(Option<Expr>),
    Switch(Expr, Vec<Stmt>),
    Case(Expr),
    Default,
    /// `__try { … } __except (filter) { … }`
    Try(Box<Stmt>, Rc<Expr>, Box<Stmt>),
}

#[derive(Debug)]
pub struct Function {
    pub name: String,
    pub ret: Ty,
    pub params: Vec<(String, Ty, Pos)>,
    pub body: Vec<Stmt>,
    pub pos: Pos,
}

#[derive(Debug)]
pub enum Item {
    Function(Rc<Function>),
    Stmt(Stmt),
}

/// The UTF-16 units of a wide string literal's text (without the terminating NUL).
pub fn utf16(text: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(text).encode_utf16().collect()
}
