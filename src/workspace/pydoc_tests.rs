use super::*;
use crate::workspace::test_util::DOCSTRING_CASES;

#[test]
fn docstring_table() {
    for (code, want) in DOCSTRING_CASES {
        assert_eq!(extract_docstring(code), *want, "for {code:?}");
    }
}
