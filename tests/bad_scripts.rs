//! A table of bad scripts and configs: each must fail with exit code 1, a message that
//! says what was wrong, the innermost `file:line:col`, and no panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, text};

struct Case {
    name: &'static str,
    script: &'static str,
    /// Extra files next to the script.
    files: &'static [(&'static str, &'static str)],
    /// `file:line:col` (or `file:line`) of the error.
    at: &'static str,
    msg: &'static str,
    /// Environment variables of the run (`SEER_MAX_*` limits).
    vars: &'static [(&'static str, &'static str)],
}

const fn case(
    name: &'static str,
    script: &'static str,
    at: &'static str,
    msg: &'static str,
) -> Case {
    Case {
        name,
        script,
        files: &[],
        at,
        msg,
        vars: &[],
    }
}

/// A case run with environment variables set.
const fn case_env(
    name: &'static str,
    vars: &'static [(&'static str, &'static str)],
    script: &'static str,
    at: &'static str,
    msg: &'static str,
) -> Case {
    Case {
        name,
        script,
        files: &[],
        at,
        msg,
        vars,
    }
}

const MODULE: &str = "fn boom() {\n    let a = [1];\n    a[5]\n}\nfn nested() {\n    inner_throw()\n}\nfn inner_throw() {\n    throw \"thrown in module\";\n}\n";

fn cases() -> Vec<Case> {
    vec![
        case(
            "unknown top-level key",
            "let sb = Sandbox(#{ gpus: \"A100\" });",
            "main.rhai:1:10",
            "Sandbox config: unknown field `gpus`; did you mean `gpu`?",
        ),
        case(
            "unknown key, far from any",
            "Sandbox(#{ zzz: 1 });",
            "main.rhai:1:1",
            "Sandbox config: unknown field `zzz` (valid fields: `backend`, `gpu`",
        ),
        case(
            "list given a string",
            "\nSandbox(#{ python_packages: \"numpy\" });",
            "main.rhai:2:1",
            "field `python_packages`: invalid type: string \"numpy\", expected a sequence",
        ),
        case(
            "string given an int",
            "Sandbox(#{ gpu: 5 });",
            "main.rhai:1:1",
            "field `gpu`: invalid type: integer `5`, expected a string",
        ),
        case(
            "python_version as float",
            "Sandbox(#{ python_version: 3.11 });",
            "main.rhai:1:1",
            "field `python_version`: invalid type: floating point `3.11`, expected a string",
        ),
        case(
            "timeout as string",
            "Sandbox(#{ timeout: \"10\" });",
            "main.rhai:1:1",
            "field `timeout`: invalid type: string \"10\", expected u64",
        ),
        case(
            "env value not a string",
            "Sandbox(#{ env: #{ A: 1 } });",
            "main.rhai:1:1",
            "field `env.A`: invalid type: integer `1`, expected a string",
        ),
        case(
            "nested unknown key in models",
            "Sandbox(#{ models: [#{ nam: \"gpt2\" }] });",
            "main.rhai:1:1",
            "unknown field `nam` in `models[0]`; did you mean `name`?",
        ),
        case(
            "model without name",
            "Sandbox(#{ models: [#{ hidden: true }] });",
            "main.rhai:1:1",
            "field `models[0]`: missing field `name`",
        ),
        case(
            "misspelt enum value",
            "Sandbox(#{ execution_mode: \"notbook\" });",
            "main.rhai:1:1",
            "unknown value `notbook` in `execution_mode`; did you mean `notebook`?",
        ),
        case(
            "backend not supported yet",
            "Sandbox(#{ backend: \"modal\" });",
            "main.rhai:1:1",
            "not supported yet: backend `modal`",
        ),
        case(
            "docker_in_docker not supported",
            "Sandbox(#{ docker_in_docker: true });",
            "main.rhai:1:1",
            "not supported yet: `docker_in_docker`",
        ),
        case(
            "secret name invalid",
            "Sandbox(#{ secrets: [\"MY KEY\"] });",
            "main.rhai:1:1",
            "field `secrets[0]`: `MY KEY` is not an environment variable name",
        ),
        case(
            "local_files entry wrong type",
            "Sandbox(#{ local_files: [5] });",
            "main.rhai:1:1",
            "field `local_files[0]`: a path string or a [local_path, sandbox_path] pair of strings",
        ),
        case(
            "repo install wrong type",
            "RepoConfig(#{ url: \"a/b\", install: 5 });",
            "main.rhai:1:1",
            "RepoConfig: field `install`: `install` must be true, false or a shell command string",
        ),
        case(
            "repo key misspelt",
            "Sandbox(#{ repos: [#{ uri: \"a/b\" }] });",
            "main.rhai:1:1",
            "unknown field `uri` in `repos[0]`; did you mean `url`?",
        ),
        case(
            "ModelConfig key misspelt",
            "let m = ModelConfig(#{ name: \"x\", hiden: true });",
            "main.rhai:1:9",
            "ModelConfig: unknown field `hiden`; did you mean `hidden`?",
        ),
        case(
            "missing local file",
            "let sb = Sandbox(#{ local_files: [\"nope.txt\"] })\n    .start();",
            "main.rhai:2:6",
            "local_files[0]: ",
        ),
        case(
            "missing local dir",
            "Sandbox(#{ local_dirs: [[\"nope\", \"data\"]] }).start();",
            "main.rhai:1:46",
            "is not an existing directory",
        ),
        Case {
            name: "local file copied outside the workspace",
            script: "Sandbox(#{ local_files: [[\"a.txt\", \"../a.txt\"]] }).start();",
            files: &[("a.txt", "a")],
            at: "main.rhai:1:52",
            msg: "local_files[0]: destination `../a.txt` uses `..`; copies must stay inside the workspace",
            vars: &[],
        },
        case(
            "gpu on a machine without one",
            "Sandbox(#{ gpu: \"A100\" }).start();",
            "main.rhai:1:27",
            "gpu: \"A100\" was requested but this machine has no NVIDIA GPU; use `gpu: ()`",
        ),
        case(
            "missing system package",
            "Sandbox(#{ system_packages: [\"seer-no-such-pkg\"] }).start();",
            "main.rhai:1:53",
            "system_packages not installed on this machine: seer-no-such-pkg",
        ),
        case(
            "missing local model dir",
            "Sandbox(#{ models: [#{ name: \"./no-model\" }] }).start();",
            "main.rhai:1:49",
            "no-model",
        ),
        Case {
            name: "model dir without config.json",
            script: "Sandbox(#{ models: [#{ name: \"./notmodel\" }] }).start();",
            files: &[("notmodel/readme.txt", "not a model")],
            at: "main.rhai:1:49",
            msg: "is not a model directory",
            vars: &[],
        },
        case(
            "bad repo path",
            "Sandbox(#{ repos: [#{ url: \"./no-such-repo\" }] }).start();",
            "main.rhai:1:51",
            "no-such-repo",
        ),
        case(
            "bad repo URL",
            "Sandbox(#{ repos: [#{ url: \"file:///nonexistent/seer-repo\" }] }).start();",
            "main.rhai:1:66",
            "nonexistent/seer-repo",
        ),
        case(
            "method before start",
            "let sb = Sandbox(#{});\nsb.exec(\"true\");",
            "main.rhai:2:4",
            "this sandbox has not been started: call `.start()` first",
        ),
        case(
            "exec option misspelt",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"true\", #{ timout: 5 });",
            "main.rhai:2:4",
            "exec options: unknown field `timout`; did you mean `timeout`?",
        ),
        case(
            "exec timeout not positive",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"true\", #{ timeout: 0 });",
            "main.rhai:2:4",
            "exec options: field `timeout`: must be a positive number of seconds, not 0",
        ),
        case(
            "agent request_timeout not positive",
            "run_agent(#{ prompt: \"hi\", request_timeout: -1 });",
            "main.rhai:1:1",
            "run_agent: field `request_timeout`: must be a positive number of seconds, not -1",
        ),
        case(
            "failing command",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"echo oops >&2; exit 3\");",
            "main.rhai:2:4",
            "command `echo oops >&2; exit 3` failed with exit code 3\n--- stderr ---\noops",
        ),
        case(
            "python exception",
            "let sb = Sandbox(#{}).start();\n\nsb.exec_python(\"1/0\");",
            "main.rhai:3:4",
            "python code failed: ZeroDivisionError: division by zero (exit code 1)\n--- stderr ---\nTraceback",
        ),
        case(
            "command timeout",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"sleep 5\", #{ timeout: 0.3 });",
            "main.rhai:2:4",
            "command timed out after 0.3s and was killed: sleep 5",
        ),
        case(
            "sandbox path escapes",
            "let sb = Sandbox(#{}).start();\nsb.write_file(\"../x\", \"y\");",
            "main.rhai:2:4",
            "write_file: path `../x` uses `..`",
        ),
        case(
            "terminate option misspelt",
            "let sb = Sandbox(#{}).start();\nsb.terminate(#{ save: true });",
            "main.rhai:2:4",
            "terminate options: unknown field `save`; did you mean `save_snapshot`?",
        ),
        case(
            "missing host file",
            "let t = read_file(\"task.md\");",
            "main.rhai:1:9",
            "read_file: cannot read ",
        ),
        case(
            "syntax error",
            "let x = 1;\nlet y = ;",
            "main.rhai:2:9",
            "Unexpected ';'",
        ),
        case(
            "unknown function",
            "\n  foo(1);",
            "main.rhai:2:3",
            "Function not found: foo (i64)",
        ),
        case(
            "error inside nested functions",
            "fn a() { b() }\nfn b() {\n  let z = 1 / 0;\n}\na();",
            "main.rhai:3:13",
            "Division by zero",
        ),
        case(
            "config error inside a function",
            "fn mk(g) {\n    Sandbox(#{ gpu: g, gpus: 1 })\n}\nmk(());",
            "main.rhai:2:5",
            "unknown field `gpus`",
        ),
        Case {
            name: "error inside an imported module",
            script: "import \"helper\" as h;\nh::boom();",
            files: &[("helper.rhai", MODULE)],
            at: "helper.rhai:3:7",
            msg: "Array index 5 out of bounds",
            vars: &[],
        },
        Case {
            name: "throw inside nested module functions",
            script: "import \"helper\" as h;\n\nh::nested();",
            files: &[("helper.rhai", MODULE)],
            at: "helper.rhai:9:5",
            msg: "thrown in module",
            vars: &[],
        },
        case(
            "module not found",
            "import \"nope\" as n;",
            "main.rhai:1:8",
            "Module not found: nope",
        ),
        case(
            "uncaught throw",
            "throw \"custom failure\";",
            "main.rhai:1:1",
            "custom failure",
        ),
        case(
            "cli session without a sandbox",
            "create_cli_session((), ());",
            "main.rhai:1:1",
            "create_cli_session: the first argument must be a Sandbox",
        ),
        case(
            "from_id of unknown sandbox",
            "Sandbox::from_id(\"sb-nope\");",
            "main.rhai:1:10",
            "Sandbox::from_id: no sandbox `sb-nope`",
        ),
        case(
            "from_snapshot of unknown snapshot",
            "Sandbox::from_snapshot(\"snap-nope\", #{}).start();",
            "main.rhai:1:42",
            "snapshot `snap-nope` not found",
        ),
        // Names that become file names (the notebook, the transcript, a served interface).
        case(
            "session name climbing out of the run folder",
            "create_local_notebook_session((), #{ name: \"../../x\" });",
            "main.rhai:1:1",
            "notebook session options: `name` contains `/` (a name, not a path): got \"../../x\"",
        ),
        case(
            "absolute session name",
            "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\ncreate_notebook_session(sb, (), #{ name: \"/tmp/x\" });",
            "main.rhai:2:1",
            "notebook session options: `name` contains `/`",
        ),
        case(
            "empty session name",
            "create_local_notebook_session((), #{ name: \"\" });",
            "main.rhai:1:1",
            "notebook session options: `name` is empty",
        ),
        case(
            "session name `..`",
            "create_local_notebook_session((), #{ name: \"..\" });",
            "main.rhai:1:1",
            "notebook session options: `name` is `.` or `..`",
        ),
        case(
            "session name with a NUL byte",
            "create_local_notebook_session((), #{ name: \"a\\x00b\" });",
            "main.rhai:1:1",
            "notebook session options: `name` contains a NUL byte",
        ),
        case(
            "agent name with a slash",
            "run_agent(#{ prompt: \"p\", mcp_config: #{}, name: \"../x\" });",
            "main.rhai:1:1",
            "run_agent: `name` contains `/` (a name, not a path): got \"../x\"",
        ),
        case(
            "empty agent name",
            "run_agent(#{ prompt: \"p\", mcp_config: #{}, name: \"\" });",
            "main.rhai:1:1",
            "run_agent: `name` is empty",
        ),
        case(
            "interactive agent with an absolute name",
            "run_agent_interactive(#{ mcp_config: #{}, name: \"/etc/x\" });",
            "main.rhai:1:1",
            "run_agent_interactive: `name` contains `/`",
        ),
        Case {
            name: "served interface named with a path",
            script: "let s = ScopedSandbox().start();\ns.serve(\"iface.py\", #{ name: \"a/b\" });",
            files: &[("iface.py", "def f(): pass\nexpose(f)\n")],
            at: "main.rhai:2:3",
            msg: "serve: `name` contains `/`",
            vars: &[],
        },
        // NUL bytes in the environment.
        case(
            "NUL byte in an env value",
            "let sb = Sandbox(#{ env: #{ MY_VAR: \"a\\x00b\" } }).start();",
            "main.rhai:1:10",
            "Sandbox config: field `env.MY_VAR`: the value contains a NUL byte",
        ),
        case(
            "NUL byte in an exec env value",
            "let sb = Sandbox().start();\nsb.exec(\"true\", #{ env: #{ A: \"\\x00\" } });",
            "main.rhai:2:4",
            "exec options: field `env.A`: an environment variable's name must be non-empty",
        ),
        case(
            "`=` in an exec env name",
            "let sb = Sandbox().start();\nsb.exec(\"true\", #{ env: #{ \"A=B\": \"x\" } });",
            "main.rhai:2:4",
            "exec options: field `env.A=B`",
        ),
        // Links planted in the workspace.
        case(
            "write_file through a planted link",
            "let sb = Sandbox().start();\nsb.exec(\"ln -s /etc/hostname report.md\");\nsb.write_file(\"report.md\", \"x\");",
            "main.rhai:3:4",
            "`report.md` is a symbolic link to `/etc/hostname`, which leads out of the sandbox workspace",
        ),
        case(
            "read_file through a planted folder link",
            "let sb = Sandbox().start();\nsb.exec(\"ln -s /etc etc\");\nsb.read_file(\"etc/hostname\");",
            "main.rhai:3:4",
            "`etc` is a symbolic link to `/etc`",
        ),
        // Skill constructors.
        case(
            "Skill with an unknown field",
            "let s = Skill(#{ name: \"s\", desc: \"d\" });",
            "main.rhai:1:9",
            "Skill: unknown field `desc`",
        ),
        case(
            "Skill without a name",
            "let s = Skill(#{ body: \"b\" });",
            "main.rhai:1:9",
            "Skill: missing field `name`",
        ),
        case(
            "Skill::from_text with a path for a name",
            "let s = Skill::from_text(\"../x\", \"d\", \"b\");",
            "main.rhai:1:16",
            "Skill::from_text:",
        ),
        // Limits of runaway scripts.
        case(
            "runaway recursion",
            "fn f(n) { f(n + 1) }\nf(0);",
            "main.rhai:2:1",
            "more than 256 nested function calls; runaway recursion? (set SEER_MAX_CALL_LEVELS",
        ),
        case_env(
            "string over the limit",
            &[("SEER_MAX_STRING_SIZE", "1000")],
            "let s = \"x\";\nloop { s += s; }",
            "main.rhai:2:10",
            "Length of string exceeds the script limit; a runaway loop? (set SEER_MAX_STRING_SIZE",
        ),
        case_env(
            "array over the limit",
            &[("SEER_MAX_ARRAY_SIZE", "100")],
            "let a = [1];\nloop { a += a; }",
            "main.rhai:2:10",
            "exceeds the script limit; a runaway loop? (set SEER_MAX_ARRAY_SIZE",
        ),
        case_env(
            "map over the limit",
            &[("SEER_MAX_MAP_SIZE", "10")],
            "let m = #{};\nfor i in 0..100 { let n = #{}; n[`k${i}`] = i; m += n; }",
            "main.rhai:2:50",
            "Size of object map exceeds the script limit; a runaway loop? (set SEER_MAX_MAP_SIZE",
        ),
        case_env(
            "operations over the limit",
            &[("SEER_MAX_OPERATIONS", "1000")],
            "let n = 0;\nloop { n += 1; }",
            "main.rhai:2:13",
            "more operations than SEER_MAX_OPERATIONS allows",
        ),
        case_env(
            "recursion over a lowered limit",
            &[("SEER_MAX_CALL_LEVELS", "5")],
            "fn f(n) { if n == 0 { 0 } else { f(n - 1) } }\nf(10);",
            "main.rhai:2:1",
            "more than 5 nested function calls",
        ),
    ]
}

#[test]
fn bad_scripts_fail_with_message_and_position() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = vec![];
    for c in &cases {
        let env = Env::new();
        for (name, content) in c.files {
            env.write(name, content);
        }
        env.write("main.rhai", c.script);
        let out = env
            .cmd()
            .args(["run", "main.rhai"])
            .envs(c.vars.iter().copied())
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        let want = format!("error: {}: ", c.at);
        let good = out.status.code() == Some(1)
            && stderr.contains(&want)
            && stderr.contains(c.msg)
            && !stderr.contains("panicked");
        if !good {
            failures.push(format!(
                "[{}] exit {:?}\n  want: {want}\n  got stderr: {stderr}\n  stdout: {stdout}",
                c.name,
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn missing_script_file_is_a_clear_error() {
    let env = Env::new();
    let out = env.cmd().args(["run", "nope.rhai"]).output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("error: cannot read script nope.rhai"), "{err}");
}

#[test]
fn check_reports_every_syntax_error() {
    let env = Env::new();
    env.write(
        "bad.rhai",
        "let a = ;\nlet b = 2;\nlet c = 3 +;\nprint(a);\n",
    );
    env.write("good.rhai", "let a = 1;\nprint(a);\n");
    let out = env.cmd().args(["check", "bad.rhai"]).output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err,
        "bad.rhai:1:9: Unexpected ';'\nbad.rhai:3:12: Unexpected ';'\n2 syntax error(s)\n"
    );
    let out = env.cmd().args(["check", "good.rhai"]).output().unwrap();
    assert_eq!(text(&out).0, "good.rhai: ok\n");
    assert!(out.status.success());
}
