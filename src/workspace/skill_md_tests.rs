use super::*;

#[test]
fn front_matter_table() {
    let fm = |s: &str| parse_front_matter(s).unwrap().unwrap();
    let f = fm("---\nname: a\ndescription: plain text # comment\n---\nbody");
    assert_eq!(f.name.as_deref(), Some("a"));
    assert_eq!(f.description.as_deref(), Some("plain text"));
    assert_eq!(f.body, "body");
    let f = fm("---\r\nname: 'it''s'\r\ndescription: \"a\\nb \\\"q\\\"\"\r\n---\r\n\r\nB\r\n");
    assert_eq!(f.name.as_deref(), Some("it's"));
    assert_eq!(f.description.as_deref(), Some("a\nb \"q\""));
    assert_eq!(f.body, "B\r\n");
    let f = fm("---\nname: x\ndescription: |\n  line 1\n    line 2\n\nother: y\n---\n");
    assert_eq!(f.description.as_deref(), Some("line 1\n  line 2"));
    let f = fm("---\nname: x\ndescription: >-\n  folded\n  text\n\n  para\n---\n");
    assert_eq!(f.description.as_deref(), Some("folded text\npara"));
    let f = fm("---\nname: x\ndescription: starts here\n  and continues\n---\n");
    assert_eq!(f.description.as_deref(), Some("starts here and continues"));
    let f = fm("---\n# comment\nname:   spaced  \nmetadata:\n  name: nested\n---\n");
    assert_eq!(f.name.as_deref(), Some("spaced"));
    assert_eq!(f.description, None);
    let f = fm("\u{feff}---\nname: \"\"\n...\nrest");
    assert_eq!(f.name, None);
    assert_eq!(f.body, "rest");
    assert_eq!(parse_front_matter("no front matter").unwrap(), None);
    assert_eq!(parse_front_matter("").unwrap(), None);
    assert!(parse_front_matter("---\nname: x\n").is_err());
}

#[test]
fn yaml_scalars_read_back() {
    for s in [
        "simple",
        "my-skill",
        "Use when: always",
        "a # b",
        "- dash",
        "'quoted'",
        "\"dq\"",
        "line\nbreak",
        "back\\slash",
        "true",
        "12",
        "",
        " padded ",
        "émoji 🦀",
        "trailing:",
        "ctl\u{1}",
    ] {
        let md = format!("---\nname: n\ndescription: {}\n---\n", yaml_scalar(s));
        let f = parse_front_matter(&md).unwrap().unwrap();
        assert_eq!(f.description.unwrap_or_default(), s, "for {s:?}: {md}");
    }
    assert_eq!(yaml_scalar("simple words"), "simple words");
    assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
}
