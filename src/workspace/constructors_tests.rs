use std::fs;
use std::path::Path;

use super::super::install;
use super::*;
use crate::workspace::WorkspaceConfig;
use crate::workspace::test_util::{err_of, handle, write};

#[test]
fn library_from_file() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    write(
        &base.join("libs/helpers.py"),
        "\"\"\"Helpers.\"\"\"\nX = 1\n",
    );
    let lib = Library::from_file(base, "libs/helpers.py").unwrap();
    assert_eq!(lib.name, "helpers");
    assert_eq!(lib.docs, "Helpers.");
    let LibrarySource::File { path, code } = &lib.source else {
        panic!("{lib:?}")
    };
    assert_eq!(path, &base.join("libs/helpers.py"));
    assert_eq!(code, "\"\"\"Helpers.\"\"\"\nX = 1\n");
    // An absolute path ignores base_dir.
    let abs = Library::from_file(Path::new("/nonexistent"), base.join("libs/helpers.py"));
    assert_eq!(abs.unwrap(), lib);
}

#[test]
fn library_from_file_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let e = err_of(Library::from_file(base, "missing.py"));
    assert!(
        e.contains("`missing.py`") && e.contains("cannot be read"),
        "{e}"
    );
    assert!(
        e.contains(&base.join("missing.py").display().to_string()),
        "{e}"
    );

    fs::create_dir(base.join("pkg.py")).unwrap();
    let e = err_of(Library::from_file(base, "pkg.py"));
    assert!(e.contains("is a folder"), "{e}");

    write(&base.join("notes.txt"), "");
    let e = err_of(Library::from_file(base, "notes.txt"));
    assert!(e.contains("must end in `.py`"), "{e}");

    write(&base.join("my-lib.py"), "");
    let e = err_of(Library::from_file(base, "my-lib.py"));
    assert!(
        e.contains("`my-lib` is not a valid Python module name"),
        "{e}"
    );
    assert!(e.contains("rename it, e.g. to `my_lib`"), "{e}");

    write(&base.join("2fast.py"), "");
    let e = err_of(Library::from_file(base, "2fast.py"));
    assert!(e.contains("e.g. to `lib_2fast`"), "{e}");

    write(&base.join("class.py"), "");
    let e = err_of(Library::from_file(base, "class.py"));
    assert!(
        e.contains("is a Python keyword") && e.contains("`class_lib`"),
        "{e}"
    );
}

#[test]
fn library_from_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    write(&base.join("tools/__init__.py"), "# pkg\n'''Tool kit.'''\n");
    write(&base.join("tools/sub.py"), "");
    let lib = Library::from_directory(base, "tools").unwrap();
    assert_eq!(lib.name, "tools");
    assert_eq!(lib.docs, "Tool kit.");
    assert_eq!(
        lib.source,
        LibrarySource::Directory {
            path: base.join("tools")
        }
    );
    // `.` and `..` still give the folder's name.
    let again = Library::from_directory(&base.join("tools"), ".").unwrap();
    assert_eq!(again.name, "tools");
    fs::create_dir(base.join("tools/x")).unwrap();
    let up = Library::from_directory(&base.join("tools/x"), "..").unwrap();
    assert_eq!(up.name, "tools");

    write(&base.join("plain/a.py"), "");
    let e = err_of(Library::from_directory(base, "plain"));
    assert!(e.contains("has no `__init__.py`; add one"), "{e}");
    let e = err_of(Library::from_directory(base, "tools/sub.py"));
    assert!(e.contains("is not a folder"), "{e}");
    let e = err_of(Library::from_directory(base, "nope"));
    assert!(e.contains("cannot be read"), "{e}");
}

#[test]
fn library_from_code() {
    let lib = Library::from_code("inline", "r'''Raw \\d docs.'''\n").unwrap();
    assert_eq!(lib.name, "inline");
    assert_eq!(lib.docs, "Raw \\d docs.");
    let e = err_of(Library::from_code("has space", "x = 1"));
    assert!(e.contains("library from code: `has space`"), "{e}");
    assert!(e.contains("`has_space`"), "{e}");
    let e = err_of(Library::from_code("", "x = 1"));
    assert!(e.contains("`my_library`"), "{e}");
}

#[test]
fn library_from_skill_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    write(
        &base.join("sk/SKILL.md"),
        "---\nname: steer-kit\ndescription: Steering helpers.\n---\n# Use\n",
    );
    write(&base.join("sk/code.py"), "def f():\n    pass\n");
    let lib = Library::from_skill_dir(base, "sk").unwrap();
    assert_eq!(lib.name, "steer_kit");
    assert_eq!(
        lib.docs, "Steering helpers.",
        "falls back to the description"
    );
    let LibrarySource::SkillDir { skill_md, code, .. } = &lib.source else {
        panic!("{lib:?}")
    };
    assert!(skill_md.starts_with("---\nname: steer-kit"));
    assert!(code.starts_with("def f"));

    // No front matter: the folder name.
    write(&base.join("plain_skill/SKILL.md"), "Just text.\n");
    write(&base.join("plain_skill/code.py"), "\"\"\"Docs win.\"\"\"\n");
    let lib = Library::from_skill_dir(base, "plain_skill").unwrap();
    assert_eq!(lib.name, "plain_skill");
    assert_eq!(lib.docs, "Docs win.");

    write(&base.join("nocode/SKILL.md"), "---\nname: x\n---\n");
    let e = err_of(Library::from_skill_dir(base, "nocode"));
    assert!(e.contains("has no `code.py`"), "{e}");
    write(&base.join("nomd/code.py"), "");
    let e = err_of(Library::from_skill_dir(base, "nomd"));
    assert!(e.contains("has no `SKILL.md`"), "{e}");
    write(&base.join("bad/SKILL.md"), "---\nname: 9 lives\n---\n");
    write(&base.join("bad/code.py"), "");
    let e = err_of(Library::from_skill_dir(base, "bad"));
    assert!(
        e.contains("`9 lives` is not a valid Python module name"),
        "{e}"
    );
}

#[test]
fn skill_from_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    write(
        &base.join("s/SKILL.md"),
        "---\nname: probe\ndescription: \"Probes: linear.\"\nlicense: MIT\n---\n\nBody\n",
    );
    let s = Skill::from_dir(base, "s").unwrap();
    assert_eq!(
        s,
        Skill {
            name: "probe".into(),
            description: "Probes: linear.".into(),
            body: "Body\n".into(),
            dir: Some(base.join("s")),
        }
    );

    write(&base.join("nofm/SKILL.md"), "# Title\n");
    let e = err_of(Skill::from_dir(base, "nofm"));
    assert!(e.contains("has no front matter; start it with"), "{e}");
    write(&base.join("noname/SKILL.md"), "---\ndescription: d\n---\n");
    let e = err_of(Skill::from_dir(base, "noname"));
    assert!(e.contains("has no `name:`"), "{e}");
    write(&base.join("open/SKILL.md"), "---\nname: x\n");
    let e = err_of(Skill::from_dir(base, "open"));
    assert!(e.contains("never closed"), "{e}");
    write(&base.join("slash/SKILL.md"), "---\nname: a/b\n---\n");
    let e = err_of(Skill::from_dir(base, "slash"));
    assert!(e.contains("cannot be a skill name"), "{e}");
    fs::create_dir(base.join("empty")).unwrap();
    let e = err_of(Skill::from_dir(base, "empty"));
    assert!(e.contains("has no `SKILL.md`"), "{e}");
    let e = err_of(Skill::from_dir(base, "gone"));
    assert!(e.contains("cannot be read"), "{e}");

    assert!(Skill::new("..", "", "").is_err());
    assert_eq!(Skill::new("ok", "d", "b").unwrap().dir, None);
}

#[test]
fn config_serde() {
    let ws: WorkspaceConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(ws, WorkspaceConfig::default());
    assert!(ws.preload_models && ws.hidden_model_loading);
    let bad = serde_json::from_str::<WorkspaceConfig>(r#"{"librarys": []}"#);
    assert!(bad.is_err());
    let ws = WorkspaceConfig {
        libraries: vec![Library::from_code("a", "'''A.'''").unwrap()],
        skills: vec![Skill::new("s", "d", "b").unwrap()],
        local_files: vec![("x".into(), "y".into())],
        ..Default::default()
    };
    let json = serde_json::to_value(&ws).unwrap();
    assert_eq!(json["libraries"][0]["source"]["kind"], "code");
    assert_eq!(json["local_files"][0][1], "y");
    let back: WorkspaceConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, ws);
    let bad = serde_json::from_str::<Library>(
        r#"{"name": "a", "source": {"kind": "code", "code": "", "extra": 1}}"#,
    );
    assert!(bad.is_err());
}

#[test]
fn shipped_toolkit() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let lib = Library::toolkit();
    assert_eq!(lib.name, "toolkit");
    assert!(lib.docs.contains("extract_activations("), "{}", lib.docs);
    // Through a map and back, as scripts pass it.
    let json = serde_json::to_value(&lib).unwrap();
    assert_eq!(json["source"]["kind"], "toolkit");
    assert_eq!(serde_json::from_value::<Library>(json).unwrap(), lib);
    // `toolkit` and `toolkit/<module>.py` fall back to the shipped copies...
    assert_eq!(Library::from_directory(base, "toolkit").unwrap(), lib);
    assert_eq!(Library::from_directory(base, "./toolkit").unwrap(), lib);
    let one = Library::from_file(base, "toolkit/steering_hook.py").unwrap();
    assert_eq!(one.name, "steering_hook");
    assert!(
        one.docs.starts_with("Steering: add a vector"),
        "{}",
        one.docs
    );
    assert_eq!(
        one.source,
        LibrarySource::ToolkitModule {
            file: "steering_hook.py".into()
        }
    );
    assert!(Library::from_file(base, "toolkit/nope.py").is_err());
    // ...unless the folder is there, which wins.
    write(&base.join("toolkit/steering_hook.py"), "'''Mine.'''\n");
    write(&base.join("toolkit/__init__.py"), "'''My kit.'''\n");
    let mine = Library::from_file(base, "toolkit/steering_hook.py").unwrap();
    assert_eq!(mine.docs, "Mine.");
    let kit = Library::from_directory(base, "toolkit").unwrap();
    assert_eq!(kit.docs, "My kit.");

    // Installed as a package; a second install changes nothing; stray files go.
    let libs = base.join("libs");
    let ws = WorkspaceConfig {
        libraries: vec![lib],
        ..Default::default()
    };
    let first = install(&ws, &libs, &base.join("ws"), base).unwrap();
    assert_eq!(first.changed_modules, vec!["toolkit".to_string()]);
    for (name, text) in crate::toolkit::FILES {
        let installed = fs::read_to_string(libs.join("toolkit").join(name)).unwrap();
        assert_eq!(installed, *text);
    }
    let again = install(&ws, &libs, &base.join("ws"), base).unwrap();
    assert!(again.changed_modules.is_empty());
    write(&libs.join("toolkit/stale.py"), "x = 1\n");
    let third = install(&ws, &libs, &base.join("ws"), base).unwrap();
    assert_eq!(third.changed_modules, vec!["toolkit".to_string()]);
    assert!(!libs.join("toolkit/stale.py").exists());
}

#[test]
fn model_specs_load_as_their_handles_say() {
    let mut h = handle("x", "/x", "a");
    assert_eq!(ModelSpec::from(h.clone()), ModelSpec::new(h.clone(), false));
    h.load_as_peft = true;
    assert_eq!(ModelSpec::from(h.clone()), ModelSpec::new(h, true));
}
