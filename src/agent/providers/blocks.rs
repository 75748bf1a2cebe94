//! Content blocks as JSON, for transcripts and the replay provider. The shape is
//! Anthropic's (`text`, `thinking`, `tool_use`, `tool_result`), kept whole: unlike a
//! request body, unsigned thinking is not dropped.

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use super::{Block, ResultPart};

/// One block as JSON.
pub fn block_to_json(block: &Block) -> Value {
    match block {
        Block::Text(t) => json!({"type": "text", "text": t}),
        Block::Thinking { text, signature } => {
            json!({"type": "thinking", "thinking": text, "signature": signature})
        }
        Block::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        Block::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            let parts: Vec<Value> = content
                .iter()
                .map(|p| match p {
                    ResultPart::Text(t) => json!({"type": "text", "text": t}),
                    ResultPart::Image {
                        media_type,
                        data_base64,
                    } => json!({"type": "image", "source": {
                        "type": "base64", "media_type": media_type, "data": data_base64}}),
                })
                .collect();
            json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": parts, "is_error": is_error})
        }
    }
}

fn str_field(v: &Value, key: &str) -> anyhow::Result<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("missing string field `{key}`"))
}

/// Parses a block written by [`block_to_json`].
pub fn block_from_json(v: &Value) -> anyhow::Result<Block> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    Ok(match kind {
        "text" => Block::Text(str_field(v, "text")?),
        "thinking" => Block::Thinking {
            text: str_field(v, "thinking")?,
            signature: v
                .get("signature")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        "tool_use" => Block::ToolUse {
            id: str_field(v, "id")?,
            name: str_field(v, "name")?,
            input: v.get("input").cloned().unwrap_or_else(|| json!({})),
        },
        "tool_result" => {
            let mut content = vec![];
            for p in v
                .get("content")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                content.push(match p.get("type").and_then(Value::as_str) {
                    Some("text") => ResultPart::Text(str_field(p, "text")?),
                    Some("image") => {
                        let src = p.get("source").context("image without `source`")?;
                        ResultPart::Image {
                            media_type: str_field(src, "media_type")?,
                            data_base64: str_field(src, "data")?,
                        }
                    }
                    other => bail!("unknown tool result part type {other:?}"),
                });
            }
            Block::ToolResult {
                tool_use_id: str_field(v, "tool_use_id")?,
                content,
                is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            }
        }
        other => bail!("unknown content block type {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_kind_round_trips() {
        let blocks = vec![
            Block::Text("hi".into()),
            Block::Thinking {
                text: "hmm".into(),
                signature: None,
            },
            Block::Thinking {
                text: "hmm".into(),
                signature: Some("sig".into()),
            },
            Block::ToolUse {
                id: "t1".into(),
                name: "nb__execute_code".into(),
                input: json!({"code": "1+1"}),
            },
            Block::ToolResult {
                tool_use_id: "t1".into(),
                content: vec![
                    ResultPart::Text("2".into()),
                    ResultPart::Image {
                        media_type: "image/png".into(),
                        data_base64: "AAAA".into(),
                    },
                ],
                is_error: true,
            },
        ];
        let back: Vec<Block> = blocks
            .iter()
            .map(|b| block_from_json(&block_to_json(b)).unwrap())
            .collect();
        assert_eq!(back, blocks);
        assert!(
            block_from_json(&json!({"type": "video"}))
                .unwrap_err()
                .to_string()
                .contains("\"video\"")
        );
    }
}
