//! The interpreter: a tree walker over byte-addressed memory.
//!
//! The program's own variables, string literals and `malloc` blocks live in two segments
//! *outside* the address space being studied (above its user-space limit, where a real
//! process has its kernel half), so they never appear in its map. Every other address is the
//! address space's: loads and stores go through [`Machine::read`] / [`Machine::write`], which
//! raise the Windows exceptions (access violation, guard page) that `__try`/`__except` can
//! catch.

use super::ast::*;
use super::names::{self, Show};
use super::types::{Ty, TypeTable};
use super::{Error, Pos};
use crate::machine::{Machine, MemFault};
use std::collections::HashMap;
use std::rc::Rc;
use virtmem::sim::AccessError;

#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub ty: Ty,
    pub bits: u64,
}

impl Value {
    pub fn int(v: i64) -> Value {
        Value {
            ty: Ty::INT,
            bits: v as u64 & 0xFFFF_FFFF,
        }
    }
    pub fn void() -> Value {
        Value {
            ty: Ty::Void,
            bits: 0,
        }
    }
}

/// Why execution stopped early.
#[derive(Debug)]
pub enum Stop {
    /// A runtime error (not a Windows exception).
    Error(Error),
    /// An exception no `__except` handled: the program dies, as on Windows.
    Exception { code: u32, what: String, pos: Pos },
    /// `exit(n)`.
    Exit(i32),
    /// Unwinding to the `__except` block with this id.
    Unwind { id: usize, code: u32 },
}

impl Stop {
    fn at(pos: Pos, msg: impl Into<String>) -> Stop {
        Stop::Error(Error::new(pos, msg))
    }
}

type R<T> = Result<T, Stop>;

enum Flow {
    Normal,
    Break,
    Continue,
    Return(Value),
}

/// A Win32 call, for traces.
#[derive(Clone, Debug)]
pub struct CallEvent {
    /// The function.
    #[allow(dead_code)]
    pub name: &'static str,
    /// `VirtualAlloc(0x40000000, 0x8000, MEM_RESERVE, PAGE_READWRITE)`
    pub call: String,
    /// `0x40000000`, `NULL`, `TRUE`...
    pub result: String,
    /// Whether the call failed (it set the last error).
    pub failed: bool,
    pub last_error: u32,
    pub pos: Pos,
    /// Whether the call can change the address space.
    #[allow(dead_code)]
    pub changes_map: bool,
    /// The address the call is about (its first address argument, or the address it
    /// returned).
    pub focus: Option<u64>,
}

/// Where the program's output and the trace go.
pub trait Sink {
    fn output(&mut self, text: &str);
    fn call(&mut self, _ev: &CallEvent) {}
    /// The key a program waiting for one (`getchar`, `_getch`) gets: EOF (-1) unless the
    /// sink provides one (the tour runs another process meanwhile).
    fn key(&mut self) -> i32 {
        -1
    }
}

#[derive(Clone, Debug)]
struct Var {
    addr: u64,
    ty: Ty,
}

struct Frame {
    scopes: Vec<(HashMap<String, Var>, usize)>,
}

#[derive(Clone)]
struct Handler {
    id: usize,
    filter: Rc<Expr>,
    frame: usize,
    depth: usize,
}

/// A memory segment of the program's own.
struct Segment {
    base: u64,
    data: Vec<u8>,
    limit: usize,
}

impl Segment {
    fn contains(&self, addr: u64, len: usize) -> Option<usize> {
        let off = addr.checked_sub(self.base)? as usize;
        (off.checked_add(len)? <= self.data.len()).then_some(off)
    }
    fn in_range(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.base + self.limit as u64
    }
}

pub struct Interp<'m> {
    pub m: &'m Machine,
    pub ptr: u8,
    pub types: TypeTable,
    stack: Segment,
    heap: Segment,
    frames: Vec<Frame>,
    funcs: HashMap<String, Rc<Function>>,
    strings: HashMap<Vec<u8>, u64>,
    pub last_error: u32,
    pub sink: Box<dyn Sink + 'm>,
    handlers: Vec<Handler>,
    next_handler: usize,
    exception_code: u32,
    view: Option<(usize, usize)>,
    depth: usize,
    steps: u64,
    pub max_steps: u64,
    /// The REPL: top-level declarations may be repeated.
    pub repl: bool,
}

const STACK_LIMIT: usize = 16 << 20;
const HEAP_LIMIT: usize = 64 << 20;

fn mask(bits: u64, size: u8) -> u64 {
    if size >= 8 {
        bits
    } else {
        bits & ((1u64 << (size * 8)) - 1)
    }
}

impl<'m> Interp<'m> {
    pub fn new(m: &'m Machine, sink: Box<dyn Sink + 'm>) -> Interp<'m> {
        let ptr = m.ptr_bytes();
        let (sb, hb) = if ptr == 4 {
            (0xF000_0000u64, 0xF800_0000u64)
        } else {
            (0xFFFF_8000_0000_0000u64, 0xFFFF_9000_0000_0000u64)
        };
        Interp {
            m,
            ptr,
            types: TypeTable::new(ptr),
            stack: Segment {
                base: sb,
                data: Vec::new(),
                limit: STACK_LIMIT,
            },
            heap: Segment {
                base: hb,
                data: Vec::new(),
                limit: HEAP_LIMIT,
            },
            frames: vec![Frame {
                scopes: vec![(HashMap::new(), 0)],
            }],
            funcs: HashMap::new(),
            strings: HashMap::new(),
            last_error: 0,
            sink,
            handlers: Vec::new(),
            next_handler: 0,
            exception_code: 0,
            view: None,
            depth: 0,
            steps: 0,
            max_steps: 0,
            repl: false,
        }
    }

    fn size_t(&self) -> Ty {
        Ty::Int {
            size: self.ptr,
            signed: false,
        }
    }

    fn ptr_mask(&self) -> u64 {
        mask(u64::MAX, self.ptr)
    }

    // ---- programs -------------------------------------------------------------------------

    /// Registers the functions of `items` (so calls may precede definitions), then runs the
    /// top-level statements in order. Returns the value of the last expression statement.
    pub fn load_items(&mut self, items: &[Item]) -> R<Option<(Value, bool)>> {
        for it in items {
            if let Item::Function(f) = it {
                self.funcs.insert(f.name.clone(), f.clone());
            }
        }
        let mut last = None;
        for it in items {
            if let Item::Stmt(s) = it {
                last = None;
                if let StmtKind::Expr(e) = &s.kind {
                    self.tick(s.pos)?;
                    let v = self.eval(e)?;
                    let show = !matches!(e.kind, ExprKind::Assign(..))
                        && !matches!(&e.kind, ExprKind::Call(n, _) if names::win32(n).is_some() || names::LIBC.contains(&n.as_str()))
                        && v.ty != Ty::Void;
                    last = Some((v, show));
                    continue;
                }
                match self.exec(s)? {
                    Flow::Normal => {}
                    Flow::Return(_) => return Err(Stop::at(s.pos, "'return' outside a function")),
                    _ => return Err(Stop::at(s.pos, "'break' or 'continue' outside a loop")),
                }
            }
        }
        Ok(last)
    }

    /// Checks names and argument counts of `items` against what this session knows.
    pub fn check(&self, items: &[Item]) -> Result<(), Error> {
        let globals = self.frames[0].scopes[0].0.keys().cloned().collect();
        let funcs = self
            .funcs
            .iter()
            .map(|(k, f)| (k.clone(), f.params.len()))
            .collect();
        super::check::check(items, &globals, &funcs)
    }

    /// Calls `main` (with `argc = 1` and `argv = {"program", NULL}` if it wants them) and
    /// returns its result.
    pub fn run_main(&mut self) -> R<i32> {
        let Some(f) = self.funcs.get("main").cloned() else {
            return Ok(0);
        };
        let mut args = Vec::new();
        if !f.params.is_empty() {
            let name = self.intern(b"program");
            let argv = self.heap_alloc(2 * self.ptr as usize, f.pos)?;
            self.write_local(argv, &name.to_le_bytes()[..self.ptr as usize]);
            args.push(Value::int(1));
            args.push(Value {
                ty: Ty::ptr(Ty::ptr(Ty::CHAR)),
                bits: argv,
            });
            args.truncate(f.params.len());
        }
        let v = self.call_user(&f, args, f.pos)?;
        Ok(if v.ty == Ty::Void {
            0
        } else {
            self.as_i64(&v) as i32
        })
    }

    fn tick(&mut self, pos: Pos) -> R<()> {
        self.steps += 1;
        if self.max_steps != 0 && self.steps > self.max_steps {
            return Err(Stop::at(
                pos,
                format!(
                    "the program ran more than {} steps (an endless loop?)",
                    self.max_steps
                ),
            ));
        }
        Ok(())
    }

    // ---- memory ---------------------------------------------------------------------------

    fn stack_alloc(&mut self, size: usize, align: usize, pos: Pos) -> R<u64> {
        let off = self.stack.data.len().next_multiple_of(align.max(1));
        if off + size > STACK_LIMIT {
            return self
                .raise(0xC000_00FD, "stack overflow".into(), pos)
                .and(Err(Stop::at(pos, "stack overflow")));
        }
        self.stack.data.resize(off + size, 0);
        Ok(self.stack.base + off as u64)
    }

    fn heap_alloc(&mut self, size: usize, pos: Pos) -> R<u64> {
        let off = self.heap.data.len().next_multiple_of(16);
        if off + size.max(1) > HEAP_LIMIT {
            return Err(Stop::at(pos, "out of memory for malloc (64 MiB)"));
        }
        self.heap.data.resize(off + size.max(1), 0);
        Ok(self.heap.base + off as u64)
    }

    fn intern(&mut self, s: &[u8]) -> u64 {
        if let Some(&a) = self.strings.get(s) {
            return a;
        }
        let mut v = s.to_vec();
        v.push(0);
        let off = self.heap.data.len();
        self.heap.data.extend_from_slice(&v);
        let a = self.heap.base + off as u64;
        self.strings.insert(s.to_vec(), a);
        a
    }

    fn write_local(&mut self, addr: u64, bytes: &[u8]) {
        for seg in [&mut self.stack, &mut self.heap] {
            if let Some(off) = seg.contains(addr, bytes.len()) {
                seg.data[off..off + bytes.len()].copy_from_slice(bytes);
                return;
            }
        }
    }

    /// A raw access (no exception handling): `Err` is the fault.
    fn access(&mut self, addr: u64, buf: &mut [u8], write: Option<&[u8]>) -> Result<(), MemFault> {
        let len = buf.len().max(write.map_or(0, |w| w.len()));
        for seg in [&mut self.stack, &mut self.heap] {
            if seg.in_range(addr) {
                return match seg.contains(addr, len) {
                    Some(off) => {
                        match write {
                            Some(w) => seg.data[off..off + w.len()].copy_from_slice(w),
                            None => buf.copy_from_slice(&seg.data[off..off + buf.len()]),
                        }
                        Ok(())
                    }
                    None => Err(MemFault::Exception(AccessError::AccessViolation {
                        address: addr as usize,
                        access: if write.is_some() {
                            virtmem::Access::Write
                        } else {
                            virtmem::Access::Read
                        },
                    })),
                };
            }
        }
        if addr > usize::MAX as u64 {
            return Err(MemFault::Exception(AccessError::AccessViolation {
                address: usize::MAX,
                access: virtmem::Access::Read,
            }));
        }
        match write {
            Some(w) => self.m.write(addr as usize, w),
            None => self.m.read(addr as usize, buf),
        }
    }

    /// A load by the program: faults raise Windows exceptions.
    pub fn mem_read(&mut self, addr: u64, buf: &mut [u8], pos: Pos) -> R<()> {
        loop {
            match self.access(addr, buf, None) {
                Ok(()) => return Ok(()),
                Err(f) => self.fault(f, pos)?,
            }
        }
    }

    /// A store by the program: faults raise Windows exceptions.
    pub fn mem_write(&mut self, addr: u64, bytes: &[u8], pos: Pos) -> R<()> {
        loop {
            match self.access(addr, &mut [], Some(bytes)) {
                Ok(()) => return Ok(()),
                Err(f) => self.fault(f, pos)?,
            }
        }
    }

    /// An access by a Win32 function to its output arguments: a bad pointer is
    /// ERROR_NOACCESS for the call, never an exception.
    fn out_write(&mut self, addr: u64, bytes: &[u8]) -> bool {
        self.access(addr, &mut [], Some(bytes)).is_ok()
    }

    fn in_read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.access(addr, buf, None).is_ok()
    }

    fn fault(&mut self, f: MemFault, pos: Pos) -> R<()> {
        match f {
            MemFault::Refused(msg) => Err(Stop::at(pos, msg)),
            MemFault::Exception(e) => {
                let code = e.exception_code();
                self.raise(code, e.to_string(), pos)
            }
        }
    }

    /// Raises a Windows exception: the `__except` filters are asked, innermost first, as
    /// Windows does before unwinding. `Ok` means EXCEPTION_CONTINUE_EXECUTION (retry).
    fn raise(&mut self, code: u32, what: String, pos: Pos) -> R<()> {
        let mut i = self.handlers.len();
        while i > 0 {
            i -= 1;
            let h = self.handlers[i].clone();
            let outer = self.handlers.split_off(i);
            let saved_view = self.view.replace((h.frame, h.depth));
            let saved_code = std::mem::replace(&mut self.exception_code, code);
            let r = self.eval(&h.filter);
            self.view = saved_view;
            self.handlers.extend(outer);
            let v = match r {
                Ok(v) => self.as_i64(&v) as i32,
                Err(e) => {
                    self.exception_code = saved_code;
                    return Err(e);
                }
            };
            match v.signum() {
                1 => return Err(Stop::Unwind { id: h.id, code }),
                -1 => return Ok(()),
                _ => self.exception_code = saved_code,
            }
        }
        Err(Stop::Exception { code, what, pos })
    }

    fn load(&mut self, addr: u64, ty: &Ty, pos: Pos) -> R<Value> {
        match ty {
            Ty::Int { size, .. } => {
                let mut b = [0u8; 8];
                self.mem_read(addr, &mut b[..*size as usize], pos)?;
                Ok(Value {
                    ty: ty.clone(),
                    bits: u64::from_le_bytes(b),
                })
            }
            Ty::Ptr(_) => {
                let mut b = [0u8; 8];
                self.mem_read(addr, &mut b[..self.ptr as usize], pos)?;
                Ok(Value {
                    ty: ty.clone(),
                    bits: u64::from_le_bytes(b),
                })
            }
            Ty::Array(t, _) => Ok(Value {
                ty: Ty::ptr((**t).clone()),
                bits: addr,
            }),
            Ty::Struct(_) => Ok(Value {
                ty: ty.clone(),
                bits: addr,
            }),
            Ty::Void => Err(Stop::at(
                pos,
                "cannot read through a 'void *': cast it to a pointer to a type first, e.g. *(int *)p",
            )),
        }
    }

    fn store(&mut self, addr: u64, ty: &Ty, v: &Value, pos: Pos) -> R<Value> {
        match ty {
            Ty::Struct(s) => {
                if v.ty != *ty {
                    return Err(Stop::at(
                        pos,
                        format!("cannot assign a value of type {} to a {}", v.ty, s.name),
                    ));
                }
                let mut buf = vec![0u8; s.size];
                self.mem_read(v.bits, &mut buf, pos)?;
                self.mem_write(addr, &buf, pos)?;
                Ok(v.clone())
            }
            Ty::Array(..) => Err(Stop::at(pos, "cannot assign to a whole array")),
            Ty::Void => Err(Stop::at(
                pos,
                "cannot store through a 'void *': cast it first, e.g. *(int *)p = 5",
            )),
            _ => {
                let v = self.convert(v, ty, pos)?;
                let n = ty.size(self.ptr);
                self.mem_write(addr, &v.bits.to_le_bytes()[..n], pos)?;
                Ok(v)
            }
        }
    }

    pub fn convert(&self, v: &Value, to: &Ty, pos: Pos) -> R<Value> {
        if !v.ty.is_scalar() && *to != Ty::Void {
            if v.ty == *to {
                return Ok(v.clone());
            }
            return Err(Stop::at(
                pos,
                format!("cannot convert a value of type {} to {}", v.ty, to),
            ));
        }
        let bits = match to {
            Ty::Int { size, .. } => {
                // Sign-extend the source first, then truncate.
                mask(self.as_i64(v) as u64, *size)
            }
            Ty::Ptr(_) => mask(self.as_i64(v) as u64, self.ptr),
            Ty::Void => 0,
            _ => {
                return Err(Stop::at(
                    pos,
                    format!("cannot convert a value of type {} to {}", v.ty, to),
                ))
            }
        };
        Ok(Value {
            ty: to.clone(),
            bits,
        })
    }

    pub fn as_i64(&self, v: &Value) -> i64 {
        match v.ty {
            Ty::Int { size, signed: true } if size < 8 => {
                let shift = 64 - size as u32 * 8;
                ((v.bits << shift) as i64) >> shift
            }
            _ => v.bits as i64,
        }
    }

    fn truthy(&self, v: &Value, pos: Pos) -> R<bool> {
        if !v.ty.is_scalar() {
            return Err(Stop::at(pos, format!("a {} is not a condition", v.ty)));
        }
        Ok(v.bits != 0)
    }

    // ---- names ----------------------------------------------------------------------------

    fn lookup(&self, name: &str) -> Option<Var> {
        let (f, d) = self.view.unwrap_or_else(|| {
            let f = self.frames.len() - 1;
            (f, self.frames[f].scopes.len())
        });
        for (scope, _) in self.frames[f].scopes[..d].iter().rev() {
            if let Some(v) = scope.get(name) {
                return Some(v.clone());
            }
        }
        self.frames[0].scopes[0].0.get(name).cloned()
    }

    fn declare(&mut self, name: &str, ty: &Ty, pos: Pos) -> R<u64> {
        let global = self.frames.len() == 1 && self.frames[0].scopes.len() == 1;
        {
            let scope = &self
                .frames
                .last()
                .expect("a frame")
                .scopes
                .last()
                .expect("a scope")
                .0;
            if scope.contains_key(name) && !global {
                return Err(Stop::at(
                    pos,
                    format!("'{name}' is already declared in this block"),
                ));
            }
        }
        let addr = self.stack_alloc(ty.size(self.ptr), ty.align(self.ptr), pos)?;
        let scope = &mut self
            .frames
            .last_mut()
            .expect("a frame")
            .scopes
            .last_mut()
            .expect("a scope")
            .0;
        scope.insert(
            name.to_string(),
            Var {
                addr,
                ty: ty.clone(),
            },
        );
        Ok(addr)
    }

    fn push_scope(&mut self) {
        let sp = self.stack.data.len();
        self.frames
            .last_mut()
            .expect("a frame")
            .scopes
            .push((HashMap::new(), sp));
    }

    fn pop_scope(&mut self) {
        if let Some((_, sp)) = self.frames.last_mut().expect("a frame").scopes.pop() {
            self.stack.data.truncate(sp);
        }
    }

    fn unknown_name(&self, name: &str, pos: Pos) -> Stop {
        let mut cands: Vec<String> = names::constant_names().map(String::from).collect();
        for f in &self.frames {
            for (s, _) in &f.scopes {
                cands.extend(s.keys().cloned());
            }
        }
        cands.extend(self.funcs.keys().cloned());
        cands.extend(names::WIN32.iter().map(|s| s.name.to_string()));
        let best = cands
            .iter()
            .map(|c| (edit_distance(&c.to_lowercase(), &name.to_lowercase()), c))
            .filter(|(d, c)| *d <= 2.max(name.len() / 4) && c.as_str() != name)
            .min();
        match best {
            Some((_, c)) => Stop::at(pos, format!("unknown name '{name}' (did you mean '{c}'?)")),
            None => Stop::at(
                pos,
                format!("unknown name '{name}': declare it first (e.g. 'void *{name};')"),
            ),
        }
    }

    // ---- statements -----------------------------------------------------------------------

    fn exec_block(&mut self, stmts: &[Stmt]) -> R<Flow> {
        self.push_scope();
        let r = self.exec_list(stmts);
        self.pop_scope();
        r
    }

    fn exec_list(&mut self, stmts: &[Stmt]) -> R<Flow> {
        for s in stmts {
            match self.exec(s)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn exec(&mut self, s: &Stmt) -> R<Flow> {
        self.tick(s.pos)?;
        match &s.kind {
            StmtKind::Empty | StmtKind::Case(_) | StmtKind::Default => Ok(Flow::Normal),
            StmtKind::Expr(e) => {
                self.eval(e)?;
                Ok(Flow::Normal)
            }
            StmtKind::Decl(ds) => {
                for d in ds {
                    let addr = self.declare(&d.name, &d.ty, d.pos)?;
                    if let Some(init) = &d.init {
                        self.init(addr, &d.ty, init)?;
                    }
                }
                Ok(Flow::Normal)
            }
            StmtKind::Block(b) => self.exec_block(b),
            StmtKind::If(c, a, b) => {
                let v = self.eval(c)?;
                if self.truthy(&v, c.pos)? {
                    self.exec(a)
                } else if let Some(b) = b {
                    self.exec(b)
                } else {
                    Ok(Flow::Normal)
                }
            }
            StmtKind::While(c, body) => {
                loop {
                    let v = self.eval(c)?;
                    if !self.truthy(&v, c.pos)? {
                        break;
                    }
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        _ => {}
                    }
                }
                Ok(Flow::Normal)
            }
            StmtKind::DoWhile(body, c) => {
                loop {
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        _ => {}
                    }
                    let v = self.eval(c)?;
                    if !self.truthy(&v, c.pos)? {
                        break;
                    }
                }
                Ok(Flow::Normal)
            }
            StmtKind::For(init, cond, step, body) => {
                self.push_scope();
                let r = (|| {
                    if let Some(i) = init {
                        self.exec(i)?;
                    }
                    loop {
                        self.tick(s.pos)?;
                        if let Some(c) = cond {
                            let v = self.eval(c)?;
                            if !self.truthy(&v, c.pos)? {
                                break;
                            }
                        }
                        match self.exec(body)? {
                            Flow::Break => break,
                            Flow::Return(v) => return Ok(Flow::Return(v)),
                            _ => {}
                        }
                        if let Some(st) = step {
                            self.eval(st)?;
                        }
                    }
                    Ok(Flow::Normal)
                })();
                self.pop_scope();
                r
            }
            StmtKind::Break => Ok(Flow::Break),
            StmtKind::Continue => Ok(Flow::Continue),
            StmtKind::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::void(),
                };
                Ok(Flow::Return(v))
            }
            StmtKind::Switch(e, body) => {
                let v = self.eval(e)?;
                let v = self.as_i64(&v);
                let mut start = None;
                let mut default = None;
                for (i, st) in body.iter().enumerate() {
                    match &st.kind {
                        StmtKind::Case(c) => {
                            let cv = self.eval(c)?;
                            if self.as_i64(&cv) as u32 == v as u32 && start.is_none() {
                                start = Some(i);
                            }
                        }
                        StmtKind::Default => default = Some(i),
                        _ => {}
                    }
                }
                let Some(from) = start.or(default) else {
                    return Ok(Flow::Normal);
                };
                self.push_scope();
                let r = self.exec_list(&body[from..]);
                self.pop_scope();
                match r? {
                    Flow::Break => Ok(Flow::Normal),
                    f => Ok(f),
                }
            }
            StmtKind::Try(body, filter, handler) => {
                let id = self.next_handler;
                self.next_handler += 1;
                let frame = self.frames.len() - 1;
                let depth = self.frames[frame].scopes.len();
                let mark = self.handlers.len();
                self.handlers.push(Handler {
                    id,
                    filter: filter.clone(),
                    frame,
                    depth,
                });
                let r = self.exec(body);
                self.handlers.truncate(mark);
                match r {
                    Err(Stop::Unwind { id: u, code }) if u == id => {
                        self.exception_code = code;
                        self.exec(handler)
                    }
                    r => r,
                }
            }
        }
    }

    fn init(&mut self, addr: u64, ty: &Ty, init: &Init) -> R<()> {
        match (ty, init) {
            (
                Ty::Array(elem, n),
                Init::Expr(Expr {
                    kind: ExprKind::Str(s),
                    pos,
                }),
            ) if elem.size(self.ptr) == 1 => {
                let mut b = s.clone();
                b.push(0);
                b.truncate(*n);
                self.mem_write(addr, &b, *pos)
            }
            (
                Ty::Array(elem, n),
                Init::Expr(Expr {
                    kind: ExprKind::WStr(s),
                    pos,
                }),
            ) if elem.size(self.ptr) == 2 => {
                let mut units = utf16(s);
                units.push(0);
                units.truncate(*n);
                let b: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
                self.mem_write(addr, &b, *pos)
            }
            (Ty::Array(elem, n), Init::List(items, pos)) => {
                if items.len() > *n {
                    return Err(Stop::at(*pos, "too many initializers for the array"));
                }
                let es = elem.size(self.ptr) as u64;
                for (i, it) in items.iter().enumerate() {
                    self.init(addr + i as u64 * es, elem, it)?;
                }
                Ok(())
            }
            (Ty::Struct(s), Init::List(items, pos)) => {
                // Union members share an offset: initialize distinct offsets in order.
                let mut fields: Vec<_> = Vec::new();
                for f in &s.fields {
                    if !fields
                        .iter()
                        .any(|g: &&super::types::Field| g.offset == f.offset)
                    {
                        fields.push(f);
                    }
                }
                if items.len() > fields.len() {
                    return Err(Stop::at(*pos, "too many initializers for the structure"));
                }
                for (f, it) in fields.iter().zip(items) {
                    self.init(addr + f.offset as u64, &f.ty.clone(), it)?;
                }
                Ok(())
            }
            (_, Init::List(items, pos)) => match items.first() {
                Some(first) if items.len() == 1 => self.init(addr, ty, first),
                None => Ok(()),
                _ => Err(Stop::at(*pos, "too many initializers")),
            },
            (_, Init::Expr(e)) => {
                let v = self.eval(e)?;
                self.store(addr, ty, &v, e.pos)?;
                Ok(())
            }
        }
    }

    // ---- expressions ----------------------------------------------------------------------

    /// The place an expression names.
    fn lvalue(&mut self, e: &Expr) -> R<(u64, Ty)> {
        match &e.kind {
            ExprKind::Ident(n) => match self.lookup(n) {
                Some(v) => Ok((v.addr, v.ty)),
                None if names::constant(n).is_some() || names::pointer_constant(n).is_some() => {
                    Err(Stop::at(
                        e.pos,
                        format!("'{n}' is a constant: it cannot change"),
                    ))
                }
                None => Err(self.unknown_name(n, e.pos)),
            },
            ExprKind::Unary(UnOp::Deref, inner) => {
                let v = self.eval(inner)?;
                match &v.ty {
                    Ty::Ptr(t) => Ok((v.bits, (**t).clone())),
                    t => Err(Stop::at(
                        e.pos,
                        format!("'*' needs a pointer, and this is a {t}: cast it, e.g. *(int *)p"),
                    )),
                }
            }
            ExprKind::Index(a, i) => {
                let mut base = self.eval(a)?;
                let mut idx = self.eval(i)?;
                if base.ty.is_int() && idx.ty.is_ptr() {
                    std::mem::swap(&mut base, &mut idx);
                }
                let Ty::Ptr(t) = &base.ty else {
                    return Err(Stop::at(
                        e.pos,
                        format!("only pointers and arrays can be indexed, not a {}", base.ty),
                    ));
                };
                let elem = if **t == Ty::Void {
                    Ty::Int {
                        size: 1,
                        signed: false,
                    }
                } else {
                    (**t).clone()
                };
                if !idx.ty.is_int() {
                    return Err(Stop::at(i.pos, "an index must be an integer"));
                }
                let off = self.as_i64(&idx).wrapping_mul(elem.size(self.ptr) as i64);
                Ok((
                    base.bits.wrapping_add(off as u64) & self.addr_mask(base.bits),
                    elem,
                ))
            }
            ExprKind::Member(inner, field, arrow) => {
                let (addr, ty) = if *arrow {
                    let v = self.eval(inner)?;
                    match &v.ty {
                        Ty::Ptr(t) => (v.bits, (**t).clone()),
                        t => {
                            return Err(Stop::at(
                                e.pos,
                                format!("'->' needs a pointer to a structure, not a {t}"),
                            ))
                        }
                    }
                } else {
                    self.lvalue(inner)?
                };
                let Ty::Struct(s) = &ty else {
                    return Err(Stop::at(e.pos, format!("'{field}': a {ty} has no fields")));
                };
                let Some(f) = s.fields.iter().find(|f| f.name == field) else {
                    let known: Vec<&str> = s.fields.iter().map(|f| f.name).collect();
                    return Err(Stop::at(
                        e.pos,
                        format!(
                            "{} has no field '{field}' (fields: {})",
                            s.name,
                            known.join(", ")
                        ),
                    ));
                };
                Ok((addr + f.offset as u64, f.ty.clone()))
            }
            _ => Err(Stop::at(
                e.pos,
                "this expression is not a variable or a place in memory",
            )),
        }
    }

    /// Addresses of the program's own segments keep 64 bits; the space's are masked to the
    /// pointer size.
    fn addr_mask(&self, base: u64) -> u64 {
        if self.stack.in_range(base) || self.heap.in_range(base) {
            u64::MAX
        } else {
            self.ptr_mask()
        }
    }

    pub fn eval(&mut self, e: &Expr) -> R<Value> {
        match &e.kind {
            ExprKind::Int(v, t) => Ok(Value {
                ty: t.clone(),
                bits: *v,
            }),
            ExprKind::Str(s) => {
                let a = self.intern(s);
                Ok(Value {
                    ty: Ty::ptr(Ty::CHAR),
                    bits: a,
                })
            }
            ExprKind::WStr(s) => {
                // UTF-16LE and a second NUL byte (intern adds the first).
                let mut b: Vec<u8> = utf16(s).iter().flat_map(|u| u.to_le_bytes()).collect();
                b.push(0);
                let a = self.intern(&b);
                Ok(Value {
                    ty: Ty::ptr(Ty::WCHAR),
                    bits: a,
                })
            }
            ExprKind::Ident(n) => {
                if let Some(v) = self.lookup(n) {
                    return self.load(v.addr, &v.ty, e.pos);
                }
                if let Some(p) = names::pointer_constant(n) {
                    return Ok(Value {
                        ty: Ty::void_ptr(),
                        bits: p & self.ptr_mask(),
                    });
                }
                if let Some((v, t)) = names::constant(n) {
                    return Ok(Value { ty: t, bits: v });
                }
                if self.funcs.contains_key(n) || names::win32(n).is_some() {
                    return Err(Stop::at(
                        e.pos,
                        format!("'{n}' is a function: call it, e.g. {n}(...)"),
                    ));
                }
                Err(self.unknown_name(n, e.pos))
            }
            ExprKind::Unary(op, inner) => self.unary(*op, inner, e.pos),
            ExprKind::Binary(BinOp::And, a, b) => {
                let va = self.eval(a)?;
                if !self.truthy(&va, a.pos)? {
                    return Ok(Value::int(0));
                }
                let vb = self.eval(b)?;
                Ok(Value::int(self.truthy(&vb, b.pos)? as i64))
            }
            ExprKind::Binary(BinOp::Or, a, b) => {
                let va = self.eval(a)?;
                if self.truthy(&va, a.pos)? {
                    return Ok(Value::int(1));
                }
                let vb = self.eval(b)?;
                Ok(Value::int(self.truthy(&vb, b.pos)? as i64))
            }
            ExprKind::Binary(op, a, b) => {
                let va = self.eval(a)?;
                let vb = self.eval(b)?;
                self.arith(*op, &va, &vb, e.pos)
            }
            ExprKind::Assign(op, l, r) => {
                let (addr, ty) = self.lvalue(l)?;
                let rv = self.eval(r)?;
                let pos = l.pos;
                let v = match op {
                    Some(op) => {
                        let cur = self.load(addr, &ty, e.pos)?;
                        self.arith(*op, &cur, &rv, e.pos)?
                    }
                    None => rv,
                };
                self.store(addr, &ty, &v, pos)
            }
            ExprKind::Cond(c, a, b) => {
                let v = self.eval(c)?;
                if self.truthy(&v, c.pos)? {
                    self.eval(a)
                } else {
                    self.eval(b)
                }
            }
            ExprKind::Comma(a, b) => {
                self.eval(a)?;
                self.eval(b)
            }
            ExprKind::Call(name, args) => self.call(name, args, e.pos),
            ExprKind::Index(..) | ExprKind::Member(..) => {
                let (addr, ty) = self.lvalue(e)?;
                self.load(addr, &ty, e.pos)
            }
            ExprKind::Cast(t, inner) => {
                let v = self.eval(inner)?;
                self.convert(&v, t, e.pos)
            }
            ExprKind::SizeofType(t) => Ok(Value {
                ty: self.size_t(),
                bits: t.size(self.ptr) as u64,
            }),
            ExprKind::SizeofExpr(inner) => {
                let n = match &inner.kind {
                    ExprKind::Str(s) => s.len() + 1,
                    ExprKind::WStr(s) => 2 * (utf16(s).len() + 1),
                    ExprKind::Ident(_)
                    | ExprKind::Index(..)
                    | ExprKind::Member(..)
                    | ExprKind::Unary(UnOp::Deref, _)
                        if !matches!(&inner.kind, ExprKind::Ident(n) if self.lookup(n).is_none()) =>
                    {
                        self.lvalue(inner)?.1.size(self.ptr)
                    }
                    _ => self.eval(inner)?.ty.size(self.ptr),
                };
                Ok(Value {
                    ty: self.size_t(),
                    bits: n as u64,
                })
            }
        }
    }

    fn unary(&mut self, op: UnOp, inner: &Expr, pos: Pos) -> R<Value> {
        match op {
            UnOp::AddrOf => {
                let (addr, ty) = self.lvalue(inner)?;
                Ok(Value {
                    ty: Ty::ptr(ty),
                    bits: addr,
                })
            }
            UnOp::Deref => {
                let (addr, ty) = self.lvalue(&Expr {
                    kind: ExprKind::Unary(UnOp::Deref, Box::new(inner.clone())),
                    pos,
                })?;
                self.load(addr, &ty, pos)
            }
            UnOp::PreInc | UnOp::PreDec | UnOp::PostInc | UnOp::PostDec => {
                let (addr, ty) = self.lvalue(inner)?;
                let cur = self.load(addr, &ty, pos)?;
                let bop = if matches!(op, UnOp::PreInc | UnOp::PostInc) {
                    BinOp::Add
                } else {
                    BinOp::Sub
                };
                let new = self.arith(bop, &cur, &Value::int(1), pos)?;
                let new = self.store(addr, &ty, &new, pos)?;
                Ok(if matches!(op, UnOp::PreInc | UnOp::PreDec) {
                    new
                } else {
                    cur
                })
            }
            UnOp::Not => {
                let v = self.eval(inner)?;
                Ok(Value::int(!self.truthy(&v, pos)? as i64))
            }
            UnOp::Neg | UnOp::Plus | UnOp::BitNot => {
                let v = self.eval(inner)?;
                if !v.ty.is_int() {
                    return Err(Stop::at(
                        pos,
                        format!("this needs an integer, not a {}", v.ty),
                    ));
                }
                let t = promote(&v.ty);
                let v = self.convert(&v, &t, pos)?;
                let bits = match op {
                    UnOp::Neg => v.bits.wrapping_neg(),
                    UnOp::BitNot => !v.bits,
                    _ => v.bits,
                };
                let Ty::Int { size, .. } = t else {
                    unreachable!()
                };
                Ok(Value {
                    ty: t,
                    bits: mask(bits, size),
                })
            }
        }
    }

    pub fn arith(&mut self, op: BinOp, a: &Value, b: &Value, pos: Pos) -> R<Value> {
        if !a.ty.is_scalar() || !b.ty.is_scalar() {
            return Err(Stop::at(
                pos,
                format!("cannot compute with a {} and a {}", a.ty, b.ty),
            ));
        }
        let cmp = matches!(
            op,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge
        );
        // Pointer arithmetic.
        if a.ty.is_ptr() || b.ty.is_ptr() {
            if cmp {
                let (x, y) = (a.bits, b.bits);
                let r = match op {
                    BinOp::Eq => x == y,
                    BinOp::Ne => x != y,
                    BinOp::Lt => x < y,
                    BinOp::Gt => x > y,
                    BinOp::Le => x <= y,
                    _ => x >= y,
                };
                return Ok(Value::int(r as i64));
            }
            let elem = |t: &Ty| -> u64 {
                match t.pointee() {
                    Some(Ty::Void) | None => 1,
                    Some(p) => p.size(self.ptr) as u64,
                }
            };
            match op {
                BinOp::Add if a.ty.is_ptr() && b.ty.is_int() => {
                    let off = (self.as_i64(b) as u64).wrapping_mul(elem(&a.ty));
                    return Ok(Value {
                        ty: a.ty.clone(),
                        bits: a.bits.wrapping_add(off) & self.addr_mask(a.bits),
                    });
                }
                BinOp::Add if b.ty.is_ptr() && a.ty.is_int() => {
                    return self.arith(op, b, a, pos);
                }
                BinOp::Sub if a.ty.is_ptr() && b.ty.is_int() => {
                    let off = (self.as_i64(b) as u64).wrapping_mul(elem(&a.ty));
                    return Ok(Value {
                        ty: a.ty.clone(),
                        bits: a.bits.wrapping_sub(off) & self.addr_mask(a.bits),
                    });
                }
                BinOp::Sub if a.ty.is_ptr() && b.ty.is_ptr() => {
                    let d = (a.bits.wrapping_sub(b.bits) as i64) / elem(&a.ty) as i64;
                    let t = Ty::Int {
                        size: self.ptr,
                        signed: true,
                    };
                    return Ok(Value {
                        bits: mask(d as u64, self.ptr),
                        ty: t,
                    });
                }
                _ => {
                    // Bit operations on addresses (alignment tricks): as integers.
                    let t = self.size_t();
                    let a2 = self.convert(a, &t, pos)?;
                    let b2 = self.convert(b, &t, pos)?;
                    if matches!(op, BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor) {
                        let r = self.arith(op, &a2, &b2, pos)?;
                        let ty = if a.ty.is_ptr() {
                            a.ty.clone()
                        } else {
                            b.ty.clone()
                        };
                        return Ok(Value { ty, bits: r.bits });
                    }
                    return Err(Stop::at(
                        pos,
                        format!("cannot use this operator on a {} and a {}", a.ty, b.ty),
                    ));
                }
            }
        }
        let t = common(&a.ty, &b.ty);
        let (size, signed) = match t {
            Ty::Int { size, signed } => (size, signed),
            _ => unreachable!(),
        };
        let shift_t = promote(&a.ty);
        let x = self.convert(a, &t, pos)?;
        let y = self.convert(b, &t, pos)?;
        let (xs, ys) = (self.as_i64(&x), self.as_i64(&y));
        let (xu, yu) = (x.bits, y.bits);
        if cmp {
            let r = if signed {
                match op {
                    BinOp::Eq => xs == ys,
                    BinOp::Ne => xs != ys,
                    BinOp::Lt => xs < ys,
                    BinOp::Gt => xs > ys,
                    BinOp::Le => xs <= ys,
                    _ => xs >= ys,
                }
            } else {
                match op {
                    BinOp::Eq => xu == yu,
                    BinOp::Ne => xu != yu,
                    BinOp::Lt => xu < yu,
                    BinOp::Gt => xu > yu,
                    BinOp::Le => xu <= yu,
                    _ => xu >= yu,
                }
            };
            return Ok(Value::int(r as i64));
        }
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            let Ty::Int {
                size: ss,
                signed: ssig,
            } = shift_t
            else {
                unreachable!()
            };
            let l = self.convert(a, &shift_t, pos)?;
            let n = (self.as_i64(b) as u32) % (ss as u32 * 8);
            let bits = if op == BinOp::Shl {
                l.bits << n
            } else if ssig {
                (self.as_i64(&l) >> n) as u64
            } else {
                l.bits >> n
            };
            return Ok(Value {
                ty: shift_t,
                bits: mask(bits, ss),
            });
        }
        if matches!(op, BinOp::Div | BinOp::Rem) && yu == 0 {
            self.raise(0xC000_0094, "integer division by zero".into(), pos)?;
            return Err(Stop::at(pos, "integer division by zero"));
        }
        let bits = match op {
            BinOp::Add => xu.wrapping_add(yu),
            BinOp::Sub => xu.wrapping_sub(yu),
            BinOp::Mul => xu.wrapping_mul(yu),
            BinOp::Div if signed => xs.wrapping_div(ys) as u64,
            BinOp::Div => xu / yu,
            BinOp::Rem if signed => xs.wrapping_rem(ys) as u64,
            BinOp::Rem => xu % yu,
            BinOp::BitAnd => xu & yu,
            BinOp::BitOr => xu | yu,
            BinOp::BitXor => xu ^ yu,
            _ => unreachable!(),
        };
        Ok(Value {
            ty: t,
            bits: mask(bits, size),
        })
    }

    // ---- calls ----------------------------------------------------------------------------

    fn call(&mut self, name: &str, args: &[Expr], pos: Pos) -> R<Value> {
        if let Some(f) = self.funcs.get(name).cloned() {
            if args.len() != f.params.len() {
                return Err(Stop::at(
                    pos,
                    format!(
                        "{name} takes {} argument(s), {} given",
                        f.params.len(),
                        args.len()
                    ),
                ));
            }
            let mut vals = Vec::new();
            for a in args {
                vals.push(self.eval(a)?);
            }
            return self.call_user(&f, vals, pos);
        }
        if let Some(sig) = names::win32(name) {
            if args.len() != sig.params.len() {
                return Err(Stop::at(
                    pos,
                    format!(
                        "{name} takes {} argument(s), {} given",
                        sig.params.len(),
                        args.len()
                    ),
                ));
            }
            let mut vals = Vec::new();
            for a in args {
                let v = self.eval(a)?;
                if !v.ty.is_scalar() {
                    return Err(Stop::at(
                        a.pos,
                        format!(
                            "{name}: a {} cannot be passed here (pass its address with &)",
                            v.ty
                        ),
                    ));
                }
                vals.push(v);
            }
            return self.call_win32(sig, args, &vals, pos);
        }
        if names::LIBC.contains(&name) {
            return self.call_libc(name, args, pos);
        }
        Err(self.unknown_function(name, pos))
    }

    fn unknown_function(&self, name: &str, pos: Pos) -> Stop {
        let mut cands: Vec<&str> = names::WIN32.iter().map(|s| s.name).collect();
        cands.extend(names::LIBC.iter().copied());
        cands.extend(self.funcs.keys().map(|s| s.as_str()));
        let best = cands
            .iter()
            .map(|c| (edit_distance(&c.to_lowercase(), &name.to_lowercase()), *c))
            .filter(|(d, _)| *d <= 2.max(name.len() / 4))
            .min();
        match best {
            Some((_, c)) => Stop::at(
                pos,
                format!("unknown function '{name}' (did you mean '{c}'?)"),
            ),
            None => Stop::at(pos, format!("unknown function '{name}'")),
        }
    }

    fn call_user(&mut self, f: &Rc<Function>, args: Vec<Value>, pos: Pos) -> R<Value> {
        if self.depth >= 2000 {
            self.raise(0xC000_00FD, "stack overflow".into(), pos)?;
            return Err(Stop::at(pos, "stack overflow (too deep recursion)"));
        }
        let sp = self.stack.data.len();
        self.frames.push(Frame {
            scopes: vec![(HashMap::new(), sp)],
        });
        let saved_view = self.view.take();
        self.depth += 1;
        let r = (|| {
            for ((name, ty, ppos), v) in f.params.iter().zip(&args) {
                if name.is_empty() {
                    continue;
                }
                let addr = self.declare(name, ty, *ppos)?;
                self.store(addr, ty, v, *ppos)?;
            }
            self.exec_list(&f.body)
        })();
        self.depth -= 1;
        self.view = saved_view;
        self.frames.pop();
        self.stack.data.truncate(sp);
        match r? {
            Flow::Return(v) => {
                if f.ret == Ty::Void {
                    Ok(Value::void())
                } else if v.ty == Ty::Void {
                    Ok(Value {
                        ty: f.ret.clone(),
                        bits: 0,
                    })
                } else {
                    self.convert(&v, &f.ret, pos)
                }
            }
            _ if f.ret == Ty::Void => Ok(Value::void()),
            _ => Ok(Value {
                ty: f.ret.clone(),
                bits: 0,
            }),
        }
    }

    /// Reads a NUL-terminated string of the program (faults raise exceptions).
    pub fn read_cstr(&mut self, addr: u64, pos: Pos) -> R<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            let mut b = [0u8];
            self.mem_read(at, &mut b, pos)?;
            if b[0] == 0 {
                return Ok(out);
            }
            out.push(b[0]);
            at += 1;
            if out.len() > 1 << 20 {
                return Err(Stop::at(
                    pos,
                    "a string without its terminating NUL (over 1 MiB)",
                ));
            }
        }
    }

    fn call_libc(&mut self, name: &str, args: &[Expr], pos: Pos) -> R<Value> {
        let mut vals = Vec::new();
        for a in args {
            vals.push(self.eval(a)?);
        }
        let need = |n: usize| -> R<()> {
            if vals.len() != n {
                Err(Stop::at(
                    pos,
                    format!("{name} takes {n} argument(s), {} given", vals.len()),
                ))
            } else {
                Ok(())
            }
        };
        let ptr_arg = |v: &Value| v.bits;
        match name {
            "printf" | "sprintf" => {
                let (dst, rest) = if name == "sprintf" {
                    if vals.len() < 2 {
                        return Err(Stop::at(pos, "sprintf needs a buffer and a format"));
                    }
                    (Some(vals[0].bits), &vals[1..])
                } else {
                    if vals.is_empty() {
                        return Err(Stop::at(pos, "printf needs a format string"));
                    }
                    (None, &vals[..])
                };
                let fmt = self.read_cstr(rest[0].bits, pos)?;
                let rest = rest[1..].to_vec();
                let text = super::printf::format(self, &fmt, &rest, pos)?;
                let n = text.len();
                match dst {
                    Some(d) => {
                        let mut b = text;
                        b.push(0);
                        self.mem_write(d, &b, pos)?;
                    }
                    None => self.sink.output(&String::from_utf8_lossy(&text)),
                }
                Ok(Value::int(n as i64))
            }
            "puts" => {
                need(1)?;
                let mut s = self.read_cstr(vals[0].bits, pos)?;
                s.push(b'\n');
                self.sink.output(&String::from_utf8_lossy(&s));
                Ok(Value::int(1))
            }
            "putchar" => {
                need(1)?;
                let c = vals[0].bits as u8;
                self.sink.output(&String::from_utf8_lossy(&[c]));
                Ok(Value::int(c as i64))
            }
            "memset" => {
                need(3)?;
                let n = vals[2].bits as usize;
                let buf = vec![vals[1].bits as u8; n];
                self.mem_write(ptr_arg(&vals[0]), &buf, pos)?;
                Ok(vals[0].clone())
            }
            "memcpy" | "memmove" => {
                need(3)?;
                let n = vals[2].bits as usize;
                let mut buf = vec![0u8; n];
                self.mem_read(ptr_arg(&vals[1]), &mut buf, pos)?;
                self.mem_write(ptr_arg(&vals[0]), &buf, pos)?;
                Ok(vals[0].clone())
            }
            "memcmp" => {
                need(3)?;
                let n = vals[2].bits as usize;
                let mut a = vec![0u8; n];
                let mut b = vec![0u8; n];
                self.mem_read(ptr_arg(&vals[0]), &mut a, pos)?;
                self.mem_read(ptr_arg(&vals[1]), &mut b, pos)?;
                Ok(Value::int(a.cmp(&b) as i64))
            }
            "strcpy" | "strcat" => {
                need(2)?;
                let mut s = self.read_cstr(ptr_arg(&vals[1]), pos)?;
                s.push(0);
                let mut dst = ptr_arg(&vals[0]);
                if name == "strcat" {
                    dst += self.read_cstr(dst, pos)?.len() as u64;
                }
                self.mem_write(dst, &s, pos)?;
                Ok(vals[0].clone())
            }
            "strncpy" => {
                need(3)?;
                let n = vals[2].bits as usize;
                let mut s = self.read_cstr(ptr_arg(&vals[1]), pos)?;
                s.resize(n, 0);
                self.mem_write(ptr_arg(&vals[0]), &s, pos)?;
                Ok(vals[0].clone())
            }
            "strlen" => {
                need(1)?;
                let s = self.read_cstr(ptr_arg(&vals[0]), pos)?;
                Ok(Value {
                    ty: self.size_t(),
                    bits: s.len() as u64,
                })
            }
            "strcmp" => {
                need(2)?;
                let a = self.read_cstr(ptr_arg(&vals[0]), pos)?;
                let b = self.read_cstr(ptr_arg(&vals[1]), pos)?;
                Ok(Value::int(a.cmp(&b) as i64))
            }
            "malloc" | "calloc" => {
                let n = if name == "calloc" {
                    need(2)?;
                    vals[0].bits.saturating_mul(vals[1].bits)
                } else {
                    need(1)?;
                    vals[0].bits
                };
                let a = self.heap_alloc(n as usize, pos)?;
                Ok(Value {
                    ty: Ty::void_ptr(),
                    bits: a,
                })
            }
            "free" => {
                need(1)?;
                Ok(Value::void())
            }
            "exit" => {
                need(1)?;
                Err(Stop::Exit(self.as_i64(&vals[0]) as i32))
            }
            "abort" => Err(Stop::at(pos, "abort() was called")),
            "assert" => {
                need(1)?;
                if vals[0].bits == 0 {
                    return Err(Stop::at(pos, "assertion failed"));
                }
                Ok(Value::void())
            }
            "Sleep" | "system" => Ok(Value::int(0)),
            "getchar" | "_getch" | "getch" => Ok(Value::int(self.sink.key() as i64)),
            "GetExceptionCode" => Ok(Value {
                ty: Ty::UINT,
                bits: self.exception_code as u64,
            }),
            _ => Err(self.unknown_function(name, pos)),
        }
    }

    // ---- Win32 calls ----------------------------------------------------------------------

    fn call_win32(
        &mut self,
        sig: &'static names::Sig,
        exprs: &[Expr],
        vals: &[Value],
        pos: Pos,
    ) -> R<Value> {
        let a: Vec<u64> = vals.iter().map(|v| v.bits).collect();
        let (ret, err) = super::win32::call(self, sig.name, &a);
        if let Some(e) = err {
            self.last_error = e;
        }
        // The trace.
        let shown: Vec<String> = sig
            .params
            .iter()
            .zip(vals)
            .zip(exprs)
            .map(|((k, v), e)| self.show_arg(*k, v, e))
            .collect();
        let result = match sig.ret {
            Some(k) => self.show(k, ret.bits),
            None => String::new(),
        };
        let focus = sig
            .params
            .iter()
            .zip(vals)
            .find(|(k, v)| **k == Show::Addr && v.bits != 0)
            .map(|(_, v)| v.bits)
            .or((sig.ret == Some(Show::Addr) && ret.bits != 0).then_some(ret.bits));
        let ev = CallEvent {
            focus,
            name: sig.name,
            call: format!("{}({})", sig.name, shown.join(", ")),
            result,
            failed: err.is_some(),
            last_error: self.last_error,
            pos,
            changes_map: matches!(
                sig.name,
                "VirtualAlloc"
                    | "VirtualAllocEx"
                    | "VirtualAllocExNuma"
                    | "VirtualAllocFromApp"
                    | "VirtualAlloc2"
                    | "VirtualAlloc2FromApp"
                    | "VirtualFree"
                    | "VirtualFreeEx"
                    | "VirtualProtect"
                    | "VirtualProtectEx"
                    | "VirtualProtectFromApp"
                    | "MapUserPhysicalPages"
                    | "MapUserPhysicalPagesScatter"
                    | "DiscardVirtualMemory"
                    | "MapViewOfFile"
                    | "MapViewOfFileEx"
                    | "MapViewOfFile3"
                    | "UnmapViewOfFile"
                    | "UnmapViewOfFileEx"
                    | "UnmapViewOfFile2"
            ) && err.is_none(),
        };
        self.sink.call(&ev);
        Ok(ret)
    }

    fn show_arg(&self, k: Show, v: &Value, e: &Expr) -> String {
        if k == Show::Str && v.bits != 0 {
            match &e.kind {
                ExprKind::Str(s) => return format!("{:?}", String::from_utf8_lossy(s)),
                ExprKind::WStr(s) => return format!("L{:?}", String::from_utf8_lossy(s)),
                _ => {}
            }
        }
        if matches!(k, Show::Out | Show::Str) {
            return expr_text(e).unwrap_or_else(|| self.show(Show::Addr, v.bits));
        }
        if matches!(k, Show::Size | Show::Count) {
            if let Some(t) = expr_text(e) {
                if t.contains("sizeof") {
                    return t;
                }
            }
        }
        self.show(k, v.bits)
    }

    pub fn show(&self, k: Show, bits: u64) -> String {
        let all = self.ptr_mask();
        match k {
            Show::Addr | Show::Out => {
                if bits == 0 {
                    "NULL".into()
                } else {
                    format!("{bits:#x}")
                }
            }
            Show::Size => format!("{bits:#x}"),
            Show::Count => {
                if bits as u32 == u32::MAX {
                    "(UINT)-1".into()
                } else {
                    format!("{bits}")
                }
            }
            Show::AllocType => names::mem_flags(bits as u32, false),
            Show::FreeType => names::mem_flags(bits as u32, true),
            Show::Protect => names::protect_name(bits as u32),
            Show::Handle => {
                if bits & all == all {
                    "GetCurrentProcess()".into()
                } else if bits == 0 {
                    "NULL".into()
                } else {
                    format!("{bits:#x}")
                }
            }
            Show::Flags => format!("{bits:#x}"),
            Show::Bool => {
                if bits as u32 == 0 {
                    "FALSE".into()
                } else {
                    "TRUE".into()
                }
            }
            Show::Error => error_text(bits as u32),
            Show::FileHandle => {
                if bits & all == all {
                    "INVALID_HANDLE_VALUE".into()
                } else if bits == 0 {
                    "NULL".into()
                } else {
                    format!("{bits:#x}")
                }
            }
            Show::Access => names::access_name(bits as u32),
            Show::SecProtect => names::section_protect_name(bits as u32),
            Show::DupOptions => names::dup_options_name(bits as u32),
            Show::Str => {
                if bits == 0 {
                    "NULL".into()
                } else {
                    format!("{bits:#x}")
                }
            }
        }
    }

    /// A value for the REPL: `0x40000000`, `4096 (0x1000)`, a structure's fields.
    pub fn describe(&mut self, v: &Value) -> String {
        match &v.ty {
            Ty::Ptr(_) => {
                if v.bits == 0 {
                    "NULL".into()
                } else {
                    format!("{:#x}", v.bits)
                }
            }
            Ty::Int { .. } => {
                let s = self.as_i64(v);
                if (0..10).contains(&s) {
                    format!("{s}")
                } else {
                    format!("{s} ({:#x})", v.bits)
                }
            }
            Ty::Struct(sd) => {
                let sd = sd.clone();
                let mut parts = Vec::new();
                let mut seen = Vec::new();
                for f in &sd.fields {
                    if seen.contains(&f.offset) || f.name.starts_with("wReserved") {
                        continue;
                    }
                    seen.push(f.offset);
                    let fv = match self.load(v.bits + f.offset as u64, &f.ty, Pos::default()) {
                        Ok(fv) => fv,
                        Err(_) => continue,
                    };
                    let text = match f.name {
                        "State" => {
                            names::mem_flags(fv.bits as u32, false).replace("0x10000", "MEM_FREE")
                        }
                        "Protect" | "AllocationProtect" => names::protect_name(fv.bits as u32),
                        "Type" => match fv.bits as u32 {
                            0x20000 => "MEM_PRIVATE".into(),
                            0x40000 => "MEM_MAPPED".into(),
                            0x100_0000 => "MEM_IMAGE".into(),
                            x => format!("{x}"),
                        },
                        _ => self.describe(&fv),
                    };
                    parts.push(format!("{} = {}", f.name, text));
                }
                format!("{{ {} }}", parts.join(", "))
            }
            Ty::Array(..) | Ty::Void => String::new(),
        }
    }
}

/// "487 (ERROR_INVALID_ADDRESS)".
pub fn error_text(code: u32) -> String {
    match names::error_name(code) {
        Some(n) if code > 0xFFFF => format!("{code:#x} ({n})"),
        Some(n) => format!("{code} ({n})"),
        None => format!("{code}"),
    }
}

/// The source text of simple argument expressions (`&old`, `mbi`, `sizeof(mbi)`), for traces.
fn expr_text(e: &Expr) -> Option<String> {
    Some(match &e.kind {
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Unary(UnOp::AddrOf, x) => format!("&{}", expr_text(x)?),
        ExprKind::Member(x, f, arrow) => {
            format!("{}{}{f}", expr_text(x)?, if *arrow { "->" } else { "." })
        }
        ExprKind::Index(x, i) => format!("{}[{}]", expr_text(x)?, expr_text(i)?),
        ExprKind::Int(v, _) => format!("{v}"),
        ExprKind::SizeofExpr(x) => format!("sizeof({})", expr_text(x)?),
        ExprKind::SizeofType(t) => format!("sizeof({t})"),
        _ => return None,
    })
}

/// C's integer promotion.
fn promote(t: &Ty) -> Ty {
    match t {
        Ty::Int { size, .. } if *size < 4 => Ty::INT,
        t => t.clone(),
    }
}

/// The usual arithmetic conversions.
fn common(a: &Ty, b: &Ty) -> Ty {
    let (
        Ty::Int {
            size: sa,
            signed: ga,
        },
        Ty::Int {
            size: sb,
            signed: gb,
        },
    ) = (promote(a), promote(b))
    else {
        return Ty::INT;
    };
    let size = sa.max(sb);
    let signed = if sa == sb {
        ga && gb
    } else if sa > sb {
        ga
    } else {
        gb
    };
    Ty::Int { size, signed }
}

use super::check::edit_distance;

impl Interp<'_> {
    /// Exposed for the Win32 layer: writes through the program's memory without raising.
    pub(super) fn out(&mut self, addr: u64, bytes: &[u8]) -> bool {
        self.out_write(addr, bytes)
    }

    pub(super) fn inp(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.in_read(addr, buf)
    }

    /// Reads a pointer-sized value for the Win32 layer.
    pub(super) fn inp_ptr(&mut self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        let n = self.ptr as usize;
        self.in_read(addr, &mut b[..n])
            .then(|| u64::from_le_bytes(b))
    }
}
