//! Seer's names and behaviours that a translated experiment relies on (the issue "A Seer
//! experiment translates line by line"): each test is one difference a Seer user hit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, ok};

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
