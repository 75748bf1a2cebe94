//! The ssh backend against a real OpenSSH server the tests start on loopback: seer copies
//! itself to the "remote host" (a folder of its own there), runs `seer __sandbox-agent`,
//! and everything a script does goes through that connection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::time::Duration;

use common::fake_anthropic::{FakeAnthropic, compute_6x7, last_tool_results};
use common::sshd::Sshd;
use common::{Env, TORCH_ENV, failed, lines, link_tiny_models, ok, wait_gone};

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

/// Processes whose command line contains `pattern` and this test's remote folder (tests
/// run in parallel, each with its own).
fn ours(env: &Env, pattern: &str) -> Vec<i32> {
    common::pids_matching(pattern)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .contains(&remote_needle(env))
        })
        .collect()
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
let cli = create_cli_session(sb, Workspace(#{{ libraries: [Library::from_code("consts", "ANSWER = 42")] }}));
let c = cli.exec("python -c 'import consts; print(consts.ANSWER)'");
c.trim();
print(c);
print(sb.snapshot("on the host").starts_with("snap-"));
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
            "42",
            "true",
        ]
    );
    // The run ended: no process of the sandbox is left on the host.
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}

/// Provisioning on a host whose caches are cold, as on a new machine: the host's seer makes
/// the env, downloading its package with the host's own network settings. The ssh session
/// carries none of this machine's TLS settings (the tests' sshd starts with an empty
/// environment), so behind a TLS-inspecting proxy this passes only when uv trusts the
/// system's certificates (issue #22: `invalid peer certificate: UnknownIssuer`, hidden
/// while a warm uv cache held the package). `provision_env` reaches uv (`UV_CACHE_DIR`,
/// passed from seer's environment, is a new empty folder, which the download fills) and
/// neither the sandbox's processes nor any record or log.
#[test]
fn a_cold_host_downloads_the_env_with_its_system_certificates_and_provision_env() {
    let sshd = Sshd::start();
    let login = String::from_utf8_lossy(&sshd.ssh(&["env"]).stdout).to_string();
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "UV_SYSTEM_CERTS",
        "UV_NATIVE_TLS",
    ] {
        assert!(
            !login.lines().any(|l| l.starts_with(&format!("{var}="))),
            "a login on the test host sets {var}: this test cannot tell whether seer makes uv \
             use the system's certificates\n{login}"
        );
    }
    let env = Env::new();
    // seer's folder on the host with an env cache of its own (no env made yet); uv itself
    // is linked from the tests' cache (seer installing uv is not what this is about).
    let remote = env.path().join("remote");
    std::fs::create_dir_all(remote.join("cache")).unwrap();
    std::os::unix::fs::symlink(common::shared_cache().join("uv"), remote.join("cache/uv")).unwrap();
    let uv_cache = env.path().join("host-uv-cache");
    let passed = uv_cache.to_string_lossy().to_string();
    env.write(
        "main.rhai",
        &format!(
            r#"
let sb = Sandbox(#{{ backend: "ssh", host: "{}", ssh_options: {}, remote_dir: "{}",
                    python_packages: ["six"], timeout: 600,
                    provision_env: ["UV_CACHE_DIR", "UV_HTTP_TIMEOUT=120"] }}).start();
print(sb.env_info.cache_hit);
print(sb.exec_python("import six; print(six.__name__)"));
print(sb.exec("echo \"[${{UV_CACHE_DIR}}${{UV_HTTP_TIMEOUT}}${{UV_SYSTEM_CERTS}}${{UV_NATIVE_TLS}}${{PIP_CERT}}]\""));
"#,
            Sshd::HOST,
            sshd.options(),
            remote.display()
        ),
    );
    let out = env
        .cmd()
        .env("UV_CACHE_DIR", &uv_cache)
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert_eq!(lines(&stdout), ["false", "six", "[]"]);
    // uv used the folder passed in and downloaded the package into it.
    let cached: Vec<String> = walk(&uv_cache)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|n| n.starts_with("six"))
        .collect();
    assert!(
        !cached.is_empty(),
        "nothing of six in the host's uv cache {passed}"
    );
    // The value taken from seer's environment is redacted: in no output, record or log.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(&passed) && !stderr.contains(&passed),
        "{stderr}"
    );
    for dir in [
        env.home.clone(),
        remote.join("state"),
        env.path().join("outputs"),
    ] {
        for file in walk(&dir) {
            let text =
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).to_string();
            assert!(
                !text.contains(&passed),
                "{} holds the provision_env value",
                file.display()
            );
        }
    }
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}

/// Every file under `dir` (links not followed).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(t) if t.is_file() => files.push(p),
                _ => {}
            }
        }
    }
    files
}

#[test]
fn a_notebook_session_with_a_library_and_a_local_tiny_model_runs_on_the_host() {
    let sshd = Sshd::start();
    let env = Env::new();
    link_tiny_models(&env);
    env.write("helpers.py", "def double(x):\n    return 2 * x\n");
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ {}, {TORCH_ENV}, models: [#{{ name: "./models/base" }}] }}).start();
let ws = Workspace(#{{ libraries: [Library::from_file("helpers.py")] }});
let s = create_notebook_session(sb, ws, #{{ name: "probe" }});
print(s.exec("helpers.double(21)").text);
print(s.exec("import torch; type(model).__name__ + ' ' + str(model(torch.tensor([[1, 2, 3]])).logits.shape[-1])").text);
print(s.exec("import os; os.environ['SEER_SANDBOX_ID'] == '" + sb.id + "'").text);
print(s.exec("1/0", #{{ raise: false }}).status);
"#,
            on_ssh(&env, &sshd)
        ),
        &[],
    );
    let stdout = ok(&out);
    assert_eq!(
        lines(&stdout),
        ["42", "'LlamaForCausalLM 1000'", "True", "error"]
    );
    // The notebook was written on this machine.
    let nb = common::read_json(
        &env.path()
            .join(format!("outputs/{}/probe.ipynb", env.the_run())),
    );
    let sources = common::cell_sources(&nb);
    assert_eq!(sources[sources.len() - 1], "1/0");
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}

#[test]
fn an_agent_drives_a_notebook_on_the_host() {
    let sshd = Sshd::start();
    let fake = FakeAnthropic::start(compute_6x7("notebooks__execute_code"));
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        &format!(
            r#"
let sb = Sandbox(#{{ {}, execution_mode: "notebook" }}).start();
let s = create_notebook_session(sb, (), #{{ name: "agent" }});
let r = run_agent(#{{ user_message: "What is 6 * 7?", mcp_config: s.mcp_config, base_url: ARGS[0], name: "solver", max_turns: 5 }});
print(r.final_text);
"#,
            on_ssh(&env, &sshd)
        ),
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert_eq!(lines(&stdout), ["The answer is 42."]);
    // The tool result the model saw came from the remote kernel.
    let seen = fake.requests();
    assert_eq!(
        last_tool_results(&seen[1].1).as_deref(),
        Some(r#"[{"text":"[cell 0, execution_count 1]\n42","type":"text"}]"#)
    );
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}

#[test]
fn a_detached_sandbox_outlives_the_run_and_from_id_reattaches_over_ssh() {
    let sshd = Sshd::start();
    let env = Env::new();
    let out = env.run(
        &format!(
            "let sb = Sandbox(#{{ {}, timeout: 300 }}).start();\nsb.write_file(\"kept.txt\", \"still here\");\nsb.detach();\nprint(sb.id);",
            on_ssh(&env, &sshd)
        ),
        &[],
    );
    let id = ok(&out).trim().to_string();
    // `seer ps` lists it with its host.
    let ps = env.cmd().args(["ps", "--json"]).output().unwrap();
    let records: serde_json::Value = serde_json::from_str(&ok(&ps)).unwrap();
    let rec = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{records}"));
    assert_eq!(
        (
            rec["backend"].as_str(),
            rec["host"].as_str(),
            rec["status"].as_str()
        ),
        (Some("ssh"), Some(Sshd::HOST), Some("running"))
    );
    let out = env.run(
        &format!(
            "let sb = Sandbox::from_id(\"{id}\");\nprint(sb.read_file(\"kept.txt\"));\nlet e = sb.exec(\"echo again\");\ne.trim();\nprint(e);\nsb.terminate();"
        ),
        &[],
    );
    let stdout = ok(&out);
    assert_eq!(lines(&stdout), ["still here", "again"]);
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}

#[test]
fn killing_seer_ends_the_sandbox_on_the_host() {
    let sshd = Sshd::start();
    let env = Env::new();
    let mut run = env.spawn(&format!(
        "let sb = Sandbox(#{{ {}, execution_mode: \"notebook\" }}).start();\nlet s = create_notebook_session(sb, (), #{{ name: \"k\" }});\nprint(\"ready\");\ns.exec(\"import time; time.sleep(120)\");",
        on_ssh(&env, &sshd)
    ));
    run.expect("ready", 120);
    let needle = remote_needle(&env);
    assert!(!common::pids_matching(&needle).is_empty());
    run.signal(nix::sys::signal::Signal::SIGKILL);
    wait_gone(&needle, Duration::from_secs(10));
    // Its record here still says running, with a dead owner: `seer gc` ends it.
    let gc = env.cmd().arg("gc").output().unwrap();
    let ended = ok(&gc);
    let ps = env.cmd().args(["ps", "--all", "--json"]).output().unwrap();
    let records: serde_json::Value = serde_json::from_str(&ok(&ps)).unwrap();
    let rec = &records[0];
    assert_eq!(
        ended.trim(),
        format!("ended {}", rec["id"].as_str().unwrap())
    );
    assert_eq!(
        (rec["backend"].as_str(), rec["status"].as_str()),
        (Some("ssh"), Some("orphaned"))
    );
}

#[test]
fn an_unreachable_host_is_a_clear_error() {
    let sshd = Sshd::start();
    let env = Env::new();
    let out = env.run(
        &format!(
            "let sb = Sandbox(#{{ backend: \"ssh\", host: \"nobody@127.0.0.1:1\", ssh_options: {} }}).start();",
            sshd.options()
        ),
        &[],
    );
    let stderr = failed(&out);
    let first = common::error_line(&stderr);
    assert!(first.starts_with("error: main.rhai:1:"), "{stderr}");
    assert!(
        stderr.contains("could not start seer on `nobody@127.0.0.1:1` over ssh: ssh ended (exit status: 255); ssh said:"),
        "{stderr}"
    );
}

#[test]
fn a_scoped_sandbox_on_the_host_serves_a_local_kernel_another_hosts_kernel_and_rpc() {
    let sshd = Sshd::start();
    let env = Env::new();
    env.write(
        "iface.py",
        "import os\n\n@expose\ndef where(x: int) -> str:\n    \"\"\"Says where it runs.\"\"\"\n    return f\"{x * 2} from {os.environ['SEER_SANDBOX_ID']}\"\n",
    );
    // A second "host": the same sshd with seer's folder elsewhere.
    let other = on_ssh(&env, &sshd).replace("/remote\"", "/remote2\"");
    std::fs::create_dir_all(env.path().join("remote2")).unwrap();
    std::os::unix::fs::symlink(common::shared_cache(), env.path().join("remote2/cache")).unwrap();
    let out = env.run(
        &format!(
            r#"
let scoped = ScopedSandbox(#{{ {} }}).start();
let lib = scoped.serve("iface.py", #{{ expose_as: "library", name: "tools" }});
print(scoped.sandbox.id);
print(scoped.rpc("where", #{{ x: 1 }}));
let here = create_notebook_session(Sandbox(#{{ execution_mode: "notebook" }}).start(), Workspace(#{{ libraries: [lib] }}), #{{ name: "here" }});
print(here.exec("tools.where(2)").text);
let there = create_notebook_session(Sandbox(#{{ {other}, execution_mode: "notebook" }}).start(), Workspace(#{{ libraries: [lib] }}), #{{ name: "there" }});
print(there.exec("tools.where(3)").text);
"#,
            on_ssh(&env, &sshd)
        ),
        &[],
    );
    let stdout = ok(&out);
    let got = lines(&stdout);
    let id = got[0];
    assert_eq!(
        got[1..],
        [
            format!("2 from {id}"),
            format!("'4 from {id}'"),
            format!("'6 from {id}'"),
        ]
    );
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}

#[test]
fn a_cut_connection_mid_cell_is_a_clear_error_and_the_notebook_stays() {
    let sshd = Sshd::start();
    let env = Env::new();
    let mut run = env.spawn(&format!(
        "let sb = Sandbox(#{{ {}, execution_mode: \"notebook\" }}).start();\nlet s = create_notebook_session(sb, (), #{{ name: \"cut\" }});\ns.exec(\"x = 41\");\nprint(\"ready\");\ns.exec(\"import time; time.sleep(120)\");\nprint(\"not reached\");",
        on_ssh(&env, &sshd)
    ));
    run.expect("ready", 120);
    std::thread::sleep(Duration::from_millis(500));
    // The ssh client of this run (its command line names the host alias, the launcher and
    // this test's remote folder).
    let ssh = ours(&env, &format!("{} umask 077", Sshd::HOST));
    assert_eq!(ssh.len(), 1, "{ssh:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ssh[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "seer did not end; saw:\n{}",
            run.transcript()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", run.transcript());
    let stderr = run.all(common::Stream::Err).join("\n");
    assert!(
        stderr.contains("the connection to `seer-test-host` was lost"),
        "{stderr}"
    );
    // The notebook written so far is on this machine.
    let nb = common::read_json(
        &env.path()
            .join(format!("outputs/{}/cut.ipynb", env.the_run())),
    );
    assert_eq!(common::cell_sources(&nb)[0], "x = 41");
    wait_gone(&remote_needle(&env), Duration::from_secs(30));
}

#[test]
fn a_kernel_killed_on_the_host_is_restarted_as_locally() {
    let sshd = Sshd::start();
    let env = Env::new();
    let mut run = env.spawn(&format!(
        "let sb = Sandbox(#{{ {}, execution_mode: \"notebook\" }}).start();\nlet s = create_notebook_session(sb, (), #{{ name: \"k\" }});\ns.exec(\"x = 41\");\nprint(\"ready\");\nprint(s.exec(\"import time; time.sleep(120)\", #{{ raise: false }}).status);\nprint(s.exec(\"1 + 1\").text);",
        on_ssh(&env, &sshd)
    ));
    run.expect("ready", 120);
    std::thread::sleep(Duration::from_millis(500));
    let ours = ours(&env, "ipykernel_launcher");
    assert_eq!(ours.len(), 1, "{ours:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ours[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(run.next_line(60), "kernel_died");
    assert_eq!(run.next_line(120), "2");
}

#[test]
fn watch_reruns_reuse_the_sandbox_and_kernel_on_the_host() {
    let sshd = Sshd::start();
    let env = Env::new();
    let script = format!(
        "let sb = Sandbox(#{{ {}, execution_mode: \"notebook\" }}).start();\nlet s = create_notebook_session(sb, (), #{{ name: \"w\" }});\nlet n = s.exec(\"n = globals().get('n', 0) + 1\\nn\").text;\nprint(`run sandbox=${{sb.id}} n=${{n}}`);\n",
        on_ssh(&env, &sshd)
    );
    env.write("main.rhai", &script);
    let mut c = env.cmd();
    c.args(["run", "--watch", "main.rhai"]);
    let mut seer = common::Running::start(c);
    let first = seer.expect("run sandbox=", 120);
    seer.expect("[watch] run finished", 10);
    env.write("main.rhai", &format!("{script}// edited\n"));
    let second = seer.expect("run sandbox=", 60);
    let id = first.split_whitespace().nth(1).unwrap();
    assert_eq!(first, format!("run {id} n=1"));
    assert_eq!(
        second,
        format!("run {id} n=2"),
        "the warm sandbox and kernel are reused"
    );
    seer.expect("[watch] run finished", 10);
    seer.ctrl_c();
    wait_gone(&remote_needle(&env), Duration::from_secs(10));
}
