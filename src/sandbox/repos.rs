//! Fetches the code repositories a script lists under `repos` into the sandbox workspace.
//!
//! Each entry is cloned with `git` (shallow for remote URLs), cloned from a local git
//! checkout, or copied when it is a plain local directory. The result is one
//! [`RepoHandle`] per entry, recording where the code landed and at which commit.
//! Running a repo's `install` step is not done here: the caller runs it inside the
//! sandbox environment, so it is only carried along in the handle.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::cancel::cancellable;

/// One entry of a script's `repos` list.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// An https/http/ssh/git/file URL, `git@host:path`, `owner/name` (GitHub) or a local path.
    pub url: String,
    /// Not supported by the local backend (it needs Docker).
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// `false`, `true` (`pip install -e .`) or a shell command run in the repo by the caller.
    #[serde(default)]
    pub install: Install,
    /// Branch or tag to check out instead of the default branch.
    #[serde(default)]
    pub branch: Option<String>,
}

/// How a repo is installed into the sandbox environment once it is cloned.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(
    untagged,
    expecting = "`install` must be true, false or a shell command string"
)]
pub enum Install {
    /// `false`: nothing to install; `true`: install it as an editable package.
    Flag(bool),
    /// A shell command run in the repo's directory.
    Command(String),
}

impl Default for Install {
    fn default() -> Self {
        Install::Flag(false)
    }
}

/// A repo fetched into the workspace.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct RepoHandle {
    /// What was cloned: the full URL (`owner/name` expanded) or the absolute local path.
    pub url: String,
    /// The directory the code is in.
    pub local_path: String,
    pub dockerfile: Option<String>,
    pub install: Install,
    /// `HEAD` of the clone, or `""` for a copied directory that is not a git repo.
    pub commit: String,
}

/// Where a repo comes from, once its `url` is understood.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// A directory on this machine (absolute; it may not exist).
    Local(PathBuf),
    /// Something `git clone` fetches: a URL or `user@host:path`.
    Remote(String),
}

/// A validated entry, ready to fetch.
struct Plan {
    index: usize,
    source: Source,
    dest: PathBuf,
}

/// URL schemes passed to git as they are.
const SCHEMES: [&str; 5] = ["https://", "http://", "ssh://", "git://", "file://"];

/// Clones or copies every repo in `cfgs` into `dest_root/<repo name>`.
///
/// Relative local paths are resolved against `base_dir` (the script's folder). Everything
/// is validated before anything is fetched; a fetch that fails or is cancelled leaves no
/// partial directory behind.
pub async fn clone_repos(
    cfgs: &[RepoConfig],
    base_dir: &Path,
    dest_root: &Path,
    cancel: &CancellationToken,
) -> Result<Vec<RepoHandle>> {
    if cfgs.is_empty() {
        return Ok(vec![]);
    }
    let plans = plan_all(cfgs, base_dir, dest_root)?;
    std::fs::create_dir_all(dest_root)
        .with_context(|| format!("creating the repos folder {}", dest_root.display()))?;
    for plan in &plans {
        if plan.dest.symlink_metadata().is_ok() {
            bail!(
                "repos[{}] (`{}`): {} already exists; remove it or rename the repo",
                plan.index,
                cfgs[plan.index].url,
                plan.dest.display()
            );
        }
    }

    let mut handles = Vec::with_capacity(plans.len());
    for plan in plans {
        let cfg = &cfgs[plan.index];
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        let fetched = fetch(&plan, cfg.branch.as_deref(), cancel).await;
        let commit = match fetched {
            Ok(commit) => commit,
            Err(e) => {
                remove_partial(&plan.dest);
                return Err(e);
            }
        };
        let url = match &plan.source {
            Source::Local(p) => p.display().to_string(),
            Source::Remote(u) => u.clone(),
        };
        tracing::info!(
            repo = %redact_url(&url),
            path = %plan.dest.display(),
            commit = %commit,
            "repo ready"
        );
        handles.push(RepoHandle {
            url,
            local_path: plan.dest.display().to_string(),
            dockerfile: cfg.dockerfile.clone(),
            install: cfg.install.clone(),
            commit,
        });
    }
    Ok(handles)
}

/// Validates every entry and works out its source and destination.
fn plan_all(cfgs: &[RepoConfig], base_dir: &Path, dest_root: &Path) -> Result<Vec<Plan>> {
    let mut plans: Vec<Plan> = Vec::with_capacity(cfgs.len());
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, cfg) in cfgs.iter().enumerate() {
        if cfg.dockerfile.is_some() {
            bail!(
                "not supported yet: repos[{i}].dockerfile on the local backend (it needs Docker)"
            );
        }
        if let Some(branch) = &cfg.branch
            && (branch.trim().is_empty() || branch.starts_with('-'))
        {
            bail!(
                "repos[{i}].branch `{branch}` is not a valid branch name; \
                     give a branch or tag name, or leave `branch` out for the default branch"
            );
        }
        let source = classify(&cfg.url, base_dir)
            .with_context(|| format!("repos[{i}].url `{}`", cfg.url))?;
        let source = match source {
            Source::Local(p) => {
                if !p.exists() {
                    bail!(
                        "repos[{i}] (`{}`): local path {} does not exist; fix the path \
                         (relative paths are resolved against the script's folder {})",
                        cfg.url,
                        p.display(),
                        base_dir.display()
                    );
                }
                if !p.is_dir() {
                    bail!(
                        "repos[{i}] (`{}`): {} is not a directory; give a repo folder",
                        cfg.url,
                        p.display()
                    );
                }
                let canon = p
                    .canonicalize()
                    .with_context(|| format!("repos[{i}]: resolving {}", p.display()))?;
                Source::Local(canon)
            }
            remote => remote,
        };
        let name = repo_name(&source).with_context(|| {
            format!(
                "repos[{i}] (`{}`): cannot tell the repo's name from it; give a URL or path \
                 that ends in the repo's name",
                cfg.url
            )
        })?;
        if let Some(&j) = by_name.get(&name) {
            bail!(
                "repos[{j}] (`{}`) and repos[{i}] (`{}`) would both go to {}; \
                 two repos cannot share a name",
                cfgs[j].url,
                cfg.url,
                dest_root.join(&name).display()
            );
        }
        by_name.insert(name.clone(), i);
        plans.push(Plan {
            index: i,
            source,
            dest: dest_root.join(name),
        });
    }
    Ok(plans)
}

/// The local folder a repo `url` names, if it names one (an ssh sandbox sends it over).
pub fn local_source(url: &str, base_dir: &Path) -> Option<PathBuf> {
    match classify(url, base_dir) {
        Ok(Source::Local(p)) => Some(p),
        _ => None,
    }
}

/// Works out what `url` refers to; see the module docs for the accepted forms.
fn classify(url: &str, base_dir: &Path) -> Result<Source> {
    let url = url.trim();
    if url.is_empty() {
        bail!("the repo url is empty; give a URL, `owner/name` or a local path");
    }
    let looks_local = url == "."
        || url == ".."
        || url == "~"
        || ["/", "./", "../", "~/"].iter().any(|p| url.starts_with(p));
    if looks_local {
        return Ok(Source::Local(resolve_local(url, base_dir)));
    }
    let lower = url.to_ascii_lowercase();
    if SCHEMES.iter().any(|s| lower.starts_with(s)) {
        return Ok(Source::Remote(url.to_string()));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        bail!(
            "unsupported URL scheme `{scheme}://`; use one of {}, `git@host:path`, \
             `owner/name` or a local path",
            SCHEMES.join(", ")
        );
    }
    if is_scp_like(url) {
        return Ok(Source::Remote(url.to_string()));
    }
    let local = base_dir.join(url);
    if local.exists() {
        return Ok(Source::Local(local));
    }
    if let Some((owner, name)) = url.split_once('/')
        && is_github_part(owner)
        && is_github_part(name)
    {
        let name = name.strip_suffix(".git").unwrap_or(name);
        return Ok(Source::Remote(format!(
            "https://github.com/{owner}/{name}.git"
        )));
    }
    bail!(
        "not a URL, an `owner/name` GitHub shorthand or an existing local path \
         (looked for {}); use e.g. `https://host/org/repo.git`, `owner/name` or `./path`",
        local.display()
    )
}

/// `~/x` → home, relative → under `base_dir`, absolute as is.
fn resolve_local(p: &str, base_dir: &Path) -> PathBuf {
    if (p == "~" || p.starts_with("~/"))
        && let Some(home) = dirs::home_dir()
    {
        return home.join(p.trim_start_matches('~').trim_start_matches('/'));
    }
    // Collecting the components drops `.` segments (`base/./x` → `base/x`).
    base_dir.join(p).components().collect()
}

/// `user@host:path`, the scp-like syntax git accepts for ssh.
fn is_scp_like(url: &str) -> bool {
    let Some((user_host, path)) = url.split_once(':') else {
        return false;
    };
    let Some((user, host)) = user_host.split_once('@') else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    ok(user) && ok(host) && !path.is_empty()
}

/// One half of a GitHub `owner/name`.
fn is_github_part(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The folder name a repo gets: the last path segment, without `.git`.
fn repo_name(source: &Source) -> Result<String> {
    let name = match source {
        Source::Local(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        Source::Remote(url) => {
            let url = url.split(['?', '#']).next().unwrap_or_default();
            let url = url.trim_end_matches('/');
            let last = url.rsplit(['/', ':']).next().unwrap_or_default();
            last.strip_suffix(".git").unwrap_or(last).to_string()
        }
    };
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        bail!("no usable repo name (got `{name}`)");
    }
    Ok(name)
}

/// Fetches one repo into `plan.dest`; returns its commit (or `""` for a plain copy).
async fn fetch(plan: &Plan, branch: Option<&str>, cancel: &CancellationToken) -> Result<String> {
    let dest = plan.dest.as_os_str().to_os_string();
    match &plan.source {
        Source::Remote(url) => {
            tracing::info!(repo = %redact_url(url), "cloning");
            let mut args: Vec<OsString> = vec!["clone".into(), "--depth".into(), "1".into()];
            if let Some(b) = branch {
                args.extend(["--branch".into(), b.into()]);
            }
            args.extend(["--".into(), url.into(), dest]);
            run_git(
                &args,
                cancel,
                "check that the URL is right and reachable, that the branch exists, and that \
                 you have access (private repos need an SSH key or a git credential helper; \
                 password prompts are disabled)",
            )
            .await?;
            head_commit(&plan.dest, cancel).await
        }
        Source::Local(path) if is_git_repo(path) => {
            tracing::info!(path = %path.display(), "cloning local repo");
            warn_if_dirty(path, cancel).await;
            let mut args: Vec<OsString> = vec!["clone".into()];
            if let Some(b) = branch {
                args.extend(["--branch".into(), b.into()]);
            }
            args.extend(["--".into(), path.as_os_str().to_os_string(), dest]);
            run_git(
                &args,
                cancel,
                "check that the branch exists in the local repo and that it is readable",
            )
            .await?;
            head_commit(&plan.dest, cancel).await
        }
        Source::Local(path) => {
            if branch.is_some() {
                bail!(
                    "{} is not a git repo, so `branch` cannot be used; remove `branch` or \
                     point `url` at a git checkout",
                    path.display()
                );
            }
            tracing::info!(path = %path.display(), "copying local folder (not a git repo)");
            copy_local(path, &plan.dest, cancel).await?;
            Ok(String::new())
        }
    }
}

/// A work tree (has `.git`) or a bare repo.
fn is_git_repo(path: &Path) -> bool {
    path.join(".git").exists() || (path.join("HEAD").is_file() && path.join("objects").is_dir())
}

/// Local clones only take committed work; say so when there is more.
async fn warn_if_dirty(path: &Path, cancel: &CancellationToken) {
    let args: Vec<OsString> = vec![
        "-C".into(),
        path.as_os_str().to_os_string(),
        "status".into(),
        "--porcelain".into(),
    ];
    if let Ok(out) = run_git(&args, cancel, "").await
        && !out.is_empty()
    {
        tracing::warn!(
            path = %path.display(),
            "the local repo has uncommitted changes; they are not part of the clone \
             (commit them to include them)"
        );
    }
}

/// `git rev-parse HEAD` in a fresh clone; `""` (with a warning) for an empty repo.
async fn head_commit(dest: &Path, cancel: &CancellationToken) -> Result<String> {
    let args: Vec<OsString> = vec![
        "-C".into(),
        dest.as_os_str().to_os_string(),
        "rev-parse".into(),
        "HEAD".into(),
    ];
    match run_git(&args, cancel, "").await {
        Ok(sha) => Ok(sha),
        Err(e) if cancel.is_cancelled() => Err(e),
        Err(e) => {
            tracing::warn!(path = %dest.display(), error = %e, "clone has no commit (empty repo?)");
            Ok(String::new())
        }
    }
}

/// Runs git without a terminal prompt; returns its trimmed stdout.
async fn run_git(args: &[OsString], cancel: &CancellationToken, hint: &str) -> Result<String> {
    let shown = show_command(args);
    tracing::debug!(command = %shown, "running git");
    let child = Command::new("git")
        .args(args)
        .envs(super::provision::command_env())
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("could not run `git`; install git and make sure it is on PATH")?;
    // On cancellation the future (and with it the child) is dropped, which kills git.
    let out = cancellable(cancel, child.wait_with_output())
        .await?
        .with_context(|| format!("waiting for `{shown}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        let mut msg = format!("`{shown}` failed ({})", out.status);
        if !stderr.is_empty() {
            msg.push_str(&format!(":\n{stderr}"));
        }
        if !hint.is_empty() {
            msg.push_str(&format!("\nhint: {hint}"));
        }
        bail!(msg);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A git command line for messages: shell-quoted, with URL credentials hidden.
fn show_command(args: &[OsString]) -> String {
    let mut parts = vec!["git".to_string()];
    for a in args {
        let a = redact_url(&a.to_string_lossy());
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,%~".contains(c));
        parts.push(if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        });
    }
    parts.join(" ")
}

/// `https://user:secret@host/x` → `https://***@host/x`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// Copies a directory tree (symlinks are recreated, not followed), off the async runtime.
async fn copy_local(src: &Path, dest: &Path, cancel: &CancellationToken) -> Result<()> {
    if let Some(Ok(dest_parent)) = dest.parent().map(Path::canonicalize)
        && dest_parent.starts_with(src)
    {
        bail!(
            "cannot copy {} into {}, which is inside it; move the repo or the workspace",
            src.display(),
            dest.display()
        );
    }
    let (src, dest, cancel) = (src.to_path_buf(), dest.to_path_buf(), cancel.clone());
    tokio::task::spawn_blocking(move || copy_tree(&src, &dest, &cancel))
        .await
        .context("the copy task failed")?
}

fn copy_tree(src: &Path, dest: &Path, cancel: &CancellationToken) -> Result<()> {
    std::fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    let entries = std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?;
    for entry in entries {
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", from.display()))?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&from)
                .with_context(|| format!("reading the link {}", from.display()))?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("creating the link {}", to.display()))?;
        } else if kind.is_dir() {
            copy_tree(&from, &to, cancel)?;
        } else if kind.is_file() {
            // Regular files only (a FIFO would block the copy), holes kept.
            crate::sandbox::sync::copy_if_changed(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        } else {
            tracing::warn!(
                "skipped {}: not a regular file, folder or link",
                from.display()
            );
        }
    }
    Ok(())
}

/// Best-effort removal of a destination this module created before failing.
fn remove_partial(dest: &Path) {
    if dest.symlink_metadata().is_ok()
        && let Err(e) = std::fs::remove_dir_all(dest)
    {
        tracing::warn!(path = %dest.display(), error = %e, "could not remove a partial clone");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command as StdCommand;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = StdCommand::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repo with `a.txt` on `main` and `b.txt` added on `feature`.
    fn make_repo(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "one"]);
        git(dir, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(dir.join("b.txt"), "b").unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "two"]);
        git(dir, &["checkout", "-q", "main"]);
    }

    fn cfg(url: &str) -> RepoConfig {
        RepoConfig {
            url: url.to_string(),
            dockerfile: None,
            install: Install::default(),
            branch: None,
        }
    }

    #[tokio::test]
    async fn clones_local_repo_by_path_and_relative_path() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("proj");
        make_repo(&src);
        let main_sha = git(&src, &["rev-parse", "main"]);
        let cancel = CancellationToken::new();

        let dest = tmp.path().join("ws1");
        let mut c = cfg(src.to_str().unwrap());
        c.install = Install::Flag(true);
        let hs = clone_repos(&[c], tmp.path(), &dest, &cancel).await.unwrap();
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].commit, main_sha);
        assert_eq!(hs[0].install, Install::Flag(true));
        assert_eq!(Path::new(&hs[0].local_path), dest.join("proj"));
        assert!(dest.join("proj/a.txt").is_file());
        assert!(!dest.join("proj/b.txt").exists());

        let dest = tmp.path().join("ws2");
        let hs = clone_repos(&[cfg("./proj")], tmp.path(), &dest, &cancel)
            .await
            .unwrap();
        assert_eq!(hs[0].commit, main_sha);
        assert_eq!(hs[0].url, src.canonicalize().unwrap().display().to_string());
    }

    #[tokio::test]
    async fn clones_file_url_with_branch() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("proj.git-src");
        make_repo(&src);
        let feature_sha = git(&src, &["rev-parse", "feature"]);
        let mut c = cfg(&format!("file://{}", src.display()));
        c.branch = Some("feature".into());
        let dest = tmp.path().join("ws");
        let hs = clone_repos(&[c], tmp.path(), &dest, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(hs[0].commit, feature_sha);
        assert_eq!(Path::new(&hs[0].local_path), dest.join("proj.git-src"));
        assert!(dest.join("proj.git-src/b.txt").is_file());
    }

    #[tokio::test]
    async fn copies_plain_local_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("code");
        std::fs::create_dir_all(src.join("pkg/sub")).unwrap();
        std::fs::write(src.join("pkg/sub/x.py"), "print(1)").unwrap();
        std::os::unix::fs::symlink("pkg/sub/x.py", src.join("link.py")).unwrap();
        let dest = tmp.path().join("ws");
        let hs = clone_repos(&[cfg("code")], tmp.path(), &dest, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(hs[0].commit, "");
        assert_eq!(
            std::fs::read_to_string(dest.join("code/pkg/sub/x.py")).unwrap(),
            "print(1)"
        );
        assert_eq!(
            std::fs::read_link(dest.join("code/link.py")).unwrap(),
            Path::new("pkg/sub/x.py")
        );
    }

    #[tokio::test]
    async fn missing_local_path_names_resolved_path() {
        let tmp = tempfile::tempdir().unwrap();
        let err = clone_repos(
            &[cfg("./nope")],
            tmp.path(),
            &tmp.path().join("ws"),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let msg = format!("{err:#}");
        let looked_at = format!(
            "local path {} does not exist",
            tmp.path().join("nope").display()
        );
        assert!(msg.contains(&looked_at), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[tokio::test]
    async fn bad_remote_reports_git_stderr_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("ws");
        let err = clone_repos(
            &[cfg("file:///nonexistent")],
            tmp.path(),
            &dest,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("git clone --depth 1 -- file:///nonexistent"),
            "{msg}"
        );
        assert!(
            msg.contains("does not appear to be a git repository"),
            "{msg}"
        );
        assert!(msg.contains("hint:"), "{msg}");
        assert!(!dest.join("nonexistent").exists());
    }

    #[tokio::test]
    async fn cancelled_before_start() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("proj");
        make_repo(&src);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let dest = tmp.path().join("ws");
        let err = clone_repos(&[cfg("./proj")], tmp.path(), &dest, &cancel)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "cancelled");
        assert!(!dest.join("proj").exists());
    }

    #[test]
    fn classification() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("local/thing")).unwrap();
        let remote = |s: &str| Source::Remote(s.to_string());
        assert_eq!(
            classify("owner/name", base).unwrap(),
            remote("https://github.com/owner/name.git")
        );
        assert_eq!(
            classify("owner/name.git", base).unwrap(),
            remote("https://github.com/owner/name.git")
        );
        assert_eq!(
            classify("local/thing", base).unwrap(),
            Source::Local(base.join("local/thing"))
        );
        assert_eq!(
            classify("./x", base).unwrap(),
            Source::Local(base.join("x"))
        );
        assert_eq!(
            classify("/abs/x", base).unwrap(),
            Source::Local("/abs/x".into())
        );
        for url in [
            "https://github.com/a/b",
            "HTTP://h/x.git",
            "ssh://git@h/x.git",
            "git://h/x",
            "file:///tmp/x",
            "git@github.com:owner/name.git",
        ] {
            assert_eq!(classify(url, base).unwrap(), remote(url), "{url}");
        }
        for bad in [
            "",
            "a/b/c",
            "name",
            "ftp://h/x",
            "own er/name",
            "a/..",
            "-x/y",
        ] {
            assert!(classify(bad, base).is_err(), "{bad:?} should be rejected");
        }
        let msg = classify("ftp://h/x", base).unwrap_err().to_string();
        assert!(msg.contains("unsupported URL scheme `ftp://`"), "{msg}");
    }

    #[test]
    fn names_and_redaction() {
        let name = |s: &str| repo_name(&Source::Remote(s.into())).unwrap();
        assert_eq!(name("https://github.com/o/repo.git"), "repo");
        assert_eq!(name("https://github.com/o/repo/"), "repo");
        assert_eq!(name("git@h:o/repo.git"), "repo");
        assert_eq!(name("git@h:repo"), "repo");
        assert!(repo_name(&Source::Remote("file:///".into())).is_err());
        assert_eq!(redact_url("https://u:tok@h/x"), "https://***@h/x");
        assert_eq!(redact_url("https://h/x@y"), "https://h/x@y");
        assert_eq!(
            show_command(&["clone".into(), "a b".into(), "it's".into()]),
            r"git clone 'a b' 'it'\''s'"
        );
    }

    #[tokio::test]
    async fn duplicate_names_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/lib")).unwrap();
        std::fs::create_dir_all(tmp.path().join("b/lib")).unwrap();
        let err = clone_repos(
            &[cfg("./a/lib"), cfg("./b/lib")],
            tmp.path(),
            &tmp.path().join("ws"),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("repos[0] (`./a/lib`)"), "{msg}");
        assert!(msg.contains("repos[1] (`./b/lib`)"), "{msg}");
        assert!(
            !tmp.path().join("ws").exists(),
            "nothing fetched before validation"
        );
    }

    #[tokio::test]
    async fn dockerfile_not_supported() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = cfg("owner/name");
        c.dockerfile = Some("Dockerfile".into());
        let err = clone_repos(&[c], tmp.path(), tmp.path(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "not supported yet: repos[0].dockerfile on the local backend (it needs Docker)"
        );
    }

    #[tokio::test]
    async fn existing_destination_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("code")).unwrap();
        std::fs::create_dir_all(tmp.path().join("ws/code")).unwrap();
        let err = clone_repos(
            &[cfg("./code")],
            tmp.path(),
            &tmp.path().join("ws"),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn install_deserialization() {
        let parse = |s: &str| serde_json::from_str::<Install>(s);
        assert_eq!(parse("true").unwrap(), Install::Flag(true));
        assert_eq!(parse("false").unwrap(), Install::Flag(false));
        assert_eq!(
            parse(r#""pip install -e .""#).unwrap(),
            Install::Command("pip install -e .".into())
        );
        let err = parse("5").unwrap_err().to_string();
        assert!(
            err.contains("`install` must be true, false or a shell command string"),
            "{err}"
        );
        let c: RepoConfig = serde_json::from_str(r#"{"url": "o/n"}"#).unwrap();
        assert_eq!(c.install, Install::Flag(false));
        assert!(serde_json::from_str::<RepoConfig>(r#"{"url": "o/n", "x": 1}"#).is_err());
    }
}
