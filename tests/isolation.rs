//! `isolation: "bwrap"` (the default where bubblewrap is installed) on the local backend, probed from a kernel cell as an agent would:
//! the host home, the script's folder (its `.env`), other sandboxes and host processes are
//! out of reach; the workspace, the env and the sandbox's own home work; `network: false`
//! cuts a TCP connect to a server the test runs on loopback, from a command and from a
//! kernel that seer reaches over Unix sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, ok};

#[test]
fn an_isolated_kernel_reaches_only_what_its_sandbox_was_given() {
    let env = Env::new();
    env.write(".env", "SCRIPT_SECRET=from-the-script-folder\n");
    // Another live sandbox whose workspace holds a file.
    let other = env.detached_sandbox("#{ timeout: 300 }");
    let other_ws = env.home.join("sandboxes").join(&other).join("workspace");
    std::fs::write(other_ws.join("private.txt"), "other sandbox").unwrap();
    let host_home = dirs::home_dir().unwrap();
    let probe = format!(
        r#"
import os, pathlib, sys
def readable(p):
    try:
        pathlib.Path(p).read_bytes()
        return True
    except OSError:
        return False
pathlib.Path('note.txt').write_text('mine')
pids = [p for p in os.listdir('/proc') if p.isdigit()]
# The host home is empty but for the interpreter the env was made from.
print([e for e in os.listdir({home:?}) if not sys.base_prefix.startswith(os.path.join({home:?}, e))])
print(readable({script_env:?}), readable({other:?}), readable('/proc/1/environ') and b'ANTHROPIC' in pathlib.Path('/proc/1/environ').read_bytes())
print(os.path.exists({state:?}), len(pids) < 10)
print(pathlib.Path('note.txt').read_text(), os.environ['HOME'].endswith('/home'), os.access('/usr', os.W_OK))
"#,
        home = host_home.display().to_string(),
        script_env = env.path().join(".env").display().to_string(),
        other = other_ws.join("private.txt").display().to_string(),
        state = env
            .home
            .join("sandboxes")
            .join(&other)
            .display()
            .to_string(),
    );
    env.write("probe.py", &probe);
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook", isolation: "bwrap" }).start();
let s = create_notebook_session(sb, ());
print(s.exec_or_throw(read_file("probe.py")).text);
sb.terminate();
"#,
        &[],
    );
    let stdout = ok(&out);
    env.terminate(&other);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "[]",
            "False False False",
            "False True",
            "mine True False",
            ""
        ]
    );
}

#[test]
fn network_false_cuts_loopback_and_needs_isolation() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let env = Env::new();
    env.write("iface.py", "@expose\ndef ok() -> int:\n    return 1\n");
    let cell = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print('refused')"
    );
    let connect = format!(
        "python -c \"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print('refused')\""
    );
    let out = env.run(
        &format!(
            r#"
let open = Sandbox(#{{ isolation: "bwrap" }}).start();
print(open.exec({connect:?}));
// Isolated by default (bubblewrap is installed): pid 1 of its processes is bwrap.
print(Sandbox(#{{}}).start().exec("cat /proc/1/comm"));
let closed = Sandbox(#{{ isolation: "bwrap", network: false, execution_mode: "notebook" }}).start();
print(closed.exec({connect:?}));
// Its kernel is reached over Unix sockets, and cannot reach the host's loopback either.
let s = create_notebook_session(closed, ());
print(s.exec_or_throw({cell:?}).text);
let scoped = ScopedSandbox(#{{ network: false }}).start();
try {{ scoped.serve("iface.py", #{{ expose_as: "library" }}); }} catch (e) {{ print(e); }}
"#
        ),
        &[],
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "connected",
            "",
            "bwrap",
            "",
            "refused",
            "",
            "refused",
            "",
            "not supported yet: serving functions from a sandbox with `network: false` (seer reaches the RPC server over loopback TCP, which such a sandbox does not share)"
        ],
        "{stdout}"
    );
    let out = env.run(
        "Sandbox(#{ isolation: \"none\", network: false }).start();",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = common::text(&out).1;
    assert_eq!(
        common::error_line(&err),
        "error: main.rhai:1:49: network: false needs isolation: set `isolation: \"bwrap\"` (bubblewrap)"
    );
}
