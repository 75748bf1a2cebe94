//! The modal backend, on seer's side of the Modal SDK: nothing here reaches Modal's
//! service (these machines cannot). What runs for real: the helper's venv with the pinned
//! `modal` SDK from PyPI (made by seer in the tests' shared cache), the helper building
//! the real SDK objects offline (`__modal-describe`), the missing-credentials error, and the
//! helper's relay with its TEST transport (`SEER_MODAL_TEST_LOCAL_SH`: the launcher in a
//! local `sh` instead of a Modal sandbox) carrying a real notebook session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::process::Command;
use std::time::Duration;

use common::{Env, failed, lines, ok, wait_gone};

/// `seer` with no Modal credentials anywhere: no token variables, a HOME without
/// `.modal.toml`.
fn without_credentials(env: &Env, mut c: Command) -> Command {
    let home = env.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    c.env("HOME", &home)
        .env_remove("MODAL_TOKEN_ID")
        .env_remove("MODAL_TOKEN_SECRET")
        .env_remove("MODAL_CONFIG_PATH")
        .env_remove(seer_test_switch());
    c
}

fn seer_test_switch() -> &'static str {
    "SEER_MODAL_TEST_LOCAL_SH"
}

#[test]
fn the_helper_builds_the_sdk_objects_offline_and_describes_them() {
    let env = Env::new();
    let cfg = env.write(
        "modal.json",
        r#"{"backend": "modal", "gpu": "A100", "gpu_count": 2, "timeout": 7200,
            "python_version": "3.12", "python_packages": ["numpy==2.1.0", "einops"],
            "system_packages": ["git"], "secrets": ["HF_TOKEN", "WANDB_API_KEY"]}"#,
    );
    let mut c = without_credentials(&env, env.cmd());
    c.arg("__modal-describe")
        .arg(&cfg)
        .env("HF_TOKEN", "hf_value_never_shown")
        .env("WANDB_API_KEY", "wandb_value_never_shown");
    let out = c.output().unwrap();
    let stdout = ok(&out);
    let described: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        described,
        serde_json::json!({
            "sdk": "1.6.4",
            "app": "seer",
            "image": {
                "base": "debian_slim",
                "python_version": "3.12",
                "apt_packages": ["git"],
                "pip_packages": ["numpy==2.1.0", "einops"],
            },
            "gpu": "A100:2",
            "timeout": 7200,
            "secrets": ["HF_TOKEN", "WANDB_API_KEY"],
            "volumes": {"/root/.cache/huggingface": "seer-hf-cache"},
            "env": {"HF_HOME": "/root/.cache/huggingface"},
            "command": ["sh", "-c", "<seer launcher>"],
        })
    );
    assert!(!stdout.contains("never_shown"));

    // The venv holds the pinned SDK, and the helper in the cache imports it.
    let (key, _) = seer::sandbox::pyenv::env_key(">=3.10", &["modal==1.6.4".to_string()]);
    let venv = common::shared_cache().join("envs").join(key);
    let marker = std::fs::read_to_string(venv.join(".seer-env.json")).unwrap();
    assert!(marker.contains("\"modal==1.6.4\""), "{marker}");
    assert!(venv.join("bin/python").exists());
    let helpers: Vec<_> = std::fs::read_dir(common::shared_cache().join("modal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    assert!(!helpers.is_empty());
    for helper in helpers {
        let out = Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(format!(
                "import runpy, modal; runpy.run_path({:?}); print(modal.__version__)",
                helper.display().to_string()
            ))
            .output()
            .unwrap();
        assert_eq!(ok(&out), "1.6.4\n");
    }

    // A GPU name with a count in it is refused by seer, naming the field.
    let bad = env.write("bad.json", r#"{"backend": "modal", "gpu": "A100:2"}"#);
    let out = env
        .cmd()
        .arg("__modal-describe")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        failed(&out),
        "error: Sandbox config: field `gpu`: `A100:2` is not a Modal GPU type (like \"A100\" or \"H100\"; the count is `gpu_count`)\n"
    );
}

#[test]
fn without_credentials_seer_says_how_to_log_in() {
    let env = Env::new();
    env.write(
        "main.rhai",
        "let sb = Sandbox(#{ backend: \"modal\", gpu: \"H100\" }).start();\nprint(\"started\");",
    );
    let mut c = without_credentials(&env, env.cmd());
    c.args(["run", "main.rhai"]);
    let out = c.output().unwrap();
    let stderr = failed(&out);
    let first = common::error_line(&stderr);
    assert!(first.starts_with("error: main.rhai:1:"), "{stderr}");
    let home = env.path().join("home");
    assert!(
        stderr.contains(&format!(
            "backend \"modal\" needs Modal credentials, and none were found (neither MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment nor {}/.modal.toml): log in with `pip install modal && modal token new` (it writes ~/.modal.toml), or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET",
            home.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("started"));
}

#[test]
fn a_notebook_session_runs_through_the_helpers_relay_with_the_test_transport() {
    let env = Env::new();
    // The test transport runs the launcher with this HOME; seer's folder there gets the
    // tests' shared env cache, as a warm container image would.
    let home = env.path().join("modal-home");
    let remote = home.join(".cache/seer-remote");
    std::fs::create_dir_all(&remote).unwrap();
    std::os::unix::fs::symlink(common::shared_cache(), remote.join("cache")).unwrap();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ backend: "modal", execution_mode: "notebook", secrets: ["PROBE_SECRET"],
                    timeout: 600 }).start();
print(sb.backend);
let s = create_notebook_session(sb, Workspace(#{}), #{ name: "relay" });
print(s.exec("6 * 7").text);
print(s.exec("import os; len(os.environ['PROBE_SECRET'])").text);
print(s.exec("bytes(range(256)).hex()[-8:]").text);
try { sb.detach(); } catch (e) { print(e); }
try { Sandbox::from_id(sb.id); } catch (e) { print(e); }
"#,
    );
    let mut c = without_credentials(&env, env.cmd());
    c.args(["run", "main.rhai"])
        .env(seer_test_switch(), &home)
        .env("PROBE_SECRET", "s3cr3t-value");
    let out = c.output().unwrap();
    let stdout = ok(&out);
    assert_eq!(
        lines(&stdout),
        [
            "modal",
            "42",
            "12",
            "'fcfdfeff'",
            "detach: not supported yet: detaching a modal sandbox (it ends with the seer that started it)",
            "Sandbox::from_id: not supported yet: reattaching to a modal sandbox (it ends with the seer that started it)",
        ]
    );
    // The agent and its sandbox ran under the test transport's HOME and ended with the run.
    assert!(remote.join("state").is_dir());
    wait_gone(&remote.to_string_lossy(), Duration::from_secs(10));
    let nb = common::read_json(
        &env.path()
            .join(format!("outputs/{}/relay.ipynb", env.the_run())),
    );
    assert_eq!(
        common::cell_sources(&nb),
        [
            "6 * 7",
            "import os; len(os.environ['PROBE_SECRET'])",
            "bytes(range(256)).hex()[-8:]"
        ]
    );
    common::assert_no_file_contains(env.path(), &["s3cr3t-value"]);
}

#[test]
fn with_credentials_but_no_way_to_modal_the_sdks_error_is_shown() {
    let env = Env::new();
    env.write(
        "main.rhai",
        "let sb = Sandbox(#{ backend: \"modal\" }).start();",
    );
    let mut c = without_credentials(&env, env.cmd());
    // Credentials of the right shape, and a Modal server address that refuses connections:
    // the real SDK tries, and gives up.
    c.args(["run", "main.rhai"])
        .env("MODAL_TOKEN_ID", "ak-not-a-real-token")
        .env("MODAL_TOKEN_SECRET", "as-not-a-real-secret")
        .env("MODAL_SERVER_URL", "http://127.0.0.1:1");
    let out = c.output().unwrap();
    let stderr = failed(&out);
    assert!(
        stderr.starts_with(
            "error: main.rhai:1:41: could not start the sandbox on Modal: the helper ended (exit status: 1); the helper said:\nmodal: ConnectionError: Could not connect to the Modal server.\n(seer reaches Modal through the `modal` SDK of "
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("as-not-a-real-secret"), "{stderr}");
}
