//! The example experiments under scripts/ run end to end as a user runs them.

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
