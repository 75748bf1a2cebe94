//! The example experiments under scripts/ run end to end as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::path::Path;

use common::fake_anthropic::{FakeAnthropic, last_tool_results, text_turn, tool_turn};
use common::{Env, ok, text};
use serde_json::{Value, json};

fn notebook_text(env: &Env, stdout: &str) -> String {
    let rel = stdout
        .lines()
        .find_map(|l| l.strip_prefix("notebook:"))
        .expect("the notebook path line")
        .trim();
    let nb: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join(rel)).unwrap()).unwrap();
    nb["cells"].to_string()
}

#[test]
fn quickstart_replays_its_investigation_for_real_with_no_api_key() {
    let env = Env::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart/main.rhai");
    let out = env
        .cmd()
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .arg("run")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(
        stdout.contains("Summary: hidden unit 13 is the one that matters for class 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 turns, 5 tool calls, 0 in / 0 out tokens"),
        "{stdout}"
    );
    // The replayed calls ran in this run's kernel: the notebook holds what it computed.
    let cells = notebook_text(&env, &stdout);
    for want in [
        "(16, 32) (32, 4)",
        "[(13, 3.0), (3, 0.55)",
        "most correlated features: [(2, 0.53), (7, 0.51)",
        "'f2=1, f7=1': 1.5",
        "## Finding",
    ] {
        assert!(
            cells.contains(want),
            "{want:?} not in the notebook: {cells}"
        );
    }
}

#[test]
fn quickstart_runs_against_a_live_provider_when_named() {
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "Looking at the weights.",
            &[(
                "toolu_1",
                "notebooks__execute_code",
                json!({"code": "import toy_model\nprint(toy_model.load_model().W2[13])"}),
            )],
            1200,
            40,
        ),
        text_turn("Unit 13 drives class 2.", 1500, 12),
    ]);
    let env = Env::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart/main.rhai");
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", "sk-test-quickstart")
        .env("ANTHROPIC_BASE_URL", &fake.url)
        .arg("run")
        .arg(&script)
        .args(["--", "anthropic"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert!(stdout.contains("Unit 13 drives class 2."), "{stdout}");
    assert!(
        stdout.contains("2 turns, 1 tool calls, 2700 in / 52 out tokens"),
        "{stdout}"
    );
    let seen = fake.requests();
    let first = &seen[0].1;
    let prompt = first["messages"][0]["content"][0]["text"].as_str().unwrap();
    assert!(
        prompt.contains("toy_model") && prompt.contains("# Task"),
        "{prompt}"
    );
    let result = last_tool_results(&seen[1].1).unwrap();
    assert!(result.contains("[0. 0. 3. 0.]"), "{result}");
}

/// A provider for any script: with tools, one call of the session's code tool, then a
/// final text; without tools (judges, auditors, targets), a text with a scores block.
fn generic_provider() -> FakeAnthropic {
    FakeAnthropic::start_with(std::sync::Arc::new(|_, body: &Value| {
        let tools: Vec<String> = body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let answered = last_tool_results(body).is_some();
        let reply = "Finding: the probe ran.\n<scores>\nconcerning: 2\nrevealed_secret: 1\nnamed_concept: 1\nsteering_needed: 1\n</scores>";
        if tools.is_empty() || answered {
            return common::fake_anthropic::Reply::Sse(text_turn(reply, 100, 20));
        }
        let (name, input) = if let Some(t) = tools.iter().find(|t| t.ends_with("__execute_code")) {
            (
                t.clone(),
                json!({"code": "print(type(model).__name__ if 'model' in dir() else 'no model')"}),
            )
        } else if let Some(t) = tools.iter().find(|t| t.ends_with("__run_python")) {
            (
                t.clone(),
                json!({"code": "import model_api; print(model_api.__doc__.splitlines()[0])"}),
            )
        } else {
            (tools[0].clone(), json!({}))
        };
        common::fake_anthropic::Reply::Sse(tool_turn(
            "Probing.",
            &[("toolu_1", &name, input)],
            100,
            20,
        ))
    }))
}

#[test]
fn every_example_script_runs_end_to_end_against_a_loopback_provider() {
    let models = seer::testenv::tiny_models();
    let fake = generic_provider();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for (name, wants) in [
        (
            "sandbox_intro",
            vec!["Finding: the probe ran.", "notebook: "],
        ),
        ("hidden_preference", vec!["Finding: the probe ran."]),
        ("checkpoint_diffing", vec!["Finding: the probe ran."]),
        ("introspection", vec!["scale 8.0: ", "\"named_concept\": 1"]),
        (
            "petri_audit",
            vec!["claiming to be a manager.\n  -> #{\"concerning\": 2"],
        ),
        (
            "local_api_investigation",
            vec!["Finding: the probe ran.", "worked in "],
        ),
        // The script calls the interface itself first (`scoped.rpc` prints a map).
        ("scoped_intro", vec!["#{\"", "Finding: the probe ran."]),
        (
            "petri_whitebox",
            vec!["scores: #{\"concerning\": 2", "notebook: "],
        ),
    ] {
        let env = Env::new();
        let out = env
            .cmd()
            .env("ANTHROPIC_API_KEY", "sk-test-examples")
            .env("ANTHROPIC_BASE_URL", &fake.url)
            .env("SEER_MODEL", models.join("base"))
            .env("SEER_ADAPTER", models.join("lora"))
            .env("SEER_GPU", "")
            .env("SEER_LAYER", "1")
            .arg("run")
            .arg(scripts.join(name).join("main.rhai"))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{name}: {stderr}\n{stdout}");
        for want in wants {
            assert!(stdout.contains(want), "{name}: {want:?} not in\n{stdout}");
        }
        // Nothing secret was written anywhere in the outputs.
        for entry in walk(&env.path().join("outputs")) {
            let content = std::fs::read(&entry).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&content).contains("sk-test-examples"),
                "{name}: the key is in {}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
