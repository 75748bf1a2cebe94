//! The Gemini provider against the loopback fake speaking `streamGenerateContent?alt=sse`,
//! and the fake's events checked with Google's official Python SDK (`google-genai`).

use super::*;

fn sse_gemini(events: &[Value]) -> String {
    // Google separates events with CRLF pairs.
    events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect()
}

fn g_chunk(parts: Value, finish: Option<&str>, usage: Value) -> Value {
    let mut cand = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        cand["finishReason"] = json!(f);
    }
    json!({"candidates": [cand], "usageMetadata": usage,
           "modelVersion": "gemini-3-pro-preview", "responseId": "resp-1"})
}

fn g_usage_final() -> Value {
    json!({"promptTokenCount": 40, "candidatesTokenCount": 12, "thoughtsTokenCount": 5,
           "cachedContentTokenCount": 10, "totalTokenCount": 57})
}

fn gemini_text_turn() -> String {
    sse_gemini(&[
        g_chunk(
            json!([{"text": "Weighing it.", "thought": true}]),
            None,
            json!({"promptTokenCount": 40, "totalTokenCount": 40}),
        ),
        g_chunk(
            json!([{"text": "Hel"}]),
            None,
            json!({"promptTokenCount": 40, "totalTokenCount": 40}),
        ),
        g_chunk(json!([{"text": "lo ✓"}]), Some("STOP"), g_usage_final()),
    ])
}

/// A call without an id (as Gemini 2.x sends them), with a thought signature.
pub(super) fn gemini_tool_turn() -> String {
    sse_gemini(&[
        g_chunk(
            json!([{"text": "Let me look."}]),
            None,
            json!({"promptTokenCount": 40, "totalTokenCount": 40}),
        ),
        g_chunk(
            json!([{"functionCall": {"name": "run_code", "args": {"code": "print(1)", "timeout": 30}},
                    "thoughtSignature": "c2lnLTE="}]),
            Some("STOP"),
            g_usage_final(),
        ),
    ])
}

#[tokio::test]
async fn gemini_text_turn_and_request_shape() {
    let fake = Fake::start(vec![stream(gemini_text_turn())]).await;
    let p = provider(Kind::Gemini, &fake);
    let req = convo_request();
    let (resp, events) = run(p.as_ref(), &req).await;
    let resp = resp.unwrap();
    assert_eq!(
        strip_raw(resp.clone()),
        Response {
            content: vec![
                Block::Thinking {
                    text: "Weighing it.".into(),
                    signature: None
                },
                Block::Text("Hello ✓".into())
            ],
            stop_reason: StopReason::EndTurn,
            usage: Usage {
                input_tokens: 30,
                output_tokens: 17,
                cache_read_tokens: 10,
                cache_write_tokens: 0
            },
            raw: Value::Null,
        }
    );
    assert_eq!(
        events,
        vec![
            StreamEvent::ThinkingDelta("Weighing it.".into()),
            StreamEvent::TextDelta("Hel".into()),
            StreamEvent::TextDelta("lo ✓".into()),
            StreamEvent::Done(resp)
        ]
    );
    let r = &fake.requests()[0];
    assert_eq!(
        r.path,
        "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"
    );
    assert_eq!(r.headers["x-goog-api-key"], KEY);
    assert!(!r.headers.contains_key("authorization"));
    // The transcript's body names the model, which goes into the URL instead.
    let mut want = p.request_body(&req);
    assert_eq!(want["model"], "gemini-3-pro-preview");
    want.as_object_mut().unwrap().remove("model");
    assert_eq!(r.body, want);
    assert_eq!(
        r.body,
        json!({
            "systemInstruction": {"role": "user", "parts": [{"text": "You are a probe."}]},
            "generationConfig": {"maxOutputTokens": 1024, "temperature": 0.5},
            "tools": [{"functionDeclarations": [{"name": "run_code", "description": "Run Python",
                "parametersJsonSchema": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}]}],
            "contents": [
                {"role": "user", "parts": [{"text": "Plot it"}]},
                {"role": "model", "parts": [
                    {"text": "Running.", "thoughtSignature": "sig"},
                    {"functionCall": {"id": "t1", "name": "run_code", "args": {"code": "plot()"}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"id": "t1", "name": "run_code", "response": {"output": "done"}}},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}
            ]
        })
    );
}

#[tokio::test]
async fn gemini_calls_get_ids_and_signatures_go_back() {
    let fake = Fake::start(vec![stream(gemini_tool_turn())]).await;
    let p = provider(Kind::Gemini, &fake);
    let (resp, events) = run(p.as_ref(), &simple_request()).await;
    let resp = resp.unwrap();
    assert_eq!(resp.stop_reason, StopReason::ToolUse);
    let Block::ToolUse { id, .. } = &resp.content[2] else {
        panic!("{:?}", resp.content)
    };
    assert!(id.starts_with("seer_call_"), "{id}");
    assert_eq!(
        resp.content,
        vec![
            Block::Text("Let me look.".into()),
            Block::Thinking {
                text: String::new(),
                signature: Some("c2lnLTE=".into())
            },
            Block::ToolUse {
                id: id.clone(),
                name: "run_code".into(),
                input: json!({"code": "print(1)", "timeout": 30})
            },
        ]
    );
    assert_eq!(
        events[1],
        StreamEvent::ToolUseStart {
            id: id.clone(),
            name: "run_code".into()
        }
    );
    // Sent back: the signature on the call, no made-up id, the result named by the call.
    let mut req = simple_request();
    req.messages.push(Message {
        role: Role::Assistant,
        content: resp.content.clone(),
    });
    req.messages.push(Message {
        role: Role::User,
        content: vec![Block::ToolResult {
            tool_use_id: id.clone(),
            content: vec![ResultPart::Text("Traceback: boom".into())],
            is_error: true,
        }],
    });
    assert_eq!(
        p.request_body(&req)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [
                {"text": "Let me look."},
                {"functionCall": {"name": "run_code", "args": {"code": "print(1)", "timeout": 30}},
                 "thoughtSignature": "c2lnLTE="}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "run_code", "response": {"error": "Traceback: boom"}}}]}
        ])
    );
    assert_eq!(p.request_body(&req)["model"], "m-override");
}

#[tokio::test]
async fn gemini_options_errors_and_retries() {
    let google_error = |code: u16, status: &str, msg: &str| json!({"error": {"code": code, "message": msg, "status": status}});
    let fake = Fake::start(vec![
        super::status(
            429,
            vec![],
            google_error(429, "RESOURCE_EXHAUSTED", "slow down"),
        ),
        stream(gemini_text_turn()),
        super::status(
            400,
            vec![],
            google_error(400, "INVALID_ARGUMENT", "bad schema"),
        ),
    ])
    .await;
    let p = provider(Kind::Gemini, &fake);
    let mut req = simple_request();
    req.options = serde_json::from_value(json!({
        "temperature": 1.5, "top_p": 0.9, "top_k": 20, "thinking_budget": 2048, "stop": ["END"],
        "extra_body": {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                       "generationConfig": {"seed": 7}}}))
    .unwrap();
    run(p.as_ref(), &req).await.0.unwrap();
    let seen = fake.requests();
    assert_eq!(seen.len(), 2, "the 429 was retried");
    assert_eq!(
        seen[1].body["generationConfig"],
        json!({"maxOutputTokens": 100, "temperature": 1.5, "topP": 0.9, "topK": 20,
               "stopSequences": ["END"], "seed": 7,
               "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}})
    );
    assert_eq!(
        seen[1].body["safetySettings"],
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}])
    );
    let err = format!("{:#}", run(p.as_ref(), &req).await.0.unwrap_err());
    assert_eq!(err, "gemini: HTTP 400: INVALID_ARGUMENT: bad schema");
    assert_eq!(fake.requests().len(), 3, "a 400 is not retried");
}

const GENAI_SCRIPT: &str = r#"
import base64, json, sys
from google import genai
from google.genai import types
# seer speaks v1beta (function calling with JSON-schema parameters, thinking), as the
# REST reference does; this SDK version defaults to v1.
c = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sys.argv[1], api_version="v1beta"))
parts, finish, usage = [], None, None
for ch in c.models.generate_content_stream(model="m", contents="hi"):
    cand = ch.candidates[0]
    for p in cand.content.parts or []:
        d = {}
        if p.text is not None:
            d["text"] = p.text
        if p.thought:
            d["thought"] = True
        if p.function_call is not None:
            d["call"] = [p.function_call.name, p.function_call.args]
        if p.thought_signature is not None:
            d["signature"] = base64.b64encode(p.thought_signature).decode()
        parts.append(d)
    if cand.finish_reason is not None:
        finish = getattr(cand.finish_reason, "value", str(cand.finish_reason))
    u = ch.usage_metadata
    usage = [u.prompt_token_count, u.candidates_token_count, u.thoughts_token_count, u.cached_content_token_count]
print(json.dumps({"parts": parts, "finish": finish, "usage": usage}))
"#;

/// The fake's events as Google's SDK reads them (the test Python env, `tests/setup.sh`).
#[tokio::test]
async fn gemini_fake_matches_the_official_sdk() {
    let python = crate::testenv::python();
    let parse = |wire: String| {
        let python = python.clone();
        async move {
            let fake = Fake::start(vec![stream(wire)]).await;
            let out = tokio::process::Command::new(&python)
                .args(["-c", GENAI_SCRIPT, &fake.base])
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                fake.requests()[0].path,
                "/v1beta/models/m:streamGenerateContent?alt=sse"
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        }
    };
    assert_eq!(
        parse(gemini_tool_turn()).await,
        json!({"parts": [{"text": "Let me look."},
                         {"call": ["run_code", {"code": "print(1)", "timeout": 30}], "signature": "c2lnLTE="}],
               "finish": "STOP", "usage": [40, 12, 5, 10]})
    );
    assert_eq!(
        parse(gemini_text_turn()).await,
        json!({"parts": [{"text": "Weighing it.", "thought": true}, {"text": "Hel"}, {"text": "lo ✓"}],
               "finish": "STOP", "usage": [40, 12, 5, 10]})
    );
}

const GENAI_REQUEST_SCRIPT: &str = r#"
import base64, sys
from google import genai
from google.genai import types
c = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sys.argv[1], api_version="v1beta"))
schema = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}
contents = [
    types.Content(role="user", parts=[types.Part(text="Plot it")]),
    types.Content(role="model", parts=[
        types.Part(text="Running."),
        types.Part(function_call=types.FunctionCall(id="t1", name="run_code", args={"code": "plot()"}),
                   thought_signature=b"sig")]),
    types.Content(role="user", parts=[
        types.Part(function_response=types.FunctionResponse(id="t1", name="run_code", response={"output": "done"})),
        types.Part(inline_data=types.Blob(mime_type="image/png", data=base64.b64decode("iVBORw0KGgo=")))]),
]
config = types.GenerateContentConfig(
    system_instruction="You are a probe.", max_output_tokens=1024, temperature=0.5, top_p=0.9, top_k=20,
    stop_sequences=["END"], thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True),
    tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
        name="run_code", description="Run Python", parameters_json_schema=schema)])])
for _ in c.models.generate_content_stream(model="gemini-3-pro-preview", contents=contents, config=config):
    pass
"#;

/// The request seer builds is the one Google's SDK sends for the same conversation.
#[tokio::test]
async fn gemini_request_matches_the_official_sdk() {
    let python = crate::testenv::python();
    let fake = Fake::start(vec![stream(gemini_text_turn())]).await;
    let out = tokio::process::Command::new(&python)
        .args(["-c", GENAI_REQUEST_SCRIPT, &fake.base])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sdk = fake.requests().remove(0);
    let mut req = convo_request();
    let call = req.messages[1].content[2].clone();
    req.messages[1].content = vec![
        Block::Text("Running.".into()),
        Block::Thinking {
            text: String::new(),
            signature: Some("c2ln".into()),
        },
        call,
    ];
    req.options = serde_json::from_value(json!({"temperature": 0.5, "top_p": 0.9, "top_k": 20,
        "stop": ["END"], "thinking_budget": 2048}))
    .unwrap();
    let p = provider(Kind::Gemini, &fake);
    let mut ours = p.request_body(&req);
    ours.as_object_mut().unwrap().remove("model");
    // The SDK writes some keys in snake_case and integers as floats, which the API's JSON
    // mapping reads like the camelCase seer writes (the REST reference's form).
    assert_eq!(canonical(&sdk.body), canonical(&ours));
    assert_eq!(
        sdk.path,
        "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"
    );
}

/// `v` with object keys in camelCase and numbers as floats.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut key = String::new();
                    let mut upper = false;
                    for c in k.chars() {
                        if c == '_' {
                            upper = true;
                        } else if upper {
                            key.extend(c.to_uppercase());
                            upper = false;
                        } else {
                            key.push(c);
                        }
                    }
                    (key, canonical(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Number(n) => json!(n.as_f64()),
        other => other.clone(),
    }
}
