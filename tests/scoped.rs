//! ScopedSandbox: the RPC server's schema extraction (a table of signatures), its token
//! check, remote errors surfaced in Rhai, every `expose_as` form used by an agent against
//! the loopback Anthropic fake, and no process left behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::fake_anthropic::{FakeAnthropic, answer, call_turn, last_tool_results, tool_turn};
use common::{Env, error_line, failed, ok, pids_matching, text, wait_gone};
use serde_json::{Value, json};

const RPC_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scoped/rpc_server.py");

/// The function specs `rpc_server.py --describe` gives for an interface.
fn describe(source: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("iface.py");
    std::fs::write(&file, source).unwrap();
    let out = Command::new("python3")
        .arg(RPC_SERVER)
        .arg("--interface")
        .arg(&file)
        .arg("--describe")
        .output()
        .expect("python3");
    let (stdout, stderr) = text(&out);
    let stdout = stdout.replace(&*dir.path().to_string_lossy(), "<dir>");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

/// `text` with the folder of each scoped interface copy (in the sandbox's workspace)
/// written `<scoped>`: `File "<scoped>/0-iface/iface.py"`.
fn scoped_paths(text: &str) -> String {
    const MARK: &str = "/.seer/scoped/";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        let start = rest[..i].rfind('"').map_or(0, |q| q + 1);
        out.push_str(&rest[..start]);
        out.push_str("<scoped>/");
        rest = &rest[i + MARK.len()..];
    }
    out.push_str(rest);
    out
}

/// The frames of a Python traceback from the first one in `file` on, to the end.
fn frames_from<'a>(text: &'a str, file: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("  File ") && l.contains(file))
        .unwrap_or_else(|| panic!("no frame in {file}:\n{text}"));
    lines[first..].to_vec()
}

#[test]
fn schemas_come_from_type_hints_defaults_and_docstrings() {
    // (signature and docstring, expected parameter schema)
    let table: Vec<(&str, Value)> = vec![
        (
            "def f(a: int, b: float, c: str, d: bool): pass",
            json!({"a": {"type": "integer"}, "b": {"type": "number"}, "c": {"type": "string"},
                   "d": {"type": "boolean"}}),
        ),
        (
            "def f(xs: list[int], m: dict, n: dict[str, float], t: tuple[int, str]): pass",
            json!({"xs": {"type": "array", "items": {"type": "integer"}},
                   "m": {"type": "object"},
                   "n": {"type": "object", "additionalProperties": {"type": "number"}},
                   "t": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                         "minItems": 2, "maxItems": 2}}),
        ),
        (
            "from typing import Optional, Literal, List\n\
             def f(a: Optional[int] = None, b: Literal['x', 'y'] = 'x', c: List[str] = ['q'], d=3): pass",
            json!({"a": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
                   "b": {"enum": ["x", "y"], "default": "x"},
                   "c": {"type": "array", "items": {"type": "string"}, "default": ["q"]},
                   "d": {"default": 3}}),
        ),
        (
            "def f(text: str, layer: int = -1) -> list[float]:\n    \
             \"\"\"Embeds a text.\n\n    Longer words.\n\n    Args:\n        text: The input\n            \
             text.\n        layer (int): Which layer.\n\n    Returns:\n        The vector.\n    \"\"\"",
            json!({"text": {"type": "string", "description": "The input text."},
                   "layer": {"type": "integer", "description": "Which layer.", "default": -1}}),
        ),
        (
            "def f(x: float, *, k: int = 2):\n    \"\"\"NumPy style.\n\n    Parameters\n    ----------\n    \
             x : float\n        The x.\n    k : int, optional\n        The k.\n    \"\"\"",
            json!({"x": {"type": "number", "description": "The x."},
                   "k": {"type": "integer", "description": "The k.", "default": 2}}),
        ),
        (
            "def f(a: 'int | None'):\n    \"\"\"Sphinx.\n\n    :param a: The a.\n    \"\"\"",
            json!({"a": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "The a."}}),
        ),
    ];
    for (src, want) in table {
        let got = describe(&format!("{src}\nexpose(f)\n"));
        let f = &got["functions"][0];
        assert_eq!(f["parameters"]["properties"], want, "{src}\n{got}");
        assert_eq!(f["parameters"]["additionalProperties"], false);
        let required: Vec<&str> = want
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.get("default").is_none())
            .map(|(k, _)| k.as_str())
            .collect();
        let mut got_required: Vec<&str> = f["parameters"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        got_required.sort();
        let mut required = required;
        required.sort();
        assert_eq!(got_required, required, "{src}");
    }
    // Summary, description and returns of the Google-style one.
    let got = describe(
        "def embed(text: str) -> list[float]:\n    \"\"\"Embeds a text.\n\n    More.\n\n    Args:\n        \
         text: The text.\n\n    Returns:\n        The vector.\n    \"\"\"\n    return []\nexpose(embed)\n",
    );
    let f = &got["functions"][0];
    assert_eq!(f["summary"], "Embeds a text.");
    assert_eq!(f["description"], "Embeds a text.\n\nMore.");
    assert_eq!(f["returns"], "The vector.");
    assert_eq!(f["signature"], "(text: str) -> list[float]");
    assert_eq!(
        f["returns_schema"],
        json!({"type": "array", "items": {"type": "number"}})
    );

    // What cannot be served is a clear error naming the function and the parameter.
    for (src, message) in [
        (
            "def f(*args): pass",
            "exposed function `f`: *args / **args parameters cannot be exposed; list the parameters by name",
        ),
        (
            "def f(a, /): pass",
            "exposed function `f`: positional-only parameter `a` cannot be exposed (arguments arrive by \
             name); remove the `/`",
        ),
        (
            "def f(a: set[object], b: bytes): pass",
            "exposed function `f`: parameter `b` has type bytes, which JSON cannot carry; use int, float, \
             str, bool, list[...], dict[str, ...], Optional[...] or Literal[...]",
        ),
        (
            "x = 1",
            "<dir>/iface.py exposes no function; mark the functions to serve with @expose",
        ),
    ] {
        let mut got = describe(&format!("{src}\nif 'f' in globals(): expose(f)\n"));
        let traceback = got["error"]
            .as_object_mut()
            .and_then(|e| e.remove("traceback"))
            .unwrap_or_else(|| panic!("{src}: {got}"));
        assert_eq!(
            got,
            json!({"error": {"kind": "load", "type": "ExposeError", "message": message}}),
            "{src}"
        );
        let traceback = traceback.as_str().unwrap();
        assert_eq!(
            traceback.lines().last(),
            Some(format!("ExposeError: {message}").as_str()),
            "{traceback}"
        );
    }
}

const INTERFACE: &str = r#"
"""A test interface."""
import os

LOADS = []
LOADS.append(os.getpid())  # module-level code: runs once

@expose
def add(a: int, b: int = 2) -> int:
    """Adds two integers.

    Args:
        a: The first one.
        b: The second one.
    """
    return a + b

@expose
def loads() -> int:
    """How many times the module-level code ran."""
    return len(LOADS)

@expose
def models() -> list:
    return list_configured_models()

@expose
def boom(word: str) -> str:
    """Raises."""
    return helper(word)

def helper(word):
    raise ValueError("no good: " + word)

@expose
def sees_token() -> bool:
    """Whether interface code can read the RPC token from its environment."""
    return "SEER_RPC_TOKEN" in os.environ

@expose
def opaque() -> dict:
    return {"x": [1, object()]}
"#;

/// Runs `script` with `iface_<tag>.py`; returns (success, stdout, stderr).
fn run_with_interface(env: &Env, tag: &str, script: &str) -> std::process::Output {
    env.write(&format!("iface_{tag}.py"), INTERFACE);
    env.run(script, &[])
}

#[test]
fn remote_errors_surface_in_rhai_with_type_message_and_traceback() {
    let env = Env::new();
    let out = run_with_interface(
        &env,
        "errs",
        r#"
let scoped = ScopedSandbox().start();
scoped.serve("iface_errs.py");
print(`sum=${scoped.rpc("add", #{ a: 40 })}`);
print(`sum2=${scoped.rpc("iface_errs.add", #{ a: 1, b: 1 })}`);
print(`models=${scoped.rpc("models")}`);
scoped.serve("iface_errs.py", #{ expose_as: "prompt" });   // the same server again
print(`loads=${scoped.rpc("loads")}`);
print(`sees_token=${scoped.rpc("sees_token")}`);
for c in [["boom", #{ word: "zebra" }], ["opaque", #{}], ["add", #{ a: "x" }], ["add", #{ c: 1 }], ["nope", #{}]] {
    try { scoped.rpc(c[0], c[1]); print("no error?"); } catch (e) { print(`ERR ${c[0]}: ${e}`); }
}
"#,
    );
    let stdout = scoped_paths(&ok(&out));
    // The remote exception: type, message, and the traceback through the helper.
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "sum=42",
            "sum2=2",
            "models=[]",
            "loads=1",
            "sees_token=false",
            "ERR boom: scoped function `boom` failed: ValueError: no good: zebra",
            "Remote traceback (in the scoped sandbox):",
            "Traceback (most recent call last):",
            "  File \"<scoped>/0-iface_errs/iface_errs.py\", line 30, in boom",
            "    return helper(word)",
            "           ^^^^^^^^^^^^",
            "  File \"<scoped>/0-iface_errs/iface_errs.py\", line 33, in helper",
            "    raise ValueError(\"no good: \" + word)",
            "ValueError: no good: zebra",
            "ERR opaque: scoped function `opaque` failed: TypeError: `opaque` returned a value that is not \
             JSON-serializable: result['x'][1] is of type object; return plain int, float, str, bool, None, \
             list or dict (e.g. tensor.tolist(), float(x))",
            "ERR add: scoped function `add` failed: TypeError: `add`: argument `a` must be an int, got str",
            "ERR add: scoped function `add` failed: TypeError: `add(a: int, b: int = 2) -> int` got \
             unexpected argument(s) c",
            "ERR nope: no served function `nope`; served: iface_errs.add, iface_errs.loads, \
             iface_errs.models, iface_errs.boom, iface_errs.sees_token, iface_errs.opaque",
        ]
    );
}

#[test]
fn an_interface_that_fails_to_load_is_an_error_with_its_traceback() {
    let env = Env::new();
    env.write(
        "broken_iface.py",
        "import os\n\ndef load():\n    raise RuntimeError('weights missing')\n\nload()\n",
    );
    let out = env.run(
        "let s = ScopedSandbox().start();\ns.serve(\"broken_iface.py\");\n",
        &[],
    );
    let stderr = scoped_paths(&env.normalise(&failed(&out)));
    assert_eq!(
        error_line(&stderr),
        "error: main.rhai:2:3: the interface <dir>/broken_iface.py failed to load: RuntimeError: \
         weights missing"
    );
    // The traceback, down through the interface's own frames.
    assert_eq!(
        frames_from(&stderr, "broken_iface.py"),
        [
            "  File \"<scoped>/0-broken_iface/broken_iface.py\", line 6, in <module>",
            "    load()",
            "  File \"<scoped>/0-broken_iface/broken_iface.py\", line 4, in load",
            "    raise RuntimeError('weights missing')",
            "RuntimeError: weights missing",
        ]
    );
    assert!(pids_matching("broken_iface.py").is_empty());
}

/// One HTTP/1.1 request; returns (status, body).
fn http(url: &str, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let hostport = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut s = TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn requests_without_the_token_are_rejected_and_ctrl_c_ends_the_server() {
    let env = Env::new();
    env.write("iface_auth.py", INTERFACE);
    let mut seer = env.spawn(
        r#"
let scoped = ScopedSandbox().start();
let lib = scoped.serve("iface_auth.py", #{ name: "auth_tools" });
let mcp = scoped.serve("iface_auth.py", #{ expose_as: "mcp", name: "auth_tools" });
print(to_json(#{ code: lib.source.code, mcp: mcp.auth_tools.url }));
sleep(300);
"#,
    );
    let line = seer.next_line(120);
    let got: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    let code = got["code"].as_str().unwrap();
    let grab = |var: &str| -> String {
        let l = code.lines().find(|l| l.starts_with(var)).unwrap();
        l.split('\'').nth(1).unwrap().to_string()
    };
    let (url, token) = (grab("_URL = "), grab("_TOKEN = "));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(token.len(), 64);
    assert_eq!(pids_matching("iface_auth.py").len(), 1);

    let call = r#"{"function": "add", "args": {"a": 1}}"#;
    let rejected = |kind: &str, message: &str| {
        let mut ty = kind.to_string();
        ty[..1].make_ascii_uppercase();
        json!({"error": {"kind": kind, "type": ty, "message": message, "traceback": ""}})
    };
    let as_json = |(status, body): (u16, String)| -> (u16, Value) {
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, v)
    };
    let missing = rejected(
        "unauthorized",
        "missing bearer token: send `Authorization: Bearer <token>`",
    );
    assert_eq!(
        as_json(http(&url, "POST", "/call", None, call)),
        (401, missing.clone())
    );
    assert_eq!(
        as_json(http(&url, "POST", "/call", Some("Bearer nottheone"), call)),
        (403, rejected("forbidden", "invalid token"))
    );
    assert_eq!(
        as_json(http(&url, "GET", "/functions", None, "")),
        (401, missing)
    );
    let (status, body) = http(
        &url,
        "POST",
        "/call",
        Some(&format!("Bearer {token}")),
        call,
    );
    assert_eq!((status, body.trim()), (200, r#"{"result": 3}"#));

    // The MCP endpoint wants its own bearer token too.
    let mcp = got["mcp"].as_str().unwrap();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, _) = http(mcp, "POST", "/mcp", None, init);
    assert_eq!(status, 401);
    let (status, _) = http(mcp, "POST", "/mcp", Some(&format!("Bearer {token}")), init);
    assert_eq!(status, 401, "the RPC token must not open the MCP server");

    // Ctrl-C: the run ends and takes the RPC server with it.
    seer.ctrl_c();
    wait_gone("iface_auth.py", Duration::from_secs(5));
    assert!(
        TcpStream::connect(url.trim_start_matches("http://")).is_err(),
        "the RPC port still accepts connections"
    );
}

#[test]
fn terminate_and_script_errors_end_the_rpc_server() {
    let env = Env::new();
    let out = run_with_interface(
        &env,
        "term",
        r#"
let a = ScopedSandbox().start();
a.serve("iface_term.py");
a.terminate();
print(`running=${a.is_running}`);
try { a.rpc("add", #{ a: 1 }); } catch (e) { print(`after: ${e}`); }
let b = ScopedSandbox().start();
b.serve("iface_term.py", #{ name: "second" });
throw "the script failed";
"#,
    );
    assert_eq!(failed(&out), "error: main.rhai:9:1: the script failed\n");
    assert_eq!(
        text(&out).0,
        "running=false\nafter: this ScopedSandbox has been terminated (`scoped.terminate()`); start a new one to serve or call functions\n"
    );
    // On ssh and Slurm the host's agent ends it once the connection closes, just after.
    common::wait_gone("iface_term.py", std::time::Duration::from_secs(5));
}

#[test]
fn each_expose_as_form_reaches_an_agent() {
    let fake = FakeAnthropic::start(vec![
        // library: the agent imports the client in its notebook.
        call_turn(
            "t1",
            "notebooks__execute_code",
            json!({"code": "import agent_tools\nprint('sum', agent_tools.add(2, 3))\nhelp(agent_tools.add)\ntry:\n    agent_tools.boom('owl')\nexcept agent_tools.RemoteError as e:\n    print('remote:', e)"}),
        ),
        answer("done"),
        // mcp: the agent calls the tool directly.
        tool_turn(
            "",
            &[
                ("t2", "agent_tools__add", json!({"a": 20, "b": 22})),
                ("t3", "agent_tools__boom", json!({"word": "cat"})),
            ],
            10,
            5,
        ),
        answer("done"),
        // prompt: only the text.
        answer("done"),
        // skill: the client next to SKILL.md, imported from the skill folder.
        call_turn(
            "t4",
            "notebooks__execute_code",
            json!({"code": "import sys, os\nd = os.path.join('.claude', 'skills', 'agent-skill')\nprint(sorted(os.listdir(d)))\nsys.path.insert(0, d)\nimport agent_skill\nprint('skill', agent_skill.add(5))"}),
        ),
        answer("done"),
    ]);
    let env = Env::new();
    env.write("iface_agent.py", INTERFACE);
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let scoped = ScopedSandbox().start();
let lib = scoped.serve("iface_agent.py", #{ expose_as: "library", name: "agent_tools" });
let nb = create_local_notebook_session(Workspace(#{ libraries: [lib] }), #{ name: "lib" });
run_agent(#{ user_message: "use the library", mcp_config: nb.mcp_config, base_url: ARGS[0], max_turns: 3 });

let mcp = scoped.serve("iface_agent.py", #{ expose_as: "mcp", name: "agent_tools" });
run_agent(#{ user_message: "use the tools", mcp_config: mcp, base_url: ARGS[0], max_turns: 3 });

let md = scoped.serve("iface_agent.py", #{ expose_as: "prompt", name: "agent_tools" });
run_agent(#{ user_message: "Functions you can use:\n" + md, tools: "none", base_url: ARGS[0], max_turns: 3 });

let skill = scoped.serve("iface_agent.py", #{ expose_as: "skill", name: "agent-skill" });
let nb2 = create_local_notebook_session(Workspace(#{ skills: [skill] }), #{ name: "skill" });
run_agent(#{ user_message: "use the skill", mcp_config: nb2.mcp_config, base_url: ARGS[0], max_turns: 3 });
print(`functions=${scoped.functions.len()}`);
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // One server for the four forms.
    assert_eq!(stdout, "functions=6\n");
    let seen = fake.requests();
    assert_eq!(seen.len(), 7);
    // The text blocks of the last message's tool results, interface paths normalised.
    let tool_result = |i: usize| -> Vec<Value> {
        let text = scoped_paths(&last_tool_results(&seen[i].1).unwrap_or_default());
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let text = |t: &str| json!([{"type": "text", "text": t}]);
    let boom_traceback = |word: &str| {
        format!(
            "Remote traceback (in the scoped sandbox):\n\
             Traceback (most recent call last):\n  \
             File \"<scoped>/0-agent_tools/iface_agent.py\", line 30, in boom\n    \
             return helper(word)\n           ^^^^^^^^^^^^\n  \
             File \"<scoped>/0-agent_tools/iface_agent.py\", line 33, in helper\n    \
             raise ValueError(\"no good: \" + word)\nValueError: no good: {word}"
        )
    };

    // library: the call, the client's help text, the remote error with its traceback.
    assert_eq!(
        tool_result(1),
        [text(&format!(
            "[cell 0, execution_count 1]\nsum 5\nHelp on function add in module agent_tools:\n\n\
             add(a: 'int', b: 'int' = 2) -> 'int'\n    Adds two integers.\n    \n    Args:\n        \
             a: The first one.\n        b: The second one.\n\nremote: boom: ValueError: no good: owl\n\n{}",
            boom_traceback("owl")
        ))]
    );

    // mcp: the tools with their schemas, then the results (the failed one an error).
    let no_args =
        json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false});
    assert_eq!(
        seen[2].1["tools"],
        json!([
            {"name": "agent_tools__add", "description": "Adds two integers.",
             "input_schema": {"type": "object", "additionalProperties": false, "required": ["a"],
                              "properties": {"a": {"type": "integer", "description": "The first one."},
                                             "b": {"type": "integer", "description": "The second one.", "default": 2}}}},
            {"name": "agent_tools__loads", "description": "How many times the module-level code ran.",
             "input_schema": no_args},
            {"name": "agent_tools__models", "description": "models() -> list", "input_schema": no_args},
            {"name": "agent_tools__boom", "description": "Raises.",
             "input_schema": {"type": "object", "additionalProperties": false, "required": ["word"],
                              "properties": {"word": {"type": "string"}}}},
            {"name": "agent_tools__sees_token",
             "description": "Whether interface code can read the RPC token from its environment.",
             "input_schema": no_args},
            {"name": "agent_tools__opaque", "description": "opaque() -> dict", "input_schema": no_args,
             "cache_control": {"type": "ephemeral"}},
        ])
    );
    let last = seen[3].1["messages"].as_array().unwrap().last().unwrap();
    let last: Value = serde_json::from_str(&scoped_paths(&last.to_string())).unwrap();
    assert_eq!(
        last,
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t2", "is_error": false, "content": text("42")},
            {"type": "tool_result", "tool_use_id": "t3", "is_error": true, "content": text(&format!(
                "scoped function `boom` failed: ValueError: no good: cat\n{}", boom_traceback("cat"))),
             "cache_control": {"type": "ephemeral"}},
        ]})
    );

    // prompt: every function with its signature, summary and parameters (a prompt-cache
    // breakpoint on the end of the history).
    let marked =
        |t: &str| json!([{"type": "text", "text": t, "cache_control": {"type": "ephemeral"}}]);
    assert_eq!(
        seen[4].1["messages"],
        json!([{"role": "user", "content": marked(
            "Functions you can use:\n## `agent_tools`: functions served from a scoped sandbox\n\n\
             ### `add(a: int, b: int = 2) -> int`\n\nAdds two integers.\n\nParameters:\n\
             - `a` (integer): The first one.\n- `b` (integer): The second one. (default: `2`)\n\n\
             ### `loads() -> int`\n\nHow many times the module-level code ran.\n\n\
             ### `models() -> list`\n\n\
             ### `boom(word: str) -> str`\n\nRaises.\n\nParameters:\n- `word` (string)\n\n\
             ### `sees_token() -> bool`\n\nWhether interface code can read the RPC token from its environment.\n\n\
             ### `opaque() -> dict`\n\n")}])
    );

    // skill
    assert_eq!(
        tool_result(6),
        [text(
            "[cell 0, execution_count 1]\n['SKILL.md', 'agent_skill.py']\nskill 7"
        )]
    );
    assert!(pids_matching("iface_agent.py").is_empty());
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(
    remote_errors_surface_in_rhai_with_type_message_and_traceback,
    an_interface_that_fails_to_load_is_an_error_with_its_traceback,
    requests_without_the_token_are_rejected_and_ctrl_c_ends_the_server,
    terminate_and_script_errors_end_the_rpc_server,
    each_expose_as_form_reaches_an_agent,
);
