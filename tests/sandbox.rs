//! The local backend driven through real scripts: files, commands, Python, env cache,
//! secrets, copies, repos, models, snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, assert_no_file_contains, failed, ok, plain_log, read_json, shared_cache, text};

/// A requirement string no other test uses, so the env it names starts cold.
fn unique_requirement() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("six!=0.0.{nanos}")
}

#[test]
fn hello_example_runs_end_to_end() {
    let env = Env::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hello/main.rhai");
    let out = env
        .cmd()
        .arg("run")
        .arg(&script)
        .args(["--", "Ada"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    // The sandbox's id and its Python env's key vary: read them from the output.
    let id = lines[0]
        .strip_prefix("started ")
        .and_then(|l| l.split_once(' '))
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("{stdout}"));
    let env_line = lines[1]
        .strip_prefix("python env: py3.11-")
        .and_then(|l| l.split_once(' '))
        .filter(|(key, hit)| {
            key.chars().all(|c| c.is_ascii_hexdigit())
                && ["(cache hit: true)", "(cache hit: false)"].contains(hit)
        });
    assert!(env_line.is_some(), "{stdout}");
    assert_eq!(
        lines,
        [
            format!(
                "started {id} (local), workspace {}",
                env.home
                    .join("sandboxes")
                    .join(id)
                    .join("workspace")
                    .display()
            )
            .as_str(),
            lines[1],
            "hello Ada from Linux",
            "read back: 3 lines",
            "  n    n^2",
            "---  -----",
            "  1      1",
            "  2      4",
            "  3      9",
            "",
            "caught: command `ls /no/such/dir` failed with exit code 2",
            "terminated",
        ]
    );
    // Nothing left running, and the run is recorded.
    let ps = ok(&env.cmd().arg("ps").output().unwrap());
    assert_eq!(ps.lines().count(), 1, "{ps}");
    assert!(env.the_run().starts_with("hello-"));
    let record = read_json(&env.runs()[0].join("run.json"));
    assert_eq!(record["status"], "ok");
    assert_eq!(record["args"], serde_json::json!(["Ada"]));
    let installed = record["sandboxes"][0]["python_env"]["installed"]
        .as_array()
        .unwrap();
    assert!(
        installed
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("tabulate==")),
        "{installed:?}"
    );
}

#[test]
fn second_start_with_same_packages_installs_nothing() {
    let env = Env::new();
    let req = unique_requirement();
    let script = format!(
        "let sb = Sandbox(#{{ python_packages: [\"{req}\"] }}).start();\nlet i = sb.env_info;\nprint(`${{i.key}} ${{i.cache_hit}}`);\nprint(sb.exec_python(\"import six; print(six.__name__)\"));"
    );
    let first = ok(&env.run(&script, &[]));
    let (key, hit) = first.lines().next().unwrap().split_once(' ').unwrap();
    assert_eq!(hit, "false");
    assert_eq!(first, format!("{key} false\nsix\n\n"));
    let marker = shared_cache().join("envs").join(key).join(".seer-env.json");
    let made = std::fs::metadata(&marker).unwrap().modified().unwrap();
    // Same set, other order and spelling: same env, no install.
    let script2 = script.replace(&format!("[\"{req}\"]"), &format!("[\" {req}\", \"{req}\"]"));
    let second = ok(&env.run(&script2, &[]));
    assert_eq!(second.lines().next().unwrap(), format!("{key} true"));
    assert_eq!(
        std::fs::metadata(&marker).unwrap().modified().unwrap(),
        made
    );
}

#[test]
fn concurrent_starts_with_the_same_key_share_one_env() {
    let env = Env::new();
    let req = unique_requirement();
    env.write(
        "main.rhai",
        &format!("let sb = Sandbox(#{{ python_packages: [\"{req}\"] }}).start();\nprint(sb.env_info.key);\nprint(sb.exec_python(\"import six; print('ok')\"));"),
    );
    let children: Vec<_> = (0..3)
        .map(|_| env.cmd().args(["run", "main.rhai"]).output())
        .collect();
    let outs: Vec<String> = children.into_iter().map(|o| ok(&o.unwrap())).collect();
    let key = outs[0].lines().next().unwrap_or_default();
    assert!(key.starts_with("py3.11-"), "{outs:?}");
    assert_eq!(outs, vec![format!("{key}\nok\n\n"); 3]);
}

#[test]
fn uv_is_installed_into_the_cache_when_missing() {
    let env = Env::new();
    // A PATH with python3 but without uv, and an empty cache.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap();
    std::os::unix::fs::symlink(python.trim(), bin.join("python3")).unwrap();
    let cache = env.path().join("cache");
    env.write(
        "main.rhai",
        "let sb = Sandbox(#{}).start();\nprint(sb.exec(\"python --version\"));",
    );
    let out = env
        .cmd()
        .env("SEER_CACHE_DIR", &cache)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    // uv's own Python 3.11 (its patch version is uv's choice).
    let stdout = ok(&out);
    let version = stdout.strip_prefix("Python 3.11.").unwrap_or_default();
    let patch = version.strip_suffix("\n\n").unwrap_or_default();
    assert!(
        !patch.is_empty() && patch.chars().all(|c| c.is_ascii_digit()),
        "{stdout:?}"
    );
    assert!(cache.join("uv/bin/uv").is_file());
}

#[test]
fn commands_files_env_and_timeouts() {
    let env = Env::new();
    let out = env.run(
        r#"
let sb = Sandbox(#{ env: #{ COLOR: "blue" } }).start();
let o = sb.exec("echo $COLOR $SEER_SANDBOX_ID");
o.trim();
print(o == `blue ${sb.id}`);
print(sb.exec("pwd", #{ cwd: "sub" }) == "never");
"#,
        &[],
    );
    assert_eq!(
        failed(&out),
        "error: main.rhai:6:10: working directory `sub` does not exist in the sandbox (create it \
         with ensure_dir)\n",
        "cwd must exist"
    );
    let out = env.run(
        r#"
let sb = Sandbox(#{ env: #{ COLOR: "blue" } }).start();
let line = sb.exec("echo $COLOR $SEER_SANDBOX_ID");
line.trim();
print(line == `blue ${sb.id}`);
sb.ensure_dir("sub/deeper");
sb.write_file("sub/deeper/f.txt", "content");
print(sb.exec("cat f.txt", #{ cwd: "sub/deeper", env: #{ X: "1" } }));
print(sb.read_file(sb.workspace_path + "/sub/deeper/f.txt"));
print(sb.exec_result("echo out; echo err >&2; exit 7"));
print(sb.exec_python("import os, sys; print(sys.prefix == os.environ['VIRTUAL_ENV'], os.environ.get('HOME') is not None)"));
print(sb.exec("env | grep -c SEER_TEST_HOST_ONLY || true"));
let t0 = unix_time();
try { sb.exec("sleep 10", #{ timeout: 0.5 }); } catch (e) { print(e.split("\n")[0]); }
print(unix_time() - t0 < 3.0);
print(sb.is_running);
sb.terminate();
print(sb.is_running);
try { sb.exec("true"); } catch (e) { print(e); }
"#,
        &[],
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    let id = lines
        .last()
        .and_then(|l| l.strip_prefix("sandbox "))
        .and_then(|l| l.strip_suffix(" has been terminated"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(id.starts_with("sb-"), "{stdout}");
    assert_eq!(
        lines,
        [
            "true",
            "content",
            "content",
            "#{\"exit_code\": 7, \"stderr\": \"err\\n\", \"stdout\": \"out\\n\"}",
            "True True",
            "",
            "0",
            "",
            "command timed out after 0.5s and was killed: sleep 10",
            "true",
            "true",
            "false",
            &format!("sandbox {id} has been terminated"),
        ]
    );
}

#[test]
fn secrets_reach_the_sandbox_but_never_outputs_or_logs() {
    let env = Env::new();
    env.write(".env", "SEER_TEST_DOTENV_SECRET=dotenv-secret-value-123\n");
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ secrets: ["SEER_TEST_SECRET", "SEER_TEST_DOTENV_SECRET", "SEER_TEST_MISSING"] }).start();
print(sb.exec("test \"$SEER_TEST_SECRET\" = env-secret-value-456 && echo env-ok"));
print(sb.exec("test \"$SEER_TEST_DOTENV_SECRET\" = dotenv-secret-value-123 && echo dotenv-ok"));
try { sb.exec("echo leaking $SEER_TEST_SECRET >&2; exit 1"); } catch (e) { print(e); }
sb.exec("echo $SEER_TEST_SECRET > /dev/null");
print(sb.state_dir);
"#,
    );
    let out = env
        .cmd()
        .env("SEER_TEST_SECRET", "env-secret-value-456")
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let state_dir = stdout.lines().last().unwrap().to_string();
    assert_eq!(
        stdout,
        format!(
            "env-ok\n\ndotenv-ok\n\ncommand `echo leaking $SEER_TEST_SECRET >&2; exit 1` failed with \
             exit code 1\n--- stderr ---\nleaking ***\n{}\n",
            env.home
                .join("sandboxes")
                .join(state_dir.rsplit('/').next().unwrap())
                .display()
        )
    );
    assert_eq!(
        stderr.lines().map(plain_log).collect::<Vec<_>>(),
        [
            "WARN secret `SEER_TEST_MISSING` is not set in the environment or in .env; the sandbox \
          starts without it"
        ]
    );
    // No secret value in anything seer wrote: outputs, sandbox records and logs.
    for root in [env.path().join("outputs"), PathBuf::from(&state_dir)] {
        assert_no_file_contains(&root, &["env-secret-value-456", "dotenv-secret-value-123"]);
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

#[test]
fn local_files_dirs_repos_models_and_snapshots() {
    let env = Env::new();
    env.write("data/a.txt", "file a");
    env.write("assets/nested/b.txt", "file b");
    // A local git repo with an install command.
    env.write("tools/setup.py", "");
    env.write("tools/tool.py", "VALUE = 42\n");
    git(&env.path().join("tools"), &["init", "-q"]);
    git(&env.path().join("tools"), &["add", "."]);
    git(&env.path().join("tools"), &["commit", "-qm", "init"]);
    // A local model dir and a model in a pre-seeded HF cache (as huggingface_hub lays it out).
    env.write("tiny-model/config.json", "{\"model_type\": \"llama\"}");
    let hub = env.path().join("hf/hub");
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let repo = hub.join("models--acme--secret-model");
    env.write(
        &format!("hf/hub/models--acme--secret-model/blobs/{}", "b1"),
        "{\"model_type\": \"gpt2\", \"_name_or_path\": \"acme/secret-model\"}",
    );
    std::fs::create_dir_all(repo.join("snapshots").join(sha)).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), sha).unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/b1",
        repo.join("snapshots").join(sha).join("config.json"),
    )
    .unwrap();
    env.write(
        "main.rhai",
        r#"
let cfg = #{
    local_files: ["data/a.txt", ["data/a.txt", "/root/copy.txt"]],
    local_dirs: [["assets", "inputs"]],
    repos: [RepoConfig(#{ url: "./tools", install: "cp tool.py installed_marker.py" })],
    models: [
        ModelConfig(#{ name: "./tiny-model", var_name: "tiny" }),
        #{ name: "acme/secret-model", hidden: true },
    ],
};
let sb = Sandbox(cfg).start();
print(sb.read_file("a.txt"));
print(sb.read_file("copy.txt")); // Seer's `/root/copy.txt` is the workspace's
print(sb.read_file("inputs/nested/b.txt"));
let r = sb.repo_handles[0];
print(r.local_path.ends_with("/tools"));
print(r.commit.len());
print(sb.exec("python -c 'import installed_marker; print(installed_marker.VALUE)'", #{ cwd: "tools" }));
let m = sb.model_handles;
print(m[0].var_name + " " + m[0].revision + " " + m[0].path.ends_with("tiny-model"));
print(m[1].name + " " + m[1].revision + " " + m[1].path.contains("secret"));
print(sb.exec_python(`import json; c = json.load(open("${m[1].path}/config.json")); print(c["model_type"], c["_name_or_path"].startswith("/"))`));
sb.write_file("state.txt", "before snapshot");
let snap = sb.snapshot("after setup");
let snap2 = sb.terminate(#{ save_snapshot: true, snapshot_description: "at the end" });
print(snap != snap2);
let sb2 = Sandbox::from_snapshot(snap, #{}).start();
print(sb2.read_file("state.txt"));
print(sb2.read_file("tools/tool.py"));
print(sb2.id != sb.id);
"#,
    );
    let out = env
        .cmd()
        .env("HF_HUB_CACHE", &hub)
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    let mut want = vec![
        "file a",
        "file a",
        "file b",
        "true",
        "40",
        "42",
        "tiny local true",
    ];
    let hidden = format!("hidden-model-1 {sha} false");
    want.push(&hidden);
    want.push("gpt2 True");
    want.extend(["true", "before snapshot", "VALUE = 42", "true"]);
    assert_eq!(lines, want);
    assert!(!stdout.contains("secret-model"), "{stdout}");
    // Nor in anything of the sandbox's own directory (its record sits beside the workspace).
    assert_no_file_contains(&env.home.join("sandboxes"), &["secret-model"]);
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(second_start_with_same_packages_installs_nothing);
