//! Seer experiments, second round (issue 21): the workspace set up in Seer's order, Seer's
//! `/root` paths, `Skill::from_function`, and `model_info_text` as Seer composes it. Each
//! test is a table: the script and its whole output or error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, TORCH_ENV, error_line, failed, link_tiny_models, ok};

/// A library that configures a client at import from what the init code sets (as an
/// `openai.OpenAI()` client reads `OPENAI_API_KEY`).
const CLIENT_LIB: &str = r#""""A client configured at import."""
import os

if not os.environ.get("FAKE_API_KEY"):
    raise RuntimeError("Missing credentials: set FAKE_API_KEY")
KEY = os.environ["FAKE_API_KEY"]
"#;

/// Seer only puts the libraries on the path before `custom_init_code`; seer imports them
/// after it, so the init code can set what a library reads at import, and a name the init
/// code binds stays its own.
#[test]
fn custom_init_code_runs_before_the_libraries_are_imported() {
    let env = Env::new();
    env.write("client_lib.py", CLIENT_LIB);
    env.write("other.py", "X = 1\n");
    let cases = [
        (
            // The init code sets the key the library reads at import; the library is then
            // imported under its name.
            r#"custom_init_code: "import os\nos.environ['FAKE_API_KEY'] = 'set-by-init'\nprint('init')""#,
            r#"client_lib.KEY + ' ' + ' '.join(k for k in ('client_lib', 'other') if k in globals())"#,
            "'set-by-init client_lib other'",
        ),
        (
            // The init code imports a library itself (it is importable by then) and binds
            // another library's name: seer leaves both.
            r#"custom_init_code: "import os\nos.environ['FAKE_API_KEY'] = 'k'\nimport client_lib as c\nother = 'mine'""#,
            "c.KEY + ' ' + other",
            "'k mine'",
        ),
    ];
    for (init, cell, want) in cases {
        let out = env.run(
            &format!(
                r#"
let sb = Sandbox(#{{ execution_mode: "notebook" }}).start();
let ws = Workspace(#{{ libraries: [Library::from_file("client_lib.py"), Library::from_file("other.py")], {init} }});
let s = create_notebook_session(sb, ws);
print(s.exec("{cell}").text);
"#,
                cell = cell.replace('"', "\\\"")
            ),
            &[],
        );
        assert_eq!(ok(&out).trim_end(), want, "{init}");
    }

    // Without the init code the library's own error stops the set-up, after the init code
    // and at seer's import, with the library's traceback.
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
create_notebook_session(sb, Workspace(#{ libraries: [Library::from_file("client_lib.py")], custom_init_code: "print('init ran')" }));
"#,
        &[],
    );
    let err = env.normalise(&sandbox_ids(&failed(&out)));
    assert_eq!(
        err,
        "error: main.rhai:3:1: the workspace setup code failed in the kernel:
init ran
---------------------------------------------------------------------------
RuntimeError                              Traceback (most recent call last)
Cell In[1], line 23
     19     del _seer_custom
     20 \n     21 # The libraries, imported after custom_init_code.
     22 if 'client_lib' not in globals():
---> 23     import client_lib

File <dir>/state/sandboxes/sb-ID/libraries/client_lib.py:5
      2 import os
      4 if not os.environ.get(\"FAKE_API_KEY\"):
----> 5     raise RuntimeError(\"Missing credentials: set FAKE_API_KEY\")
      6 KEY = os.environ[\"FAKE_API_KEY\"]

RuntimeError: Missing credentials: set FAKE_API_KEY

"
    );
}

/// `s` with every sandbox id (`sb-` and 12 hex digits) written as `sb-ID`.
fn sandbox_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("sb-") {
        let id = &rest[i + 3..];
        let hex = id.chars().take_while(char::is_ascii_hexdigit).count();
        out.push_str(&rest[..i + 3]);
        if hex == 12 {
            out.push_str("ID");
            rest = &id[12..];
        } else {
            rest = id;
        }
    }
    out.push_str(rest);
    out
}

/// Seer's experiments write helper modules to `/root` (or `/workspace`) and import them from
/// the kernel, `exec_python` and ScopedSandbox interfaces: in seer those paths are the
/// workspace, which is the working folder and on `sys.path` of each.
#[test]
fn seers_root_paths_are_the_workspace() {
    let env = Env::new();
    env.write("data/table.csv", "a,b\n");
    env.write(
        "iface.py",
        "import helper\n\n@expose\ndef answer() -> int:\n    \"\"\"The answer.\"\"\"\n    return helper.f()\n",
    );
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook", local_files: [["data/table.csv", "/root/in/t.csv"]] }).start();
sb.write_file("/root/helper.py", "def f():\n    return 42\n");
print(sb.read_file("helper.py") == sb.read_file("/workspace/helper.py"));
print(sb.read_file("/root/in/t.csv"));
sb.ensure_dir("/root/out");
print(sb.exec("test -d out && echo made"));
print(sb.exec_python("import helper; print(helper.f())"));
let s = create_notebook_session(sb, ());
print(s.exec("import helper, os; print(helper.f(), os.getcwd() == os.path.realpath('" + s.workspace_path + "'))").text);
for p in ["/tmp/x.py", "../x.py"] {
    try { sb.write_file(p, ""); } catch (e) { print(e); }
}
let scoped = ScopedSandbox().start();
scoped.write_file("/root/helper.py", "def f():\n    return 7\n");
scoped.serve("iface.py", #{ expose_as: "library" });
print(scoped.rpc("answer"));
"#,
        &[],
    );
    let stdout = ok(&out);
    assert_eq!(
        env.normalise(&sandbox_ids(&stdout)),
        "true\na,b\n\nmade\n\n42\n\n42 True\n\n\
         write_file: path `/tmp/x.py` is outside the sandbox workspace \
         <dir>/state/sandboxes/sb-ID/workspace; give a path relative to the workspace (Seer's \
         `/root/x` and `/workspace/x` are the workspace's `x`)\n\
         write_file: path `../x.py` uses `..`; sandbox paths must stay inside the workspace\n\
         7\n"
    );
}

/// An interface that imports a module nobody put there says where Python looked and how
/// to add the module.
#[test]
fn an_interface_import_error_says_where_it_looked() {
    let env = Env::new();
    env.write(
        "iface.py",
        "import helper\n\n@expose\ndef one() -> int:\n    return 1\n",
    );
    let out = env.run(
        r#"
let scoped = ScopedSandbox().start();
let ws = scoped.sandbox.exec_python("import os; print(os.getcwd())");
ws.trim();
print(ws);
try { scoped.serve("iface.py", #{ expose_as: "library" }); } catch (e) { print(e); }
"#,
        &[],
    );
    let stdout = ok(&out);
    let (ws, err) = stdout.split_once('\n').unwrap();
    let err = err.replace(ws, "<ws>");
    let first = err.lines().next().unwrap();
    // The sys.path entries after the workspace are the sandbox env's own.
    let (head, rest) = first.split_once(", /").unwrap();
    let (_, tail) = rest.split_once("site-packages. ").unwrap();
    assert_eq!(
        format!("{head} … site-packages. {tail}"),
        format!(
            "the interface {dir}/iface.py failed to load: ModuleNotFoundError: No module named \
             'helper'; looked in (sys.path): <ws>/.seer/scoped, <ws> … site-packages. A module \
             of your own: put `helper.py` in the sandbox's workspace (<ws>), e.g. \
             `scoped.write_file(\"helper.py\", code)` (Seer's `/root/helper.py` is the same file) \
             or `local_files`, or give the ScopedSandbox a workspace with it as a library: \
             `ScopedSandbox(cfg).start(Workspace(#{{ libraries: \
             [Library::from_file(\"helper.py\")] }}))`. A package: add it to the sandbox \
             config's `python_packages`",
            dir = env.path().display()
        )
    );
    assert!(
        err.contains("\nModuleNotFoundError: No module named 'helper'\n"),
        "{err}"
    );
}

const INTERFACE: &str = r#""""Probes served from a scoped sandbox."""

@expose
def probe_layer(
    layer: int,
    texts: list[str],  # one per prompt
    scale: float = 1.0,
) -> dict[str, float]:
    """Probes one layer of the model.

    Args:
        layer: the block index.
        texts: the prompts.
    """
    return {}


@expose(name="ask")
def ask_model(question: str) -> str:
    return question


def helper():
    pass
"#;

/// `Skill::from_function(file, name)`: one `@expose` function as a skill, its signature and
/// docstring the skill's text, usable wherever `Skill(#{...})` is.
#[test]
fn skill_from_function_makes_a_skill_of_an_exposed_function() {
    let env = Env::new();
    env.write("interface.py", INTERFACE);
    let body = "# probe-layer\n\n```python\nprobe_layer(layer: int, texts: list[str], scale: float \
                = 1.0) -> dict[str, float]\n```\n\nProbes one layer of the model.\n\nArgs:\n    \
                layer: the block index.\n    texts: the prompts.\n\nA function of the interface \
                `interface.py`, served from a scoped sandbox: call it as \
                `interface.probe_layer(...)` when the interface is served as a library (`import \
                interface`), or as the tool `probe_layer` when it is served over MCP.\n";
    let cases = [
        (
            r#"print(to_json(Skill::from_function("interface.py", "probe_layer")));"#,
            serde_json::json!({
                "name": "probe-layer",
                "description": "Probes one layer of the model.",
                "body": body,
                "dir": null,
            })
            .to_string(),
        ),
        (
            r#"let s = Skill::from_function("interface.py", "ask", #{ name: "asking", description: "Ask it." });
print(s.name + " | " + s.description + " | " + s.body);"#,
            "asking | Ask it. | # asking\n\n```python\nask(question: str) -> str\n```\n\nA function \
             of the interface `interface.py`, served from a scoped sandbox: call it as \
             `interface.ask(...)` when the interface is served as a library (`import \
             interface`), or as the tool `ask` when it is served over MCP."
                .to_string(),
        ),
        (
            r#"print(Skill::from_function("interface.py", "ask").description);"#,
            "`ask(question: str) -> str`, a function of the interface interface.py".to_string(),
        ),
    ];
    for (script, want) in cases {
        let out = env.run(script, &[]);
        assert_eq!(ok(&out).trim_end(), want, "{script}");
    }

    let dir = env.path().display().to_string();
    for (expr, want) in [
        (
            r#"Skill::from_function("interface.py", "helper")"#,
            format!(
                "Skill::from_function: `helper` in {dir}/interface.py is not marked `@expose`; \
                 mark it (only exposed functions are served), or take one of its exposed \
                 functions: probe_layer, ask"
            ),
        ),
        (
            r#"Skill::from_function("interface.py", "ask_model")"#,
            format!(
                "Skill::from_function: `ask_model` in {dir}/interface.py is served as `ask` (its \
                 `@expose(name=...)`); give that name"
            ),
        ),
        (
            r#"Skill::from_function("interface.py", "nothing")"#,
            format!(
                "Skill::from_function: {dir}/interface.py has no `@expose` function \
                 `nothing`; its exposed functions: probe_layer, ask"
            ),
        ),
        (
            r#"Skill::from_function("nope.py", "f")"#,
            format!(
                "Skill::from_function: interface file `nope.py` ({dir}/nope.py) cannot be read; \
                 check the path (a relative path is taken from the script's folder): No such \
                 file or directory (os error 2)"
            ),
        ),
        (
            r#"Skill::from_function("interface.py", "ask", #{ title: "x" })"#,
            "Skill::from_function: unknown field `title` (valid fields: `name`, `description`)"
                .to_string(),
        ),
    ] {
        let out = env.run(&format!("{expr};"), &[]);
        assert_eq!(
            error_line(&failed(&out)),
            format!("error: main.rhai:1:8: {want}"),
            "{expr}"
        );
    }

    // In a workspace, as any skill: its SKILL.md in the session's workspace.
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let ws = Workspace(#{ skills: [Skill::from_function("interface.py", "probe_layer")] });
let s = create_notebook_session(sb, ws);
print(sb.read_file(".claude/skills/probe-layer/SKILL.md"));
"#,
        &[],
    );
    assert_eq!(
        ok(&out),
        format!(
            "---\nname: probe-layer\ndescription: Probes one layer of the model.\n---\n\n{body}\n"
        )
    );
}

/// `model_info_text` as Seer composes it: the models only (the library docs are
/// `library_docs`), a hidden model as `<hidden>` with nothing of its base model.
#[test]
fn model_info_text_is_seers() {
    let env = Env::new();
    link_tiny_models(&env);
    env.write("tools.py", "\"\"\"Tools for probing.\"\"\"\n");
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ {TORCH_ENV}, models: [
    #{{ name: "./models/base" }},
    #{{ name: "./models/lora", is_peft: true, base_model: "./models/base", var_name: "secret", hidden: true }},
] }}).start();
let ws = Workspace(#{{ libraries: [Library::from_file("tools.py")] }});
let s = create_notebook_session(sb, ws);
print(s.model_info_text + "\n" + ws.get_library_docs());
print(s.library_docs == ws.get_library_docs());
import "seer/prompts" as prompts;
print(prompts::for_session(s, "Task."));
"#
        ),
        &[],
    );
    assert_eq!(
        ok(&out),
        "### Pre-loaded Models\n\
         The following models are already loaded in the kernel:\n\
         - `model`: ./models/base\n\
         - `tokenizer`: Tokenizer\n\
         - `secret`: <hidden>\n\
         - `secret_tokenizer`: Tokenizer\n\
         \n\
         **Do NOT reload these models - they are already available.**\n\
         \n\
         ## tools\n\nTools for probing.\n\n\n\
         true\n\
         ### Pre-loaded Models\n\
         The following models are already loaded in the kernel:\n\
         - `model`: ./models/base\n\
         - `tokenizer`: Tokenizer\n\
         - `secret`: <hidden>\n\
         - `secret_tokenizer`: Tokenizer\n\
         \n\
         **Do NOT reload these models - they are already available.**\n\
         \n\
         ## tools\n\nTools for probing.\n\n\
         Task.\n"
    );
}
