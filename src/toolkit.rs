//! The `toolkit/` Python package (interpretability helpers), embedded in the binary so an
//! installed `seer` can mount it without the source tree: its files ([`FILES`]) and the
//! lookups by name ([`file`](fn@file)) and by a script's path ([`shipped`]). A leaf
//! module: the workspace depends on it (to install the package, or one module of it, when
//! no such file exists next to the script), never the other way round.

/// Every shipped file of the package, `(file name, text)`; the tests in `toolkit/tests/`
/// are not shipped. A unit test checks this list against the folder.
pub const FILES: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../toolkit/__init__.py")),
    (
        "activation_patching.py",
        include_str!("../toolkit/activation_patching.py"),
    ),
    (
        "batch_generate.py",
        include_str!("../toolkit/batch_generate.py"),
    ),
    (
        "contrastive_steering.py",
        include_str!("../toolkit/contrastive_steering.py"),
    ),
    (
        "extract_activations.py",
        include_str!("../toolkit/extract_activations.py"),
    ),
    ("logit_lens.py", include_str!("../toolkit/logit_lens.py")),
    (
        "model_layout.py",
        include_str!("../toolkit/model_layout.py"),
    ),
    ("prompts.py", include_str!("../toolkit/prompts.py")),
    (
        "research_methodology.md",
        include_str!("../toolkit/research_methodology.md"),
    ),
    (
        "steering_hook.py",
        include_str!("../toolkit/steering_hook.py"),
    ),
];

/// The package name the toolkit is imported by.
pub const PACKAGE: &str = "toolkit";

/// The shipped text of `toolkit/<name>`, if there is such a file.
pub fn file(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The embedded file a path like `toolkit/steering_hook.py` (or `./toolkit/...`) names.
pub fn shipped(path: &std::path::Path) -> Option<(&'static str, &'static str)> {
    let mut parts = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir));
    let first = parts.next()?.as_os_str().to_str()?;
    let second = parts.next()?.as_os_str().to_str()?;
    if first != PACKAGE || parts.next().is_some() {
        return None;
    }
    FILES.iter().find(|(n, _)| *n == second).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn embedded_files_match_the_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("toolkit");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".py") || n.ends_with(".md"))
            .collect();
        on_disk.sort();
        let mut shipped: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        shipped.sort();
        assert_eq!(on_disk, shipped, "add new toolkit files to toolkit::FILES");
        for (name, text) in FILES {
            let disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert_eq!(&disk, text, "{name}");
        }
    }

    #[test]
    fn shipped_paths() {
        assert!(shipped(Path::new("toolkit/steering_hook.py")).is_some());
        assert!(shipped(Path::new("./toolkit/prompts.py")).is_some());
        assert!(shipped(Path::new("toolkit/missing.py")).is_none());
        assert!(shipped(Path::new("other/prompts.py")).is_none());
        assert!(shipped(Path::new("toolkit/tests/conftest.py")).is_none());
        assert!(shipped(Path::new("/abs/toolkit/prompts.py")).is_none());
        assert_eq!(
            file("__init__.py").map(|t| t.starts_with("\"\"\"")),
            Some(true)
        );
    }
}
