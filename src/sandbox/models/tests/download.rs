use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::super::resolve_with;
use super::{SHA, cfg, hub_at};

/// A stand-in for the Hub on loopback serving `org/name` at `main` (commit `SHA`);
/// with `hang`, it accepts connections but never answers.
async fn mock_hub(files: Vec<(&'static str, &'static [u8])>, hang: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve_mock(sock, files.clone(), hang));
        }
    });
    format!("http://{addr}")
}

async fn serve_mock(
    mut sock: tokio::net::TcpStream,
    files: Vec<(&'static str, &'static [u8])>,
    hang: bool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await.unwrap();
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let req = String::from_utf8_lossy(&buf).to_string();
    let path = req
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let range = req.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("range: bytes=")
            .map(str::to_string)
    });
    let file = files
        .iter()
        .enumerate()
        .find(|(_, (n, _))| path == format!("/org/name/resolve/main/{n}"));
    let (status, headers, body) = if path == "/api/models/org/name/revision/main" {
        let siblings: Vec<_> = files
            .iter()
            .map(|(n, _)| serde_json::json!({ "rfilename": n }))
            .collect();
        let body = serde_json::json!({ "sha": SHA, "siblings": siblings });
        ("200 OK", String::new(), body.to_string().into_bytes())
    } else if let Some((k, (_, content))) = file {
        let (a, b) = range
            .as_deref()
            .and_then(|r| r.split_once('-'))
            .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
            .unwrap_or((0, content.len() - 1));
        let b = b.min(content.len() - 1);
        let headers = format!(
            "etag: \"blob{k}\"\r\nx-repo-commit: {SHA}\r\ncontent-range: bytes {a}-{b}/{}\r\n",
            content.len()
        );
        ("206 Partial Content", headers, content[a..=b].to_vec())
    } else {
        (
            "404 Not Found",
            String::new(),
            b"Repository not found".to_vec(),
        )
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&body).await.unwrap();
    sock.shutdown().await.ok();
}

#[tokio::test]
async fn downloads_into_the_cache_from_a_mock_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let cache = base.join("hub");
    let models = base.join("sandbox-models");
    let cancel = CancellationToken::new();
    let endpoint = mock_hub(
        vec![
            ("config.json", br#"{"model_type": "gpt2"}"#),
            ("model.safetensors", b"some weights"),
        ],
        false,
    )
    .await;

    let hub = hub_at(&cache, Some(endpoint.clone()), false);
    let hs = resolve_with(&[cfg("org/name")], base, &models, &hub, &cancel)
        .await
        .unwrap();
    let snapshot = cache.join("models--org--name/snapshots").join(SHA);
    assert_eq!(Path::new(&hs[0].path), snapshot);
    assert_eq!(hs[0].revision, SHA);
    assert_eq!(
        std::fs::read(snapshot.join("model.safetensors")).unwrap(),
        b"some weights"
    );
    assert_eq!(
        std::fs::read_to_string(cache.join("models--org--name/refs/main")).unwrap(),
        SHA
    );

    // Now it is cached: no Hub needed.
    let offline = hub_at(&cache, None, true);
    let again = resolve_with(&[cfg("org/name")], base, &models, &offline, &cancel)
        .await
        .unwrap();
    assert_eq!(again, hs);

    // An unknown repo: the error names it and says what to check.
    let err = resolve_with(&[cfg("org/unknown")], base, &models, &hub, &cancel)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("model `org/unknown`: download from the Hugging Face Hub failed"),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("HF_TOKEN"), "{err}");
}

#[tokio::test]
async fn download_can_be_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = mock_hub(vec![], true).await;
    let hub = hub_at(&tmp.path().join("hub"), Some(endpoint), false);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let err = resolve_with(
        &[cfg("org/name")],
        tmp.path(),
        &tmp.path().join("out"),
        &hub,
        &cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "cancelled");
}
