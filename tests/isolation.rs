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

/// Each attack of a root sandbox against its host, as a shell command that prints what it
/// achieved, with the outcome isolation must give.
const ATTACKS: &[(&str, &str, &str)] = &[
    (
        "capabilities",
        "grep CapEff /proc/self/status",
        "CapEff:\t0000000000000000",
    ),
    (
        "bind the host root",
        "mkdir -p /tmp/m && mount --bind / /tmp/m 2>/dev/null && echo escaped || echo denied",
        "denied",
    ),
    (
        "remount the system writable",
        "mount -o remount,bind,rw / 2>/dev/null && echo escaped || echo denied",
        "denied",
    ),
    (
        "a mount namespace",
        "unshare -m true 2>/dev/null && echo escaped || echo denied",
        "denied",
    ),
    (
        "a user namespace with a mount in it",
        "unshare -Urm sh -c 'mount --bind / /tmp/m' 2>/dev/null && echo escaped || echo denied",
        "denied",
    ),
    (
        "the controlling terminal",
        "(exec 3</dev/tty) 2>/dev/null && echo tty || echo no-tty",
        "no-tty",
    ),
    (
        "write the system",
        "touch /usr/seer-was-here 2>/dev/null && echo escaped || echo denied",
        "denied",
    ),
];

/// The same attacks from `sb.exec` and from a kernel cell (in the kernel's own process for
/// the capabilities, the terminal and a `mount(2)` call; its subprocesses for the rest).
#[test]
fn a_root_sandbox_cannot_regain_privileges_or_reach_the_terminal() {
    let env = Env::new();
    let commands: Vec<String> = ATTACKS.iter().map(|(_, c, _)| c.to_string()).collect();
    let cell = format!(
        r#"
import ctypes, errno, os, subprocess
print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])
try:
    open('/dev/tty')
    print('tty')
except OSError as e:
    print('no-tty', errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs('/tmp/m2', exist_ok=True)
rc = libc.mount(b'/', b'/tmp/m2', None, 4096, None)  # MS_BIND
print('mount', rc, errno.errorcode[ctypes.get_errno()])
for c in {commands:?}:
    print(subprocess.run(['bash', '-c', c], capture_output=True, text=True).stdout.strip())
"#
    );
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ execution_mode: "notebook", timeout: 600 }}).start();
for c in {commands} {{ let o = sb.exec(c); o.trim(); print(o); }}
let s = create_notebook_session(sb, ());
print(s.exec_or_throw({cell:?}).text);
sb.terminate();
"#,
            commands = serde_json::to_string(&commands).unwrap(),
        ),
        &[],
    );
    let stdout = ok(&out);
    let mut want: Vec<String> = ATTACKS.iter().map(|(_, _, w)| w.to_string()).collect();
    want.extend([
        "0000000000000000".to_string(),
        "no-tty ENXIO".to_string(),
        "mount -1 EPERM".to_string(),
    ]);
    want.extend(ATTACKS.iter().map(|(_, _, w)| w.to_string()));
    want.push(String::new());
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "{stdout}");
}

/// A file a cell writes to `/tmp` is seen by `sb.exec` and by a served function of the same
/// sandbox (one `/tmp` per sandbox, as in Seer's container), and not by another sandbox.
#[test]
fn processes_of_one_sandbox_share_one_tmp_that_no_other_sandbox_sees() {
    let env = Env::new();
    env.write(
        "iface.py",
        "@expose\ndef transcript() -> str:\n    return open('/tmp/petri_transcript.txt').read()\n",
    );
    let out = env.run(
        r#"
let sb = ScopedSandbox(#{ execution_mode: "notebook", timeout: 600 }).start();
let s = create_notebook_session(sb.sandbox, ());
s.exec_or_throw("open('/tmp/petri_transcript.txt', 'w').write('turn 1')");
print(sb.exec("cat /tmp/petri_transcript.txt"));
let lib = sb.serve("iface.py", #{ expose_as: "library", name: "tools" });
let cs = Sandbox(#{ execution_mode: "notebook" }).start();
let check = create_notebook_session(cs, Workspace(#{ libraries: [lib] }));
print(check.exec_or_throw("import tools; print(tools.transcript())").text);
// (A Slurm test cluster has room for two jobs at once.)
cs.terminate();
let other = Sandbox(#{}).start();
print(other.exec("ls /tmp/petri_transcript.txt 2>&1 || true"));
"#,
        &[],
    );
    let stdout = ok(&out);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "turn 1",
            "turn 1",
            "",
            "ls: cannot access '/tmp/petri_transcript.txt': No such file or directory",
            ""
        ],
        "{stdout}"
    );
}

/// A failed command that names a host file the sandbox cannot see (in the script's folder
/// or the host's `/tmp`) gets a hint saying how to pass it in.
#[test]
fn a_host_path_the_sandbox_cannot_see_gets_a_hint() {
    let env = Env::new();
    let data = env.write("data/notes.txt", "notes");
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{}}).start();
let r = sb.exec_result("cat {data}");
print(r.stderr);
print(sb.exec_result("cat /tmp/nothing-here").stderr);
"#,
            data = data.display()
        ),
        &[],
    );
    assert_eq!(
        ok(&out),
        format!(
            "cat: {d}: No such file or directory\n\nseer: `{d}` is a file of the host that this sandbox cannot see (its /tmp is its own, and the script's folder is not in it); copy it in with `local_files` or `local_dirs` in the sandbox config, or `sb.write_file`\n\ncat: /tmp/nothing-here: No such file or directory\n\n",
            d = data.display()
        )
    );
}

/// The pids, memory and file-size bounds: a fork bomb stops at the bound, an allocation of
/// twice the memory bound is killed and reported (from a command and from a cell, whose
/// kernel comes back), and a write past the file-size bound is refused.
#[test]
fn the_resource_bounds_stop_a_fork_bomb_a_memory_hog_and_a_huge_file() {
    let env = Env::new();
    let bomb = r#"
import os, signal, time
children = []
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        children.append(pid)
except BlockingIOError as e:
    print('stopped', len(children) < 64, e.strerror)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"#;
    let hog =
        "x = bytearray(512 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096]); print('allocated')";
    let big = r#"
try:
    open('big.bin', 'wb').write(b'0' * (3 * 1024 * 1024))
    print('written')
except OSError as e:
    print('refused', e.strerror)
"#;
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ execution_mode: "notebook", pids: 64, memory: "256M", max_file_size: "2M", timeout: 600 }}).start();
let o = sb.exec_python({bomb:?}); o.trim(); print(o);
sb.write_file("hog.py", {hog:?});
let r = sb.exec_result("python hog.py");
print(r.exit_code);
let e = r.stderr; e.trim(); print(e);
let o = sb.exec_python({big:?}); o.trim(); print(o);
let s = create_notebook_session(sb, ());
try {{ s.exec({hog:?}); }} catch (e) {{ print(e); }}
print(s.exec_or_throw("print(1 + 1)").text);
sb.terminate();
"#
        ),
        &[],
    );
    let stdout = ok(&out);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "stopped True Resource temporarily unavailable",
            "137",
            "seer: a process of this sandbox was killed by its memory bound (`memory`: 256M); raise `memory` in the sandbox config or use less",
            "refused File too large",
            "cell failed (kernel_died): The kernel was killed while running this cell because the sandbox reached its memory bound (`memory` in the sandbox config). It was restarted: all earlier variables, imports and loaded models are gone (the workspace setup ran again). Use less memory, or raise the bound.",
            "",
            "2",
            "",
        ],
        "{stdout}"
    );
}

/// seer runs in a terminal the test owns (a pty that is seer's controlling terminal, as a
/// user's shell would be): `TIOCSTI` from a command and from a cell cannot reach it, and
/// nothing is left in the terminal's input for the shell to run after seer exits.
#[test]
fn a_sandbox_cannot_push_input_into_the_terminal_seer_runs_in() {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let inject = r#"
import errno, fcntl, os, termios
try:
    fd = os.open('/dev/tty', os.O_RDWR)
    for ch in b'touch /tmp/pwned\n':
        fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
    print('injected')
except OSError as e:
    print('refused', errno.errorcode[e.errno])
"#;
    env.write(
        "main.rhai",
        &format!(
            r#"
let sb = Sandbox(#{{ execution_mode: "notebook", timeout: 600 }}).start();
print(sb.exec_python({inject:?}));
let s = create_notebook_session(sb, ());
print(s.exec_or_throw({inject:?}).text);
sb.terminate();
"#
        ),
    );
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave: OwnedFd = pty.slave;
    let mut c = env.cmd();
    c.args(["run", "main.rhai"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = c.status().unwrap();
    // What seer printed, from the terminal's other end.
    let master = pty.master;
    let mut printed = Vec::new();
    let mut buf = [0u8; 4096];
    nix::fcntl::fcntl(
        &master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    while let Ok(n) = nix::unistd::read(&master, &mut buf) {
        if n == 0 {
            break;
        }
        printed.extend_from_slice(&buf[..n]);
    }
    let printed = String::from_utf8_lossy(&printed).replace('\r', "");
    assert!(status.success(), "{printed}");
    let said: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("refused") || l.starts_with("injected"))
        .collect();
    assert_eq!(said, ["refused ENXIO", "refused ENXIO"], "{printed}");
    // The terminal's input queue (what a shell would read next) is empty.
    nix::fcntl::fcntl(
        &slave,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let pending = nix::unistd::read(&slave, &mut buf);
    assert_eq!(
        pending,
        Err(nix::errno::Errno::EAGAIN),
        "fd {}",
        slave.as_raw_fd()
    );
}

on_remote_backends!(
    a_root_sandbox_cannot_regain_privileges_or_reach_the_terminal,
    processes_of_one_sandbox_share_one_tmp_that_no_other_sandbox_sees,
    the_resource_bounds_stop_a_fork_bomb_a_memory_hog_and_a_huge_file,
);
