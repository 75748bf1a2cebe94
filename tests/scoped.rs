//! ScopedSandbox: the RPC server's schema extraction (a table of signatures), its token
//! check, remote errors surfaced in Rhai, every `expose_as` form used by an agent against
//! the loopback Anthropic fake, and no process left behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_anthropic::{FakeAnthropic, text_turn, tool_turn};
use common::{Env, ok, pids_matching, text};
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
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
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
    for (src, want) in [
        ("def f(*args): pass", "*args"),
        ("def f(a, /): pass", "positional-only parameter `a`"),
        (
            "def f(a: set[object], b: bytes): pass",
            "parameter `b` has type bytes",
        ),
        ("x = 1", "exposes no function"),
    ] {
        let got = describe(&format!("{src}\nif 'f' in globals(): expose(f)\n"));
        let msg = got["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{src}: {got}");
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
    let stdout = ok(&out);
    assert!(
        stdout.contains("sum=42\n") && stdout.contains("sum2=2\n"),
        "{stdout}"
    );
    assert!(stdout.contains("models=[]\n"), "{stdout}");
    assert!(stdout.contains("loads=1\n"), "{stdout}");
    assert!(stdout.contains("sees_token=false\n"), "{stdout}");
    // The remote exception: type, message, and the traceback through the helper.
    assert!(
        stdout.contains("ERR boom: scoped function `boom` failed: ValueError: no good: zebra")
            && stdout.contains("Remote traceback (in the scoped sandbox):")
            && stdout.contains("in helper")
            && stdout.contains("raise ValueError(\"no good: \" + word)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`opaque` returned a value that is not JSON-serializable: result['x'][1] is of type object"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ERR add: scoped function `add` failed: TypeError: `add`: argument `a` must be an int, got str"),
        "{stdout}"
    );
    assert!(stdout.contains("got unexpected argument(s) c"), "{stdout}");
    assert!(
        stdout.contains("no served function `nope`; served: iface_errs.add"),
        "{stdout}"
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
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("main.rhai:2:")
            && stderr.contains("failed to load: RuntimeError: weights missing")
            && stderr.contains("in load"),
        "{stderr}"
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
    env.write(
        "main.rhai",
        r#"
let scoped = ScopedSandbox().start();
let lib = scoped.serve("iface_auth.py", #{ name: "auth_tools" });
let mcp = scoped.serve("iface_auth.py", #{ expose_as: "mcp", name: "auth_tools" });
print(to_json(#{ code: lib.source.code, mcp: mcp.auth_tools.url }));
sleep(300);
"#,
    );
    let mut child = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let got: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    let code = got["code"].as_str().unwrap();
    let grab = |var: &str| -> String {
        let l = code.lines().find(|l| l.starts_with(var)).unwrap();
        l.split('\'').nth(1).unwrap().to_string()
    };
    let (url, token) = (grab("_URL = "), grab("_TOKEN = "));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(token.len(), 64);
    assert!(pids_matching("iface_auth.py").len() == 1);

    let call = r#"{"function": "add", "args": {"a": 1}}"#;
    let (status, body) = http(&url, "POST", "/call", None, call);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing bearer token"), "{body}");
    let (status, body) = http(&url, "POST", "/call", Some("Bearer nottheone"), call);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("invalid token"), "{body}");
    let (status, _) = http(&url, "GET", "/functions", None, "");
    assert_eq!(status, 401);
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
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let t = Instant::now();
    while !pids_matching("iface_auth.py").is_empty() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(pids_matching("iface_auth.py").is_empty());
    let (status, _) = (
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err(),
        0,
    );
    assert!(status, "the RPC port still accepts connections");
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
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("the script failed"), "{stderr}");
    assert!(stdout.contains("running=false"), "{stdout}");
    assert!(stdout.contains("after: "), "{stdout}");
    assert!(pids_matching("iface_term.py").is_empty());
}

#[test]
fn each_expose_as_form_reaches_an_agent() {
    let fake = FakeAnthropic::start(vec![
        // library: the agent imports the client in its notebook.
        tool_turn(
            "",
            &[(
                "t1",
                "notebooks__execute_code",
                json!({"code": "import agent_tools\nprint('sum', agent_tools.add(2, 3))\nhelp(agent_tools.add)\ntry:\n    agent_tools.boom('owl')\nexcept agent_tools.RemoteError as e:\n    print('remote:', e)"}),
            )],
            10,
            5,
        ),
        text_turn("done", 10, 5),
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
        text_turn("done", 10, 5),
        // prompt: only the text.
        text_turn("done", 10, 5),
        // skill: the client next to SKILL.md, imported from the skill folder.
        tool_turn(
            "",
            &[(
                "t4",
                "notebooks__execute_code",
                json!({"code": "import sys, os\nd = os.path.join('.claude', 'skills', 'agent-skill')\nprint(sorted(os.listdir(d)))\nsys.path.insert(0, d)\nimport agent_skill\nprint('skill', agent_skill.add(5))"}),
            )],
            10,
            5,
        ),
        text_turn("done", 10, 5),
    ]);
    let env = Env::new();
    env.write("iface_agent.py", INTERFACE);
    env.write(
        "main.rhai",
        r#"
let scoped = ScopedSandbox().start();
let lib = scoped.serve("iface_agent.py", #{ expose_as: "library", name: "agent_tools" });
let nb = create_local_notebook_session(Workspace(#{ libraries: [lib] }), #{ name: "lib" });
run_agent(#{ prompt: "use the library", mcp_config: nb.mcp_config, base_url: ARGS[0], max_turns: 3 });

let mcp = scoped.serve("iface_agent.py", #{ expose_as: "mcp", name: "agent_tools" });
run_agent(#{ prompt: "use the tools", mcp_config: mcp, base_url: ARGS[0], max_turns: 3 });

let md = scoped.serve("iface_agent.py", #{ expose_as: "prompt", name: "agent_tools" });
run_agent(#{ prompt: "Functions you can use:\n" + md, base_url: ARGS[0], max_turns: 3 });

let skill = scoped.serve("iface_agent.py", #{ expose_as: "skill", name: "agent-skill" });
let nb2 = create_local_notebook_session(Workspace(#{ skills: [skill] }), #{ name: "skill" });
run_agent(#{ prompt: "use the skill", mcp_config: nb2.mcp_config, base_url: ARGS[0], max_turns: 3 });
print(`functions=${scoped.functions.len()}`);
"#,
    );
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", "sk-test")
        .args(["run", "main.rhai", "--", &fake.url])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // One server for the four forms.
    assert!(stdout.contains("functions=6"), "{stdout}");
    let seen = fake.requests();
    assert_eq!(seen.len(), 7);
    let tool_result = |i: usize| -> String {
        common::fake_anthropic::last_tool_results(&seen[i].1).unwrap_or_default()
    };

    // library
    let r = tool_result(1);
    assert!(r.contains("sum 5"), "{r}");
    assert!(
        r.contains("Adds two integers.") && r.contains("add(a: 'int', b: 'int' = 2)"),
        "{r}"
    );
    assert!(
        r.contains("remote: boom: ValueError: no good: owl")
            && r.contains("Remote traceback (in the scoped sandbox)"),
        "{r}"
    );

    // mcp: the tools with their schemas, then the results.
    let tools = seen[2].1["tools"].as_array().unwrap();
    let add = tools
        .iter()
        .find(|t| t["name"] == "agent_tools__add")
        .unwrap_or_else(|| panic!("{tools:?}"));
    assert_eq!(
        add["input_schema"]["properties"]["a"],
        json!({"type": "integer", "description": "The first one."})
    );
    assert!(
        add["description"]
            .as_str()
            .unwrap()
            .starts_with("Adds two integers.")
    );
    let r = tool_result(3);
    assert!(r.contains("42"), "{r}");
    assert!(
        r.contains("ValueError: no good: cat") && r.contains("in helper"),
        "{r}"
    );
    let last = seen[3].1["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let errors: Vec<bool> = last["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["is_error"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(errors, vec![false, true], "{last}");

    // prompt
    let prompt = seen[4].1["messages"][0].to_string();
    assert!(
        prompt.contains("### `add(a: int, b: int = 2) -> int`")
            && prompt.contains("`a` (integer): The first one."),
        "{prompt}"
    );

    // skill
    let r = tool_result(6);
    assert!(
        r.contains("['SKILL.md', 'agent_skill.py']") && r.contains("skill 7"),
        "{r}"
    );
    assert!(pids_matching("iface_agent.py").is_empty());
}
