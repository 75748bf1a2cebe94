//! Seer's names and behaviours that a translated experiment relies on (the issue "A Seer
//! experiment translates line by line"): each test is one difference a Seer user hit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::fake_anthropic::{FakeAnthropic, answer};
use common::{Env, ok};

/// The stdout of a run, whatever its exit code.
fn ok_stdout(out: &std::process::Output) -> String {
    common::text(out).0
}
use serde_json::json;

/// Seer ends a notebook session with `terminate()`; seer's `shutdown()` is the same call.
#[test]
fn a_notebook_session_terminates_under_seers_name() {
    let env = Env::new();
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, ());
print(s.exec("6 * 7").text);
s.terminate();
print("terminated");
sb.terminate();
"#,
        &[],
    );
    assert_eq!(ok(&out), "42\n\nterminated\n");
}

/// `scoped.rpc` after `scoped.terminate()` says the sandbox is terminated, not that no
/// function is served.
#[test]
fn rpc_after_terminate_names_the_termination() {
    let env = Env::new();
    env.write(
        "iface.py",
        "@expose\ndef ok_fn() -> int:\n    \"\"\"One.\"\"\"\n    return 1\n",
    );
    let out = env.run(
        r#"
let scoped = ScopedSandbox().start();
scoped.serve("iface.py", #{ expose_as: "library" });
print(scoped.rpc("ok_fn"));
scoped.terminate();
try { scoped.rpc("ok_fn"); } catch (e) { print(e); }
try { scoped.serve("iface.py", #{ expose_as: "library" }); } catch (e) { print(e); }
"#,
        &[],
    );
    let msg = "this ScopedSandbox has been terminated (`scoped.terminate()`); start a new one to serve or call functions";
    assert_eq!(ok(&out), format!("1\n{msg}\n{msg}\n"));
}

/// Seer's local session passes an empty `mcp_config`; an agent without tools is an error
/// unless the script says `tools: "none"`, never a green run where every call fails.
#[test]
fn an_agent_without_tools_is_an_error_unless_asked_for() {
    let fake = FakeAnthropic::start(vec![answer("fine")]);
    let env = Env::new();
    let fix = "give a session's `mcp_config`, or `tools: \"none\"` for an agent without tools on purpose (a judge)";
    for (code, want) in [
        (
            r#"run_agent(#{ prompt: "p", mcp_config: #{}, base_url: ARGS[0] });"#,
            format!("error: main.rhai:1:1: run_agent: the agent would have no tools: `mcp_config` is empty; {fix}\n"),
        ),
        (
            r#"run_agent(#{ prompt: "p", base_url: ARGS[0] });"#,
            format!("error: main.rhai:1:1: run_agent: the agent would have no tools: `mcp_config` is missing; {fix}\n"),
        ),
        (
            r#"run_agent(#{ prompt: "p", tools: "all", base_url: ARGS[0] });"#,
            "error: main.rhai:1:1: run_agent: `tools` must be \"none\" (an agent without tools on purpose), not \"all\"; tools come from `mcp_config`\n".to_string(),
        ),
        (
            r#"run_agent(#{ prompt: "p", tools: "none", mcp_config: #{ a: #{ type: "http", url: "http://127.0.0.1:9/mcp" } }, base_url: ARGS[0] });"#,
            "error: main.rhai:1:1: run_agent: `tools: \"none\"` but `mcp_config` names 1 server(s); drop one of them\n".to_string(),
        ),
        (
            r#"run_agent(#{ prompt: "a", system_prompt: "b", tools: "none", base_url: ARGS[0] });"#,
            "error: main.rhai:1:1: run_agent: give `prompt` or `system_prompt`, not both: they are the same thing, the system prompt (as in Seer)\n".to_string(),
        ),
    ] {
        let (out, _, stderr) = env.run_agent_script(code, &fake.url);
        assert_eq!((out.status.code(), stderr.as_str()), (Some(1), want.as_str()), "{code}");
    }
    assert!(fake.requests().is_empty());
    let (out, stdout, stderr) = env.run_agent_script(
        r#"print(run_agent(#{ prompt: "Judge.", tools: "none", base_url: ARGS[0], live_log: false }).final_text);"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "fine\n");
    assert_eq!(fake.requests()[0].1.get("tools"), None);
}

/// As in Seer, `prompt` is the system prompt and `user_message` the first user message;
/// without one the agent gets seer's default opening message.
#[test]
fn prompt_is_the_system_prompt_and_user_message_the_task() {
    let fake = FakeAnthropic::start(vec![answer("a"), answer("b")]);
    let env = Env::new();
    let (out, _, stderr) = env.run_agent_script(
        r#"
run_agent(#{ prompt: "You judge.", user_message: "Score this.", tools: "none", base_url: ARGS[0], live_log: false });
run_agent(#{ prompt: "Find the bug.", tools: "none", base_url: ARGS[0], live_log: false });
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}");
    let seen = fake.requests();
    // With prompt-cache breakpoints on the system prompt and the end of the history.
    let cc = json!({"type": "ephemeral"});
    let body = |system: &str, user: &str| {
        json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 8192, "stream": true,
               "system": [{"type": "text", "text": system, "cache_control": cc}],
               "messages": [{"role": "user", "content": [{"type": "text", "text": user, "cache_control": cc}]}]})
    };
    assert_eq!(seen[0].1, body("You judge.", "Score this."));
    assert_eq!(
        seen[1].1,
        body(
            "Find the bug.",
            "Begin. Follow the instructions in the system prompt, and end with a summary of what you found."
        )
    );
}

/// Seer's `session.exec` raises on a Python error; so does seer's (`raise: false` returns
/// the failed cell's result instead).
#[test]
fn a_failed_cell_raises_as_in_seer_unless_raise_is_false() {
    let env = Env::new();
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, ());
try { s.exec("1/0"); print("not raised"); } catch (e) { print(e); }
let r = s.exec("undefined_name", #{ raise: false });
print(to_json(#{ status: r.status, ok: r.ok }));
s.exec("raise ValueError('bad input')");
"#,
        &[],
    );
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stdout,
        "cell failed (error)\n\
         ---------------------------------------------------------------------------\n\
         ZeroDivisionError                         Traceback (most recent call last)\n\
         Cell In[1], line 1\n----> 1 1/0\n\nZeroDivisionError: division by zero\n\
         {\"ok\":false,\"status\":\"error\"}\n"
    );
    assert_eq!(
        stderr,
        "error: main.rhai:7:3: cell failed (error)\n\
         ---------------------------------------------------------------------------\n\
         ValueError                                Traceback (most recent call last)\n\
         Cell In[3], line 1\n----> 1 raise ValueError('bad input')\n\nValueError: bad input\n"
    );
}

/// A Seer f-string translated into a backtick template keeps `\n` as two characters (Rhai's
/// rule); `seer check` and `seer run` warn where.
#[test]
fn a_backslash_n_in_a_backtick_string_is_warned_about() {
    let env = Env::new();
    env.write(
        "main.rhai",
        "let task = \"x\";\nlet p = `Task: ${task}\\n\\nGo.`;\nprint(p.len());\n",
    );
    let warn = |col: usize| {
        format!(
            "warning: main.rhai:2:{col}: `\\n` in a backtick string stays a backslash and a letter: \
             Rhai's backtick strings have no escapes (unlike Python's f-strings); for a line break \
             write a real one inside the backticks, or use a \"...\" string, where `\\n` is an escape\n"
        )
    };
    let want_err = format!("{}{}", warn(23), warn(25));
    let check = env.cmd().args(["check", "main.rhai"]).output().unwrap();
    assert_eq!(
        common::text(&check),
        ("main.rhai: ok\n".to_string(), want_err.clone())
    );
    assert!(check.status.success());
    let run = env.cmd().args(["run", "main.rhai"]).output().unwrap();
    assert_eq!(common::text(&run), ("14\n".to_string(), want_err));
}

/// Rhai's "Function not found" / "Unknown property" on seer's types, and Seer's dotted
/// class names, get a seer error with the closest name or the seer spelling.
#[test]
fn unknown_names_get_the_closest_and_the_seer_spelling() {
    let env = Env::new();
    for (code, want) in [
        (
            "let ws = Workspace(#{});\nws.get_libary_docs();",
            "error: main.rhai:2:4: `Workspace` has no method `get_libary_docs`; did you mean \
             `get_library_docs`? (its methods and properties: get_library_docs, libraries, \
             library_docs; see `seer docs`)\n",
        ),
        (
            "let ws = Workspace(#{});\nprint(ws.librarie);",
            "error: main.rhai:2:10: `Workspace` has no property `librarie`; did you mean \
             `libraries`? (its methods and properties: get_library_docs, libraries, \
             library_docs; see `seer docs`)\n",
        ),
        (
            "let lib = Library.from_file(\"x.py\");",
            "error: main.rhai:1:11: Variable not found: Library: Seer's `Library.from_file(...)` \
             is `Library::from_file(...)` in Rhai (also `from_code`, `from_directory`, \
             `from_skill_dir`, `toolkit`)\n",
        ),
        (
            "let ws = Workspace(#{});\nws.get_library_docs(1);",
            "error: main.rhai:2:4: `Workspace.get_library_docs` does not take (int); call it as \
             ws.get_library_docs() -> string\n",
        ),
        // A caught error thrown again keeps its message and first position.
        (
            "let ws = Workspace(#{});\ntry {\n  ws.nope();\n} catch (e) {\n  throw e;\n}",
            "error: main.rhai:3:6: `Workspace` has no method `nope` (its methods and properties: \
             get_library_docs, libraries, library_docs; see `seer docs`)\n",
        ),
    ] {
        let out = env.run(code, &[]);
        assert_eq!(common::failed(&out), want, "{code}");
    }
}

/// Seer's `ScopedSandbox.exec` and `.write_file` work on the scoped sandbox itself; a
/// sandbox call it does not forward points at `scoped.sandbox`.
#[test]
fn a_scoped_sandbox_has_seers_exec_and_write_file() {
    let env = Env::new();
    let out = env.run(
        r#"
let scoped = ScopedSandbox().start();
scoped.write_file("notes/a.txt", "hello");
print(scoped.exec("cat notes/a.txt"));
print(scoped.read_file("notes/a.txt"));
print(scoped.exec("echo $X", #{ env: #{ X: "y" } }));
print(scoped.exec_python("print(6 * 7)"));
scoped.snapshot();
"#,
        &[],
    );
    assert_eq!(ok_stdout(&out), "hello\nhello\ny\n\n42\n\n");
    assert_eq!(
        common::failed(&out),
        "error: main.rhai:8:8: `ScopedSandbox` has no method `snapshot`: the sandbox's own calls \
         are on `scoped.sandbox` (`scoped.sandbox.snapshot(...)`)\n"
    );
}

/// Seer's `create_local_notebook_session` arguments: `name`, the notebook folder
/// (`notebook_dir`, or `output_dir`), and the kernel's `secrets` and `env`, so a library
/// reading an API key from the environment works.
#[test]
fn a_local_notebook_session_takes_secrets_env_and_a_notebook_dir() {
    let env = Env::new();
    let out = env
        .cmd()
        .env("MY_API_TOKEN", "tok-0123456789")
        .args(["run", &env.write("main.rhai", r#"
let s = create_local_notebook_session((), #{ name: "probe", notebook_dir: "nbs",
                                              secrets: ["MY_API_TOKEN"], env: #{ MODE: "fast" } });
print(s.exec("import os; print(os.environ['MY_API_TOKEN'] == 'tok-0123456789', os.environ['MODE'])").text);
print(s.notebook_path);
try { create_local_notebook_session((), #{ port: 8888 }); } catch (e) { print(e); }
"#).to_string_lossy()])
        .output()
        .unwrap();
    let nb = env.path().join("nbs/probe.ipynb");
    assert_eq!(
        ok(&out),
        format!(
            "True fast\n\n{}\nnot supported yet: `port` in notebook session options: seer runs no \
             Jupyter server (it talks to the kernel directly); drop it (see the README's list of \
             what works)\n",
            nb.display()
        )
    );
    assert!(nb.is_file());
}

/// `provider: "gemini"` (Seer has one) speaks Gemini's own API: the tool call runs in a
/// real kernel and its result goes back as a `functionResponse`; `kwargs` become the
/// request's generation config.
#[test]
fn a_gemini_agent_drives_a_notebook() {
    use common::fake_anthropic::Reply;
    use common::fake_gemini::{call_turn, text_turn};
    let fake = FakeAnthropic::respond(|n, _| {
        Reply::Sse(if n == 0 {
            call_turn(
                "Computing.",
                "call-1",
                "notebooks__execute_code",
                json!({"code": "6 * 7"}),
            )
        } else {
            text_turn("It is 42.")
        })
    });
    let env = Env::new();
    env.write(".env", "GEMINI_API_KEY=gm-test-key-0123456789\n");
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, ());
let r = run_agent(#{ provider: "gemini", prompt: "You compute.", user_message: "6 * 7?",
                     mcp_config: s.mcp_config, base_url: ARGS[0], live_log: false,
                     kwargs: #{ temperature: 0.2, thinking_budget: 512 } });
print(to_json(#{ final: r.final_text, model: r.model, usage: r.usage.input_tokens }));
try { run_agent(#{ provider: "gemini", prompt: "p", tools: "none", kwargs: #{ temprature: 1 } }); } catch (e) { print(e); }
try { run_agent(#{ provider: "openai", prompt: "p", tools: "none", kwargs: #{ top_k: 3 } }); } catch (e) { print(e); }
"#,
    );
    let out = env
        .cmd()
        .env("OPENAI_API_KEY", "sk-o-0123456789")
        .args(["run", "main.rhai", "--", &fake.url])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(lines[0]).unwrap(),
        json!({"final": "It is 42.", "model": "gemini-3-pro-preview", "usage": 300})
    );
    assert_eq!(
        &lines[1..],
        [
            "run_agent: unknown field `temprature` in `kwargs`; did you mean `temperature`? \
             (valid fields: `temperature`, `top_p`, `top_k`, `max_thinking_tokens`, `thinking_budget`, \
             `reasoning_effort`, `stop`, `cache`, `extra_body`)",
            "run_agent: kwargs: the openai provider has no `top_k` (Chat Completions does not take \
             it); a compatible server that does can get it through `extra_body`",
        ]
    );
    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    let (head, first) = &seen[0];
    assert!(
        head.starts_with(
            "POST /v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse HTTP/1.1"
        ),
        "{head}"
    );
    assert!(
        head.contains("x-goog-api-key: gm-test-key-0123456789"),
        "{head}"
    );
    assert_eq!(
        first["systemInstruction"],
        json!({"role": "user", "parts": [{"text": "You compute."}]})
    );
    assert_eq!(
        first["generationConfig"],
        json!({"maxOutputTokens": 8192, "temperature": 0.2,
               "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": true}})
    );
    assert_eq!(
        first["contents"],
        json!([{"role": "user", "parts": [{"text": "6 * 7?"}]}])
    );
    assert_eq!(
        seen[1].1["contents"],
        json!([
            {"role": "user", "parts": [{"text": "6 * 7?"}]},
            {"role": "model", "parts": [
                {"text": "Computing."},
                {"functionCall": {"id": "call-1", "name": "notebooks__execute_code", "args": {"code": "6 * 7"}},
                 "thoughtSignature": "c2ln"}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "call-1", "name": "notebooks__execute_code",
                "response": {"output": "[cell 0, execution_count 1]\n42"}}}]}
        ])
    );
}

/// Seer's toolkit functions under Seer's names, each module mounted alone: seer installs
/// the sibling modules it imports (`model_layout`, `prompts`) beside it.
#[test]
fn toolkit_modules_mount_alone_with_seers_names() {
    let env = Env::new();
    common::link_tiny_models(&env);
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ {}, models: [#{{ name: "./models/base" }}] }}).start();
let ws = Workspace(#{{ libraries: [Library::from_file("toolkit/steering_hook.py"),
                                   Library::from_file("toolkit/extract_activations.py")] }});
let s = create_notebook_session(sb, ws);
print(s.exec("import torch, steering_hook, extract_activations as ea\na = ea.extract_activation(model, tokenizer, 'hello world', layer_idx=-1)\ntuple(a.shape)").text);
print(s.exec("with steering_hook.create_steering_hook(model, layer_idx=0, vector=torch.ones(64), strength=2.0):\n    b = ea.extract_activation(model, tokenizer, 'hello world', -1)\nbool((a != b).any())").text);
print(s.exec("import sys; sorted(m for m in ('model_layout', 'prompts', 'toolkit') if m in sys.modules)").text);
"#,
            common::TORCH_ENV
        ),
        &[],
    );
    assert_eq!(ok(&out), "(64,)\n\nTrue\n\n['model_layout', 'prompts']\n\n");
}

/// Answers like an agent that runs one piece of Python when it has a tool to run Python
/// with, then reports what came back; a tool-less call gets a plain answer.
fn seer_shaped_agent(_: usize, body: &serde_json::Value) -> common::fake_anthropic::Reply {
    use common::fake_anthropic::{Reply, call_turn, last_tool_results, tool_names};
    if let Some(results) = last_tool_results(body) {
        return Reply::Sse(answer(&format!("Done: {}", results.len())));
    }
    let code = "import importlib.util\nprint([n for n in ('my_tools', 'model_tools', 'helpers') if importlib.util.find_spec(n)] or 6 * 7)";
    let code = if tool_names(body).iter().any(|t| t.ends_with("__run_python")) {
        "import model_tools, helpers\nprint(helpers.format_result(model_tools.get_model_info()))"
    } else {
        code
    };
    match tool_names(body)
        .into_iter()
        .find(|t| t.ends_with("__execute_code") || t.ends_with("__run_python"))
    {
        Some(tool) => Reply::Sse(call_turn("toolu_1", &tool, json!({ "code": code }))),
        None => Reply::Sse(answer("Both investigators found the same thing.")),
    }
}

/// The Seer-shaped scripts of `tests/fixtures/seer_shaped/` (Seer's documented
/// experiments, translated line by line) run unchanged against a loopback provider.
#[test]
fn seer_shaped_scripts_run_unchanged() {
    let fake = FakeAnthropic::respond(seer_shaped_agent);
    let env = Env::new();
    common::link_tiny_models(&env);
    let dir = seer::testenv::fixture("seer_shaped");
    for name in [
        "README.md",
        "my_tools.py",
        "helpers.py",
        "interface.py",
        "data/table.csv",
        "skills/probe/SKILL.md",
        "local_mode.rhai",
        "sandbox_intro.rhai",
        "scoped_sandbox.rhai",
        "multi_agent.rhai",
        "api_sections.rhai",
    ] {
        env.write(name, &std::fs::read_to_string(dir.join(name)).unwrap());
    }
    // Every file of the folder is one of those.
    let mut all = vec![];
    for e in walk(&dir) {
        all.push(e.strip_prefix(&dir).unwrap().to_string_lossy().to_string());
    }
    all.sort();
    assert_eq!(all.len(), 11, "{all:?}");
    let run = |script: &str| {
        let out = env
            .agent_cmd()
            .env("ANTHROPIC_BASE_URL", &fake.url)
            .args(["run", script])
            .output()
            .unwrap();
        let (stdout, stderr) = common::text(&out);
        assert!(out.status.success(), "{script}: {stderr}");
        stdout
    };
    assert_eq!(
        run("local_mode.rhai"),
        "[cell 1, execution_count 2]\n['my_tools']\nlocal mode done\n"
    );
    assert_eq!(
        run("sandbox_intro.rhai"),
        "[cell 0, execution_count 1]\n42\n(64,)\n\n"
    );
    assert_eq!(
        run("scoped_sandbox.rhai"),
        "scoped\n[exit code 0]\n## Result\n\n- **num_layers**: 2\n- **hidden_size**: 64\n\
         - **summary**: ## Result\n\n- **layers**: 2\n\nSession: minimal-example\n"
    );
    assert_eq!(
        run("multi_agent.rhai"),
        "Both investigators found the same thing.\n"
    );
    assert_eq!(
        run("api_sections.rhai"),
        "{\"key\": \"value\"}\na,b\nfast\n\n5\n\n[[], [], true]\n{\"key\": \"value\"}\n\
         .claude/skills:\nprobe\n\ndata2:\ntable.csv\n\npython in the sandbox\n\n[\"cli\", [\"shell\"]]\n"
    );
}

/// The files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `seer check` reports an unknown method or property where the value's seer type is known
/// without running (a variable bound once from a seer call), with the closest name and the
/// Seer spelling; values of unknown type and script functions are left alone. Every
/// example script and Seer-shaped script passes.
#[test]
fn check_reports_unknown_names_of_known_types() {
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"let ws = Workspace(#{});
ws.get_libary_docs();
let sb = Sandbox(#{}).start();
let s = create_notebook_session(sb, ws);
print(sb.code_server_url);
let scoped = ScopedSandbox();
scoped.start().snapshot();
let m = #{};
m.whatever();
fn helper() { this }
ws.helper();
print(sb.to_json());
let again = Workspace(#{});
again = 1;
again.anything();
"#,
    );
    let out = env.cmd().args(["check", "main.rhai"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        common::text(&out).1,
        "main.rhai:2:4: `Workspace` has no method `get_libary_docs`; did you mean \
         `get_library_docs`? (its methods and properties: get_library_docs, libraries, \
         library_docs; see `seer docs`)\n\
         main.rhai:5:10: `Sandbox` has no property `code_server_url`: not supported yet: seer \
         starts no VS Code server (`debug`)\n\
         main.rhai:7:16: `ScopedSandbox` has no method `snapshot`: the sandbox's own calls are on \
         `scoped.sandbox` (`scoped.sandbox.snapshot(...)`)\n\
         3 unknown name(s)\n"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<std::path::PathBuf> = vec![];
    for dir in ["scripts", "tests/fixtures/seer_shaped"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let main = p.join("main.rhai");
            if main.is_file() {
                scripts.push(main);
            } else if p.extension().is_some_and(|x| x == "rhai") {
                scripts.push(p);
            }
        }
    }
    assert!(scripts.len() >= 14, "{scripts:?}");
    let out = env.cmd().arg("check").args(&scripts).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out).1);
}
