//! Turns in the Gemini API's `streamGenerateContent?alt=sse` wire format, for the loopback
//! server of `fake_anthropic` (which serves any SSE body). The event shapes are the ones the
//! provider's unit tests check against Google's official SDK (`google-genai`).

use serde_json::{Value, json};

fn event(parts: Value, finish: Option<&str>, prompt: u64, out: u64) -> String {
    let mut cand = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        cand["finishReason"] = json!(f);
    }
    let v = json!({"candidates": [cand],
        "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out},
        "modelVersion": "gemini-test", "responseId": "r"});
    format!("data: {v}\r\n\r\n")
}

/// Text, then a call of `name` with `args` (with an id, as Gemini 3 sends them).
pub fn call_turn(text: &str, id: &str, name: &str, args: Value) -> String {
    let call = json!([{"functionCall": {"id": id, "name": name, "args": args}, "thoughtSignature": "c2ln"}]);
    format!(
        "{}{}",
        event(json!([{"text": text}]), None, 100, 0),
        event(call, Some("STOP"), 100, 20)
    )
}

/// A final answer.
pub fn text_turn(text: &str) -> String {
    event(json!([{"text": text}]), Some("STOP"), 200, 7)
}
