//! A table of bad scripts and configs: each must fail with exit code 1, a message that
//! says what was wrong, the innermost `file:line:col`, and no panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, failed, text};

struct Case {
    name: &'static str,
    script: &'static str,
    /// Extra files next to the script.
    files: &'static [(&'static str, &'static str)],
    /// `file:line:col` (or `file:line`) of the error.
    at: &'static str,
    /// The whole message after the position, any call chain included; the test's folder
    /// is written `<dir>` and a sandbox id `sb-<id>`.
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
    case_env(name, &[], script, at, msg)
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

/// The fields a Sandbox config may have, as its errors list them.
macro_rules! sandbox_fields {
    () => {
        "(valid fields: `backend`, `gpu`, `gpu_count`, `execution_mode`, `models`, `repos`, \
         `python_packages`, `system_packages`, `python_version`, `secrets`, `env`, `timeout`, \
         `local_files`, `local_dirs`, `debug`, `docker_in_docker`, `encrypted_ports`, `jupyter_port`, \
         `rpc_port`, `debug_port`, `rpc_timeout`, `wait_timeout`, `isolation`, `network`, `notebook_packages`, `provision_env`, `host`, `ssh_options`, `remote_dir`, `partition`, `account`, `qos`, `gpu_type_map`, `gres`, `cpus`, `memory`, `pids`, `max_file_size`, `slurm_options`, `login`, `shared_dir`)"
    };
}

const MODULE: &str = "fn boom() {\n    let a = [1];\n    a[5]\n}\nfn nested() {\n    inner_throw()\n}\nfn inner_throw() {\n    throw \"thrown in module\";\n}\n";

fn cases() -> Vec<Case> {
    vec![
        case(
            "unknown top-level key",
            "let sb = Sandbox(#{ gpus: \"A100\" });",
            "main.rhai:1:10",
            concat!(
                "Sandbox config: unknown field `gpus`; did you mean `gpu`? ",
                sandbox_fields!()
            ),
        ),
        case(
            "unknown key, far from any",
            "Sandbox(#{ zzz: 1 });",
            "main.rhai:1:1",
            concat!("Sandbox config: unknown field `zzz` ", sandbox_fields!()),
        ),
        case(
            "list given a string",
            "\nSandbox(#{ python_packages: \"numpy\" });",
            "main.rhai:2:1",
            "Sandbox config: field `python_packages`: invalid type: string \"numpy\", expected a sequence",
        ),
        case(
            "string given an int",
            "Sandbox(#{ gpu: 5 });",
            "main.rhai:1:1",
            "Sandbox config: field `gpu`: invalid type: integer `5`, expected a string",
        ),
        case(
            "python_version as float",
            "Sandbox(#{ python_version: 3.11 });",
            "main.rhai:1:1",
            "Sandbox config: field `python_version`: invalid type: floating point `3.11`, expected a string",
        ),
        case(
            "timeout as string",
            "Sandbox(#{ timeout: \"10\" });",
            "main.rhai:1:1",
            "Sandbox config: field `timeout`: invalid type: string \"10\", expected u64",
        ),
        case(
            "env value not a string",
            "Sandbox(#{ env: #{ A: 1 } });",
            "main.rhai:1:1",
            "Sandbox config: field `env.A`: invalid type: integer `1`, expected a string",
        ),
        case(
            "nested unknown key in models",
            "Sandbox(#{ models: [#{ nam: \"gpt2\" }] });",
            "main.rhai:1:1",
            "Sandbox config: unknown field `nam` in `models[0]`; did you mean `name`? (valid fields: `name`, `var_name`, `hidden`, `is_peft`, `base_model`, `revision`, `load_as_peft`)",
        ),
        case(
            "model without name",
            "Sandbox(#{ models: [#{ hidden: true }] });",
            "main.rhai:1:1",
            "Sandbox config: field `models[0]`: missing field `name`",
        ),
        case(
            "misspelt enum value",
            "Sandbox(#{ execution_mode: \"notbook\" });",
            "main.rhai:1:1",
            "Sandbox config: unknown value `notbook` in `execution_mode`; did you mean `notebook`? (valid values: `cli`, `notebook`)",
        ),
        case(
            "a backend's own field check",
            "Sandbox(#{ backend: \"modal\", gpu: \"A100:2\" });",
            "main.rhai:1:1",
            "Sandbox config: field `gpu`: `A100:2` is not a Modal GPU type (like \"A100\" or \"H100\"; the count is `gpu_count`)",
        ),
        case(
            "docker_in_docker not supported",
            "Sandbox(#{ docker_in_docker: true });",
            "main.rhai:1:1",
            "not supported yet: `docker_in_docker` on the local backend",
        ),
        case(
            "secret name invalid",
            "Sandbox(#{ secrets: [\"MY KEY\"] });",
            "main.rhai:1:1",
            "Sandbox config: field `secrets[0]`: `MY KEY` is not an environment variable name",
        ),
        case(
            "provision_env entry invalid",
            "Sandbox(#{ provision_env: [\"HTTPS_PROXY\", \"MY PROXY=http://p:3128\"] });",
            "main.rhai:1:1",
            "Sandbox config: field `provision_env[1]`: `MY PROXY=http://p:3128` is not `NAME` or `NAME=value` (NAME an environment variable name)",
        ),
        case(
            "local_files entry wrong type",
            "Sandbox(#{ local_files: [5] });",
            "main.rhai:1:1",
            "Sandbox config: field `local_files[0]`: a path string or a [local_path, sandbox_path] pair of strings",
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
            "Sandbox config: unknown field `uri` in `repos[0]`; did you mean `url`? (valid fields: `url`, `dockerfile`, `install`, `branch`)",
        ),
        case(
            "ModelConfig key misspelt",
            "let m = ModelConfig(#{ name: \"x\", hiden: true });",
            "main.rhai:1:9",
            "ModelConfig: unknown field `hiden`; did you mean `hidden`? (valid fields: `name`, `var_name`, `hidden`, `is_peft`, `base_model`, `revision`, `load_as_peft`)",
        ),
        case(
            "missing local file",
            "let sb = Sandbox(#{ local_files: [\"nope.txt\"] })\n    .start();",
            "main.rhai:2:6",
            "local_files[0]: <dir>/nope.txt is not an existing file (relative paths start at the script's folder <dir>)",
        ),
        case(
            "missing local dir",
            "Sandbox(#{ local_dirs: [[\"nope\", \"data\"]] }).start();",
            "main.rhai:1:46",
            "local_dirs[0]: <dir>/nope is not an existing directory (relative paths start at the script's folder <dir>)",
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
            "gpu: \"A100\" was requested but this machine has no NVIDIA GPU; use `gpu: ()` to run on the CPU, or a backend with GPUs",
        ),
        case(
            "missing system package",
            "Sandbox(#{ system_packages: [\"seer-no-such-pkg\"] }).start();",
            "main.rhai:1:53",
            "system_packages not installed on this machine: seer-no-such-pkg. The local backend does not install system packages; run `sudo apt-get install seer-no-such-pkg` and start again",
        ),
        case(
            "missing local model dir",
            "Sandbox(#{ models: [#{ name: \"./no-model\" }] }).start();",
            "main.rhai:1:49",
            "model `./no-model`: <dir>/no-model does not exist; give an existing model directory (relative paths are resolved against the script's folder) or a Hugging Face id like `org/name`",
        ),
        Case {
            name: "model dir without config.json",
            script: "Sandbox(#{ models: [#{ name: \"./notmodel\" }] }).start();",
            files: &[("notmodel/readme.txt", "not a model")],
            at: "main.rhai:1:49",
            msg: "model `./notmodel`: <dir>/notmodel is not a model directory (no config.json or adapter_config.json)",
            vars: &[],
        },
        case(
            "bad repo path",
            "Sandbox(#{ repos: [#{ url: \"./no-such-repo\" }] }).start();",
            "main.rhai:1:51",
            "repos[0] (`./no-such-repo`): local path <dir>/no-such-repo does not exist; fix the path (relative paths are resolved against the script's folder <dir>)",
        ),
        case(
            "bad repo URL",
            "Sandbox(#{ repos: [#{ url: \"file:///nonexistent/seer-repo\" }] }).start();",
            "main.rhai:1:66",
            "`git clone --depth 1 -- file:///nonexistent/seer-repo <dir>/state/sandboxes/sb-<id>/workspace/seer-repo` failed (exit status: 128):\nCloning into '<dir>/state/sandboxes/sb-<id>/workspace/seer-repo'...\nfatal: '/nonexistent/seer-repo' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\nhint: check that the URL is right and reachable, that the branch exists, and that you have access (private repos need an SSH key or a git credential helper; password prompts are disabled)",
        ),
        case(
            "method before start",
            "let sb = Sandbox(#{});\nsb.exec(\"true\");",
            "main.rhai:2:4",
            "this sandbox has not been started: call `.start()` first, e.g. `let sb = Sandbox(cfg).start();`",
        ),
        case(
            "exec option misspelt",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"true\", #{ timout: 5 });",
            "main.rhai:2:4",
            "exec options: unknown field `timout`; did you mean `timeout`? (valid fields: `timeout`, `cwd`, `env`)",
        ),
        case(
            "exec timeout not positive",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"true\", #{ timeout: 0 });",
            "main.rhai:2:4",
            "exec options: field `timeout`: must be a positive number of seconds, not 0",
        ),
        case(
            "agent request_timeout not positive",
            "run_agent(#{ user_message: \"hi\", request_timeout: -1 });",
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
            "python code failed: ZeroDivisionError: division by zero (exit code 1)\n--- stderr ---\nTraceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\nZeroDivisionError: division by zero",
        ),
        case(
            "command timeout",
            "let sb = Sandbox(#{}).start();\nsb.exec(\"sleep 5\", #{ timeout: 0.3 });",
            "main.rhai:2:4",
            "command timed out after 0.3s and was killed: sleep 5\n--- output so far ---\n",
        ),
        case(
            "sandbox path escapes",
            "let sb = Sandbox(#{}).start();\nsb.write_file(\"../x\", \"y\");",
            "main.rhai:2:4",
            "write_file: path `../x` uses `..`; sandbox paths must stay inside the workspace",
        ),
        case(
            "terminate option misspelt",
            "let sb = Sandbox(#{}).start();\nsb.terminate(#{ save: true });",
            "main.rhai:2:4",
            "terminate options: unknown field `save`; did you mean `save_snapshot`? (valid fields: `save_snapshot`, `snapshot_description`)",
        ),
        case(
            "missing host file",
            "let t = read_file(\"task.md\");",
            "main.rhai:1:9",
            "read_file: cannot read <dir>/task.md: No such file or directory (os error 2)",
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
            "Division by zero: 1 / 0\n  in call to function 'b' at main.rhai:1:10\n  in call to function 'a' at main.rhai:5:1",
        ),
        case(
            "config error inside a function",
            "fn mk(g) {\n    Sandbox(#{ gpu: g, gpus: 1 })\n}\nmk(());",
            "main.rhai:2:5",
            concat!(
                "Sandbox config: unknown field `gpus`; did you mean `gpu`? ",
                sandbox_fields!(),
                "\n  in call to function 'mk' at main.rhai:4:1"
            ),
        ),
        Case {
            name: "error inside an imported module",
            script: "import \"helper\" as h;\nh::boom();",
            files: &[("helper.rhai", MODULE)],
            at: "helper.rhai:3:7",
            msg: "Array index 5 out of bounds: only 1 element in array\n  in call to function 'boom' at main.rhai:2:4",
            vars: &[],
        },
        Case {
            name: "throw inside nested module functions",
            script: "import \"helper\" as h;\n\nh::nested();",
            files: &[("helper.rhai", MODULE)],
            at: "helper.rhai:9:5",
            msg: "thrown in module\n  in call to function 'inner_throw' at helper.rhai:6:5\n  in call to function 'nested' at main.rhai:3:4",
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
            "create_cli_session: the first argument must be a Sandbox (Sandbox(#{...}).start()), not ()",
        ),
        case(
            "from_id of unknown sandbox",
            "Sandbox::from_id(\"sb-nope\");",
            "main.rhai:1:10",
            "Sandbox::from_id: no sandbox `sb-nope` in <dir>/state/sandboxes (see `seer ps`)",
        ),
        case(
            "from_snapshot of unknown snapshot",
            "Sandbox::from_snapshot(\"snap-nope\", #{}).start();",
            "main.rhai:1:42",
            "snapshot `snap-nope` not found in <dir>/state/snapshots",
        ),
        // Names that become file names (the notebook, the transcript, a served interface).
        case(
            "session name climbing out of the run folder",
            "create_local_notebook_session((), #{ name: \"../../x\" });",
            "main.rhai:1:1",
            "notebook session options: `name` contains `/` (a name, not a path): got \"../../x\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "absolute session name",
            "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\ncreate_notebook_session(sb, (), #{ name: \"/tmp/x\" });",
            "main.rhai:2:1",
            "notebook session options: `name` contains `/` (a name, not a path): got \"/tmp/x\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "empty session name",
            "create_local_notebook_session((), #{ name: \"\" });",
            "main.rhai:1:1",
            "notebook session options: `name` is empty: got \"\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "session name `..`",
            "create_local_notebook_session((), #{ name: \"..\" });",
            "main.rhai:1:1",
            "notebook session options: `name` is `.` or `..`: got \"..\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "session name with a NUL byte",
            "create_local_notebook_session((), #{ name: \"a\\x00b\" });",
            "main.rhai:1:1",
            "notebook session options: `name` contains a NUL byte: got \"a\\0b\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "agent name with a slash",
            "run_agent(#{ user_message: \"p\", mcp_config: #{}, name: \"../x\" });",
            "main.rhai:1:1",
            "run_agent: `name` contains `/` (a name, not a path): got \"../x\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "empty agent name",
            "run_agent(#{ user_message: \"p\", mcp_config: #{}, name: \"\" });",
            "main.rhai:1:1",
            "run_agent: `name` is empty: got \"\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        case(
            "interactive agent with an absolute name",
            "run_agent_interactive(#{ mcp_config: #{}, name: \"/etc/x\" });",
            "main.rhai:1:1",
            "run_agent_interactive: `name` contains `/` (a name, not a path): got \"/etc/x\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        Case {
            name: "served interface named with a path",
            script: "let s = ScopedSandbox().start();\ns.serve(\"iface.py\", #{ name: \"a/b\" });",
            files: &[("iface.py", "def f(): pass\nexpose(f)\n")],
            at: "main.rhai:2:3",
            msg: "serve: `name` contains `/` (a name, not a path): got \"a/b\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
            vars: &[],
        },
        // NUL bytes in the environment.
        case(
            "NUL byte in an env value",
            "let sb = Sandbox(#{ env: #{ MY_VAR: \"a\\x00b\" } }).start();",
            "main.rhai:1:10",
            "Sandbox config: field `env.MY_VAR`: the value contains a NUL byte, which an environment variable cannot hold",
        ),
        case(
            "NUL byte in an exec env value",
            "let sb = Sandbox().start();\nsb.exec(\"true\", #{ env: #{ A: \"\\x00\" } });",
            "main.rhai:2:4",
            "exec options: field `env.A`: an environment variable's name must be non-empty without `=` or NUL, and its value without NUL",
        ),
        case(
            "`=` in an exec env name",
            "let sb = Sandbox().start();\nsb.exec(\"true\", #{ env: #{ \"A=B\": \"x\" } });",
            "main.rhai:2:4",
            "exec options: field `env.A=B`: an environment variable's name must be non-empty without `=` or NUL, and its value without NUL",
        ),
        // Links planted in the workspace.
        case(
            "write_file through a planted link",
            "let sb = Sandbox().start();\nsb.exec(\"ln -s /etc/hostname report.md\");\nsb.write_file(\"report.md\", \"x\");",
            "main.rhai:3:4",
            "write_file: writing `report.md` in the sandbox: `report.md` is a symbolic link to `/etc/hostname`, which leads out of the sandbox workspace; seer does not follow links out of the workspace",
        ),
        case(
            "read_file through a planted folder link",
            "let sb = Sandbox().start();\nsb.exec(\"ln -s /etc etc\");\nsb.read_file(\"etc/hostname\");",
            "main.rhai:3:4",
            "read_file: reading `etc/hostname` in the sandbox: `etc` is a symbolic link to `/etc`, which leads out of the sandbox workspace; seer does not follow links out of the workspace",
        ),
        // A FIFO planted in the workspace: refused at once, never opened (a read would block).
        case(
            "read_file of a planted FIFO",
            "let sb = Sandbox().start();\nsb.exec(\"mkfifo pipe\");\nsb.read_file(\"pipe\");",
            "main.rhai:3:4",
            "read_file: reading `pipe` in the sandbox: it is a FIFO (named pipe), not a regular file; seer reads and writes only regular files",
        ),
        case(
            "write_file to a planted FIFO",
            "let sb = Sandbox().start();\nsb.exec(\"mkfifo pipe\");\nsb.write_file(\"pipe\", \"x\");",
            "main.rhai:3:4",
            "write_file: writing `pipe` in the sandbox: it is a FIFO (named pipe), not a regular file; seer reads and writes only regular files",
        ),
        // Skill constructors.
        case(
            "Skill with an unknown field",
            "let s = Skill(#{ name: \"s\", desc: \"d\" });",
            "main.rhai:1:9",
            "Skill: unknown field `desc`; did you mean `description`? (valid fields: `name`, `description`, `body`)",
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
            "Skill::from_text: skill: `../x` cannot be a skill name (it names the skill's folder); use letters, digits and `-`, e.g. `my-skill`",
        ),
        // Limits of runaway scripts.
        case(
            "runaway recursion",
            "fn f(n) { f(n + 1) }\nf(0);",
            "main.rhai:2:1",
            "more than 256 nested function calls; runaway recursion? (set SEER_MAX_CALL_LEVELS to raise the limit)",
        ),
        case_env(
            "string over the limit",
            &[("SEER_MAX_STRING_SIZE", "1000")],
            "let s = \"x\";\nloop { s += s; }",
            "main.rhai:2:10",
            "Length of string exceeds the script limit; a runaway loop? (set SEER_MAX_STRING_SIZE to raise it, 0 = unlimited)",
        ),
        case_env(
            "array over the limit",
            &[("SEER_MAX_ARRAY_SIZE", "100")],
            "let a = [1];\nloop { a += a; }",
            "main.rhai:2:10",
            "Size of array/BLOB exceeds the script limit; a runaway loop? (set SEER_MAX_ARRAY_SIZE to raise it, 0 = unlimited)",
        ),
        case_env(
            "map over the limit",
            &[("SEER_MAX_MAP_SIZE", "10")],
            "let m = #{};\nfor i in 0..100 { let n = #{}; n[`k${i}`] = i; m += n; }",
            "main.rhai:2:50",
            "Size of object map exceeds the script limit; a runaway loop? (set SEER_MAX_MAP_SIZE to raise it, 0 = unlimited)",
        ),
        case_env(
            "operations over the limit",
            &[("SEER_MAX_OPERATIONS", "1000")],
            "let n = 0;\nloop { n += 1; }",
            "main.rhai:2:13",
            "the script ran more operations than SEER_MAX_OPERATIONS allows; a runaway loop? (raise it, or 0 = unlimited)",
        ),
        case_env(
            "recursion over a lowered limit",
            &[("SEER_MAX_CALL_LEVELS", "5")],
            "fn f(n) { if n == 0 { 0 } else { f(n - 1) } }\nf(10);",
            "main.rhai:2:1",
            "more than 5 nested function calls; runaway recursion? (set SEER_MAX_CALL_LEVELS to raise the limit)",
        ),
    ]
}

/// `s` with each sandbox id (`sb-` and 12 hex digits) written `sb-<id>`.
fn sandbox_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("sb-") {
        let tail = &rest[i + 3..];
        let hex = tail
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        out.push_str(&rest[..i]);
        if hex == 12 {
            out.push_str("sb-<id>");
            rest = &tail[12..];
        } else {
            out.push_str("sb-");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
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
        let got = sandbox_ids(&env.normalise(&stderr));
        let want = format!("error: {}: {}\n", c.at, c.msg);
        if out.status.code() != Some(1) || got != want {
            failures.push(format!(
                "[{}] exit {:?}\n  want: {want:?}\n  got:  {got:?}\n  stdout: {stdout}",
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
    assert_eq!(
        failed(&out),
        "error: cannot read script nope.rhai: No such file or directory (os error 2)\n"
    );
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
