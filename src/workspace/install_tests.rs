use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::workspace::test_util::{err_of, handle, write};

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    libs: PathBuf,
    ws_dir: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("script");
    write(&base.join("one.py"), "\"\"\"One.\"\"\"\nV = 1\n");
    write(&base.join("pkg/__init__.py"), "from .sub import g\n");
    write(&base.join("pkg/sub.py"), "def g():\n    return 1\n");
    write(&base.join("pkg/data/table.csv"), "a,b\n");
    write(&base.join("pkg/__pycache__/sub.cpython-311.pyc"), "junk");
    write(
        &base.join("sk/SKILL.md"),
        "---\nname: kit\ndescription: Kit.\n---\nUse kit.\n",
    );
    write(&base.join("sk/code.py"), "K = 1\n");
    write(&base.join("sk/ref.md"), "reference\n");
    write(
        &base.join("lone/SKILL.md"),
        "---\nname: lone-skill\ndescription: Lone.\n---\n",
    );
    write(&base.join("lone/script.sh"), "echo hi\n");
    write(
        &base.join("many/a/SKILL.md"),
        "---\nname: skill-a\ndescription: A.\n---\n",
    );
    write(
        &base.join("many/b/SKILL.md"),
        "---\nname: skill-b\ndescription: B.\n---\n",
    );
    write(&base.join("many/not-a-skill/README"), "");
    write(&base.join("data.csv"), "x\n1\n");
    write(&base.join("assets/img/a.txt"), "A");
    write(&base.join("assets/b.txt"), "B");
    let libs = tmp.path().join("run/libraries");
    let ws_dir = tmp.path().join("run/workspace");
    Fixture {
        base,
        libs,
        ws_dir,
        _tmp: tmp,
    }
}

fn full_config(f: &Fixture) -> WorkspaceConfig {
    WorkspaceConfig {
        libraries: vec![
            Library::from_file(&f.base, "one.py").unwrap(),
            Library::from_directory(&f.base, "pkg").unwrap(),
            Library::from_code("inline", "Z = 3\n").unwrap(),
            Library::from_skill_dir(&f.base, "sk").unwrap(),
        ],
        skills: vec![
            Skill::from_dir(&f.base, "lone").unwrap(),
            Skill::new("inline-skill", "Does: things", "Steps.").unwrap(),
        ],
        skill_dirs: vec!["many".into()],
        local_files: vec![
            ("data.csv".into(), "inputs/".into()),
            ("data.csv".into(), "renamed.csv".into()),
        ],
        local_dirs: vec![("assets".into(), "assets_copy".into())],
        ..Default::default()
    }
}

fn install_fx(ws: &WorkspaceConfig, f: &Fixture) -> Result<Installed> {
    install(ws, &f.libs, &f.ws_dir, &f.base)
}

#[test]
fn install_layout() {
    let f = fixture();
    let ws = full_config(&f);
    let inst = install_fx(&ws, &f).unwrap();
    assert_eq!(inst.libraries_dir, f.libs);
    assert_eq!(inst.modules, ["one", "pkg", "inline", "kit"]);
    assert_eq!(inst.changed_modules, inst.modules);
    assert!(inst.removed_modules.is_empty());
    assert_eq!(
        inst.skills,
        ["lone-skill", "inline-skill", "skill-a", "skill-b", "kit"]
    );
    assert_eq!(inst.files_copied, 4);

    let read = |p: PathBuf| fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    assert_eq!(read(f.libs.join("one.py")), "\"\"\"One.\"\"\"\nV = 1\n");
    assert_eq!(read(f.libs.join("inline.py")), "Z = 3\n");
    assert_eq!(read(f.libs.join("kit.py")), "K = 1\n");
    assert_eq!(read(f.libs.join("pkg/sub.py")), "def g():\n    return 1\n");
    assert_eq!(read(f.libs.join("pkg/data/table.csv")), "a,b\n");
    assert!(!f.libs.join("pkg/__pycache__").exists());

    let skills = f.ws_dir.join(".claude/skills");
    assert!(read(skills.join("lone-skill/SKILL.md")).contains("name: lone-skill"));
    assert_eq!(read(skills.join("lone-skill/script.sh")), "echo hi\n");
    assert_eq!(
        read(skills.join("inline-skill/SKILL.md")),
        "---\nname: inline-skill\ndescription: \"Does: things\"\n---\n\nSteps.\n"
    );
    assert!(skills.join("skill-a/SKILL.md").is_file());
    assert!(skills.join("skill-b/SKILL.md").is_file());
    assert!(!skills.join("not-a-skill").exists());
    assert!(read(skills.join("kit/SKILL.md")).contains("name: kit"));
    assert_eq!(read(skills.join("kit/ref.md")), "reference\n");
    assert_eq!(read(skills.join("kit/code.py")), "K = 1\n");

    assert_eq!(read(f.ws_dir.join("inputs/data.csv")), "x\n1\n");
    assert_eq!(read(f.ws_dir.join("renamed.csv")), "x\n1\n");
    assert_eq!(read(f.ws_dir.join("assets_copy/img/a.txt")), "A");
    assert_eq!(read(f.ws_dir.join("assets_copy/b.txt")), "B");
}

#[test]
fn reinstall_is_idempotent_and_reports_changes() {
    let f = fixture();
    let ws = full_config(&f);
    install_fx(&ws, &f).unwrap();

    let again = install_fx(&ws, &f).unwrap();
    assert!(again.changed_modules.is_empty(), "{again:?}");
    assert!(again.removed_modules.is_empty());
    assert_eq!(again.files_copied, 0);

    // Edits on disk are picked up even though the Library values are unchanged.
    write(&f.base.join("one.py"), "V = 2\n");
    write(&f.base.join("pkg/sub.py"), "def g():\n    return 2\n");
    fs::remove_file(f.base.join("pkg/data/table.csv")).unwrap();
    write(&f.base.join("assets/b.txt"), "B2");
    write(&f.base.join("lone/extra.md"), "new");
    fs::remove_file(f.base.join("lone/script.sh")).unwrap();
    // Bytecode of the old module is dropped so Python cannot reuse it.
    write(&f.libs.join("__pycache__/one.cpython-311.pyc"), "stale");
    write(&f.libs.join("__pycache__/inline.cpython-311.pyc"), "keep");
    write(&f.libs.join("pkg/__pycache__/sub.cpython-311.pyc"), "stale");
    let changed = install_fx(&ws, &f).unwrap();
    assert_eq!(changed.changed_modules, ["one", "pkg"]);
    assert_eq!(changed.files_copied, 1);
    assert_eq!(
        fs::read_to_string(f.libs.join("one.py")).unwrap(),
        "V = 2\n"
    );
    assert!(!f.libs.join("pkg/data/table.csv").exists());
    assert!(!f.libs.join("__pycache__/one.cpython-311.pyc").exists());
    assert!(f.libs.join("__pycache__/inline.cpython-311.pyc").exists());
    assert!(!f.libs.join("pkg/__pycache__").exists());
    let lone = f.ws_dir.join(".claude/skills/lone-skill");
    assert!(lone.join("extra.md").exists() && !lone.join("script.sh").exists());
    assert_eq!(
        fs::read_to_string(f.ws_dir.join("assets_copy/b.txt")).unwrap(),
        "B2"
    );

    // A library whose source file vanished falls back to its snapshot.
    let snap = Library::from_code("snap", "S = 1\n").unwrap();
    write(&f.base.join("gone.py"), "G = 1\n");
    let mut gone = Library::from_file(&f.base, "gone.py").unwrap();
    fs::remove_file(f.base.join("gone.py")).unwrap();
    gone.name = "gone".into();

    // Dropping libraries and skills removes what the earlier install put there.
    let mut smaller = ws.clone();
    smaller.libraries.retain(|l| l.name == "one");
    smaller.libraries.push(snap);
    smaller.libraries.push(gone);
    smaller.skills.clear();
    smaller.skill_dirs.clear();
    let after = install_fx(&smaller, &f).unwrap();
    assert_eq!(after.changed_modules, ["snap", "gone"]);
    assert_eq!(after.removed_modules, ["pkg", "inline", "kit"]);
    assert_eq!(after.skills, Vec::<String>::new());
    assert!(!f.libs.join("pkg").exists() && !f.libs.join("inline.py").exists());
    assert_eq!(
        fs::read_to_string(f.libs.join("gone.py")).unwrap(),
        "G = 1\n"
    );
    assert!(!f.ws_dir.join(".claude/skills/lone-skill").exists());
    assert!(!f.ws_dir.join(".claude/skills/kit").exists());

    // A module switching between file and package replaces the other form.
    write(&f.base.join("alt/one/__init__.py"), "");
    let mut swapped = smaller.clone();
    swapped.libraries[0] = Library::from_directory(&f.base, "alt/one").unwrap();
    let s = install_fx(&swapped, &f).unwrap();
    assert_eq!(s.changed_modules, ["one"]);
    assert!(!f.libs.join("one.py").exists() && f.libs.join("one/__init__.py").exists());
}

#[test]
fn install_rejects_duplicates_and_bad_destinations() {
    let f = fixture();
    write(&f.base.join("other/one.py"), "");
    let ws = WorkspaceConfig {
        libraries: vec![
            Library::from_file(&f.base, "one.py").unwrap(),
            Library::from_file(&f.base, "other/one.py").unwrap(),
        ],
        ..Default::default()
    };
    let e = err_of(install_fx(&ws, &f));
    assert!(e.contains("two libraries are both named `one`"), "{e}");
    assert!(
        e.contains(&f.base.join("one.py").display().to_string()),
        "{e}"
    );
    assert!(
        e.contains(&f.base.join("other/one.py").display().to_string()),
        "{e}"
    );
    assert!(
        !f.libs.exists(),
        "nothing is written when the config is bad"
    );

    let ws = WorkspaceConfig {
        skills: vec![Skill::new("skill-a", "", "").unwrap()],
        skill_dirs: vec!["many".into()],
        ..Default::default()
    };
    let e = err_of(install_fx(&ws, &f));
    assert!(e.contains("two skills are both named `skill-a`"), "{e}");
    assert!(e.contains("an inline skill") && e.contains("many/a"), "{e}");

    let ws = WorkspaceConfig {
        skill_dirs: vec!["assets".into()],
        ..Default::default()
    };
    let e = err_of(install_fx(&ws, &f));
    assert!(e.contains("has no skills"), "{e}");

    let bad = |list: Vec<(String, String)>, dirs: bool| {
        let mut ws = WorkspaceConfig::default();
        if dirs {
            ws.local_dirs = list;
        } else {
            ws.local_files = list;
        }
        err_of(install_fx(&ws, &f))
    };
    let e = bad(vec![("data.csv".into(), "../escape.csv".into())], false);
    assert!(e.contains("`../escape.csv` uses `..`"), "{e}");
    let e = bad(vec![("data.csv".into(), "/etc/../../evil".into())], false);
    assert!(e.contains("uses `..`"), "{e}");
    let e = bad(vec![("assets".into(), "a/../../b".into())], true);
    assert!(
        e.contains("local_dirs entry `assets`") && e.contains("uses `..`"),
        "{e}"
    );
    let e = bad(vec![("data.csv".into(), "".into())], false);
    assert!(e.contains("the destination is empty"), "{e}");
    let e = bad(vec![("assets".into(), "x".into())], false);
    assert!(e.contains("list it under local_dirs"), "{e}");
    let e = bad(vec![("data.csv".into(), "x".into())], true);
    assert!(e.contains("list it under local_files"), "{e}");
    let e = bad(vec![("missing.csv".into(), "x".into())], false);
    assert!(
        e.contains("`missing.csv`") && e.contains("cannot be read"),
        "{e}"
    );

    // An absolute destination inside the workspace is kept; Seer's `/root/x` and
    // `/workspace/x` are the workspace's `x`; another absolute one lands under the
    // workspace (as in a sandbox's local_files); `.` takes the file's name.
    let inside = f.ws_dir.join("abs/d.csv").display().to_string();
    let ws = WorkspaceConfig {
        local_files: vec![
            ("data.csv".into(), inside.clone()),
            ("data.csv".into(), "/root/in/".into()),
            ("data.csv".into(), "/workspace/w.csv".into()),
            ("data.csv".into(), "/data/x.csv".into()),
            ("data.csv".into(), ".".into()),
        ],
        local_dirs: vec![("assets".into(), "/root/assets".into())],
        ..Default::default()
    };
    install_fx(&ws, &f).unwrap();
    assert!(Path::new(&inside).is_file());
    assert!(f.ws_dir.join("in/data.csv").is_file());
    assert!(f.ws_dir.join("w.csv").is_file());
    assert!(f.ws_dir.join("data/x.csv").is_file());
    assert!(f.ws_dir.join("assets/img/a.txt").is_file());
    assert!(f.ws_dir.join("data.csv").is_file());
    assert!(!f.ws_dir.join("root").exists());
}

#[test]
fn local_dir_containing_the_workspace_is_not_copied_into_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    write(&base.join("a.txt"), "a");
    let ws_dir = base.join("out/ws");
    let ws = WorkspaceConfig {
        local_dirs: vec![(".".into(), "project".into())],
        ..Default::default()
    };
    let inst = install(&ws, &base.join("out/libs"), &ws_dir, base).unwrap();
    assert!(ws_dir.join("project/a.txt").is_file());
    assert!(!ws_dir.join("project/out/ws").exists());
    // The libraries folder is not excluded, but it is not nested either.
    assert!(inst.files_copied >= 1);
}

#[test]
fn check_conflicts_finds_shadowed_libraries() {
    let ws = WorkspaceConfig {
        libraries: vec![Library::from_code("tokenizer", "").unwrap()],
        ..Default::default()
    };
    let models = [ModelSpec::from(handle("gpt2", "/m", "model"))];
    let e = err_of(check_conflicts(&ws, &models));
    assert!(e.contains("library `tokenizer`"), "{e}");
    let no_preload = WorkspaceConfig {
        preload_models: false,
        ..ws.clone()
    };
    check_conflicts(&no_preload, &models).unwrap();
    let other = [ModelSpec::from(handle("gpt2", "/m", "m2"))];
    check_conflicts(&ws, &other).unwrap();
}
