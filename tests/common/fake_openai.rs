//! Turns in OpenAI's Chat Completions streaming wire format (`chat.completion.chunk`s,
//! a final usage chunk, `data: [DONE]`), for the loopback server of `fake_anthropic`
//! (which serves any SSE body and, with a window, answers OpenAI's own
//! `context_length_exceeded` error). The chunk shapes are the ones the provider's unit
//! tests check against OpenAI's official SDK.

use serde_json::{Value, json};

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn sse(chunks: &[Value], prompt: u64, completion: u64) -> String {
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5",
        "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": 0}}});
    let mut s: String = chunks
        .iter()
        .chain([&usage])
        .map(|c| format!("data: {c}\n\n"))
        .collect();
    s.push_str("data: [DONE]\n\n");
    s
}

/// A call of `name` with `args` (100 prompt / 20 completion tokens).
pub fn call_turn(id: &str, name: &str, args: Value) -> String {
    sse(
        &[
            chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": id,
                       "type": "function", "function": {"name": name, "arguments": args.to_string()}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
        ],
        100,
        20,
    )
}

/// A final answer (200 prompt / 7 completion tokens).
pub fn text_turn(text: &str) -> String {
    sse(
        &[
            chunk(json!({"role": "assistant", "content": text}), Value::Null),
            chunk(json!({}), json!("stop")),
        ],
        200,
        7,
    )
}
