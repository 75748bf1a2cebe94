//! The ssh backend against a real OpenSSH server the tests start on loopback: seer copies
//! itself to the "remote host" (a folder of its own there), runs `seer __sandbox-agent`,
//! and everything a script does goes through that connection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::time::Duration;

use common::sshd::Sshd;
use common::{Env, lines, ok, wait_gone};

/// The config fields that put a sandbox on the test's sshd, with seer's remote folder in
/// the test's folder (its env cache linked to the tests' shared one, as a GPU box keeps its
/// own cache warm).
fn on_ssh(env: &Env, sshd: &Sshd) -> String {
    let remote = env.path().join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    let cache = remote.join("cache");
    if !cache.exists() {
        std::os::unix::fs::symlink(common::shared_cache(), &cache).unwrap();
    }
    format!(
        "backend: \"ssh\", host: \"{}\", ssh_options: {}, remote_dir: \"{}\"",
        Sshd::HOST,
        sshd.options(),
        remote.display()
    )
}

/// What the command lines of the sandbox's processes on the host contain (the agent,
/// kernels and the watchdog all run from or in the test's remote folder).
fn remote_needle(env: &Env) -> String {
    env.path().join("remote").to_string_lossy().to_string()
}

#[test]
fn commands_files_and_python_run_on_the_host_and_end_with_the_run() {
    let sshd = Sshd::start();
    let env = Env::new();
    env.write("data/in.txt", "from the laptop\n");
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ {}, python_packages: ["tabulate"], env: #{{ GREETING: "hello" }},
                    local_files: ["data/in.txt"], timeout: 600 }}).start();
print(`${{sb.backend}} ${{sb.workspace_path.starts_with("{}")}}`);
let g = sb.exec("echo $GREETING $(cat in.txt)");
g.trim();
print(g);
sb.write_file("sub/n.txt", "3\n1\n2\n");
print(sb.read_file("sub/n.txt").split("\n").len());
print(sb.exec_python("from tabulate import tabulate; print(tabulate([[1, 2]]))"));
try {{ sb.exec("ls /no/such/dir"); }} catch (e) {{ print(e.split("\n")[0]); }}
"#,
            on_ssh(&env, &sshd),
            env.path().join("remote/state").display()
        ),
        &[],
    );
    let stdout = ok(&out);
    assert_eq!(
        lines(&stdout),
        [
            "ssh true",
            "hello from the laptop",
            "4",
            "-  -",
            "1  2",
            "-  -",
            "command `ls /no/such/dir` failed with exit code 2",
        ]
    );
    // The run ended: no process of the sandbox is left on the host.
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}
