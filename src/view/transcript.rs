//! An agent transcript (the JSONL `agent/` writes) as HTML, one record at a time: the
//! user's messages and the system prompt (from the request bodies), the model's text,
//! thinking and tool calls with their arguments, tool results with their images, errors,
//! and a summary of the whole (turns, tokens and cost so far, the stop reason). The
//! `claude-code` provider's raw stream-json messages are shown through the same blocks.

use serde_json::Value;

use super::html::{escape, highlight, markdown};
use crate::agent::pricing::{cost, prices_for};
use crate::agent::providers::Usage;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The text of a message's `content`: a string, or the `text` blocks of a list.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(t) => Some(t.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| s(b, "type") == "text")
                .map(|b| s(b, "text"))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n\n"))
        }
        _ => None,
    }
}

fn details(summary: &str, body: &str, class: &str) -> String {
    format!(
        "<details class=\"{class}\"><summary>{}</summary>{body}</details>",
        escape(summary)
    )
}

/// A tool call's arguments: a `code` argument highlighted as Python, the rest as JSON.
fn tool_args(input: &Value) -> String {
    let mut out = String::new();
    let mut rest = serde_json::Map::new();
    if let Some(map) = input.as_object() {
        for (k, v) in map {
            match (k.as_str(), v) {
                ("code", Value::String(code)) => out.push_str(&format!(
                    "<pre class=\"src\"><code>{}</code></pre>",
                    highlight(code, "py")
                )),
                _ => {
                    rest.insert(k.clone(), v.clone());
                }
            }
        }
    } else {
        return format!("<pre class=\"args\">{}</pre>", escape(&input.to_string()));
    }
    if !rest.is_empty() {
        let text = serde_json::to_string_pretty(&Value::Object(rest)).unwrap_or_default();
        out.insert_str(
            0,
            &format!(
                "<pre class=\"args\"><code>{}</code></pre>",
                highlight(&text, "json")
            ),
        );
    }
    out
}

fn image(media_type: &str, data: &str) -> String {
    format!(
        "<img class=\"out\" alt=\"tool result image\" src=\"data:{};base64,{}\">",
        escape(media_type),
        escape(data)
    )
}

/// Content blocks in Anthropic's shape (`text`, `thinking`, `tool_use`, `tool_result`).
fn blocks(content: &[Value]) -> String {
    let mut out = String::new();
    for b in content {
        match s(b, "type") {
            "text" => out.push_str(&format!(
                "<div class=\"text\">{}</div>",
                markdown(s(b, "text"))
            )),
            "thinking" => out.push_str(&details(
                "thinking",
                &format!(
                    "<div class=\"thinking\">{}</div>",
                    markdown(s(b, "thinking"))
                ),
                "thinking open",
            )),
            "redacted_thinking" => {
                out.push_str("<div class=\"thinking\">[redacted thinking]</div>")
            }
            "tool_use" => out.push_str(&format!(
                "<div class=\"call\"><div class=\"name\">→ {}</div>{}</div>",
                escape(s(b, "name")),
                tool_args(b.get("input").unwrap_or(&Value::Null))
            )),
            "tool_result" => {
                let err = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                let mut body = String::new();
                match b.get("content") {
                    Some(Value::String(t)) => body.push_str(&format!("<pre>{}</pre>", escape(t))),
                    Some(Value::Array(parts)) => {
                        for p in parts {
                            match s(p, "type") {
                                "text" => {
                                    body.push_str(&format!("<pre>{}</pre>", escape(s(p, "text"))))
                                }
                                "image" => {
                                    let src = p.get("source").unwrap_or(&Value::Null);
                                    body.push_str(&image(s(src, "media_type"), s(src, "data")))
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                out.push_str(&format!(
                    "<div class=\"result{}\"><div class=\"name\">← result{}</div>{body}</div>",
                    if err { " error" } else { "" },
                    if err { " (error)" } else { "" }
                ));
            }
            other => out.push_str(&details(
                other,
                &format!("<pre>{}</pre>", escape(&b.to_string())),
                "raw",
            )),
        }
    }
    out
}

/// The user's new message in a request body (its last message, when that is the user's
/// text rather than tool results), and on the first turn the system prompt.
fn request(v: &Value) -> String {
    let body = v.get("body").unwrap_or(&Value::Null);
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = String::new();
    if n(v, "turn") == 1 {
        let system = body.get("system").and_then(content_text).or_else(|| {
            messages
                .iter()
                .find(|m| s(m, "role") == "system")
                .and_then(|m| m.get("content").and_then(content_text))
        });
        if let Some(system) = system {
            out.push_str(&details(
                "system prompt",
                &format!("<pre>{}</pre>", escape(&system)),
                "system",
            ));
        }
    }
    if let Some(last) = messages.last()
        && s(last, "role") == "user"
        && let Some(text) = last.get("content").and_then(content_text)
    {
        out.push_str(&format!(
            "<div class=\"user\"><div class=\"who\">user</div>{}</div>",
            markdown(&text)
        ));
    }
    out
}

/// One transcript record (a JSONL line) as HTML, element id `i<index>`.
pub fn record(index: usize, json: &str) -> String {
    let v: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            return format!(
                "<div class=\"rec\" id=\"i{index}\"><pre class=\"out error\">unreadable line: {}</pre></div>",
                escape(&e.to_string())
            );
        }
    };
    let kind = s(&v, "type");
    let inner = match kind {
        "start" => {
            let tools: Vec<&str> = v
                .get("tools")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = format!(
                "<div class=\"meta\">started · provider {} · model {} · tools: {}</div>",
                escape(s(&v, "provider")),
                escape(v.get("model").and_then(Value::as_str).unwrap_or("default")),
                escape(&tools.join(", "))
            );
            let system = s(&v, "system");
            if !system.is_empty() {
                out.push_str(&details(
                    "system prompt",
                    &format!("<pre>{}</pre>", escape(system)),
                    "system",
                ));
            }
            out
        }
        // Written since transcripts hold each message once: the user's messages.
        "user" => format!(
            "<div class=\"user\"><div class=\"who\">user</div>{}</div>",
            markdown(s(&v, "text"))
        ),
        // Older transcripts carry each request's whole body; newer ones only its size.
        "request" if v.get("body").is_some() => request(&v),
        "request" => format!(
            "<div class=\"meta\">turn {} · request of {} messages, about {} tokens</div>",
            n(&v, "turn"),
            n(&v, "messages"),
            n(&v, "context_tokens")
        ),
        "compaction" => {
            let mut what = vec![];
            if n(&v, "cleared_results") > 0 {
                what.push(format!(
                    "cleared {} old tool results ({} characters)",
                    n(&v, "cleared_results"),
                    n(&v, "cleared_chars")
                ));
            }
            if n(&v, "dropped_turns") > 0 {
                what.push(format!("dropped {} turns", n(&v, "dropped_turns")));
            }
            if n(&v, "summarised_messages") > 0 {
                what.push(format!(
                    "summarised {} messages",
                    n(&v, "summarised_messages")
                ));
            }
            let mut out = format!(
                "<div class=\"meta compaction\">context compacted ({}) before turn {}: {} · {} → {} tokens of a {}-token window</div>",
                escape(s(&v, "strategy")),
                n(&v, "turn") + 1,
                escape(&what.join(", ")),
                n(&v, "tokens_before"),
                n(&v, "tokens_after"),
                n(&v, "window")
            );
            let summary = s(&v, "summary");
            if !summary.is_empty() {
                out.push_str(&details("summary", &markdown(summary), "summary"));
            }
            out
        }
        "limit" => format!(
            "<div class=\"meta done\">limit: the run {}</div>",
            escape(s(&v, "message"))
        ),
        "response" => {
            let u = v.get("usage").unwrap_or(&Value::Null);
            let content = v
                .get("content")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            format!(
                "<div class=\"turn\"><div class=\"who\">assistant · turn {} · {} in / {} out tokens · {}</div>{}</div>",
                n(&v, "turn"),
                n(u, "input_tokens"),
                n(u, "output_tokens"),
                escape(s(&v, "stop_reason")),
                blocks(content)
            )
        }
        "tool_result" => {
            let err = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            let mut body = format!("<pre>{}</pre>", escape(s(&v, "text")));
            for img in v
                .get("images")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                body.push_str(&image(s(img, "media_type"), s(img, "data")));
            }
            format!(
                "<div class=\"result{}\"><div class=\"name\">← {}{}</div>{body}</div>",
                if err { " error" } else { "" },
                escape(s(&v, "name")),
                if err { " (error)" } else { "" }
            )
        }
        "done" => format!(
            "<div class=\"meta done\">done: {} after {} turns · {} in / {} out tokens · {}</div>",
            escape(s(&v, "stop_reason")),
            n(&v, "turns"),
            n(&v, "input_tokens"),
            n(&v, "output_tokens"),
            v.get("cost_usd")
                .and_then(Value::as_f64)
                .map(|c| format!("${c:.4}"))
                .unwrap_or_else(|| "cost unknown".into())
        ),
        "error" => format!(
            "<pre class=\"out error\">error: {}</pre>",
            escape(s(&v, "message"))
        ),
        "interrupted" => "<div class=\"meta\">interrupted by the user</div>".into(),
        // The `claude-code` provider's raw stream-json messages.
        "message" => {
            let raw = v.get("raw").unwrap_or(&Value::Null);
            let content = raw
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match s(raw, "type") {
                "assistant" => format!(
                    "<div class=\"turn\"><div class=\"who\">assistant</div>{}</div>",
                    blocks(content)
                ),
                "user" => blocks(content),
                other => details(
                    &format!("{other} message"),
                    &format!("<pre>{}</pre>", escape(&raw.to_string())),
                    "raw",
                ),
            }
        }
        other => details(
            other,
            &format!(
                "<pre>{}</pre>",
                escape(&serde_json::to_string_pretty(&v).unwrap_or_default())
            ),
            "raw",
        ),
    };
    format!(
        "<div class=\"rec {}\" id=\"i{index}\">{inner}</div>",
        escape(kind)
    )
}

/// Turns, tokens and cost so far, and how the agent ended (or that it is still working),
/// added up one record at a time (a page's stream adds only the new ones).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    usage: Usage,
    turns: u64,
    model: String,
    end: Option<String>,
    cost_usd: Option<f64>,
}

impl Summary {
    pub fn add(&mut self, record: &str) {
        let Ok(v) = serde_json::from_str::<Value>(record) else {
            return;
        };
        match s(&v, "type") {
            "start" => self.model = s(&v, "model").to_string(),
            "response" => {
                let u = v.get("usage").unwrap_or(&Value::Null);
                self.usage.input_tokens += n(u, "input_tokens");
                self.usage.output_tokens += n(u, "output_tokens");
                self.usage.cache_read_tokens += n(u, "cache_read_tokens");
                self.usage.cache_write_tokens += n(u, "cache_write_tokens");
                self.turns = self.turns.max(n(&v, "turn"));
            }
            "done" => {
                self.end = Some(format!("done: {}", s(&v, "stop_reason")));
                self.cost_usd = v.get("cost_usd").and_then(Value::as_f64);
                self.usage.input_tokens = self.usage.input_tokens.max(n(&v, "input_tokens"));
                self.usage.output_tokens = self.usage.output_tokens.max(n(&v, "output_tokens"));
                self.turns = self.turns.max(n(&v, "turns"));
            }
            "error" => self.end = Some(format!("error: {}", s(&v, "message"))),
            _ => {}
        }
    }

    pub fn html(&self) -> String {
        let cost_usd = self
            .cost_usd
            .or_else(|| prices_for(&self.model).map(|p| cost(&self.usage, &p)));
        format!(
            "<span class=\"status\">{}</span> · {} turns · {} in / {} out tokens · {}",
            escape(self.end.as_deref().unwrap_or("working…")),
            self.turns,
            self.usage.input_tokens,
            self.usage.output_tokens,
            cost_usd
                .map(|c| format!("${c:.4}"))
                .unwrap_or_else(|| "cost unknown".into())
        )
    }
}
