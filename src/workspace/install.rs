//! Installing a workspace: libraries into the libraries folder, skills under
//! `<workspace>/.claude/skills/`, local files and folders into the workspace. Everything is
//! checked before anything is written, only changed files are rewritten, and a manifest
//! records what was installed so the next install removes what is no longer configured.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::constructors::{cannot_read, dir_name, resolve};
use super::names::{check_module_name, check_skill_name};
use super::skill_md::parse_front_matter;
use super::{Installed, Library, LibrarySource, ModelSpec, Skill, WorkspaceConfig, tokenizer_var};
use crate::python_syntax::is_module_name;
use crate::sandbox::fsutil::copy_dest;
use crate::sandbox::seer_paths::from_seer;
use crate::sandbox::sync::{
    SyncOpts, copy_if_changed, remove_any, sync_dir, write_if_changed, write_private_if_changed,
};

/// Written into the libraries folder: what the last install put where, so the next one can
/// remove what is no longer configured.
const MANIFEST: &str = ".seer-workspace.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    modules: Vec<String>,
    skills_dir: Option<PathBuf>,
    skills: Vec<String>,
}

/// A skill to install: a folder copied as it is, or a rendered `SKILL.md`.
struct PlannedSkill {
    name: String,
    origin: String,
    content: SkillContent,
}

enum SkillContent {
    Folder(PathBuf),
    Rendered(String),
}

/// A local file or folder to copy into the workspace.
struct PlannedCopy {
    from: PathBuf,
    to: PathBuf,
    is_dir: bool,
}

/// [`install`] into a sandbox: libraries into its `libraries/`, skills and files into
/// `workspace_dir` (a folder of the sandbox). A sandbox on another machine gets the
/// workspace installed into a local staging folder first, then uploaded to the same places.
pub fn install_into(
    sandbox: &dyn crate::sandbox::Sandbox,
    ws: &WorkspaceConfig,
    workspace_dir: &Path,
    base_dir: &Path,
) -> Result<Installed> {
    let info = sandbox.info();
    let libraries = info.dir.join("libraries");
    let Some(stage) = sandbox.staging_dir() else {
        return install(ws, &libraries, workspace_dir, base_dir);
    };
    let rel = workspace_dir.strip_prefix(&info.dir).map_err(|_| {
        anyhow::anyhow!(
            "not supported yet: a session folder outside the sandbox ({}) on a sandbox on another machine",
            workspace_dir.display()
        )
    })?;
    let (stage_libs, stage_ws) = (stage.join("libraries"), stage.join(rel));
    let mut installed = install(ws, &stage_libs, &stage_ws, base_dir)?;
    sandbox.upload(&stage_libs, &libraries)?;
    sandbox.upload(&stage_ws, workspace_dir)?;
    installed.libraries_dir = libraries;
    Ok(installed)
}

/// Writes the workspace to disk: libraries into `libraries_dir`, skills into
/// `workspace_dir/.claude/skills/`, local files and folders into `workspace_dir`.
/// Relative host paths are taken from `base_dir` (the script's folder). See the module
/// docs for what a repeated install does.
pub fn install(
    ws: &WorkspaceConfig,
    libraries_dir: &Path,
    workspace_dir: &Path,
    base_dir: &Path,
) -> Result<Installed> {
    let libraries_dir = std::path::absolute(libraries_dir)
        .with_context(|| format!("resolving the libraries folder {}", libraries_dir.display()))?;
    let workspace_dir = std::path::absolute(workspace_dir)
        .with_context(|| format!("resolving the workspace folder {}", workspace_dir.display()))?;

    // Check everything before writing anything.
    check_libraries(&ws.libraries)?;
    let skills = plan_skills(ws, base_dir)?;
    let copies = plan_copies(ws, base_dir, &workspace_dir)?;

    fs::create_dir_all(&workspace_dir).with_context(|| {
        format!(
            "creating the workspace folder {}; check that its parent is writable",
            workspace_dir.display()
        )
    })?;
    fs::create_dir_all(&libraries_dir).with_context(|| {
        format!(
            "creating the libraries folder {}; check that its parent is writable",
            libraries_dir.display()
        )
    })?;
    let manifest_path = libraries_dir.join(MANIFEST);
    let old: Manifest = fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();

    let mut changed_modules = vec![];
    for lib in &ws.libraries {
        if install_library(lib, &libraries_dir)
            .with_context(|| format!("installing library `{}`", lib.name))?
        {
            changed_modules.push(lib.name.clone());
        }
    }
    let mut modules: Vec<String> = ws.libraries.iter().map(|l| l.name.clone()).collect();
    // Sibling modules a library file imports come with it (a toolkit module mounted alone
    // needs `model_layout`, `prompts`, ...), unless the workspace mounts one of that name.
    for lib in &ws.libraries {
        for (name, code) in companions(lib) {
            if modules.contains(&name) {
                continue;
            }
            let path = libraries_dir.join(format!("{name}.py"));
            if write_if_changed(&path, code.as_bytes()).with_context(|| {
                format!("installing `{name}`, which library `{}` imports", lib.name)
            })? {
                remove_module_bytecode(&libraries_dir, &name)?;
                changed_modules.push(name.clone());
            }
            modules.push(name);
        }
    }
    let mut removed_modules = vec![];
    for name in &old.modules {
        if !modules.contains(name) && is_module_name(name) && remove_module(&libraries_dir, name)? {
            removed_modules.push(name.clone());
        }
    }

    let skills_dir = workspace_dir.join(".claude").join("skills");
    for skill in &skills {
        install_skill(skill, &skills_dir)
            .with_context(|| format!("installing skill `{}` from {}", skill.name, skill.origin))?;
    }
    let skill_names: Vec<String> = skills.iter().map(|s| s.name.clone()).collect();
    if old.skills_dir.as_deref() == Some(skills_dir.as_path()) {
        for name in &old.skills {
            if !skill_names.contains(name) && check_skill_name(name, "").is_ok() {
                remove_any(&skills_dir.join(name))?;
            }
        }
    }

    let mut files_copied = 0;
    for c in &copies {
        files_copied += if c.is_dir {
            let opts = SyncOpts {
                prune: false,
                skip_bytecode: false,
                exclude: fs::canonicalize(&workspace_dir).ok(),
                copy_links: false,
            };
            sync_dir(&c.from, &c.to, &opts)?
        } else {
            if let Some(parent) = c.to.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            usize::from(copy_if_changed(&c.from, &c.to)?)
        };
    }

    let manifest = Manifest {
        modules: modules.clone(),
        skills_dir: Some(skills_dir),
        skills: skill_names.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).context("serializing the install record")?;
    write_if_changed(&manifest_path, &json)?;

    Ok(Installed {
        libraries_dir,
        modules,
        changed_modules,
        removed_modules,
        skills: skill_names,
        files_copied,
    })
}

fn check_libraries(libs: &[Library]) -> Result<()> {
    let mut seen: HashMap<&str, &Library> = HashMap::new();
    for lib in libs {
        check_module_name(&lib.name, &format!("library from {}", lib.origin()))?;
        if let Some(other) = seen.insert(&lib.name, lib) {
            bail!(
                "two libraries are both named `{}`: {} and {}; rename one (a library's name is \
                 the module name it is imported by)",
                lib.name,
                other.origin(),
                lib.origin()
            );
        }
    }
    Ok(())
}

fn plan_skills(ws: &WorkspaceConfig, base_dir: &Path) -> Result<Vec<PlannedSkill>> {
    let mut planned = vec![];
    for skill in &ws.skills {
        check_skill_name(&skill.name, "skill")?;
        let (origin, content) = match &skill.dir {
            Some(dir) => (
                format!("the folder {}", dir.display()),
                SkillContent::Folder(dir.clone()),
            ),
            None => (
                "an inline skill".to_string(),
                SkillContent::Rendered(skill.render()),
            ),
        };
        planned.push(PlannedSkill {
            name: skill.name.clone(),
            origin,
            content,
        });
    }
    for entry in &ws.skill_dirs {
        let dir = resolve(base_dir, Path::new(entry));
        if !dir.is_dir() {
            bail!(
                "skill_dirs entry `{entry}` ({}) is not a folder; check the path (a relative \
                 path is taken from the script's folder)",
                dir.display()
            );
        }
        let mut found = vec![];
        if dir.join("SKILL.md").is_file() {
            found.push(dir.clone());
        } else {
            let mut subdirs: Vec<PathBuf> = fs::read_dir(&dir)
                .with_context(|| format!("reading the skill folder {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("SKILL.md").is_file())
                .collect();
            subdirs.sort();
            found.extend(subdirs);
        }
        if found.is_empty() {
            bail!(
                "skill_dirs entry `{entry}` ({}) has no skills: none of its subfolders has a \
                 `SKILL.md`",
                dir.display()
            );
        }
        for d in found {
            let skill = Skill::from_dir(base_dir, &d)?;
            planned.push(PlannedSkill {
                name: skill.name,
                origin: format!("the folder {} (from skill_dirs)", d.display()),
                content: SkillContent::Folder(d),
            });
        }
    }
    for lib in &ws.libraries {
        if let LibrarySource::SkillDir { path, skill_md, .. } = &lib.source {
            let fresh = fs::read_to_string(path.join("SKILL.md")).ok();
            let md = fresh.as_deref().unwrap_or(skill_md);
            let name = parse_front_matter(md)
                .ok()
                .flatten()
                .and_then(|f| f.name)
                .or_else(|| dir_name(path))
                .unwrap_or_else(|| lib.name.clone());
            check_skill_name(&name, &format!("skill library {}", path.display()))?;
            let content = if path.is_dir() {
                SkillContent::Folder(path.clone())
            } else {
                SkillContent::Rendered(skill_md.clone())
            };
            planned.push(PlannedSkill {
                name,
                origin: format!("the skill library {}", path.display()),
                content,
            });
        }
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for s in &planned {
        if let Some(other) = seen.insert(&s.name, &s.origin) {
            bail!(
                "two skills are both named `{}`: {} and {}; rename one (the `name:` in its \
                 SKILL.md)",
                s.name,
                other,
                s.origin
            );
        }
    }
    Ok(planned)
}

/// The local files and folders to copy, checked; destinations are placed by
/// [`copy_dest`] after [`from_seer`] (Seer's `/root/x` is the workspace's `x`).
fn plan_copies(
    ws: &WorkspaceConfig,
    base_dir: &Path,
    workspace_dir: &Path,
) -> Result<Vec<PlannedCopy>> {
    let mut copies = vec![];
    for (kind, list, want_dir) in [
        ("local_files", &ws.local_files, false),
        ("local_dirs", &ws.local_dirs, true),
    ] {
        for (src, dst) in list {
            let from = resolve(base_dir, Path::new(src));
            let meta = fs::metadata(&from)
                .with_context(|| cannot_read(&format!("{kind} entry"), Path::new(src), &from))?;
            if meta.is_dir() != want_dir {
                if want_dir {
                    bail!("local_dirs entry `{src}` is a file; list it under local_files instead");
                }
                bail!("local_files entry `{src}` is a folder; list it under local_dirs instead");
            }
            let file = (!want_dir).then_some(from.as_path());
            // Seer's `/root/x` and `/workspace/x` are the workspace's `x`, as for a sandbox.
            let dst = from_seer(workspace_dir, dst);
            let to = copy_dest(workspace_dir, &dst, file)
                .with_context(|| format!("{kind} entry `{src}`"))?;
            copies.push(PlannedCopy {
                from,
                to,
                is_dir: want_dir,
            });
        }
    }
    Ok(copies)
}

/// The plain module names `code` imports (`import x`, `from x import ...`, at any
/// indentation, so the `try:`/`except ImportError:` fallbacks count).
fn imported_names(code: &str) -> Vec<String> {
    let mut out = vec![];
    for line in code.lines() {
        let l = line.trim_start();
        let name = if let Some(rest) = l.strip_prefix("from ") {
            rest.split_whitespace().next()
        } else if let Some(rest) = l.strip_prefix("import ") {
            rest.split([' ', ',']).next()
        } else {
            None
        };
        if let Some(n) = name
            && crate::python_syntax::is_identifier(n)
            && !out.iter().any(|o: &String| o == n)
        {
            out.push(n.to_string());
        }
    }
    out
}

/// The sibling modules a single-file library imports, transitively: `(name, code)` of
/// each `x.py` beside the file, or (for a toolkit module, shipped or from a `toolkit/`
/// folder that lacks it) of the shipped `toolkit/x.py`.
fn companions(lib: &Library) -> Vec<(String, String)> {
    let (dir, code): (Option<&Path>, String) = match &lib.source {
        LibrarySource::File { path, code } => (
            path.parent(),
            fs::read_to_string(path).unwrap_or_else(|_| code.clone()),
        ),
        LibrarySource::ToolkitModule { file } => (
            None,
            crate::toolkit::file(file).unwrap_or_default().to_string(),
        ),
        _ => return vec![],
    };
    let in_toolkit = match &lib.source {
        LibrarySource::ToolkitModule { .. } => true,
        _ => dir.and_then(Path::file_name) == Some(std::ffi::OsStr::new(crate::toolkit::PACKAGE)),
    };
    let lookup = |name: &str| -> Option<String> {
        let file = format!("{name}.py");
        if let Some(d) = dir
            && let Ok(text) = fs::read_to_string(d.join(&file))
        {
            return Some(text);
        }
        in_toolkit
            .then(|| crate::toolkit::file(&file).map(str::to_string))
            .flatten()
    };
    let mut out: Vec<(String, String)> = vec![];
    let mut queue = imported_names(&code);
    while let Some(name) = queue.pop() {
        if name == lib.name || out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if let Some(text) = lookup(&name) {
            queue.extend(imported_names(&text));
            out.push((name, text));
        }
    }
    out.sort();
    out
}

/// Writes one library; true when something on disk changed.
fn install_library(lib: &Library, dir: &Path) -> Result<bool> {
    let file = dir.join(format!("{}.py", lib.name));
    let package = dir.join(&lib.name);
    let mut changed = false;
    match &lib.source {
        LibrarySource::File { path, code } => {
            let text = fresh_or_snapshot(path, code)?;
            changed |= remove_any(&package)?;
            changed |= write_if_changed(&file, text.as_bytes())?;
        }
        LibrarySource::SkillDir { path, code, .. } => {
            let text = fresh_or_snapshot(&path.join("code.py"), code)?;
            changed |= remove_any(&package)?;
            changed |= write_if_changed(&file, text.as_bytes())?;
        }
        LibrarySource::Code { code } => {
            // Generated code (a scoped client module holds its RPC token): owner-only.
            changed |= remove_any(&package)?;
            changed |= write_private_if_changed(&file, code.as_bytes())?;
        }
        LibrarySource::Directory { path } => {
            if !path.join("__init__.py").is_file() {
                bail!(
                    "its package folder {} is gone or has no `__init__.py`; restore it or \
                     remove the library from the workspace",
                    path.display()
                );
            }
            changed |= remove_any(&file)?;
            let opts = SyncOpts {
                prune: true,
                skip_bytecode: true,
                exclude: None,
                copy_links: false,
            };
            changed |= sync_dir(path, &package, &opts)? > 0;
            if changed {
                remove_pycache_dirs(&package)?;
            }
        }
        LibrarySource::ToolkitModule { file: shipped } => {
            let text = crate::toolkit::file(shipped)
                .with_context(|| format!("seer ships no toolkit/{shipped}"))?;
            changed |= remove_any(&package)?;
            changed |= write_if_changed(&file, text.as_bytes())?;
        }
        LibrarySource::Toolkit {} => {
            changed |= remove_any(&file)?;
            changed |= install_shipped_package(crate::toolkit::FILES, &package)?;
            if changed {
                remove_pycache_dirs(&package)?;
            }
        }
    }
    if changed {
        remove_module_bytecode(dir, &lib.name)?;
    }
    Ok(changed)
}

/// Writes a package given as `(file name, text)` pairs into `package`, deleting anything
/// else there (bytecode caches aside); true when something on disk changed.
fn install_shipped_package(files: &[(&str, &str)], package: &Path) -> Result<bool> {
    let mut changed = false;
    if fs::symlink_metadata(package).is_ok_and(|m| !m.is_dir()) {
        changed |= remove_any(package)?;
    }
    fs::create_dir_all(package).with_context(|| format!("creating {}", package.display()))?;
    for entry in fs::read_dir(package).with_context(|| format!("reading {}", package.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let keep = name == "__pycache__" || files.iter().any(|(n, _)| name == *n);
        if !keep {
            changed |= remove_any(&entry.path())?;
        }
    }
    for (name, text) in files {
        changed |= write_if_changed(&package.join(name), text.as_bytes())?;
    }
    Ok(changed)
}

/// The file's current text, or `snapshot` when the file is gone.
fn fresh_or_snapshot(path: &Path, snapshot: &str) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "{} is gone; installing the copy read when the library was made",
                path.display()
            );
            Ok(snapshot.to_string())
        }
        Err(e) => Err(e)
            .with_context(|| format!("reading {}; it must be readable UTF-8 text", path.display())),
    }
}

/// Removes an installed module (file or package); true when something was there.
fn remove_module(dir: &Path, name: &str) -> Result<bool> {
    let a = remove_any(&dir.join(format!("{name}.py")))?;
    let b = remove_any(&dir.join(name))?;
    remove_module_bytecode(dir, name)?;
    Ok(a || b)
}

/// Removes `dir/__pycache__/<name>.*.pyc`: a rewrite within the same second with the same
/// size would otherwise leave Python using stale bytecode.
fn remove_module_bytecode(dir: &Path, name: &str) -> Result<()> {
    let cache = dir.join("__pycache__");
    let Ok(entries) = fs::read_dir(&cache) else {
        return Ok(());
    };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".pyc") {
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}

fn remove_pycache_dirs(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if entry.file_name() == "__pycache__" {
                remove_any(&path)?;
            } else {
                remove_pycache_dirs(&path)?;
            }
        }
    }
    Ok(())
}

fn install_skill(skill: &PlannedSkill, skills_dir: &Path) -> Result<()> {
    let dest = skills_dir.join(&skill.name);
    match &skill.content {
        SkillContent::Folder(src) => {
            if !src.is_dir() {
                bail!(
                    "the skill folder {} is gone; restore it or remove the skill from the \
                     workspace",
                    src.display()
                );
            }
            let opts = SyncOpts {
                prune: true,
                skip_bytecode: true,
                exclude: None,
                copy_links: false,
            };
            sync_dir(src, &dest, &opts)?;
        }
        SkillContent::Rendered(text) => {
            if fs::symlink_metadata(&dest).is_ok_and(|m| !m.is_dir()) {
                remove_any(&dest)?;
            }
            fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
            write_if_changed(&dest.join("SKILL.md"), text.as_bytes())?;
            for entry in
                fs::read_dir(&dest).with_context(|| format!("reading {}", dest.display()))?
            {
                let entry = entry?;
                if entry.file_name() != "SKILL.md" {
                    remove_any(&entry.path())?;
                }
            }
        }
    }
    Ok(())
}

/// Rejects library names that the model variables would overwrite in the kernel.
pub fn check_conflicts(ws: &WorkspaceConfig, models: &[ModelSpec]) -> Result<()> {
    if !ws.preload_models {
        return Ok(());
    }
    for m in models {
        let vars = [m.handle.var_name.clone(), tokenizer_var(&m.handle.var_name)];
        for lib in &ws.libraries {
            if vars.contains(&lib.name) {
                bail!(
                    "library `{}` has the same name as the variable `{}` of a model; rename the \
                     library or change the model's var_name",
                    lib.name,
                    lib.name
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod tests;
