//! Keeps `include/virtmem.h` (hand-written) and the Rust definitions of `src/win32/` from
//! drifting apart. Each test generates a C program from the Rust side, compiles it with the
//! header, runs it and compares what C sees with what Rust has:
//!
//! * constants: the list is parsed from `src/win32/consts.rs`, so a constant added there and
//!   missing from the header fails (C compile error naming it); values are compared with the
//!   Rust constants themselves;
//! * structures: size, alignment, and offset and size of every field (the fields are parsed
//!   from `src/win32/types.rs`, so a new struct or field must be added to the table here);
//! * functions: every `#[no_mangle]` function of `src/` must have a
//!   prototype in the header with the same parameter and return types (constness aside: the
//!   header follows the SDK's `LPVOID` where windows-sys says `*const c_void`), every
//!   prototype must have a Rust export, the Windows type names must be the C types they
//!   stand for, and a program taking every function's address links with libvirtmem.a;
//! * the header also compiles as C++ (`extern "C"`), and links.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use virtmem::win32::*;

/// A source file of the Win32 face (`consts.rs` lives in the vocabulary layer below it).
fn win32_src(file: &str) -> String {
    let dir = if file == "consts.rs" {
        "src/vocab"
    } else {
        "src/win32"
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn header() -> String {
    std::fs::read_to_string(repo_root().join("include/virtmem.h")).expect("include/virtmem.h")
}

/// Compiles `source` (C) with the header and libvirtmem.a, runs it, returns its stdout.
fn compile_and_run(cc: &str, name: &str, source: &str) -> String {
    let dir = scratch(name);
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let exe = dir.join(name);
    compile_static(cc, &["-std=gnu11", "-Wall"], &[src], &exe);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "{name} exited with {}", out.status);
    stdout
}

/// Removes `//` comments (the sources have no `//` inside strings where it matters here).
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// Rust types, as written in src/win32, reduced to a canonical spelling
// ---------------------------------------------------------------------------------------------

/// `pub type NAME = TYPE;` aliases of consts.rs and types.rs (BOOL = i32, HANDLE = *mut
/// c_void, PCSTR = *const u8, ...).
fn rust_aliases() -> HashMap<String, String> {
    let mut aliases = HashMap::new();
    for file in ["consts.rs", "types.rs"] {
        let src = strip_comments(&win32_src(file));
        for stmt in src.split(';') {
            if let Some(i) = stmt.find("pub type ") {
                let (name, ty) = stmt[i + "pub type ".len()..]
                    .split_once('=')
                    .expect("pub type NAME = TYPE");
                aliases.insert(name.trim().to_string(), ty.trim().to_string());
            }
        }
    }
    aliases
}

/// Canonical form of a Rust type: aliases resolved, paths dropped, `*mut T` / `*const T`.
fn canonical_rust(ty: &str, aliases: &HashMap<String, String>) -> String {
    let ty = ty.trim();
    // Option<fn> is the nullable function pointer C sees.
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return canonical_rust(inner, aliases);
    }
    // `unsafe extern "C" fn(a: A) -> R` -> `fn(A) -> R`
    if let Some(i) = ty.find("fn(") {
        if ty[..i]
            .split_whitespace()
            .all(|w| ["unsafe", "extern", "\"C\"", "\"system\""].contains(&w))
        {
            let sig = rust_signature(&ty[i + 2..], aliases);
            return format!("fn({}) -> {}", sig.params.join(", "), sig.ret);
        }
    }
    for ptr in ["*mut ", "*const "] {
        if let Some(inner) = ty.strip_prefix(ptr) {
            return format!("{ptr}{}", canonical_rust(inner, aliases));
        }
    }
    let last = ty.rsplit("::").next().unwrap().trim();
    match aliases.get(last) {
        Some(target) => canonical_rust(target, aliases),
        None => last.to_string(),
    }
}

/// The C type a canonical Rust type is (for `__builtin_types_compatible_p`).
fn c_type_of(canonical: &str) -> String {
    if let Some(rest) = canonical.strip_prefix("fn(") {
        let (params, ret) = rest.rsplit_once(") -> ").expect("fn(..) -> R");
        let params: Vec<String> = if params.is_empty() {
            vec!["void".into()]
        } else {
            params.split(", ").map(c_type_of).collect()
        };
        return format!("{} (*)({})", c_type_of(ret), params.join(", "));
    }
    if let Some(inner) = canonical.strip_prefix("*mut ") {
        return format!("{} *", c_type_of(inner));
    }
    if let Some(inner) = canonical.strip_prefix("*const ") {
        return format!("const {} *", c_type_of(inner));
    }
    match canonical {
        "c_void" | "()" => "void",
        "c_char" => "char",
        "u8" => "uint8_t",
        "u16" => "uint16_t",
        "u32" => "uint32_t",
        "u64" => "unsigned long long",
        "usize" => "uintptr_t",
        "i8" => "int8_t",
        "i16" => "int16_t",
        "i32" => "int32_t",
        "i64" => "long long",
        "isize" => "intptr_t",
        other => other, // a struct: same name in C
    }
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// `pub const NAME: TYPE = EXPR;` of consts.rs, in order.
fn rust_const_decls() -> Vec<(String, String, String)> {
    let src = strip_comments(&win32_src("consts.rs"));
    let mut out = Vec::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find("pub const ") {
        rest = &rest[i + "pub const ".len()..];
        let end = rest.find(';').expect("';' after pub const");
        let decl = &rest[..end];
        rest = &rest[end..];
        let (name, rest_decl) = decl.split_once(':').expect("NAME: TYPE");
        let (ty, expr) = rest_decl.split_once('=').expect("TYPE = EXPR");
        out.push((
            name.trim().to_string(),
            ty.trim().to_string(),
            expr.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
    }
    out
}

/// Wraps `v` to the range of the canonical integer (or pointer) type `ty`.
fn cast(v: i128, ty: &str) -> i128 {
    let bits = usize::BITS;
    match ty {
        "u8" => v as u8 as i128,
        "u16" => v as u16 as i128,
        "u32" => v as u32 as i128,
        "u64" => v as u64 as i128,
        "usize" if bits == 64 => v as u64 as i128,
        "usize" => v as u32 as i128,
        "i8" => v as i8 as i128,
        "i16" => v as i16 as i128,
        "i32" => v as i32 as i128,
        "i64" => v as i64 as i128,
        "isize" if bits == 64 => v as i64 as i128,
        "isize" => v as i32 as i128,
        t if t.starts_with('*') => cast(v, "isize"), // pointers compare as intptr_t
        t => panic!("cannot evaluate a constant of type {t}"),
    }
}

/// Evaluates the constant expressions consts.rs uses: integer literals (`0x1_000`, `1isize`,
/// `0xC0000005_u32`), earlier constants, `as` casts, unary `-`, `|` and parentheses.
struct Eval<'a> {
    tokens: Vec<String>,
    pos: usize,
    known: &'a HashMap<String, i128>,
    aliases: &'a HashMap<String, String>,
}

impl Eval<'_> {
    fn tokenize(expr: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut chars = expr.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c.is_alphanumeric() || c == '_' {
                let mut t = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == ':' {
                        t.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(t);
            } else if c == '*' {
                // a pointer type after `as`: `*mut X` / `*const X`
                chars.next();
                tokens.push("*".into());
            } else {
                tokens.push(c.to_string());
                chars.next();
            }
        }
        tokens
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Result<String, String> {
        let t = self.tokens.get(self.pos).cloned().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(t)
    }

    fn expr(&mut self) -> Result<i128, String> {
        let mut v = self.term()?;
        while self.peek() == Some("|") {
            self.pos += 1;
            v |= self.term()?;
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<i128, String> {
        let mut v = self.unary()?;
        while self.peek() == Some("as") {
            self.pos += 1;
            let mut ty = self.next()?;
            if ty == "*" {
                ty = format!("*{} {}", self.next()?, self.next()?);
            }
            v = cast(v, &canonical_rust(&ty, self.aliases));
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<i128, String> {
        match self.next()?.as_str() {
            "-" => Ok(-self.unary()?),
            "(" => {
                let v = self.expr()?;
                match self.next()?.as_str() {
                    ")" => Ok(v),
                    t => Err(format!("expected ')', found {t}")),
                }
            }
            t if t.starts_with(|c: char| c.is_ascii_digit()) => literal(t),
            t => self
                .known
                .get(t)
                .copied()
                .ok_or_else(|| format!("unknown name {t}")),
        }
    }
}

fn literal(t: &str) -> Result<i128, String> {
    let t = t.replace('_', "");
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => (hex.to_string(), 16),
        None => (t.clone(), 10),
    };
    // A type suffix starts at the first 'u' or 'i' (never a hex digit).
    let (digits, suffix) = match digits.find(['u', 'i']) {
        Some(i) => (&digits[..i], Some(&digits[i..])),
        None => (digits.as_str(), None),
    };
    let v = i128::from_str_radix(digits, radix).map_err(|e| format!("literal {t}: {e}"))?;
    Ok(match suffix {
        Some(s) => cast(v, s),
        None => v,
    })
}

/// Every constant of consts.rs with its canonical type and value (from the source).
fn rust_constants() -> Vec<(String, String, i128)> {
    let aliases = rust_aliases();
    let mut known = HashMap::new();
    let mut out = Vec::new();
    for (name, ty, expr) in rust_const_decls() {
        let ty = canonical_rust(&ty, &aliases);
        let mut e = Eval {
            tokens: Eval::tokenize(&expr),
            pos: 0,
            known: &known,
            aliases: &aliases,
        };
        let v = e
            .expr()
            .and_then(|v| {
                if e.pos == e.tokens.len() {
                    Ok(v)
                } else {
                    Err(format!("trailing tokens in `{expr}`"))
                }
            })
            .unwrap_or_else(|err| panic!("consts.rs: cannot evaluate {name} = {expr}: {err}"));
        let v = cast(v, &ty);
        known.insert(name.clone(), v);
        out.push((name, ty, v));
    }
    out
}

/// The compiled Rust constants, to check the evaluation above against.
trait Value {
    fn value(self) -> i128;
}
impl Value for u16 {
    fn value(self) -> i128 {
        self.into()
    }
}
impl Value for u32 {
    fn value(self) -> i128 {
        self.into()
    }
}
impl Value for i32 {
    fn value(self) -> i128 {
        self.into()
    }
}
impl Value for *mut core::ffi::c_void {
    fn value(self) -> i128 {
        self as isize as i128
    }
}

macro_rules! compiled {
    ($($name:ident)*) => {
        [$((stringify!($name), $name.value())),*]
    };
}

fn compiled_constants() -> HashMap<&'static str, i128> {
    compiled!(
        TRUE FALSE CURRENT_PROCESS MEM_COMMIT MEM_RESERVE MEM_REPLACE_PLACEHOLDER
        MEM_RESERVE_PLACEHOLDER MEM_RESET MEM_RESET_UNDO MEM_LARGE_PAGES MEM_FREE MEM_DECOMMIT
        MEM_RELEASE MEM_PRIVATE MEM_MAPPED MEM_IMAGE MEM_TOP_DOWN MEM_WRITE_WATCH MEM_PHYSICAL
        MEM_ROTATE MEM_4MB_PAGES MEM_COALESCE_PLACEHOLDERS MEM_PRESERVE_PLACEHOLDER
        MEM_UNMAP_WITH_TRANSIENT_BOOST WRITE_WATCH_FLAG_RESET MEM_64K_PAGES AT_ROUND_TO_PAGE
        PAGE_NOACCESS PAGE_READONLY PAGE_READWRITE PAGE_WRITECOPY PAGE_EXECUTE PAGE_EXECUTE_READ
        PAGE_EXECUTE_READWRITE PAGE_EXECUTE_WRITECOPY PAGE_GUARD PAGE_NOCACHE PAGE_WRITECOMBINE
        PAGE_TARGETS_INVALID PAGE_TARGETS_NO_UPDATE SEC_FILE SEC_IMAGE SEC_RESERVE SEC_COMMIT
        SEC_NOCACHE SEC_WRITECOMBINE SEC_LARGE_PAGES ERROR_SUCCESS ERROR_ACCESS_DENIED
        ERROR_INVALID_HANDLE ERROR_NOT_ENOUGH_MEMORY ERROR_OUTOFMEMORY ERROR_BAD_LENGTH
        ERROR_NOT_SUPPORTED ERROR_UNEXP_NET_ERR ERROR_INVALID_PARAMETER
        ERROR_CALL_NOT_IMPLEMENTED ERROR_NOT_LOCKED ERROR_PARTIAL_COPY ERROR_MR_MID_NOT_FOUND
        ERROR_INVALID_ADDRESS ERROR_NOACCESS ERROR_SWAPERROR ERROR_STACK_OVERFLOW
        ERROR_INVALID_FLAGS ERROR_MAPPED_ALIGNMENT ERROR_PRIVILEGE_NOT_HELD
        ERROR_NO_SYSTEM_RESOURCES ERROR_WORKING_SET_QUOTA ERROR_COMMITMENT_LIMIT
        ERROR_INVALID_USER_BUFFER STATUS_SUCCESS STATUS_WORKING_SET_LIMIT_RANGE
        STATUS_WAS_LOCKED STATUS_GUARD_PAGE_VIOLATION STATUS_PARTIAL_COPY
        STATUS_INVALID_INFO_CLASS STATUS_INFO_LENGTH_MISMATCH STATUS_ACCESS_VIOLATION
        STATUS_IN_PAGE_ERROR STATUS_INVALID_HANDLE STATUS_INVALID_PARAMETER STATUS_NO_MEMORY
        STATUS_CONFLICTING_ADDRESSES STATUS_NOT_MAPPED_VIEW STATUS_UNABLE_TO_FREE_VM
        STATUS_UNABLE_TO_DELETE_SECTION STATUS_INVALID_VIEW_SIZE STATUS_ALREADY_COMMITTED
        STATUS_ACCESS_DENIED STATUS_NOT_LOCKED STATUS_UNABLE_TO_DECOMMIT_VM STATUS_NOT_COMMITTED
        STATUS_SECTION_TOO_BIG STATUS_INVALID_PAGE_PROTECTION STATUS_INCOMPATIBLE_FILE_MAP
        STATUS_PRIVILEGE_NOT_HELD STATUS_RANGE_NOT_LOCKED STATUS_FREE_VM_NOT_AT_BASE
        STATUS_MEMORY_NOT_ALLOCATED STATUS_WORKING_SET_QUOTA STATUS_NOT_SUPPORTED
        STATUS_INVALID_PARAMETER_1 STATUS_INVALID_PARAMETER_2 STATUS_INVALID_PARAMETER_3
        STATUS_INVALID_PARAMETER_4 STATUS_INVALID_PARAMETER_5 STATUS_INVALID_PARAMETER_6
        STATUS_INVALID_PARAMETER_7 STATUS_INVALID_PARAMETER_8 STATUS_INVALID_PARAMETER_9
        STATUS_INVALID_PARAMETER_10 STATUS_INVALID_PARAMETER_11 STATUS_INVALID_PARAMETER_12
        STATUS_STACK_OVERFLOW STATUS_COMMITMENT_LIMIT STATUS_INVALID_ADDRESS
        STATUS_MAPPED_ALIGNMENT EXCEPTION_READ_FAULT EXCEPTION_WRITE_FAULT
        EXCEPTION_EXECUTE_FAULT PROCESSOR_ARCHITECTURE_INTEL PROCESSOR_ARCHITECTURE_ARM
        PROCESSOR_ARCHITECTURE_IA64 PROCESSOR_ARCHITECTURE_AMD64
        PROCESSOR_ARCHITECTURE_IA32_ON_WIN64 PROCESSOR_ARCHITECTURE_ARM64
        PROCESSOR_ARCHITECTURE_UNKNOWN PROCESSOR_INTEL_386 PROCESSOR_INTEL_486
        PROCESSOR_INTEL_PENTIUM PROCESSOR_INTEL_IA64 PROCESSOR_AMD_X8664
        MemExtendedParameterInvalidType MemExtendedParameterAddressRequirements
        MemExtendedParameterNumaNode MemExtendedParameterPartitionHandle
        MemExtendedParameterUserPhysicalHandle MemExtendedParameterAttributeFlags
        MemExtendedParameterImageMachine MemExtendedParameterMax
        FILE_MAP_COPY FILE_MAP_WRITE FILE_MAP_READ FILE_MAP_EXECUTE FILE_MAP_ALL_ACCESS
        FILE_MAP_LARGE_PAGES FILE_MAP_TARGETS_INVALID FILE_MAP_RESERVE SECTION_QUERY
        SECTION_MAP_WRITE SECTION_MAP_READ SECTION_MAP_EXECUTE SECTION_EXTEND_SIZE
        SECTION_MAP_EXECUTE_EXPLICIT SECTION_ALL_ACCESS STANDARD_RIGHTS_REQUIRED
        SEC_IMAGE_NO_EXECUTE DUPLICATE_CLOSE_SOURCE DUPLICATE_SAME_ACCESS
        NUMA_NO_PREFERRED_NODE ERROR_FILE_NOT_FOUND ERROR_PATH_NOT_FOUND ERROR_ALREADY_EXISTS
        ERROR_BAD_EXE_FORMAT ERROR_FILENAME_EXCED_RANGE ERROR_FILE_INVALID
        ERROR_USER_MAPPED_FILE INVALID_HANDLE_VALUE
        // ---- processes ----
        PROCESS_TERMINATE PROCESS_CREATE_THREAD PROCESS_SET_SESSIONID PROCESS_VM_OPERATION
        PROCESS_VM_READ PROCESS_VM_WRITE PROCESS_DUP_HANDLE PROCESS_CREATE_PROCESS
        PROCESS_SET_QUOTA PROCESS_SET_INFORMATION PROCESS_QUERY_INFORMATION
        PROCESS_SUSPEND_RESUME PROCESS_QUERY_LIMITED_INFORMATION PROCESS_SET_LIMITED_INFORMATION
        PROCESS_ALL_ACCESS PROCESS_DELETE PROCESS_READ_CONTROL PROCESS_WRITE_DAC
        PROCESS_WRITE_OWNER PROCESS_SYNCHRONIZE PROCESS_STANDARD_RIGHTS_REQUIRED MAXIMUM_ALLOWED
        GMEM_FIXED GMEM_MOVEABLE GMEM_ZEROINIT GMEM_MODIFY GMEM_DISCARDABLE GMEM_DDESHARE
        GMEM_VALID_FLAGS GMEM_INVALID_HANDLE GMEM_DISCARDED GMEM_LOCKCOUNT GHND GPTR LMEM_FIXED
        LMEM_MOVEABLE LMEM_ZEROINIT LMEM_MODIFY LMEM_DISCARDABLE LMEM_VALID_FLAGS
        LMEM_INVALID_HANDLE LMEM_DISCARDED LHND LPTR NONZEROLHND NONZEROLPTR ERROR_DISCARDED
    )
    .into_iter()
    .collect()
}

#[test]
fn constant_parser_agrees_with_the_compiled_constants() {
    let parsed = rust_constants();
    assert!(
        parsed.len() >= 100,
        "only {} constants parsed",
        parsed.len()
    );
    let compiled = compiled_constants();
    for (name, _, value) in &parsed {
        // A constant added since this list was written is still checked against the header
        // (next test), with the value evaluated from its source.
        if let Some(&c) = compiled.get(name.as_str()) {
            assert_eq!(*value, c, "{name}: evaluated {value:#x}, compiled {c:#x}");
        }
    }
    for name in compiled.keys() {
        assert!(
            parsed.iter().any(|(n, _, _)| n == name),
            "{name} is no longer in consts.rs: remove it from compiled_constants()"
        );
    }
}

#[test]
fn every_rust_constant_is_in_the_header_with_its_value() {
    let Some(cc) = c_compiler_or_skip("constants") else {
        return;
    };
    let constants = rust_constants();
    let mut c = String::from("#include <virtmem.h>\n#include <stdio.h>\nint main(void)\n{\n");
    for (name, ty, _) in &constants {
        let signed = ty.starts_with('i') || ty.starts_with('*');
        let value = if ty.starts_with('*') {
            format!("(long long)(intptr_t)({name})")
        } else if signed {
            format!("(long long)({name})")
        } else {
            format!("(unsigned long long)({name})")
        };
        let fmt = if signed { "%lld" } else { "%llu" };
        writeln!(c, "    printf(\"{name} {fmt}\\n\", {value});").unwrap();
    }
    c.push_str("    return 0;\n}\n");
    let out = compile_and_run(&cc, "constants", &c);
    let seen: HashMap<&str, i128> = out
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n, v.parse().unwrap())
        })
        .collect();
    let mut wrong = Vec::new();
    for (name, ty, value) in &constants {
        let c_value = seen[name.as_str()];
        if c_value != *value {
            wrong.push(format!("{name} ({ty}): Rust {value}, C {c_value}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "header constants differ:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Structures
// ---------------------------------------------------------------------------------------------

/// `(struct or union, field)` of every `pub struct`/`pub union` in types.rs, all cfg variants.
fn rust_struct_fields() -> BTreeSet<(String, String)> {
    let src = strip_comments(&win32_src("types.rs"));
    let mut fields = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in src.lines().map(str::trim) {
        if let Some(rest) = line
            .strip_prefix("pub struct ")
            .or_else(|| line.strip_prefix("pub union "))
        {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            current = Some(name);
        } else if line.starts_with('}') {
            current = None;
        } else if let (Some(owner), Some(rest)) = (&current, line.strip_prefix("pub ")) {
            if let Some((field, _)) = rest.split_once(':') {
                fields.insert((owner.clone(), field.trim().to_string()));
            }
        }
    }
    fields
}

fn size_of_pointee<T>(_: *const T) -> usize {
    core::mem::size_of::<T>()
}

/// (offset, size) of a (possibly nested) field, without reading anything.
macro_rules! field {
    ($ty:ident, $($path:ident).+) => {{
        let u = core::mem::MaybeUninit::<$ty>::uninit();
        let base = u.as_ptr();
        // SAFETY: only the address of a field inside `u` is computed; nothing is read.
        let f = unsafe { core::ptr::addr_of!((*base).$($path).+) };
        (f as usize - base as usize, size_of_pointee(f))
    }};
}

/// One field: the Rust (owner type, field) it checks, its Rust offset from the start of the
/// outermost C struct and its size, and the C expressions for the same.
struct Field {
    owner: &'static str,
    field: &'static str,
    rust: (usize, usize),
    c_offset: String,
    c_size: String,
}

/// A field C can name: `S.f` in Rust is `S.f` in C.
fn plain(owner: &'static str, field: &'static str, rust: (usize, usize)) -> Field {
    Field {
        owner,
        field,
        rust,
        c_offset: format!("offsetof({owner}, {field})"),
        c_size: format!("sizeof(((({owner} *)0)->{field}))"),
    }
}

/// A field that C reaches through anonymous unions and structs: C expressions given.
fn nested(
    owner: &'static str,
    field: &'static str,
    rust: (usize, usize),
    c_offset: &str,
    c_size: &str,
) -> Field {
    Field {
        owner,
        field,
        rust,
        c_offset: c_offset.to_string(),
        c_size: c_size.to_string(),
    }
}

fn struct_table() -> (Vec<(&'static str, usize, usize)>, Vec<Field>) {
    use core::mem::{align_of, size_of};
    macro_rules! sizes {
        ($($t:ident)*) => { vec![$((stringify!($t), size_of::<$t>(), align_of::<$t>())),*] };
    }
    let structs = sizes!(
        MEMORY_BASIC_INFORMATION MEMORY_BASIC_INFORMATION32 MEMORY_BASIC_INFORMATION64
        SYSTEM_INFO MEM_EXTENDED_PARAMETER MEM_ADDRESS_REQUIREMENTS WIN32_MEMORY_RANGE_ENTRY
        SECURITY_ATTRIBUTES OVERLAPPED MEMORYSTATUSEX MEMORYSTATUS
        PSAPI_WORKING_SET_BLOCK PSAPI_WORKING_SET_INFORMATION PSAPI_WORKING_SET_EX_BLOCK
        PSAPI_WORKING_SET_EX_INFORMATION UNICODE_STRING OBJECT_ATTRIBUTES
        WIN32_MEMORY_REGION_INFORMATION
        PROCESS_MEMORY_COUNTERS PROCESS_MEMORY_COUNTERS_EX
        PROCESS_HEAP_ENTRY HEAP_SUMMARY HEAP_OPTIMIZE_RESOURCES_INFORMATION
    );

    macro_rules! plain_fields {
        ($t:ident: $($f:ident)*) => { vec![$(plain(stringify!($t), stringify!($f), field!($t, $f))),*] };
    }
    let mut fields = Vec::new();
    fields.extend(plain_fields!(MEMORY_BASIC_INFORMATION:
        BaseAddress AllocationBase AllocationProtect RegionSize State Protect Type));
    #[cfg(target_pointer_width = "64")]
    fields.extend(plain_fields!(MEMORY_BASIC_INFORMATION: PartitionId));
    fields.extend(plain_fields!(MEMORY_BASIC_INFORMATION32:
        BaseAddress AllocationBase AllocationProtect RegionSize State Protect Type));
    fields.extend(plain_fields!(MEMORY_BASIC_INFORMATION64:
        BaseAddress AllocationBase AllocationProtect __alignment1 RegionSize State Protect Type
        __alignment2));
    fields.extend(plain_fields!(SYSTEM_INFO:
        dwPageSize lpMinimumApplicationAddress lpMaximumApplicationAddress
        dwActiveProcessorMask dwNumberOfProcessors dwProcessorType dwAllocationGranularity
        wProcessorLevel wProcessorRevision));
    fields.extend(plain_fields!(MEM_ADDRESS_REQUIREMENTS:
        LowestStartingAddress HighestEndingAddress Alignment));
    fields.extend(plain_fields!(WIN32_MEMORY_RANGE_ENTRY: VirtualAddress NumberOfBytes));
    fields.extend(plain_fields!(MEMORYSTATUSEX:
        dwLength dwMemoryLoad ullTotalPhys ullAvailPhys ullTotalPageFile ullAvailPageFile
        ullTotalVirtual ullAvailVirtual ullAvailExtendedVirtual));
    fields.extend(plain_fields!(MEMORYSTATUS:
        dwLength dwMemoryLoad dwTotalPhys dwAvailPhys dwTotalPageFile dwAvailPageFile
        dwTotalVirtual dwAvailVirtual));
    // Process memory counters (issue 15 item 2).
    fields.extend(plain_fields!(PROCESS_MEMORY_COUNTERS:
        cb PageFaultCount PeakWorkingSetSize WorkingSetSize QuotaPeakPagedPoolUsage
        QuotaPagedPoolUsage QuotaPeakNonPagedPoolUsage QuotaNonPagedPoolUsage PagefileUsage
        PeakPagefileUsage));
    fields.extend(plain_fields!(PROCESS_MEMORY_COUNTERS_EX:
        cb PageFaultCount PeakWorkingSetSize WorkingSetSize QuotaPeakPagedPoolUsage
        QuotaPagedPoolUsage QuotaPeakNonPagedPoolUsage QuotaNonPagedPoolUsage PagefileUsage
        PeakPagefileUsage PrivateUsage));
    fields.extend(plain_fields!(SECURITY_ATTRIBUTES:
        nLength lpSecurityDescriptor bInheritHandle));
    fields.extend(plain_fields!(OVERLAPPED: Internal InternalHigh hEvent));
    // Heaps (issue 16): PROCESS_HEAP_ENTRY's union is named Anonymous in Rust and is
    // anonymous in C (its members Block and Region are reached directly).
    fields.extend(plain_fields!(PROCESS_HEAP_ENTRY:
        lpData cbData cbOverhead iRegionIndex wFlags));
    fields.extend(plain_fields!(HEAP_SUMMARY:
        cb cbAllocated cbCommitted cbReserved cbMaxReserve));
    fields.extend(plain_fields!(HEAP_OPTIMIZE_RESOURCES_INFORMATION: Version Flags));
    fields.push(nested(
        "PROCESS_HEAP_ENTRY",
        "Anonymous",
        field!(PROCESS_HEAP_ENTRY, Anonymous),
        "offsetof(PROCESS_HEAP_ENTRY, Block)",
        "sizeof(PROCESS_HEAP_ENTRY) - offsetof(PROCESS_HEAP_ENTRY, Block)",
    ));
    for (f, rust, c) in [
        (
            "Block",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Block),
            "Block",
        ),
        (
            "Region",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Region),
            "Region",
        ),
    ] {
        fields.push(nested(
            "PROCESS_HEAP_ENTRY_0",
            f,
            rust,
            &format!("offsetof(PROCESS_HEAP_ENTRY, {c})"),
            &format!("sizeof(((PROCESS_HEAP_ENTRY *)0)->{c})"),
        ));
    }
    for (f, rust) in [
        ("hMem", field!(PROCESS_HEAP_ENTRY, Anonymous.Block.hMem)),
        (
            "dwReserved",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Block.dwReserved),
        ),
    ] {
        fields.push(nested(
            "PROCESS_HEAP_ENTRY_0_0",
            f,
            rust,
            &format!("offsetof(PROCESS_HEAP_ENTRY, Block.{f})"),
            &format!("sizeof(((PROCESS_HEAP_ENTRY *)0)->Block.{f})"),
        ));
    }
    for (f, rust) in [
        (
            "dwCommittedSize",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Region.dwCommittedSize),
        ),
        (
            "dwUnCommittedSize",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Region.dwUnCommittedSize),
        ),
        (
            "lpFirstBlock",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Region.lpFirstBlock),
        ),
        (
            "lpLastBlock",
            field!(PROCESS_HEAP_ENTRY, Anonymous.Region.lpLastBlock),
        ),
    ] {
        fields.push(nested(
            "PROCESS_HEAP_ENTRY_0_1",
            f,
            rust,
            &format!("offsetof(PROCESS_HEAP_ENTRY, Region.{f})"),
            &format!("sizeof(((PROCESS_HEAP_ENTRY *)0)->Region.{f})"),
        ));
    }

    // OVERLAPPED's anonymous union { struct { DWORD Offset; DWORD OffsetHigh; }; PVOID
    // Pointer; }, which Rust names Anonymous: OVERLAPPED_0 { Anonymous: OVERLAPPED_0_0
    // { Offset, OffsetHigh }, Pointer }.
    let ov = "OVERLAPPED";
    fields.push(nested(
        ov,
        "Anonymous",
        field!(OVERLAPPED, Anonymous),
        "offsetof(OVERLAPPED, Offset)",
        "offsetof(OVERLAPPED, hEvent) - offsetof(OVERLAPPED, Offset)",
    ));
    fields.push(nested(
        "OVERLAPPED_0",
        "Anonymous",
        field!(OVERLAPPED, Anonymous.Anonymous),
        "offsetof(OVERLAPPED, Offset)",
        "offsetof(OVERLAPPED, OffsetHigh) + sizeof(DWORD) - offsetof(OVERLAPPED, Offset)",
    ));
    fields.push(nested(
        "OVERLAPPED_0",
        "Pointer",
        field!(OVERLAPPED, Anonymous.Pointer),
        "offsetof(OVERLAPPED, Pointer)",
        "sizeof(((OVERLAPPED *)0)->Pointer)",
    ));
    for (f, rust) in [
        ("Offset", field!(OVERLAPPED, Anonymous.Anonymous.Offset)),
        (
            "OffsetHigh",
            field!(OVERLAPPED, Anonymous.Anonymous.OffsetHigh),
        ),
    ] {
        fields.push(nested(
            "OVERLAPPED_0_0",
            f,
            rust,
            &format!("offsetof(OVERLAPPED, {f})"),
            &format!("sizeof(((OVERLAPPED *)0)->{f})"),
        ));
    }

    // SYSTEM_INFO's anonymous union { DWORD dwOemId; struct { WORD wProcessorArchitecture;
    // WORD wReserved; }; }, which Rust names Anonymous: SYSTEM_INFO_0 { dwOemId,
    // Anonymous: SYSTEM_INFO_0_0 }. A union's "size" in C: the bytes up to the next field.
    let si = "SYSTEM_INFO";
    fields.push(nested(
        si,
        "Anonymous",
        field!(SYSTEM_INFO, Anonymous),
        "offsetof(SYSTEM_INFO, dwOemId)",
        "offsetof(SYSTEM_INFO, dwPageSize) - offsetof(SYSTEM_INFO, dwOemId)",
    ));
    fields.push(nested(
        "SYSTEM_INFO_0",
        "dwOemId",
        field!(SYSTEM_INFO, Anonymous.dwOemId),
        "offsetof(SYSTEM_INFO, dwOemId)",
        "sizeof(((SYSTEM_INFO *)0)->dwOemId)",
    ));
    fields.push(nested("SYSTEM_INFO_0", "Anonymous", field!(SYSTEM_INFO, Anonymous.Anonymous),
        "offsetof(SYSTEM_INFO, wProcessorArchitecture)",
        "offsetof(SYSTEM_INFO, wReserved) + sizeof(WORD) - offsetof(SYSTEM_INFO, wProcessorArchitecture)"));
    fields.push(nested(
        "SYSTEM_INFO_0_0",
        "wProcessorArchitecture",
        field!(SYSTEM_INFO, Anonymous.Anonymous.wProcessorArchitecture),
        "offsetof(SYSTEM_INFO, wProcessorArchitecture)",
        "sizeof(((SYSTEM_INFO *)0)->wProcessorArchitecture)",
    ));
    fields.push(nested(
        "SYSTEM_INFO_0_0",
        "wReserved",
        field!(SYSTEM_INFO, Anonymous.Anonymous.wReserved),
        "offsetof(SYSTEM_INFO, wReserved)",
        "sizeof(((SYSTEM_INFO *)0)->wReserved)",
    ));

    // MEM_EXTENDED_PARAMETER: struct { DWORD64 Type : 8; DWORD64 Reserved : 56; } (Rust:
    // Anonymous1: MEM_EXTENDED_PARAMETER_0 { _bitfield: u64 }; the bit layout is checked by
    // bitfield_layout below) and union { ULong64, Pointer, Size, Handle, ULong } (Anonymous2).
    let mp = "MEM_EXTENDED_PARAMETER";
    fields.push(nested(
        mp,
        "Anonymous1",
        field!(MEM_EXTENDED_PARAMETER, Anonymous1),
        "0 /* first member */",
        "offsetof(MEM_EXTENDED_PARAMETER, ULong64)",
    ));
    fields.push(nested(
        "MEM_EXTENDED_PARAMETER_0",
        "_bitfield",
        field!(MEM_EXTENDED_PARAMETER, Anonymous1._bitfield),
        "0 /* first member */",
        "offsetof(MEM_EXTENDED_PARAMETER, ULong64)",
    ));
    fields.push(nested(
        mp,
        "Anonymous2",
        field!(MEM_EXTENDED_PARAMETER, Anonymous2),
        "offsetof(MEM_EXTENDED_PARAMETER, ULong64)",
        "sizeof(MEM_EXTENDED_PARAMETER) - offsetof(MEM_EXTENDED_PARAMETER, ULong64)",
    ));
    macro_rules! union_members {
        ($($f:ident)*) => {$(
            fields.push(nested("MEM_EXTENDED_PARAMETER_1", stringify!($f),
                field!(MEM_EXTENDED_PARAMETER, Anonymous2.$f),
                concat!("offsetof(MEM_EXTENDED_PARAMETER, ", stringify!($f), ")"),
                concat!("sizeof(((MEM_EXTENDED_PARAMETER *)0)->", stringify!($f), ")")));
        )*};
    }
    union_members!(ULong64 Pointer Size Handle ULong);

    // ---- The native layer (win32/nt): working sets, names, object attributes, regions ----
    fields.extend(plain_fields!(PSAPI_WORKING_SET_INFORMATION: NumberOfEntries WorkingSetInfo));
    fields
        .extend(plain_fields!(PSAPI_WORKING_SET_EX_INFORMATION: VirtualAddress VirtualAttributes));
    fields.extend(plain_fields!(UNICODE_STRING: Length MaximumLength Buffer));
    fields.extend(plain_fields!(OBJECT_ATTRIBUTES:
        Length RootDirectory ObjectName Attributes SecurityDescriptor SecurityQualityOfService));
    fields.extend(plain_fields!(WIN32_MEMORY_REGION_INFORMATION:
        AllocationBase AllocationProtect RegionSize CommitSize));
    // The bit-field unions: C reaches every member as one word at offset 0 (Flags).
    let word = |owner: &'static str, field: &'static str, rust, c_owner: &str| {
        nested(
            owner,
            field,
            rust,
            &format!("offsetof({c_owner}, Flags)"),
            &format!("sizeof((({c_owner} *)0)->Flags)"),
        )
    };
    fields.push(word(
        "PSAPI_WORKING_SET_BLOCK",
        "Flags",
        field!(PSAPI_WORKING_SET_BLOCK, Flags),
        "PSAPI_WORKING_SET_BLOCK",
    ));
    fields.push(word(
        "PSAPI_WORKING_SET_BLOCK",
        "Anonymous",
        field!(PSAPI_WORKING_SET_BLOCK, Anonymous),
        "PSAPI_WORKING_SET_BLOCK",
    ));
    fields.push(word(
        "PSAPI_WORKING_SET_BLOCK_0",
        "_bitfield",
        field!(PSAPI_WORKING_SET_BLOCK, Anonymous._bitfield),
        "PSAPI_WORKING_SET_BLOCK",
    ));
    let ex = "PSAPI_WORKING_SET_EX_BLOCK";
    fields.push(word(
        ex,
        "Flags",
        field!(PSAPI_WORKING_SET_EX_BLOCK, Flags),
        ex,
    ));
    fields.push(word(
        ex,
        "Anonymous",
        field!(PSAPI_WORKING_SET_EX_BLOCK, Anonymous),
        ex,
    ));
    fields.push(word(
        "PSAPI_WORKING_SET_EX_BLOCK_0",
        "Anonymous",
        field!(PSAPI_WORKING_SET_EX_BLOCK, Anonymous.Anonymous),
        ex,
    ));
    fields.push(word(
        "PSAPI_WORKING_SET_EX_BLOCK_0",
        "Invalid",
        field!(PSAPI_WORKING_SET_EX_BLOCK, Anonymous.Invalid),
        ex,
    ));
    fields.push(word(
        "PSAPI_WORKING_SET_EX_BLOCK_0_0",
        "_bitfield",
        field!(PSAPI_WORKING_SET_EX_BLOCK, Anonymous.Anonymous._bitfield),
        ex,
    ));
    fields.push(word(
        "PSAPI_WORKING_SET_EX_BLOCK_0_1",
        "_bitfield",
        field!(PSAPI_WORKING_SET_EX_BLOCK, Anonymous.Invalid._bitfield),
        ex,
    ));
    let mri = "WIN32_MEMORY_REGION_INFORMATION";
    fields.push(word(
        mri,
        "Anonymous",
        field!(WIN32_MEMORY_REGION_INFORMATION, Anonymous),
        mri,
    ));
    fields.push(word(
        "WIN32_MEMORY_REGION_INFORMATION_0",
        "Flags",
        field!(WIN32_MEMORY_REGION_INFORMATION, Anonymous.Flags),
        mri,
    ));
    fields.push(word(
        "WIN32_MEMORY_REGION_INFORMATION_0",
        "Anonymous",
        field!(WIN32_MEMORY_REGION_INFORMATION, Anonymous.Anonymous),
        mri,
    ));
    fields.push(word(
        "WIN32_MEMORY_REGION_INFORMATION_0_0",
        "_bitfield",
        field!(
            WIN32_MEMORY_REGION_INFORMATION,
            Anonymous.Anonymous._bitfield
        ),
        mri,
    ));

    (structs, fields)
}

#[test]
fn the_field_table_covers_every_rust_struct_field() {
    let (_, fields) = struct_table();
    let covered: BTreeSet<(String, String)> = fields
        .iter()
        .map(|f| (f.owner.to_string(), f.field.to_string()))
        .collect();
    let mut missing: Vec<_> = rust_struct_fields()
        .into_iter()
        .filter(|k| !covered.contains(k))
        .collect();
    // The other pointer width's layout of MEMORY_BASIC_INFORMATION.
    missing.retain(|(o, f)| !(o == "MEMORY_BASIC_INFORMATION" && f == "PartitionId"));
    // C has no MEMORY_MAPPED_VIEW_ADDRESS: the SDK's MapViewOfFile* return (and
    // UnmapViewOfFile* take) a plain pointer, which this one-pointer struct is in the ABI
    // (see `abi_rust`).
    missing.retain(|(o, _)| o != "MEMORY_MAPPED_VIEW_ADDRESS");
    assert!(
        missing.is_empty(),
        "types.rs has fields this test does not check (add them to include/virtmem.h and to \
         struct_table()): {missing:?}"
    );
}

#[test]
fn struct_layouts_match_rust() {
    let Some(cc) = c_compiler_or_skip("struct layouts") else {
        return;
    };
    let (structs, fields) = struct_table();
    let mut c = String::from(
        "#include <virtmem.h>\n#include <stdio.h>\n#include <string.h>\nint main(void)\n{\n",
    );
    for (s, _, _) in &structs {
        writeln!(
            c,
            "    printf(\"size {s} %zu %zu\\n\", sizeof({s}), (size_t)_Alignof({s}));"
        )
        .unwrap();
    }
    for (i, f) in fields.iter().enumerate() {
        writeln!(
            c,
            "    printf(\"field {i} %zu %zu\\n\", (size_t)({}), (size_t)({}));",
            f.c_offset, f.c_size
        )
        .unwrap();
    }
    // MEM_EXTENDED_PARAMETER's bit fields: Type is the low 8 bits of the first 64-bit word.
    c.push_str(
        r#"    {
        MEM_EXTENDED_PARAMETER p;
        unsigned long long word;
        memset(&p, 0, sizeof p);
        p.Type = MemExtendedParameterAttributeFlags;
        memcpy(&word, &p, sizeof word);
        printf("bits Type %llu\n", word);
        memset(&p, 0, sizeof p);
        p.Reserved = (1ULL << 56) - 1;
        memcpy(&word, &p, sizeof word);
        printf("bits Reserved %llu\n", word);
    }
    return 0;
}
"#,
    );
    let out = compile_and_run(&cc, "structs", &c);
    let mut wrong = Vec::new();
    let mut lines = out.lines();
    for (s, size, align) in &structs {
        let line = lines.next().unwrap();
        let want = format!("size {s} {size} {align}");
        if line != want {
            wrong.push(format!("{s}: Rust size/align {size} {align}, C {line}"));
        }
    }
    for (i, f) in fields.iter().enumerate() {
        let line = lines.next().unwrap();
        let want = format!("field {i} {} {}", f.rust.0, f.rust.1);
        if line != want {
            wrong.push(format!(
                "{}.{}: Rust offset/size {} {}, C ({} / {}) gives {}",
                f.owner, f.field, f.rust.0, f.rust.1, f.c_offset, f.c_size, line
            ));
        }
    }
    // Rust reads Type as `_bitfield & 0xFF` (rules/requests.rs `extended_parameter_type`), Reserved
    // as the bits above (which must be zero).
    let mut p = MEM_EXTENDED_PARAMETER::default();
    p.Anonymous1._bitfield = MemExtendedParameterAttributeFlags as u64;
    let want_type = format!("bits Type {}", p.Anonymous1._bitfield);
    let want_reserved = format!("bits Reserved {}", ((1u64 << 56) - 1) << 8);
    for want in [want_type, want_reserved] {
        let line = lines.next().unwrap();
        if line != want {
            wrong.push(format!("bit fields: Rust {want}, C {line}"));
        }
    }
    assert!(wrong.is_empty(), "layouts differ:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------------------------

struct Signature {
    params: Vec<String>,
    ret: String,
}

/// Splits `a: T, b: U` at its top-level commas (types may contain `fn(..)` and `<..>`).
fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0i32;
    let mut prev = ' ';
    for c in list.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            '>' if prev != '-' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                prev = c;
                continue;
            }
            _ => {}
        }
        parts.last_mut().unwrap().push(c);
        prev = c;
    }
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(s: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {s}")
}

/// `(a: A, b: B) -> R` (or a bare type list) to canonical parameter and return types.
fn rust_signature(sig: &str, aliases: &HashMap<String, String>) -> Signature {
    let open = sig.find('(').expect("(");
    let close = matching_paren(sig, open);
    let params = split_top_level(&sig[open + 1..close])
        .iter()
        .map(|p| {
            // `name: Type`, or just `Type` inside a fn pointer type without names
            let ty = match p.split_once(':') {
                Some((name, ty)) if !name.contains(['(', '<', '*']) => ty,
                _ => p.as_str(),
            };
            canonical_rust(ty, aliases)
        })
        .collect();
    let after = sig[close + 1..].trim();
    let after = after
        .split('{')
        .next()
        .unwrap()
        .split(" where ")
        .next()
        .unwrap()
        .trim();
    let ret = match after.strip_prefix("->") {
        Some(t) => canonical_rust(t, aliases),
        None => "()".to_string(),
    };
    Signature { params, ret }
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every `#[no_mangle]` function in the crate's src/, with canonical types.
fn rust_exports() -> BTreeMap<String, Signature> {
    let aliases = rust_aliases();
    let mut files = Vec::new();
    rs_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.sort();
    let mut out = BTreeMap::new();
    for file in files {
        let src = strip_comments(&std::fs::read_to_string(&file).unwrap());
        let mut rest = src.as_str();
        while let Some(i) = rest.find("no_mangle") {
            rest = &rest[i + "no_mangle".len()..];
            // The next item after the attribute is the function: `... fn NAME(...) -> R {`.
            let f = rest.find("fn ").expect("fn after #[no_mangle]");
            let item = &rest[f + 3..];
            let open = item.find('(').unwrap();
            let name = item[..open].trim().to_string();
            let close = matching_paren(item, open);
            let body = close + item[close..].find('{').expect("function body");
            out.insert(name, rust_signature(&item[open..body], &aliases));
        }
    }
    out
}

/// The Windows type names the prototypes use, as canonical Rust types.
const WINDOWS_TYPES: &[(&str, &str)] = &[
    ("VOID", "()"),
    ("PVOID", "*mut c_void"),
    ("LPVOID", "*mut c_void"),
    ("LPCVOID", "*const c_void"),
    ("HANDLE", "*mut c_void"),
    // Heaps (issue 16).
    ("HEAP_INFORMATION_CLASS", "i32"),
    ("PHANDLE", "*mut *mut c_void"),
    ("PSIZE_T", "*mut usize"),
    ("LPPROCESS_HEAP_ENTRY", "*mut PROCESS_HEAP_ENTRY"),
    ("LPHEAP_SUMMARY", "*mut HEAP_SUMMARY"),
    // Global and Local memory (issue 16 item 2).
    ("HGLOBAL", "*mut c_void"),
    ("HLOCAL", "*mut c_void"),
    ("BOOL", "i32"),
    ("DWORD", "u32"),
    ("ULONG", "u32"),
    ("UINT", "u32"),
    ("WORD", "u16"),
    ("BYTE", "u8"),
    ("SIZE_T", "usize"),
    ("ULONG_PTR", "usize"),
    ("UINT_PTR", "usize"),
    ("DWORD_PTR", "usize"),
    ("ULONGLONG", "u64"),
    ("DWORD64", "u64"),
    ("NTSTATUS", "i32"),
    ("OFFER_PRIORITY", "i32"),
    ("PDWORD", "*mut u32"),
    ("LPDWORD", "*mut u32"),
    ("PULONG", "*mut u32"),
    ("PULONG_PTR", "*mut usize"),
    ("PMEMORY_BASIC_INFORMATION", "*mut MEMORY_BASIC_INFORMATION"),
    ("LPSYSTEM_INFO", "*mut SYSTEM_INFO"),
    ("LPMEMORYSTATUSEX", "*mut MEMORYSTATUSEX"),
    ("LPMEMORYSTATUS", "*mut MEMORYSTATUS"),
    ("PULONGLONG", "*mut u64"),
    ("PWIN32_MEMORY_RANGE_ENTRY", "*mut WIN32_MEMORY_RANGE_ENTRY"),
    ("PMEM_EXTENDED_PARAMETER", "*mut MEM_EXTENDED_PARAMETER"),
    ("MEM_EXTENDED_PARAMETER", "MEM_EXTENDED_PARAMETER"),
    ("VIRTMEM_GUARD_PAGE_HANDLER", "fn(*mut c_void, u32) -> i32"),
    ("FARPROC", "fn() -> isize"),
    ("LONG", "i32"),
    ("PLONG", "*mut i32"),
    ("LPCSTR", "*const c_char"),
    ("LPSTR", "*mut c_char"),
    ("LPCWSTR", "*const u16"),
    ("LPWSTR", "*mut u16"),
    ("LPSECURITY_ATTRIBUTES", "*mut SECURITY_ATTRIBUTES"),
    ("LPOVERLAPPED", "*mut OVERLAPPED"),
    ("ULONG64", "u64"),
    ("PCWSTR", "*const u16"),
    ("LPHANDLE", "*mut *mut c_void"),
    ("SECURITY_ATTRIBUTES", "SECURITY_ATTRIBUTES"),
    ("PSECURITY_ATTRIBUTES", "*mut SECURITY_ATTRIBUTES"),
    // The native layer (win32/nt).
    ("PHANDLE", "*mut *mut c_void"),
    ("ACCESS_MASK", "u32"),
    ("POBJECT_ATTRIBUTES", "*mut OBJECT_ATTRIBUTES"),
    ("SECTION_INHERIT", "i32"),
    ("MEMORY_INFORMATION_CLASS", "i32"),
    // Process memory status, working set, notifications, DEP (issue 15 item 2).
    ("PPROCESS_MEMORY_COUNTERS", "*mut PROCESS_MEMORY_COUNTERS"),
    ("PSIZE_T", "*mut usize"),
    ("PBOOL", "*mut i32"),
    ("MEMORY_RESOURCE_NOTIFICATION_TYPE", "i32"),
    ("DEP_SYSTEM_POLICY_TYPE", "i32"),
    // ---- processes ----
    ("PROCESS_ACCESS_RIGHTS", "u32"),
];

/// Windows type names that are not the C type of their Rust counterpart but pass the same way
/// in the ABI: the SDK's `LARGE_INTEGER` is a union, windows-sys passes an `i64`. Checked by
/// size and alignment (of the pointee, for a pointer) instead of type compatibility.
const ABI_TYPES: &[(&str, &str)] = &[("LARGE_INTEGER", "i64"), ("PLARGE_INTEGER", "*mut i64")];

fn canonical_c(ty: &str) -> String {
    let ty = ty.trim();
    if let Some(inner) = ty.strip_suffix('*') {
        return format!("*mut {}", canonical_c(inner));
    }
    let (konst, base) = match ty.strip_prefix("const ") {
        Some(b) => (true, b.trim()),
        None => (false, ty),
    };
    let canon = WINDOWS_TYPES
        .iter()
        .chain(ABI_TYPES)
        .find(|(n, _)| *n == base)
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| panic!("c_header.rs: add the C type {base} to WINDOWS_TYPES"));
    if konst {
        format!("const {canon}")
    } else {
        canon
    }
}

/// The header's prototypes: `WINBASEAPI RET WINAPI NAME(TYPE name, ...);`, one a line.
fn header_prototypes() -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for line in header().lines() {
        let Some(rest) = line.trim().strip_prefix("WINBASEAPI ") else {
            continue;
        };
        let (ret, rest) = rest.split_once(" WINAPI ").expect("RET WINAPI NAME(...)");
        let (name, params) = rest.split_once('(').unwrap();
        let params = params.trim_end_matches(';').trim_end_matches(')');
        let params = if params.trim() == "VOID" {
            Vec::new()
        } else {
            params
                .split(',')
                .map(|p| {
                    // drop the parameter name: the last identifier
                    let p = p.trim();
                    let cut = p
                        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap();
                    canonical_c(&p[..=cut])
                })
                .collect()
        };
        out.insert(
            name.trim().to_string(),
            Signature {
                params,
                ret: canonical_c(ret),
            },
        );
    }
    out
}

/// A canonical type as the C ABI sees it: windows-sys' MEMORY_MAPPED_VIEW_ADDRESS (a
/// `repr(C)` struct of one pointer, checked in `the_view_address_struct_is_a_pointer`) is
/// passed and returned like the SDK's `LPVOID`; C's `char` strings are windows-sys' `u8`
/// ones.
fn abi_rust(ty: &str) -> String {
    match ty {
        "MEMORY_MAPPED_VIEW_ADDRESS" => "*mut c_void".to_string(),
        other => other.replace("c_char", "u8"),
    }
}

/// Types compared without constness (the header follows the SDK: `LPVOID lpAddress` where
/// windows-sys has `*const c_void`; both are the same pointer in the ABI).
///
/// Also the same: a C `char` string and windows-sys's `u8` one (`LPCSTR` / `PCSTR`), and a C
/// `void *` buffer and windows-sys's `*mut u8` (ReadFile's `lpBuffer`).
fn same_ignoring_const(a: &str, b: &str) -> bool {
    let norm = |t: &str| abi_rust(t).replace("*const ", "*mut ");
    let (a, b) = (norm(a), norm(b));
    let buffer = |t: &str| t == "*mut u8" || t == "*mut c_void";
    a == b || (buffer(&a) && buffer(&b))
}

#[test]
fn the_view_address_struct_is_a_pointer() {
    use core::mem::{align_of, size_of};
    assert_eq!(
        size_of::<MEMORY_MAPPED_VIEW_ADDRESS>(),
        size_of::<*mut core::ffi::c_void>()
    );
    assert_eq!(
        align_of::<MEMORY_MAPPED_VIEW_ADDRESS>(),
        align_of::<*mut core::ffi::c_void>()
    );
    let (offset, size) = field!(MEMORY_MAPPED_VIEW_ADDRESS, Value);
    assert_eq!((offset, size), (0, size_of::<*mut core::ffi::c_void>()));
}

#[test]
fn every_export_has_a_matching_prototype() {
    let rust = rust_exports();
    let c = header_prototypes();
    assert!(rust.len() >= 25, "only {} exports parsed", rust.len());
    let mut problems = Vec::new();
    for (name, sig) in &rust {
        let Some(proto) = c.get(name) else {
            problems.push(format!(
                "{name}: exported by Rust, no prototype in virtmem.h"
            ));
            continue;
        };
        if !same_ignoring_const(&sig.ret, &proto.ret) {
            problems.push(format!(
                "{name}: returns {} in Rust, {} in C",
                sig.ret, proto.ret
            ));
        }
        if sig.params.len() != proto.params.len() {
            problems.push(format!(
                "{name}: {} parameters in Rust, {} in C",
                sig.params.len(),
                proto.params.len()
            ));
            continue;
        }
        for (i, (r, h)) in sig.params.iter().zip(&proto.params).enumerate() {
            if !same_ignoring_const(r, h) {
                problems.push(format!(
                    "{name}: parameter {} is {r} in Rust, {h} in C",
                    i + 1
                ));
            }
        }
    }
    for name in c.keys() {
        if !rust.contains_key(name) {
            problems.push(format!(
                "{name}: declared in virtmem.h, not exported by Rust"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn windows_type_names_are_the_c_types_they_stand_for_and_every_function_links() {
    let Some(cc) = c_compiler_or_skip("types and linking") else {
        return;
    };
    let mut c = String::from("#include <virtmem.h>\n#include <stdio.h>\n");
    for (name, canon) in WINDOWS_TYPES {
        writeln!(
            c,
            "_Static_assert(__builtin_types_compatible_p({name}, {ty}), \"{name} is not {ty}\");",
            ty = c_type_of(canon)
        )
        .unwrap();
    }
    for (name, canon) in ABI_TYPES {
        let (c_name, ty) = match canon.strip_prefix("*mut ") {
            Some(inner) => (format!("*({name})0"), c_type_of(inner)),
            None => (name.to_string(), c_type_of(canon)),
        };
        writeln!(
            c,
            "_Static_assert(sizeof({c_name}) == sizeof({ty}) && _Alignof(__typeof__({c_name})) == \
             _Alignof({ty}), \"{name} does not pass as {canon}\");"
        )
        .unwrap();
    }
    c.push_str("int main(void)\n{\n    void (*volatile fns[])(void) = {\n");
    let protos = header_prototypes();
    for name in protos.keys() {
        writeln!(c, "        (void (*)(void))&{name},").unwrap();
    }
    c.push_str(
        "    };\n    size_t i, n = 0;\n    for (i = 0; i < sizeof fns / sizeof fns[0]; i++)\n        \
         n += fns[i] != 0;\n    printf(\"%zu\\n\", n);\n    return 0;\n}\n",
    );
    let out = compile_and_run(&cc, "functions", &c);
    assert_eq!(out.trim(), protos.len().to_string());
}

#[test]
fn header_works_from_cxx() {
    let Some(cxx) = cxx_compiler() else {
        println!("SKIPPED header_works_from_cxx: no C++ compiler found ($CXX, c++, g++, clang++)");
        return;
    };
    if c_compiler().is_none() {
        println!("SKIPPED header_works_from_cxx: no C compiler found");
        return;
    }
    let dir = scratch("cxx");
    let src = dir.join("prog.cpp");
    std::fs::write(
        &src,
        r#"#include <windows.h>
#include <cstdio>
int main()
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    void *p = VirtualAlloc(nullptr, si.dwPageSize, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (p == nullptr)
        return 1;
    MEMORY_BASIC_INFORMATION mbi;
    if (VirtualQuery(p, &mbi, sizeof mbi) != sizeof mbi || mbi.State != MEM_COMMIT)
        return 2;
    std::printf("%s\n", VirtualFree(p, 0, MEM_RELEASE) ? "ok" : "fail");
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.join("prog");
    let mut cmd = Command::new(&cxx);
    cmd.arg("-I")
        .arg(repo_root().join("include"))
        .arg(&src)
        .arg(static_lib())
        .args(SYSTEM_LIBS)
        .arg("-o")
        .arg(&exe);
    compile(cmd);
    let (out, stdout) = run(&exe);
    assert!(out.status.success(), "exit status {}", out.status);
    assert_eq!(stdout.trim(), "ok");
}
