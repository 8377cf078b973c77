//! Each former hole of the safe API (issue 12) is a program that must not compile: the
//! expected compiler errors are in `tests/ui/*.stderr`.

#[test]
fn former_holes_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
