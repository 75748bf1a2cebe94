//! Regression tests for the "Isolation and secrets" hardening: private modes for what holds
//! a secret, workspace paths that do not follow links out, names checked before they become
//! file names, zombie owners, broken pipes, `Skill(...)`, an unwritable `run.json`, NUL
//! bytes in `env`, and the Rhai limits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Env, ok, text};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{p:?}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

const IFACE: &str =
    "def add(a: int, b: int) -> int:\n    \"\"\"Adds.\"\"\"\n    return a + b\n\nexpose(add)\n";

#[test]
fn state_dir_run_folder_connection_files_and_client_modules_are_private() {
    let env = Env::new();
    env.write("iface.py", IFACE);
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "probe" });
s.exec("1");
let scoped = ScopedSandbox().start();
let skill = scoped.serve("iface.py", #{ expose_as: "skill", name: "tools" });
let lib = scoped.serve("iface.py", #{ name: "tools2" });
let s2 = create_notebook_session(sb, Workspace(#{ libraries: [lib] }), #{ name: "withlib" });
print(s2.exec_or_throw("import tools2; tools2.add(2, 3)").text);
print(sb.state_dir);
print(run_dir());
"#,
        &[],
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "5", "{stdout}");
    let n = lines.len();
    let sb_dir = PathBuf::from(lines[n - 2]);
    let run_dir = env.path().join(lines[n - 1]);
    assert_eq!(mode(&env.home), 0o700, "state dir; stdout: {stdout}");
    assert_eq!(mode(&sb_dir), 0o700, "sandbox dir");
    assert_eq!(mode(&run_dir), 0o700, "run folder");
    let files = walk(&env.home);
    let conn: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("kernel-") && n.ends_with(".json")
        })
        .collect();
    assert!(conn.len() >= 2, "no connection files in {files:?}");
    for p in &conn {
        assert_eq!(mode(p), 0o600, "{}", p.display());
        assert!(std::fs::read_to_string(p).unwrap().contains("\"key\""));
    }
    // Generated client modules hold the RPC token: the skill's copy and the library's.
    let clients: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == "tools.py" || n == "tools2.py")
        })
        .collect();
    assert!(clients.len() >= 2, "no client modules in {files:?}");
    for p in &clients {
        assert!(std::fs::read_to_string(p).unwrap().contains("TOKEN"));
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
}
