//! Compile-fail tests of virtmem's public surface (see `tests/ui/`): every program there must
//! fail to compile, because each one is a way safe code could once break memory safety.
