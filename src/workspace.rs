//! Workspaces: what a notebook session mounts into its kernel.
//!
//! A workspace gathers
//! - **libraries**: Python modules the agent can `import` (a `.py` file, a package folder,
//!   inline code, or a *skill library*: a folder with `code.py` plus `SKILL.md`);
//! - **skills**: `SKILL.md` folders for Claude-style agents, installed under
//!   `<workspace>/.claude/skills/<name>/`;
//! - **local files and folders** copied from the host into the workspace;
//! - **custom init code** run in the kernel after everything else;
//! - whether the configured **models** are preloaded into the kernel.
//!
//! The flow is: build [`Library`] / [`Skill`] values with their constructors (relative
//! paths are taken from the script's folder), put them in a [`WorkspaceConfig`], pair the
//! resolved models with their `load_as_peft` flags ([`ModelSpec::from_resolved`]), call
//! [`check_conflicts`] and [`install`], then run [`init_code`] hidden in a fresh kernel and
//! give the agent [`model_info_text`] (which includes [`library_docs`]).
//!
//! [`install`] is idempotent: it rewrites only files whose content changed, removes the
//! libraries and skills a previous install put there that are no longer configured, and
//! reports which library modules changed, so a hot reload can re-install and then run
//! [`reload_code`] for [`Installed::changed_modules`].
//!
//! Generated Python embeds every string through [`py_str`], so any model name, path or
//! code is safe to embed.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::sandbox::models::{ModelConfig, ModelHandle};

fn yes() -> bool {
    true
}

/// The `workspace` section of a script.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// Python modules installed into the libraries folder and imported at kernel start.
    #[serde(default)]
    pub libraries: Vec<Library>,
    /// Skills installed under `<workspace>/.claude/skills/`.
    #[serde(default)]
    pub skills: Vec<Skill>,
    /// Folders whose subfolders with a `SKILL.md` are each a skill (a folder that itself
    /// has a `SKILL.md` is one skill). Relative to the script's folder.
    #[serde(default)]
    pub skill_dirs: Vec<String>,
    /// `(host folder, destination in the workspace)`: copied recursively, merged into
    /// what is there.
    #[serde(default)]
    pub local_dirs: Vec<(String, String)>,
    /// `(host file, destination in the workspace)`; a destination ending in `/` (or `.`)
    /// is a folder that receives the file under its own name.
    #[serde(default)]
    pub local_files: Vec<(String, String)>,
    /// Python run in the kernel after the libraries are imported and the models loaded.
    #[serde(default)]
    pub custom_init_code: Option<String>,
    /// Load every configured model in the kernel before the agent starts.
    #[serde(default = "yes")]
    pub preload_models: bool,
    /// Hide hidden models while loading: their names and paths are masked in the loaded
    /// objects and loading prints nothing that could reveal them.
    #[serde(default = "yes")]
    pub hidden_model_loading: bool,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            libraries: vec![],
            skills: vec![],
            skill_dirs: vec![],
            local_dirs: vec![],
            local_files: vec![],
            custom_init_code: None,
            preload_models: true,
            hidden_model_loading: true,
        }
    }
}

/// A Python module for the kernel. `name` is the module name (`import name`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Library {
    pub name: String,
    pub source: LibrarySource,
    /// The module docstring (may be empty); shown to the agent by [`library_docs`].
    #[serde(default)]
    pub docs: String,
}

/// Where a library comes from. `code` and `skill_md` are snapshots taken when the library
/// was made; [`install`] reads the files at `path` again (so edits are picked up) and
/// falls back to the snapshot only when the file is gone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LibrarySource {
    /// A single `.py` file.
    File { path: PathBuf, code: String },
    /// A package folder with `__init__.py`, copied whole.
    Directory { path: PathBuf },
    /// Inline source.
    Code { code: String },
    /// A folder with `code.py` (the module) and `SKILL.md` (installed as a skill too).
    SkillDir {
        path: PathBuf,
        code: String,
        skill_md: String,
    },
    /// The `toolkit` package shipped inside seer ([`crate::toolkit::FILES`]).
    Toolkit {},
}

/// A skill for Claude-style agents. With `dir`, the whole folder is installed as it is on
/// disk; without, a `SKILL.md` is written from `name`, `description` and `body`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Skill {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// A model for the kernel: the resolved handle plus the one loading option that
/// [`ModelHandle`] does not carry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelSpec {
    pub handle: ModelHandle,
    /// For a PEFT adapter: keep it a `peft.PeftModel` instead of merging it into the base.
    pub load_as_peft: bool,
}

impl ModelSpec {
    pub fn new(handle: ModelHandle, load_as_peft: bool) -> Self {
        ModelSpec {
            handle,
            load_as_peft,
        }
    }

    /// Pairs the handles `resolve_models` returned with the configs they came from (same
    /// order, same length).
    pub fn from_resolved(handles: &[ModelHandle], cfgs: &[ModelConfig]) -> Result<Vec<Self>> {
        if handles.len() != cfgs.len() {
            bail!(
                "internal error: {} resolved models for {} configured ones; resolve the \
                 models again from the same list",
                handles.len(),
                cfgs.len()
            );
        }
        handles
            .iter()
            .zip(cfgs)
            .map(|(h, c)| {
                if h.var_name != c.var_name {
                    bail!(
                        "internal error: resolved model `{}` does not match the configured \
                         var_name `{}`; pass the handles in the order of the configs",
                        h.var_name,
                        c.var_name
                    );
                }
                Ok(ModelSpec::new(h.clone(), c.load_as_peft))
            })
            .collect()
    }
}

impl From<ModelHandle> for ModelSpec {
    fn from(handle: ModelHandle) -> Self {
        ModelSpec::new(handle, false)
    }
}

/// Options for [`init_code`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// The kernel has CUDA: models are loaded with `device_map="auto"` (needs `accelerate`).
    pub cuda: bool,
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Absolute path of the folder the kernel puts first on `sys.path`.
    pub libraries_dir: PathBuf,
    /// Every library module, in configuration order.
    pub modules: Vec<String>,
    /// Modules whose files were written or changed by this install (all of them the first
    /// time); reload these with [`reload_code`].
    pub changed_modules: Vec<String>,
    /// Modules a previous install put there that are no longer configured; now deleted.
    pub removed_modules: Vec<String>,
    /// Names of the installed skills (folders under `<workspace>/.claude/skills/`).
    pub skills: Vec<String>,
    /// Local files written by this install (unchanged files are not rewritten or counted).
    pub files_copied: usize,
}

// ---------------------------------------------------------------------------------------
// Constructors

/// `p` taken relative to `base_dir`, made absolute.
fn resolve(base_dir: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

fn cannot_read(what: &str, given: &Path, path: &Path) -> String {
    format!(
        "{what} `{}` ({}) cannot be read; check the path (a relative path is taken from the \
         script's folder)",
        given.display(),
        path.display()
    )
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    fs::read_to_string(path)
        .with_context(|| format!("reading {what} {}; it must be UTF-8 text", path.display()))
}

/// The last component of a folder path (resolving `..` through the file system if needed).
fn dir_name(path: &Path) -> Option<String> {
    if let Some(n) = path.file_name() {
        return n.to_str().map(str::to_string);
    }
    fs::canonicalize(path)
        .ok()?
        .file_name()?
        .to_str()
        .map(str::to_string)
}

impl Library {
    /// A single `.py` file; the module name is the file stem.
    pub fn from_file(base_dir: &Path, path: impl AsRef<Path>) -> Result<Library> {
        let given = path.as_ref();
        let path = resolve(base_dir, given);
        if !path.exists()
            && let Some((file, code)) = crate::toolkit::shipped(given)
            && let Some(name) = file.strip_suffix(".py")
        {
            // `toolkit/<module>.py` with no such file here: the copy shipped in seer.
            return Ok(Library {
                name: name.to_string(),
                docs: extract_docstring(code),
                source: LibrarySource::Code {
                    code: code.to_string(),
                },
            });
        }
        let meta =
            fs::metadata(&path).with_context(|| cannot_read("library file", given, &path))?;
        if meta.is_dir() {
            bail!(
                "library file {} is a folder; load a package folder (with `__init__.py`) as a \
                 library directory, or a folder with `code.py` and `SKILL.md` as a skill library",
                path.display()
            );
        }
        if path.extension().and_then(|e| e.to_str()) != Some("py") {
            bail!(
                "library file {} is not a Python file; a library file must end in `.py`",
                path.display()
            );
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        check_module_name(&name, &format!("library file {}", path.display()))?;
        let code = read_text(&path, "library file")?;
        Ok(Library {
            name,
            docs: extract_docstring(&code),
            source: LibrarySource::File { path, code },
        })
    }

    /// A package folder (it must have `__init__.py`); the module name is the folder name.
    pub fn from_directory(base_dir: &Path, path: impl AsRef<Path>) -> Result<Library> {
        let given = path.as_ref();
        let path = resolve(base_dir, given);
        let names_toolkit = given
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str())
            .eq([std::ffi::OsStr::new(crate::toolkit::PACKAGE)]);
        if names_toolkit && !path.exists() {
            return Ok(Library::toolkit());
        }
        let meta =
            fs::metadata(&path).with_context(|| cannot_read("library directory", given, &path))?;
        if !meta.is_dir() {
            bail!(
                "library directory {} is not a folder; load a single `.py` file as a library \
                 file instead",
                path.display()
            );
        }
        let init = path.join("__init__.py");
        if !init.is_file() {
            bail!(
                "library directory {} is not a Python package: it has no `__init__.py`; add \
                 one (it may be empty)",
                path.display()
            );
        }
        let name = dir_name(&path).unwrap_or_default();
        check_module_name(&name, &format!("library directory {}", path.display()))?;
        let docs = extract_docstring(&read_text(&init, "package file")?);
        Ok(Library {
            name,
            docs,
            source: LibrarySource::Directory { path },
        })
    }

    /// The interpretability toolkit shipped inside seer, importable as the package
    /// `toolkit` (`toolkit.extract_activations`, `toolkit.steering_hook`, ...). Its docs are
    /// the package docstring, which lists every function.
    pub fn toolkit() -> Library {
        Library {
            name: crate::toolkit::PACKAGE.to_string(),
            docs: extract_docstring(crate::toolkit::file("__init__.py").unwrap_or_default()),
            source: LibrarySource::Toolkit {},
        }
    }

    /// Inline source, importable as `name`.
    pub fn from_code(name: impl Into<String>, code: impl Into<String>) -> Result<Library> {
        let name = name.into();
        let code = code.into();
        check_module_name(&name, "library from code")?;
        Ok(Library {
            name,
            docs: extract_docstring(&code),
            source: LibrarySource::Code { code },
        })
    }

    /// A folder with `code.py` and `SKILL.md`. The module name is the `name:` of the
    /// SKILL.md front matter (else the folder name) with `-` turned into `_`; the docs are
    /// the docstring of `code.py`, else the skill's description.
    pub fn from_skill_dir(base_dir: &Path, path: impl AsRef<Path>) -> Result<Library> {
        let given = path.as_ref();
        let path = resolve(base_dir, given);
        let meta =
            fs::metadata(&path).with_context(|| cannot_read("skill library", given, &path))?;
        if !meta.is_dir() {
            bail!(
                "skill library {} is not a folder; a skill library is a folder with `code.py` \
                 (the module) and `SKILL.md` (its instructions)",
                path.display()
            );
        }
        for file in ["SKILL.md", "code.py"] {
            if !path.join(file).is_file() {
                bail!(
                    "skill library {} has no `{file}`; a skill library is a folder with \
                     `code.py` (the module) and `SKILL.md` (its instructions)",
                    path.display()
                );
            }
        }
        let skill_md = read_text(&path.join("SKILL.md"), "skill file")?;
        let code = read_text(&path.join("code.py"), "skill library code")?;
        let fm = parse_front_matter(&skill_md)
            .with_context(|| format!("skill library {}: reading SKILL.md", path.display()))?;
        let skill_name = fm
            .as_ref()
            .and_then(|f| f.name.clone())
            .or_else(|| dir_name(&path))
            .unwrap_or_default();
        let name = skill_name.replace('-', "_");
        check_module_name(
            &name,
            &format!(
                "skill library {} (module name from its skill name `{skill_name}`)",
                path.display()
            ),
        )?;
        let mut docs = extract_docstring(&code);
        if docs.is_empty() {
            docs = fm.and_then(|f| f.description).unwrap_or_default();
        }
        Ok(Library {
            name,
            docs,
            source: LibrarySource::SkillDir {
                path,
                code,
                skill_md,
            },
        })
    }

    /// Describes where the library comes from, for messages.
    fn origin(&self) -> String {
        match &self.source {
            LibrarySource::File { path, .. } => format!("the file {}", path.display()),
            LibrarySource::Directory { path } => format!("the package {}", path.display()),
            LibrarySource::Code { .. } => "inline code".to_string(),
            LibrarySource::SkillDir { path, .. } => {
                format!("the skill library {}", path.display())
            }
            LibrarySource::Toolkit {} => "the toolkit shipped with seer".to_string(),
        }
    }
}

impl Skill {
    /// A skill folder with a `SKILL.md` that starts with front matter naming it:
    /// `---\nname: my-skill\ndescription: ...\n---\nbody`.
    pub fn from_dir(base_dir: &Path, path: impl AsRef<Path>) -> Result<Skill> {
        let given = path.as_ref();
        let path = resolve(base_dir, given);
        let meta =
            fs::metadata(&path).with_context(|| cannot_read("skill folder", given, &path))?;
        if !meta.is_dir() {
            bail!(
                "skill {} is not a folder; a skill is a folder with a `SKILL.md`",
                path.display()
            );
        }
        let md = path.join("SKILL.md");
        if !md.is_file() {
            bail!(
                "skill folder {} has no `SKILL.md`; add one that starts with\n---\nname: \
                 my-skill\ndescription: what it does and when to use it\n---",
                path.display()
            );
        }
        let text = read_text(&md, "skill file")?;
        let fm = parse_front_matter(&text)
            .with_context(|| format!("skill {}", md.display()))?
            .ok_or_else(|| {
                anyhow!(
                    "skill {} has no front matter; start it with\n---\nname: my-skill\n\
                     description: what it does and when to use it\n---",
                    md.display()
                )
            })?;
        let name = fm.name.ok_or_else(|| {
            anyhow!(
                "skill {}: its front matter has no `name:`; add a line like `name: my-skill`",
                md.display()
            )
        })?;
        check_skill_name(&name, &format!("skill {}", md.display()))?;
        Ok(Skill {
            name,
            description: fm.description.unwrap_or_default(),
            body: fm.body,
            dir: Some(path),
        })
    }

    /// An inline skill: [`install`] writes its `SKILL.md`.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        body: impl Into<String>,
    ) -> Result<Skill> {
        let name = name.into();
        check_skill_name(&name, "skill")?;
        Ok(Skill {
            name,
            description: description.into(),
            body: body.into(),
            dir: None,
        })
    }

    /// The `SKILL.md` of an inline skill.
    fn render(&self) -> String {
        let mut out = format!(
            "---\nname: {}\ndescription: {}\n---\n\n",
            yaml_scalar(&self.name),
            yaml_scalar(&self.description)
        );
        out.push_str(&self.body);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

const PY_KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// An ASCII Python identifier (the module names this module accepts).
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Something `import <s>` accepts.
fn is_module_name(s: &str) -> bool {
    is_identifier(s) && !PY_KEYWORDS.contains(&s)
}

fn check_module_name(name: &str, what: &str) -> Result<()> {
    if is_module_name(name) {
        return Ok(());
    }
    if PY_KEYWORDS.contains(&name) {
        bail!(
            "{what}: `{name}` is a Python keyword, so `import {name}` cannot work; rename it, \
             e.g. to `{name}_lib`"
        );
    }
    let mut suggestion: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if suggestion.trim_matches('_').is_empty() {
        suggestion = "my_library".into();
    } else if suggestion.starts_with(|c: char| c.is_ascii_digit()) {
        suggestion.insert_str(0, "lib_");
    }
    bail!(
        "{what}: `{name}` is not a valid Python module name (only letters, digits and `_`, not \
         starting with a digit); rename it, e.g. to `{suggestion}`"
    )
}

/// A skill name becomes a folder name: it must be one plain path component.
fn check_skill_name(name: &str, what: &str) -> Result<()> {
    let bad = name.trim().is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        bail!(
            "{what}: `{name}` cannot be a skill name (it names the skill's folder); use \
             letters, digits and `-`, e.g. `my-skill`"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Install

/// Written into the libraries folder: what the last install put where, so the next one can
/// remove what is no longer configured.
const MANIFEST: &str = ".seer-workspace.json";

/// Deeper folder nesting is taken as a symlink loop.
const MAX_DEPTH: usize = 64;

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
    let modules: Vec<String> = ws.libraries.iter().map(|l| l.name.clone()).collect();
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
            };
            sync_dir(&c.from, &c.to, &opts, 0)?
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
            let mut to = dest_inside(workspace_dir, dst)
                .with_context(|| format!("{kind} entry `{src}`: destination `{dst}`"))?;
            if !want_dir && (dst.ends_with('/') || to == workspace_dir) {
                let Some(name) = from.file_name() else {
                    bail!("local_files entry `{src}` has no file name; name the destination file");
                };
                to = to.join(name);
            }
            copies.push(PlannedCopy {
                from,
                to,
                is_dir: want_dir,
            });
        }
    }
    Ok(copies)
}

/// A destination inside `root`: relative, or absolute but already inside; no `..`.
fn dest_inside(root: &Path, dst: &str) -> Result<PathBuf> {
    if dst.is_empty() {
        bail!("the destination is empty; give a path relative to the workspace, or `.`");
    }
    let path = Path::new(dst);
    let rel = if path.is_absolute() {
        path.strip_prefix(root).map_err(|_| {
            anyhow!(
                "it is outside the workspace {}; give a path relative to the workspace",
                root.display()
            )
        })?
    } else {
        path
    };
    let mut out = root.to_path_buf();
    for comp in rel.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                bail!("it contains `..`; give a path inside the workspace without `..`")
            }
            Component::RootDir | Component::Prefix(_) => {
                bail!("it is not a plain relative path; give a path relative to the workspace")
            }
        }
    }
    Ok(out)
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
            changed |= remove_any(&package)?;
            changed |= write_if_changed(&file, code.as_bytes())?;
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
            };
            changed |= sync_dir(path, &package, &opts, 0)? > 0;
            if changed {
                remove_pycache_dirs(&package)?;
            }
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
            };
            sync_dir(src, &dest, &opts, 0)?;
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

struct SyncOpts {
    /// Delete what is in the destination but not in the source.
    prune: bool,
    /// Skip `__pycache__` folders and `.pyc` files (in both source and destination).
    skip_bytecode: bool,
    /// A canonical folder never copied (the workspace itself, when it is inside the source).
    exclude: Option<PathBuf>,
}

fn is_bytecode(name: &std::ffi::OsStr) -> bool {
    name == "__pycache__" || name.to_string_lossy().ends_with(".pyc")
}

/// Makes `dst` hold what `src` holds (symlinks in `src` are followed); returns how many
/// files were written or removed.
fn sync_dir(src: &Path, dst: &Path, opts: &SyncOpts, depth: usize) -> Result<usize> {
    if depth > MAX_DEPTH {
        bail!(
            "{} is nested more than {MAX_DEPTH} folders deep; is there a symlink loop?",
            src.display()
        );
    }
    let mut n = 0;
    if fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir()) {
        remove_any(dst)?;
        n += 1;
    }
    fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", src.display()))?;
    entries.sort_by_key(|e| e.file_name());
    let mut seen: BTreeSet<OsString> = BTreeSet::new();
    for entry in entries {
        let name = entry.file_name();
        if opts.skip_bytecode && is_bytecode(&name) {
            continue;
        }
        let from = entry.path();
        let to = dst.join(&name);
        let Ok(meta) = fs::metadata(&from) else {
            tracing::warn!("skipping {}: a broken symlink", from.display());
            continue;
        };
        if meta.is_dir() {
            if let Some(ex) = &opts.exclude
                && fs::canonicalize(&from).is_ok_and(|c| &c == ex)
            {
                continue;
            }
            seen.insert(name);
            n += sync_dir(&from, &to, opts, depth + 1)?;
        } else if meta.is_file() {
            seen.insert(name);
            n += usize::from(copy_if_changed(&from, &to)?);
        }
    }
    if opts.prune {
        for entry in fs::read_dir(dst).with_context(|| format!("reading {}", dst.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            if seen.contains(&name) || (opts.skip_bytecode && is_bytecode(&name)) {
                continue;
            }
            if remove_any(&entry.path())? {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Removes a file, symlink or folder; false when nothing was there.
fn remove_any(path: &Path) -> Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    };
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .with_context(|| format!("removing {}; check its permissions", path.display()))?;
    Ok(true)
}

/// A temporary name next to `to`, for write-then-rename.
fn temp_sibling(to: &Path) -> PathBuf {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned());
    to.with_file_name(format!(
        ".{}.seer-tmp-{}",
        name.unwrap_or_default(),
        std::process::id()
    ))
}

/// Replaces `to` atomically (so a running kernel never reads half a file).
fn replace_with(to: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        remove_any(to)?;
    }
    let tmp = temp_sibling(to);
    fill(&tmp).with_context(|| {
        format!(
            "writing {}; check that its folder is writable",
            tmp.display()
        )
    })?;
    fs::rename(&tmp, to).with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!("replacing {}", to.display())
    })
}

/// Writes `bytes` to `to` unless it already holds exactly them; true when written.
fn write_if_changed(to: &Path, bytes: &[u8]) -> Result<bool> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_file()) && fs::read(to).is_ok_and(|b| b == bytes)
    {
        return Ok(false);
    }
    replace_with(to, |tmp| fs::write(tmp, bytes))?;
    Ok(true)
}

/// Copies `from` to `to` (with its permissions) unless the contents already match.
fn copy_if_changed(from: &Path, to: &Path) -> Result<bool> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_file()) && same_content(from, to)? {
        return Ok(false);
    }
    replace_with(to, |tmp| fs::copy(from, tmp).map(|_| ()))
        .with_context(|| format!("copying {}", from.display()))?;
    Ok(true)
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| fs::File::open(p).with_context(|| format!("reading {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (la, lb) = (fa.metadata()?.len(), fb.metadata()?.len());
    if la != lb {
        return Ok(false);
    }
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(&mut fa, &mut ba).with_context(|| format!("reading {}", a.display()))?;
        let m = read_full(&mut fb, &mut bb).with_context(|| format!("reading {}", b.display()))?;
        if ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let k = f.read(&mut buf[filled..])?;
        if k == 0 {
            break;
        }
        filled += k;
    }
    Ok(filled)
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

// ---------------------------------------------------------------------------------------
// Prompt text

/// Markdown describing every library: `## name` and its docstring.
pub fn library_docs(ws: &WorkspaceConfig) -> String {
    let mut out = String::new();
    for lib in &ws.libraries {
        let docs = lib.docs.trim();
        let docs = if docs.is_empty() {
            "(no module docstring)"
        } else {
            docs
        };
        let _ = write!(out, "## {}\n\n{docs}\n\n", lib.name);
    }
    out
}

/// The variable holding a model's tokenizer.
fn tokenizer_var(var: &str) -> String {
    if var == "model" {
        "tokenizer".into()
    } else {
        format!("{var}_tokenizer")
    }
}

/// Markdown for the agent's prompt: which variables hold which model and how to use them,
/// then the library docs. Hidden models appear only under their masked names: no path,
/// revision or real name.
pub fn model_info_text(models: &[ModelSpec], ws: &WorkspaceConfig) -> String {
    let mut out = String::new();
    if !models.is_empty() {
        out.push_str("# Models\n\n");
        if ws.preload_models {
            out.push_str(
                "These models are already loaded in the kernel with Hugging Face `transformers` \
                 (`AutoModelForCausalLM`, in eval mode), each with its tokenizer:\n\n",
            );
        } else {
            out.push_str(
                "These models are configured but not loaded; load them yourself with \
                 `transformers.AutoModelForCausalLM.from_pretrained(path)`:\n\n",
            );
        }
        for m in models {
            out.push_str(&model_line(m, ws.preload_models));
        }
        if ws.preload_models {
            let first = &models[0].handle.var_name;
            let tok = tokenizer_var(first);
            let _ = write!(
                out,
                "\nHow to use them:\n\
                 - A model lives on the CPU, or on the GPU(s) when the kernel has CUDA; `{first}.device` \
                 tells which. Move inputs there: `inputs = {tok}(\"Hello\", return_tensors=\"pt\").to({first}.device)`.\n\
                 - Run it under `torch.no_grad()`: `{first}(**inputs).logits`, or \
                 `{first}.generate(**inputs, max_new_tokens=20)`.\n\
                 - For activations, register forward hooks on its modules (for most decoder \
                 models the blocks are `{first}.model.layers`); remove the hooks when done.\n\
                 - A tokenizer variable is `None` if its tokenizer could not be loaded.\n"
            );
        }
        out.push('\n');
    }
    let docs = library_docs(ws);
    if !docs.is_empty() {
        out.push_str(
            "# Libraries\n\nThese Python modules are installed and already imported (reuse them \
             with `import <name>`):\n\n",
        );
        out.push_str(&docs);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn model_line(m: &ModelSpec, preloaded: bool) -> String {
    let h = &m.handle;
    let var = &h.var_name;
    let mut line = format!("- `{var}`: ");
    if h.hidden {
        let _ = write!(
            line,
            "**{}**, a hidden model: which model it is is deliberately not disclosed",
            h.name
        );
    } else {
        let _ = write!(line, "**{}**", h.name);
        if h.revision != "local" {
            let _ = write!(line, " (revision `{}`)", h.revision);
        }
        if !preloaded {
            let _ = write!(line, ", at `{}`", h.path);
        }
    }
    if h.is_peft {
        let base = h.base_model.as_deref().unwrap_or("its base model");
        let _ = write!(line, "; a PEFT adapter on **{base}**");
        if !h.hidden
            && !preloaded
            && let Some(p) = &h.base_model_path
        {
            let _ = write!(line, " (at `{p}`)");
        }
        if preloaded {
            if m.load_as_peft {
                let _ = write!(
                    line,
                    ", kept as a `peft.PeftModel`: the adapter is active, and \
                     `with {var}.disable_adapter():` runs the base model alone"
                );
            } else {
                line.push_str(
                    ", merged into the base model's weights (a plain transformers model)",
                );
            }
        }
    }
    if preloaded {
        let _ = write!(line, ". Tokenizer: `{}`", tokenizer_var(var));
    }
    line.push_str(".\n");
    line
}

// ---------------------------------------------------------------------------------------
// Generated Python

/// Loads one model and its tokenizer; emitted once into the init code when models are
/// preloaded, and deleted after use.
const LOAD_HELPER: &str = r#"
def _seer_load_model(var, label, path, tok_var, *, base_path=None, base_label=None,
                     is_peft=False, keep_peft=False, hidden=False, cuda=False):
    """Loads one configured model and its tokenizer (generated by seer)."""
    import contextlib
    import os
    import warnings

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    kwargs = {"torch_dtype": "auto"}
    if cuda:
        kwargs["device_map"] = "auto"
    with contextlib.ExitStack() as quiet:
        if hidden:
            # Library messages may quote the model's folder: keep them out of the output.
            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            quiet.callback(hf_logging.set_verbosity, level)
            quiet.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        failure = None
        try:
            if is_peft:
                if base_path is None:
                    raise RuntimeError(f"`{var}` is a PEFT adapter but has no base model")
                import peft
                model = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
                model = peft.PeftModel.from_pretrained(model, path)
                if not keep_peft:
                    model = model.merge_and_unload()
            else:
                model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except Exception as e:
            if not hidden:
                raise
            failure = type(e).__name__
        if failure is not None:
            # Raised outside the except block, so the original error (which may name the
            # folder) is not attached to this one.
            raise RuntimeError(
                f"loading {label} into `{var}` failed ({failure}); the details are withheld "
                "because the model is hidden"
            )
        model.eval()
        tok_dir = path
        tokenizer_files = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model",
                           "vocab.json", "vocab.txt", "spiece.model")
        if is_peft and not any(os.path.exists(os.path.join(path, f)) for f in tokenizer_files):
            tok_dir = base_path
        try:
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        except Exception as e:
            detail = type(e).__name__ if hidden else f"{type(e).__name__}: {e}"
            print(f"warning: the tokenizer for `{var}` could not be loaded ({detail}); "
                  f"`{tok_var}` is None")
            tokenizer = None
    if hidden:
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        for m in (model, inner):
            m.config._name_or_path = label
            m.name_or_path = label
        for cfg in getattr(model, "peft_config", {}).values():
            cfg.base_model_name_or_path = base_label or label
        if tokenizer is not None:
            tokenizer.name_or_path = label
            tokenizer.init_kwargs["name_or_path"] = label
    print(f"seer: loaded {label} as `{var}`"
          + (f" (tokenizer: `{tok_var}`)" if tokenizer is not None else ""))
    return model, tokenizer

"#;

/// The Python a fresh kernel runs (hidden) before the agent starts: puts the libraries
/// folder first on `sys.path` and imports every library (a broken one fails here with its
/// traceback), loads the models when `preload_models` (see [`ModelSpec`]), then runs
/// `custom_init_code`.
///
/// Model `model` is bound to `model` and `tokenizer`; any other var_name `v` to `v` and
/// `v_tokenizer`. Hidden models (when `hidden_model_loading`) get their masked name in
/// `config._name_or_path`, `name_or_path` and the tokenizer's `name_or_path`, and loading
/// them prints nothing that names a path.
pub fn init_code(
    ws: &WorkspaceConfig,
    installed: &Installed,
    models: &[ModelSpec],
    opts: InitOptions,
) -> String {
    let mut py =
        String::from("# Workspace setup, generated by seer.\nimport sys\nimport importlib\n\n");
    let _ = writeln!(
        py,
        "_seer_libraries = {}",
        py_path(&installed.libraries_dir)
    );
    py.push_str(
        "if _seer_libraries not in sys.path:\n    sys.path.insert(0, _seer_libraries)\n\
         del _seer_libraries\nimportlib.invalidate_caches()\n",
    );
    for m in &installed.modules {
        py.push_str(&import_line(m));
    }

    if ws.preload_models && !models.is_empty() {
        py.push_str(LOAD_HELPER);
        for m in models {
            py.push_str(&load_line(m, ws.hidden_model_loading, opts.cuda));
        }
        py.push_str("del _seer_load_model\n");
    }

    if let Some(code) = ws.custom_init_code.as_deref()
        && !code.trim().is_empty()
    {
        let _ = write!(
            py,
            "\n# custom_init_code\n_seer_custom = {}\n\
             import linecache as _seer_linecache\n\
             _seer_linecache.cache['<custom_init_code>'] = (len(_seer_custom), None, \
             _seer_custom.splitlines(True), '<custom_init_code>')\n\
             del _seer_linecache\n\
             try:\n    exec(compile(_seer_custom, '<custom_init_code>', 'exec'), globals())\n\
             finally:\n    del _seer_custom\n",
            py_str(code)
        );
    }
    py
}

fn import_line(module: &str) -> String {
    if is_module_name(module) {
        format!("import {module}\n")
    } else {
        format!(
            "globals()[{m}] = importlib.import_module({m})\n",
            m = py_str(module)
        )
    }
}

/// An assignment target for a variable name (a subscript of `globals()` if it is not an
/// identifier, so the generated code always parses).
fn py_target(var: &str) -> String {
    if is_module_name(var) {
        var.to_string()
    } else {
        format!("globals()[{}]", py_str(var))
    }
}

fn load_line(m: &ModelSpec, hidden_loading: bool, cuda: bool) -> String {
    let h = &m.handle;
    let tok_var = tokenizer_var(&h.var_name);
    let mut args = format!(
        "{}, {}, {}, {}",
        py_str(&h.var_name),
        py_str(&h.name),
        py_str(&h.path),
        py_str(&tok_var)
    );
    if h.is_peft {
        let opt = |v: &Option<String>| v.as_deref().map_or("None".to_string(), py_str);
        let _ = write!(
            args,
            ", base_path={}, base_label={}, is_peft=True, keep_peft={}",
            opt(&h.base_model_path),
            opt(&h.base_model),
            py_bool(m.load_as_peft)
        );
    }
    if h.hidden && hidden_loading {
        args.push_str(", hidden=True");
    }
    let _ = write!(args, ", cuda={}", py_bool(cuda));
    format!(
        "{}, {} = _seer_load_model({args})\n",
        py_target(&h.var_name),
        py_target(&tok_var)
    )
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Python that reloads `modules` after a re-install changed them (submodules of a package
/// first); a module not imported yet is imported and bound. Empty when there is nothing to
/// reload. Names bound with `from module import x` keep the old objects.
pub fn reload_code(modules: &[String]) -> String {
    if modules.is_empty() {
        return String::new();
    }
    let list: Vec<String> = modules.iter().map(|m| py_str(m)).collect();
    format!(
        r#"# Library reload, generated by seer.
import importlib
import sys

def _seer_reload(name):
    importlib.invalidate_caches()
    subs = [n for n in list(sys.modules) if n.startswith(name + ".")]
    for sub in sorted(subs, key=lambda n: n.count("."), reverse=True):
        try:
            importlib.reload(sys.modules[sub])
        except ModuleNotFoundError:
            sys.modules.pop(sub, None)
    if name in sys.modules:
        importlib.reload(sys.modules[name])
    else:
        globals()[name] = importlib.import_module(name)
    print(f"seer: reloaded {{name}}")

for _seer_name in [{}]:
    _seer_reload(_seer_name)
del _seer_reload, _seer_name
"#,
        list.join(", ")
    )
}

/// A Python string literal for `s`, in pure ASCII: quotes, backslashes and control
/// characters are escaped, and non-ASCII characters become `\u`/`\U` escapes.
pub fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('\'');
    out
}

/// A Python expression for a path: a string literal, or `os.fsdecode(b'...')` for a path
/// that is not UTF-8.
pub fn py_path(p: &Path) -> String {
    if let Some(s) = p.to_str() {
        return py_str(s);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut lit = String::from("__import__('os').fsdecode(b'");
        for &b in p.as_os_str().as_bytes() {
            match b {
                b'\\' => lit.push_str("\\\\"),
                b'\'' => lit.push_str("\\'"),
                0x20..=0x7e => lit.push(char::from(b)),
                _ => {
                    let _ = write!(lit, "\\x{b:02x}");
                }
            }
        }
        lit.push_str("')");
        lit
    }
    #[cfg(not(unix))]
    {
        py_str(&p.to_string_lossy())
    }
}

// ---------------------------------------------------------------------------------------
// Parsing: module docstrings and SKILL.md front matter

/// The module docstring of Python source: the first statement, if it is a string literal
/// (`"""`, `'''`, `"`, `'`, optionally with an `r`/`u` prefix), cleaned like
/// `inspect.cleandoc`. Empty when there is none.
pub fn extract_docstring(code: &str) -> String {
    let mut rest = code.strip_prefix('\u{feff}').unwrap_or(code);
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n', '\x0c']);
        if rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        } else {
            break;
        }
    }
    let prefix_len = rest
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_alphabetic())
        .map_or(rest.len(), |(i, _)| i);
    let raw = match rest[..prefix_len].to_ascii_lowercase().as_str() {
        "" | "u" => false,
        "r" => true,
        _ => return String::new(),
    };
    let rest = &rest[prefix_len..];
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| rest.starts_with(q));
    let Some(quote) = quote else {
        return String::new();
    };
    let body = &rest[quote.len()..];
    let mut chars = body.char_indices();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if body[i..].starts_with(quote) {
            end = Some(i);
            break;
        } else if c == '\n' && quote.len() == 1 {
            return String::new();
        }
    }
    let Some(end) = end else {
        return String::new();
    };
    let content = &body[..end];
    let text = if raw {
        content.to_string()
    } else {
        unescape_py(content)
    };
    clean_doc(&text)
}

/// Python's escapes in a non-raw string literal (unknown escapes stay as written).
fn unescape_py(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars>, n: usize| {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or(digits)
        };
        match e {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                match hex(&mut chars, n) {
                    Ok(ch) => out.push(ch),
                    Err(digits) => {
                        out.push('\\');
                        out.push(e);
                        out.push_str(&digits);
                    }
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// `inspect.cleandoc`: tabs expanded, the first line stripped, the common indentation of
/// the other lines removed, blank lines at both ends dropped.
fn clean_doc(doc: &str) -> String {
    let expanded: Vec<String> = doc.split('\n').map(expand_tabs).collect();
    let lines: Vec<&str> = expanded.iter().map(|l| l.trim_end_matches('\r')).collect();
    let margin = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let line = if i == 0 {
            l.trim_start()
        } else if l.len() >= margin && l.is_char_boundary(margin) {
            &l[margin..]
        } else {
            l.trim_start()
        };
        out.push(line.trim_end().to_string());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let first = out.iter().position(|l| !l.is_empty()).unwrap_or(out.len());
    out[first..].join("\n")
}

/// Python's `str.expandtabs()`: tab stops every 8 columns.
fn expand_tabs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut col = 0;
    for c in line.chars() {
        if c == '\t' {
            let n = 8 - col % 8;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += 1;
        }
    }
    out
}

/// The parts of a `SKILL.md` this module reads.
#[derive(Debug, PartialEq)]
struct FrontMatter {
    name: Option<String>,
    description: Option<String>,
    body: String,
}

/// Splits `---\n<front matter>\n---\n<body>`; `None` when the text does not start with a
/// `---` line. Only `name` and `description` are read; values may be plain, quoted or
/// `|`/`>` blocks.
fn parse_front_matter(text: &str) -> Result<Option<FrontMatter>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return Ok(None);
    };
    if first.trim_end() != "---" {
        return Ok(None);
    }
    let mut consumed = first.len();
    let mut header: Vec<&str> = vec![];
    let mut closed = false;
    for line in lines {
        consumed += line.len();
        let t = line.trim_end();
        if t == "---" || t == "..." {
            closed = true;
            break;
        }
        header.push(line.trim_end_matches(['\n', '\r']));
    }
    if !closed {
        bail!(
            "its front matter (opened by `---` on the first line) is never closed; end it with \
             a line `---`"
        );
    }
    let keys = parse_yamlish(&header);
    let get = |k: &str| keys.get(k).filter(|v| !v.trim().is_empty()).cloned();
    Ok(Some(FrontMatter {
        name: get("name").map(|n| n.trim().to_string()),
        description: get("description"),
        body: text[consumed..]
            .trim_start_matches(['\r', '\n'])
            .to_string(),
    }))
}

/// Top-level `key: value` pairs of a small YAML mapping.
fn parse_yamlish(lines: &[&str]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.starts_with([' ', '\t', '#']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let start = i;
        while i < lines.len() && (lines[i].starts_with([' ', '\t']) || lines[i].trim().is_empty()) {
            i += 1;
        }
        let mut cont = &lines[start..i];
        while let Some((last, rest)) = cont.split_last() {
            if last.trim().is_empty() {
                cont = rest;
            } else {
                break;
            }
        }
        map.insert(key.trim().to_string(), yaml_value(value.trim(), cont));
    }
    map
}

fn yaml_value(first: &str, cont: &[&str]) -> String {
    if first.starts_with('|') || first.starts_with('>') {
        let indent = cont
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let lines: Vec<&str> = cont
            .iter()
            .map(|l| l.get(indent..).unwrap_or("").trim_end())
            .collect();
        if first.starts_with('|') {
            return lines.join("\n");
        }
        let mut out = String::new();
        let mut after_break = true;
        for l in lines {
            if l.is_empty() {
                out.push('\n');
                after_break = true;
            } else {
                if !after_break {
                    out.push(' ');
                }
                out.push_str(l);
                after_break = false;
            }
        }
        return out;
    }
    let mut parts = vec![first.to_string()];
    parts.extend(cont.iter().map(|l| l.trim().to_string()));
    if first.starts_with('"') || first.starts_with('\'') {
        let joined = parts
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        return unquote_yaml(&joined);
    }
    let first = match first.find(" #") {
        Some(i) => first[..i].trim_end(),
        None => first,
    };
    parts[0] = first.to_string();
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// The value of a single- or double-quoted YAML scalar (text after the closing quote is
/// ignored; an unclosed quote takes the rest).
fn unquote_yaml(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    match chars.next() {
        Some('\'') => {
            let mut chars = chars.peekable();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                        out.push('\'');
                    } else {
                        break;
                    }
                } else {
                    out.push(c);
                }
            }
        }
        Some('"') => {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(e) = chars.next() else { break };
                        let mut hex = |n: usize| {
                            let d: String = chars.by_ref().take(n).collect();
                            u32::from_str_radix(&d, 16).ok().and_then(char::from_u32)
                        };
                        let decoded = match e {
                            'n' => Some('\n'),
                            't' => Some('\t'),
                            'r' => Some('\r'),
                            '0' => Some('\0'),
                            '"' => Some('"'),
                            '\\' => Some('\\'),
                            '/' => Some('/'),
                            ' ' => Some(' '),
                            'x' => hex(2),
                            'u' => hex(4),
                            'U' => hex(8),
                            _ => None,
                        };
                        match decoded {
                            Some(ch) => out.push(ch),
                            None => {
                                out.push('\\');
                                out.push(e);
                            }
                        }
                    }
                    c => out.push(c),
                }
            }
        }
        _ => return s.to_string(),
    }
    out
}

/// `s` as a YAML scalar: plain when that reads back as the same string, else
/// double-quoted.
fn yaml_scalar(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let plain = !s.is_empty()
        && s.trim() == s
        && !s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.chars().any(char::is_control)
        && !matches!(
            lower.as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    pub(super) fn handle(name: &str, path: &str, var: &str) -> ModelHandle {
        ModelHandle {
            name: name.into(),
            path: path.into(),
            revision: "local".into(),
            var_name: var.into(),
            hidden: false,
            is_peft: false,
            base_model: None,
            base_model_path: None,
            base_model_revision: None,
        }
    }

    // ---- constructors

    #[test]
    fn library_from_file() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        write(
            &base.join("libs/helpers.py"),
            "\"\"\"Helpers.\"\"\"\nX = 1\n",
        );
        let lib = Library::from_file(base, "libs/helpers.py").unwrap();
        assert_eq!(lib.name, "helpers");
        assert_eq!(lib.docs, "Helpers.");
        let LibrarySource::File { path, code } = &lib.source else {
            panic!("{lib:?}")
        };
        assert_eq!(path, &base.join("libs/helpers.py"));
        assert_eq!(code, "\"\"\"Helpers.\"\"\"\nX = 1\n");
        // An absolute path ignores base_dir.
        let abs = Library::from_file(Path::new("/nonexistent"), base.join("libs/helpers.py"));
        assert_eq!(abs.unwrap(), lib);
    }

    #[test]
    fn library_from_file_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let e = err_of(Library::from_file(base, "missing.py"));
        assert!(
            e.contains("`missing.py`") && e.contains("cannot be read"),
            "{e}"
        );
        assert!(
            e.contains(&base.join("missing.py").display().to_string()),
            "{e}"
        );

        fs::create_dir(base.join("pkg.py")).unwrap();
        let e = err_of(Library::from_file(base, "pkg.py"));
        assert!(e.contains("is a folder"), "{e}");

        write(&base.join("notes.txt"), "");
        let e = err_of(Library::from_file(base, "notes.txt"));
        assert!(e.contains("must end in `.py`"), "{e}");

        write(&base.join("my-lib.py"), "");
        let e = err_of(Library::from_file(base, "my-lib.py"));
        assert!(
            e.contains("`my-lib` is not a valid Python module name"),
            "{e}"
        );
        assert!(e.contains("rename it, e.g. to `my_lib`"), "{e}");

        write(&base.join("2fast.py"), "");
        let e = err_of(Library::from_file(base, "2fast.py"));
        assert!(e.contains("e.g. to `lib_2fast`"), "{e}");

        write(&base.join("class.py"), "");
        let e = err_of(Library::from_file(base, "class.py"));
        assert!(
            e.contains("is a Python keyword") && e.contains("`class_lib`"),
            "{e}"
        );
    }

    #[test]
    fn library_from_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        write(&base.join("tools/__init__.py"), "# pkg\n'''Tool kit.'''\n");
        write(&base.join("tools/sub.py"), "");
        let lib = Library::from_directory(base, "tools").unwrap();
        assert_eq!(lib.name, "tools");
        assert_eq!(lib.docs, "Tool kit.");
        assert_eq!(
            lib.source,
            LibrarySource::Directory {
                path: base.join("tools")
            }
        );
        // `.` and `..` still give the folder's name.
        let again = Library::from_directory(&base.join("tools"), ".").unwrap();
        assert_eq!(again.name, "tools");
        fs::create_dir(base.join("tools/x")).unwrap();
        let up = Library::from_directory(&base.join("tools/x"), "..").unwrap();
        assert_eq!(up.name, "tools");

        write(&base.join("plain/a.py"), "");
        let e = err_of(Library::from_directory(base, "plain"));
        assert!(e.contains("has no `__init__.py`; add one"), "{e}");
        let e = err_of(Library::from_directory(base, "tools/sub.py"));
        assert!(e.contains("is not a folder"), "{e}");
        let e = err_of(Library::from_directory(base, "nope"));
        assert!(e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn library_from_code() {
        let lib = Library::from_code("inline", "r'''Raw \\d docs.'''\n").unwrap();
        assert_eq!(lib.name, "inline");
        assert_eq!(lib.docs, "Raw \\d docs.");
        let e = err_of(Library::from_code("has space", "x = 1"));
        assert!(e.contains("library from code: `has space`"), "{e}");
        assert!(e.contains("`has_space`"), "{e}");
        let e = err_of(Library::from_code("", "x = 1"));
        assert!(e.contains("`my_library`"), "{e}");
    }

    #[test]
    fn library_from_skill_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        write(
            &base.join("sk/SKILL.md"),
            "---\nname: steer-kit\ndescription: Steering helpers.\n---\n# Use\n",
        );
        write(&base.join("sk/code.py"), "def f():\n    pass\n");
        let lib = Library::from_skill_dir(base, "sk").unwrap();
        assert_eq!(lib.name, "steer_kit");
        assert_eq!(
            lib.docs, "Steering helpers.",
            "falls back to the description"
        );
        let LibrarySource::SkillDir { skill_md, code, .. } = &lib.source else {
            panic!("{lib:?}")
        };
        assert!(skill_md.starts_with("---\nname: steer-kit"));
        assert!(code.starts_with("def f"));

        // No front matter: the folder name.
        write(&base.join("plain_skill/SKILL.md"), "Just text.\n");
        write(&base.join("plain_skill/code.py"), "\"\"\"Docs win.\"\"\"\n");
        let lib = Library::from_skill_dir(base, "plain_skill").unwrap();
        assert_eq!(lib.name, "plain_skill");
        assert_eq!(lib.docs, "Docs win.");

        write(&base.join("nocode/SKILL.md"), "---\nname: x\n---\n");
        let e = err_of(Library::from_skill_dir(base, "nocode"));
        assert!(e.contains("has no `code.py`"), "{e}");
        write(&base.join("nomd/code.py"), "");
        let e = err_of(Library::from_skill_dir(base, "nomd"));
        assert!(e.contains("has no `SKILL.md`"), "{e}");
        write(&base.join("bad/SKILL.md"), "---\nname: 9 lives\n---\n");
        write(&base.join("bad/code.py"), "");
        let e = err_of(Library::from_skill_dir(base, "bad"));
        assert!(
            e.contains("`9 lives` is not a valid Python module name"),
            "{e}"
        );
    }

    #[test]
    fn skill_from_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        write(
            &base.join("s/SKILL.md"),
            "---\nname: probe\ndescription: \"Probes: linear.\"\nlicense: MIT\n---\n\nBody\n",
        );
        let s = Skill::from_dir(base, "s").unwrap();
        assert_eq!(
            s,
            Skill {
                name: "probe".into(),
                description: "Probes: linear.".into(),
                body: "Body\n".into(),
                dir: Some(base.join("s")),
            }
        );

        write(&base.join("nofm/SKILL.md"), "# Title\n");
        let e = err_of(Skill::from_dir(base, "nofm"));
        assert!(e.contains("has no front matter; start it with"), "{e}");
        write(&base.join("noname/SKILL.md"), "---\ndescription: d\n---\n");
        let e = err_of(Skill::from_dir(base, "noname"));
        assert!(e.contains("has no `name:`"), "{e}");
        write(&base.join("open/SKILL.md"), "---\nname: x\n");
        let e = err_of(Skill::from_dir(base, "open"));
        assert!(e.contains("never closed"), "{e}");
        write(&base.join("slash/SKILL.md"), "---\nname: a/b\n---\n");
        let e = err_of(Skill::from_dir(base, "slash"));
        assert!(e.contains("cannot be a skill name"), "{e}");
        fs::create_dir(base.join("empty")).unwrap();
        let e = err_of(Skill::from_dir(base, "empty"));
        assert!(e.contains("has no `SKILL.md`"), "{e}");
        let e = err_of(Skill::from_dir(base, "gone"));
        assert!(e.contains("cannot be read"), "{e}");

        assert!(Skill::new("..", "", "").is_err());
        assert_eq!(Skill::new("ok", "d", "b").unwrap().dir, None);
    }

    #[test]
    fn config_serde() {
        let ws: WorkspaceConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(ws, WorkspaceConfig::default());
        assert!(ws.preload_models && ws.hidden_model_loading);
        let bad = serde_json::from_str::<WorkspaceConfig>(r#"{"librarys": []}"#);
        assert!(bad.is_err());
        let ws = WorkspaceConfig {
            libraries: vec![Library::from_code("a", "'''A.'''").unwrap()],
            skills: vec![Skill::new("s", "d", "b").unwrap()],
            local_files: vec![("x".into(), "y".into())],
            ..Default::default()
        };
        let json = serde_json::to_value(&ws).unwrap();
        assert_eq!(json["libraries"][0]["source"]["kind"], "code");
        assert_eq!(json["local_files"][0][1], "y");
        let back: WorkspaceConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, ws);
        let bad = serde_json::from_str::<Library>(
            r#"{"name": "a", "source": {"kind": "code", "code": "", "extra": 1}}"#,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn shipped_toolkit() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let lib = Library::toolkit();
        assert_eq!(lib.name, "toolkit");
        assert!(lib.docs.contains("extract_activations("), "{}", lib.docs);
        // Through a map and back, as scripts pass it.
        let json = serde_json::to_value(&lib).unwrap();
        assert_eq!(json["source"]["kind"], "toolkit");
        assert_eq!(serde_json::from_value::<Library>(json).unwrap(), lib);
        // `toolkit` and `toolkit/<module>.py` fall back to the shipped copies...
        assert_eq!(Library::from_directory(base, "toolkit").unwrap(), lib);
        assert_eq!(Library::from_directory(base, "./toolkit").unwrap(), lib);
        let one = Library::from_file(base, "toolkit/steering_hook.py").unwrap();
        assert_eq!(one.name, "steering_hook");
        assert!(
            one.docs.starts_with("Steering: add a vector"),
            "{}",
            one.docs
        );
        assert!(matches!(one.source, LibrarySource::Code { .. }));
        assert!(Library::from_file(base, "toolkit/nope.py").is_err());
        // ...unless the folder is there, which wins.
        write(&base.join("toolkit/steering_hook.py"), "'''Mine.'''\n");
        write(&base.join("toolkit/__init__.py"), "'''My kit.'''\n");
        let mine = Library::from_file(base, "toolkit/steering_hook.py").unwrap();
        assert_eq!(mine.docs, "Mine.");
        let kit = Library::from_directory(base, "toolkit").unwrap();
        assert_eq!(kit.docs, "My kit.");

        // Installed as a package; a second install changes nothing; stray files go.
        let libs = base.join("libs");
        let ws = WorkspaceConfig {
            libraries: vec![lib],
            ..Default::default()
        };
        let first = install(&ws, &libs, &base.join("ws"), base).unwrap();
        assert_eq!(first.changed_modules, vec!["toolkit".to_string()]);
        for (name, text) in crate::toolkit::FILES {
            let installed = fs::read_to_string(libs.join("toolkit").join(name)).unwrap();
            assert_eq!(installed, *text);
        }
        let again = install(&ws, &libs, &base.join("ws"), base).unwrap();
        assert!(again.changed_modules.is_empty());
        write(&libs.join("toolkit/stale.py"), "x = 1\n");
        let third = install(&ws, &libs, &base.join("ws"), base).unwrap();
        assert_eq!(third.changed_modules, vec!["toolkit".to_string()]);
        assert!(!libs.join("toolkit/stale.py").exists());
    }

    // ---- parsing

    /// `(source, docstring)`; the Python tests check these against `ast.get_docstring`.
    pub(super) const DOCSTRING_CASES: &[(&str, &str)] = &[
        ("\"\"\"Doc.\"\"\"", "Doc."),
        ("'''Single quotes.'''\nx = 1", "Single quotes."),
        ("# comment\n\n\"\"\"After comment.\"\"\"", "After comment."),
        (
            "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\n\"\"\"X\"\"\"",
            "X",
        ),
        ("r\"\"\"Raw \\n stays\"\"\"", "Raw \\n stays"),
        ("R'''Raw \\''' too'''", "Raw \\''' too"),
        ("u'''Unicode prefix'''", "Unicode prefix"),
        (
            "\"\"\"Line one.\n\n    Indented more.\n      Deeper.\n    \"\"\"",
            "Line one.\n\nIndented more.\n  Deeper.",
        ),
        (
            "\"\"\"\n    Starts on line two.\n    \"\"\"",
            "Starts on line two.",
        ),
        ("\"One-liner.\"", "One-liner."),
        ("'single' ", "single"),
        (
            "\"\"\"Escaped \\\"quote\\\" and \\\\ backslash\"\"\"",
            "Escaped \"quote\" and \\ backslash",
        ),
        (
            "\"\"\"Tab\\tand \\u00e9 and \\x41 and \\q\"\"\"",
            "Tab     and é and A and \\q",
        ),
        ("\"\"\"A\n\tTabbed\n\t  more\"\"\"", "A\nTabbed\n  more"),
        ("\"\"\"Has ''' inside\"\"\"", "Has ''' inside"),
        ("\u{feff}\"\"\"BOM\"\"\"", "BOM"),
        ("\n\n\"\"\"After blank lines\"\"\"\n\n", "After blank lines"),
        ("import os\n\"\"\"Not a docstring\"\"\"", ""),
        ("f\"\"\"nope\"\"\"", ""),
        ("b\"\"\"nope\"\"\"", ""),
        ("rb\"\"\"nope\"\"\"", ""),
        ("\"\"\"unterminated", ""),
        ("\"broken\nstring\"", ""),
        ("", ""),
        ("# only a comment", ""),
        ("x = 1", ""),
    ];

    #[test]
    fn docstring_table() {
        for (code, want) in DOCSTRING_CASES {
            assert_eq!(extract_docstring(code), *want, "for {code:?}");
        }
    }

    #[test]
    fn front_matter_table() {
        let fm = |s: &str| parse_front_matter(s).unwrap().unwrap();
        let f = fm("---\nname: a\ndescription: plain text # comment\n---\nbody");
        assert_eq!(f.name.as_deref(), Some("a"));
        assert_eq!(f.description.as_deref(), Some("plain text"));
        assert_eq!(f.body, "body");
        let f = fm("---\r\nname: 'it''s'\r\ndescription: \"a\\nb \\\"q\\\"\"\r\n---\r\n\r\nB\r\n");
        assert_eq!(f.name.as_deref(), Some("it's"));
        assert_eq!(f.description.as_deref(), Some("a\nb \"q\""));
        assert_eq!(f.body, "B\r\n");
        let f = fm("---\nname: x\ndescription: |\n  line 1\n    line 2\n\nother: y\n---\n");
        assert_eq!(f.description.as_deref(), Some("line 1\n  line 2"));
        let f = fm("---\nname: x\ndescription: >-\n  folded\n  text\n\n  para\n---\n");
        assert_eq!(f.description.as_deref(), Some("folded text\npara"));
        let f = fm("---\nname: x\ndescription: starts here\n  and continues\n---\n");
        assert_eq!(f.description.as_deref(), Some("starts here and continues"));
        let f = fm("---\n# comment\nname:   spaced  \nmetadata:\n  name: nested\n---\n");
        assert_eq!(f.name.as_deref(), Some("spaced"));
        assert_eq!(f.description, None);
        let f = fm("\u{feff}---\nname: \"\"\n...\nrest");
        assert_eq!(f.name, None);
        assert_eq!(f.body, "rest");
        assert_eq!(parse_front_matter("no front matter").unwrap(), None);
        assert_eq!(parse_front_matter("").unwrap(), None);
        assert!(parse_front_matter("---\nname: x\n").is_err());
    }

    #[test]
    fn yaml_scalars_read_back() {
        for s in [
            "simple",
            "my-skill",
            "Use when: always",
            "a # b",
            "- dash",
            "'quoted'",
            "\"dq\"",
            "line\nbreak",
            "back\\slash",
            "true",
            "12",
            "",
            " padded ",
            "émoji 🦀",
            "trailing:",
            "ctl\u{1}",
        ] {
            let md = format!("---\nname: n\ndescription: {}\n---\n", yaml_scalar(s));
            let f = parse_front_matter(&md).unwrap().unwrap();
            assert_eq!(f.description.unwrap_or_default(), s, "for {s:?}: {md}");
        }
        assert_eq!(yaml_scalar("simple words"), "simple words");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
    }

    #[test]
    fn py_str_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "'plain'"),
            ("", "''"),
            ("it's", r"'it\'s'"),
            ("say \"hi\"", r#"'say "hi"'"#),
            ("a\\b", r"'a\\b'"),
            ("l1\nl2\r\n", r"'l1\nl2\r\n'"),
            ("tab\t", r"'tab\t'"),
            ("nul\0bell\x07del\x7f", r"'nul\x00bell\x07del\x7f'"),
            ("é", r"'\u00e9'"),
            ("日本", r"'\u65e5\u672c'"),
            ("🦀", r"'\U0001f980'"),
            ("\u{2028}", r"'\u2028'"),
        ];
        for (s, want) in cases {
            assert_eq!(py_str(s), *want, "for {s:?}");
            assert!(py_str(s).is_ascii());
        }
        assert_eq!(py_path(Path::new("/a/b c")), "'/a/b c'");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"/x\xff'\\"));
            assert_eq!(py_path(p), r"__import__('os').fsdecode(b'/x\xff\'\\')");
        }
    }

    // ---- install

    struct Fixture {
        _tmp: tempfile::TempDir,
        base: PathBuf,
        libs: PathBuf,
        ws_dir: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("script");
        write(&base.join("one.py"), "\"\"\"One.\"\"\"\nV = 1\n");
        write(&base.join("pkg/__init__.py"), "from .sub import g\n");
        write(&base.join("pkg/sub.py"), "def g():\n    return 1\n");
        write(&base.join("pkg/data/table.csv"), "a,b\n");
        write(&base.join("pkg/__pycache__/sub.cpython-311.pyc"), "junk");
        write(
            &base.join("sk/SKILL.md"),
            "---\nname: kit\ndescription: Kit.\n---\nUse kit.\n",
        );
        write(&base.join("sk/code.py"), "K = 1\n");
        write(&base.join("sk/ref.md"), "reference\n");
        write(
            &base.join("lone/SKILL.md"),
            "---\nname: lone-skill\ndescription: Lone.\n---\n",
        );
        write(&base.join("lone/script.sh"), "echo hi\n");
        write(
            &base.join("many/a/SKILL.md"),
            "---\nname: skill-a\ndescription: A.\n---\n",
        );
        write(
            &base.join("many/b/SKILL.md"),
            "---\nname: skill-b\ndescription: B.\n---\n",
        );
        write(&base.join("many/not-a-skill/README"), "");
        write(&base.join("data.csv"), "x\n1\n");
        write(&base.join("assets/img/a.txt"), "A");
        write(&base.join("assets/b.txt"), "B");
        let libs = tmp.path().join("run/libraries");
        let ws_dir = tmp.path().join("run/workspace");
        Fixture {
            base,
            libs,
            ws_dir,
            _tmp: tmp,
        }
    }

    fn full_config(f: &Fixture) -> WorkspaceConfig {
        WorkspaceConfig {
            libraries: vec![
                Library::from_file(&f.base, "one.py").unwrap(),
                Library::from_directory(&f.base, "pkg").unwrap(),
                Library::from_code("inline", "Z = 3\n").unwrap(),
                Library::from_skill_dir(&f.base, "sk").unwrap(),
            ],
            skills: vec![
                Skill::from_dir(&f.base, "lone").unwrap(),
                Skill::new("inline-skill", "Does: things", "Steps.").unwrap(),
            ],
            skill_dirs: vec!["many".into()],
            local_files: vec![
                ("data.csv".into(), "inputs/".into()),
                ("data.csv".into(), "renamed.csv".into()),
            ],
            local_dirs: vec![("assets".into(), "assets_copy".into())],
            ..Default::default()
        }
    }

    fn install_fx(ws: &WorkspaceConfig, f: &Fixture) -> Result<Installed> {
        install(ws, &f.libs, &f.ws_dir, &f.base)
    }

    #[test]
    fn install_layout() {
        let f = fixture();
        let ws = full_config(&f);
        let inst = install_fx(&ws, &f).unwrap();
        assert_eq!(inst.libraries_dir, f.libs);
        assert_eq!(inst.modules, ["one", "pkg", "inline", "kit"]);
        assert_eq!(inst.changed_modules, inst.modules);
        assert!(inst.removed_modules.is_empty());
        assert_eq!(
            inst.skills,
            ["lone-skill", "inline-skill", "skill-a", "skill-b", "kit"]
        );
        assert_eq!(inst.files_copied, 4);

        let read = |p: PathBuf| fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        assert_eq!(read(f.libs.join("one.py")), "\"\"\"One.\"\"\"\nV = 1\n");
        assert_eq!(read(f.libs.join("inline.py")), "Z = 3\n");
        assert_eq!(read(f.libs.join("kit.py")), "K = 1\n");
        assert_eq!(read(f.libs.join("pkg/sub.py")), "def g():\n    return 1\n");
        assert_eq!(read(f.libs.join("pkg/data/table.csv")), "a,b\n");
        assert!(!f.libs.join("pkg/__pycache__").exists());

        let skills = f.ws_dir.join(".claude/skills");
        assert!(read(skills.join("lone-skill/SKILL.md")).contains("name: lone-skill"));
        assert_eq!(read(skills.join("lone-skill/script.sh")), "echo hi\n");
        assert_eq!(
            read(skills.join("inline-skill/SKILL.md")),
            "---\nname: inline-skill\ndescription: \"Does: things\"\n---\n\nSteps.\n"
        );
        assert!(skills.join("skill-a/SKILL.md").is_file());
        assert!(skills.join("skill-b/SKILL.md").is_file());
        assert!(!skills.join("not-a-skill").exists());
        assert!(read(skills.join("kit/SKILL.md")).contains("name: kit"));
        assert_eq!(read(skills.join("kit/ref.md")), "reference\n");
        assert_eq!(read(skills.join("kit/code.py")), "K = 1\n");

        assert_eq!(read(f.ws_dir.join("inputs/data.csv")), "x\n1\n");
        assert_eq!(read(f.ws_dir.join("renamed.csv")), "x\n1\n");
        assert_eq!(read(f.ws_dir.join("assets_copy/img/a.txt")), "A");
        assert_eq!(read(f.ws_dir.join("assets_copy/b.txt")), "B");
    }

    #[test]
    fn reinstall_is_idempotent_and_reports_changes() {
        let f = fixture();
        let ws = full_config(&f);
        install_fx(&ws, &f).unwrap();

        let again = install_fx(&ws, &f).unwrap();
        assert!(again.changed_modules.is_empty(), "{again:?}");
        assert!(again.removed_modules.is_empty());
        assert_eq!(again.files_copied, 0);

        // Edits on disk are picked up even though the Library values are unchanged.
        write(&f.base.join("one.py"), "V = 2\n");
        write(&f.base.join("pkg/sub.py"), "def g():\n    return 2\n");
        fs::remove_file(f.base.join("pkg/data/table.csv")).unwrap();
        write(&f.base.join("assets/b.txt"), "B2");
        write(&f.base.join("lone/extra.md"), "new");
        fs::remove_file(f.base.join("lone/script.sh")).unwrap();
        // Bytecode of the old module is dropped so Python cannot reuse it.
        write(&f.libs.join("__pycache__/one.cpython-311.pyc"), "stale");
        write(&f.libs.join("__pycache__/inline.cpython-311.pyc"), "keep");
        write(&f.libs.join("pkg/__pycache__/sub.cpython-311.pyc"), "stale");
        let changed = install_fx(&ws, &f).unwrap();
        assert_eq!(changed.changed_modules, ["one", "pkg"]);
        assert_eq!(changed.files_copied, 1);
        assert_eq!(
            fs::read_to_string(f.libs.join("one.py")).unwrap(),
            "V = 2\n"
        );
        assert!(!f.libs.join("pkg/data/table.csv").exists());
        assert!(!f.libs.join("__pycache__/one.cpython-311.pyc").exists());
        assert!(f.libs.join("__pycache__/inline.cpython-311.pyc").exists());
        assert!(!f.libs.join("pkg/__pycache__").exists());
        let lone = f.ws_dir.join(".claude/skills/lone-skill");
        assert!(lone.join("extra.md").exists() && !lone.join("script.sh").exists());
        assert_eq!(
            fs::read_to_string(f.ws_dir.join("assets_copy/b.txt")).unwrap(),
            "B2"
        );

        // A library whose source file vanished falls back to its snapshot.
        let snap = Library::from_code("snap", "S = 1\n").unwrap();
        write(&f.base.join("gone.py"), "G = 1\n");
        let mut gone = Library::from_file(&f.base, "gone.py").unwrap();
        fs::remove_file(f.base.join("gone.py")).unwrap();
        gone.name = "gone".into();

        // Dropping libraries and skills removes what the earlier install put there.
        let mut smaller = ws.clone();
        smaller.libraries.retain(|l| l.name == "one");
        smaller.libraries.push(snap);
        smaller.libraries.push(gone);
        smaller.skills.clear();
        smaller.skill_dirs.clear();
        let after = install_fx(&smaller, &f).unwrap();
        assert_eq!(after.changed_modules, ["snap", "gone"]);
        assert_eq!(after.removed_modules, ["pkg", "inline", "kit"]);
        assert_eq!(after.skills, Vec::<String>::new());
        assert!(!f.libs.join("pkg").exists() && !f.libs.join("inline.py").exists());
        assert_eq!(
            fs::read_to_string(f.libs.join("gone.py")).unwrap(),
            "G = 1\n"
        );
        assert!(!f.ws_dir.join(".claude/skills/lone-skill").exists());
        assert!(!f.ws_dir.join(".claude/skills/kit").exists());

        // A module switching between file and package replaces the other form.
        write(&f.base.join("alt/one/__init__.py"), "");
        let mut swapped = smaller.clone();
        swapped.libraries[0] = Library::from_directory(&f.base, "alt/one").unwrap();
        let s = install_fx(&swapped, &f).unwrap();
        assert_eq!(s.changed_modules, ["one"]);
        assert!(!f.libs.join("one.py").exists() && f.libs.join("one/__init__.py").exists());
    }

    #[test]
    fn install_rejects_duplicates_and_bad_destinations() {
        let f = fixture();
        write(&f.base.join("other/one.py"), "");
        let ws = WorkspaceConfig {
            libraries: vec![
                Library::from_file(&f.base, "one.py").unwrap(),
                Library::from_file(&f.base, "other/one.py").unwrap(),
            ],
            ..Default::default()
        };
        let e = err_of(install_fx(&ws, &f));
        assert!(e.contains("two libraries are both named `one`"), "{e}");
        assert!(
            e.contains(&f.base.join("one.py").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains(&f.base.join("other/one.py").display().to_string()),
            "{e}"
        );
        assert!(
            !f.libs.exists(),
            "nothing is written when the config is bad"
        );

        let ws = WorkspaceConfig {
            skills: vec![Skill::new("skill-a", "", "").unwrap()],
            skill_dirs: vec!["many".into()],
            ..Default::default()
        };
        let e = err_of(install_fx(&ws, &f));
        assert!(e.contains("two skills are both named `skill-a`"), "{e}");
        assert!(e.contains("an inline skill") && e.contains("many/a"), "{e}");

        let ws = WorkspaceConfig {
            skill_dirs: vec!["assets".into()],
            ..Default::default()
        };
        let e = err_of(install_fx(&ws, &f));
        assert!(e.contains("has no skills"), "{e}");

        let bad = |list: Vec<(String, String)>, dirs: bool| {
            let mut ws = WorkspaceConfig::default();
            if dirs {
                ws.local_dirs = list;
            } else {
                ws.local_files = list;
            }
            err_of(install_fx(&ws, &f))
        };
        let e = bad(vec![("data.csv".into(), "../escape.csv".into())], false);
        assert!(e.contains("contains `..`"), "{e}");
        let e = bad(vec![("data.csv".into(), "/etc/evil".into())], false);
        assert!(e.contains("outside the workspace"), "{e}");
        let e = bad(vec![("assets".into(), "a/../../b".into())], true);
        assert!(e.contains("contains `..`"), "{e}");
        let e = bad(vec![("assets".into(), "x".into())], false);
        assert!(e.contains("list it under local_dirs"), "{e}");
        let e = bad(vec![("data.csv".into(), "x".into())], true);
        assert!(e.contains("list it under local_files"), "{e}");
        let e = bad(vec![("missing.csv".into(), "x".into())], false);
        assert!(
            e.contains("`missing.csv`") && e.contains("cannot be read"),
            "{e}"
        );

        // An absolute destination inside the workspace is fine; `.` takes the file's name.
        let inside = f.ws_dir.join("abs/d.csv").display().to_string();
        let ws = WorkspaceConfig {
            local_files: vec![
                ("data.csv".into(), inside.clone()),
                ("data.csv".into(), ".".into()),
            ],
            ..Default::default()
        };
        install_fx(&ws, &f).unwrap();
        assert!(Path::new(&inside).is_file());
        assert!(f.ws_dir.join("data.csv").is_file());
    }

    #[test]
    fn local_dir_containing_the_workspace_is_not_copied_into_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        write(&base.join("a.txt"), "a");
        let ws_dir = base.join("out/ws");
        let ws = WorkspaceConfig {
            local_dirs: vec![(".".into(), "project".into())],
            ..Default::default()
        };
        let inst = install(&ws, &base.join("out/libs"), &ws_dir, base).unwrap();
        assert!(ws_dir.join("project/a.txt").is_file());
        assert!(!ws_dir.join("project/out/ws").exists());
        // The libraries folder is not excluded, but it is not nested either.
        assert!(inst.files_copied >= 1);
    }

    #[test]
    fn check_conflicts_finds_shadowed_libraries() {
        let ws = WorkspaceConfig {
            libraries: vec![Library::from_code("tokenizer", "").unwrap()],
            ..Default::default()
        };
        let models = [ModelSpec::from(handle("gpt2", "/m", "model"))];
        let e = err_of(check_conflicts(&ws, &models));
        assert!(e.contains("library `tokenizer`"), "{e}");
        let no_preload = WorkspaceConfig {
            preload_models: false,
            ..ws.clone()
        };
        check_conflicts(&no_preload, &models).unwrap();
        let other = [ModelSpec::from(handle("gpt2", "/m", "m2"))];
        check_conflicts(&ws, &other).unwrap();
    }

    #[test]
    fn model_specs_pair_handles_with_configs() {
        let cfg: ModelConfig =
            serde_json::from_str(r#"{"name": "x", "var_name": "a", "load_as_peft": true}"#)
                .unwrap();
        let specs = ModelSpec::from_resolved(&[handle("x", "/x", "a")], std::slice::from_ref(&cfg))
            .unwrap();
        assert!(specs[0].load_as_peft);
        assert!(ModelSpec::from_resolved(&[], std::slice::from_ref(&cfg)).is_err());
        assert!(ModelSpec::from_resolved(&[handle("x", "/x", "b")], &[cfg]).is_err());
    }

    // ---- generated code and prompt text

    fn installed(libs: &str, modules: &[&str]) -> Installed {
        Installed {
            libraries_dir: PathBuf::from(libs),
            modules: modules.iter().map(|m| m.to_string()).collect(),
            changed_modules: vec![],
            removed_modules: vec![],
            skills: vec![],
            files_copied: 0,
        }
    }

    #[test]
    fn init_code_small_case_whole() {
        let ws = WorkspaceConfig {
            custom_init_code: Some("print('hi')".into()),
            ..Default::default()
        };
        let got = init_code(
            &ws,
            &installed("/libs", &["mylib"]),
            &[],
            InitOptions::default(),
        );
        let want = r#"# Workspace setup, generated by seer.
import sys
import importlib

_seer_libraries = '/libs'
if _seer_libraries not in sys.path:
    sys.path.insert(0, _seer_libraries)
del _seer_libraries
importlib.invalidate_caches()
import mylib

# custom_init_code
_seer_custom = 'print(\'hi\')'
import linecache as _seer_linecache
_seer_linecache.cache['<custom_init_code>'] = (len(_seer_custom), None, _seer_custom.splitlines(True), '<custom_init_code>')
del _seer_linecache
try:
    exec(compile(_seer_custom, '<custom_init_code>', 'exec'), globals())
finally:
    del _seer_custom
"#;
        assert_eq!(got, want);
    }

    #[test]
    fn init_code_model_lines() {
        let plain = handle("gpt2", "/hub/gpt2", "model");
        let mut odd = handle("it's \"odd\"\n", "/p/ü", "m2");
        odd.revision = "abc".into();
        let mut hidden = handle("hidden-model-2", "/sb/models/secret", "secret");
        hidden.hidden = true;
        let mut adapter = handle("org/lora", "/hub/lora", "adapter");
        adapter.is_peft = true;
        adapter.base_model = Some("org/base".into());
        adapter.base_model_path = Some("/hub/base".into());
        let models = [
            ModelSpec::from(plain),
            ModelSpec::from(odd),
            ModelSpec::from(hidden),
            ModelSpec::new(adapter.clone(), true),
            ModelSpec::new(handle("x", "/x", "not valid"), false),
        ];
        let ws = WorkspaceConfig::default();
        let code = init_code(
            &ws,
            &installed("/l", &[]),
            &models,
            InitOptions { cuda: true },
        );
        for line in [
            "model, tokenizer = _seer_load_model('model', 'gpt2', '/hub/gpt2', 'tokenizer', cuda=True)\n",
            "m2, m2_tokenizer = _seer_load_model('m2', 'it\\'s \"odd\"\\n', '/p/\\u00fc', 'm2_tokenizer', cuda=True)\n",
            "secret, secret_tokenizer = _seer_load_model('secret', 'hidden-model-2', '/sb/models/secret', 'secret_tokenizer', hidden=True, cuda=True)\n",
            "adapter, adapter_tokenizer = _seer_load_model('adapter', 'org/lora', '/hub/lora', 'adapter_tokenizer', base_path='/hub/base', base_label='org/base', is_peft=True, keep_peft=True, cuda=True)\n",
            "globals()['not valid'], globals()['not valid_tokenizer'] = _seer_load_model(",
            "del _seer_load_model\n",
            "kwargs[\"device_map\"] = \"auto\"",
            "peft.PeftModel.from_pretrained(model, path)",
            "model.merge_and_unload()",
        ] {
            assert!(code.contains(line), "missing {line:?} in\n{code}");
        }
        assert!(code.is_ascii());

        // Not merged; masking off; not preloaded.
        let merged = init_code(
            &WorkspaceConfig {
                hidden_model_loading: false,
                ..Default::default()
            },
            &installed("/l", &[]),
            &[ModelSpec::new(adapter, false), models[2].clone()],
            InitOptions::default(),
        );
        assert!(merged.contains("is_peft=True, keep_peft=False, cuda=False)"));
        assert!(!merged.contains("hidden=True"));
        let none = init_code(
            &WorkspaceConfig {
                preload_models: false,
                ..Default::default()
            },
            &installed("/l", &["a"]),
            &models,
            InitOptions::default(),
        );
        assert!(!none.contains("_seer_load_model") && none.contains("import a\n"));
    }

    #[test]
    fn reload_code_lists_modules() {
        assert_eq!(reload_code(&[]), "");
        let code = reload_code(&["a".into(), "it's".into()]);
        assert!(
            code.contains("for _seer_name in ['a', 'it\\'s']:"),
            "{code}"
        );
        assert!(code.contains("importlib.reload(sys.modules[name])"));
        assert!(code.contains("print(f\"seer: reloaded {name}\")"), "{code}");
    }

    #[test]
    fn library_docs_markdown() {
        let ws = WorkspaceConfig {
            libraries: vec![
                Library::from_code("a", "\"\"\"Does A.\n\nMore.\"\"\"").unwrap(),
                Library::from_code("b", "x = 1").unwrap(),
            ],
            ..Default::default()
        };
        assert_eq!(
            library_docs(&ws),
            "## a\n\nDoes A.\n\nMore.\n\n## b\n\n(no module docstring)\n\n"
        );
        assert_eq!(library_docs(&WorkspaceConfig::default()), "");
    }

    #[test]
    fn model_info_hides_hidden_models() {
        let mut plain = handle("org/gpt", "/hub/snap/abc", "model");
        plain.revision = "abc123".into();
        let mut hidden = handle("hidden-model-1", "/sb/models/m2", "m2");
        hidden.hidden = true;
        hidden.revision = "deadbeef".into();
        hidden.is_peft = true;
        hidden.base_model = Some("hidden-model-1-base".into());
        hidden.base_model_path = Some("/sb/models/m2_base".into());
        let mut adapter = handle("org/lora", "/hub/lora", "lora");
        adapter.is_peft = true;
        adapter.base_model = Some("org/base".into());
        let models = [
            ModelSpec::from(plain),
            ModelSpec::new(hidden, true),
            ModelSpec::new(adapter, false),
        ];
        let ws = WorkspaceConfig {
            libraries: vec![Library::from_code("tools", "'''Tools.'''").unwrap()],
            ..Default::default()
        };
        let text = model_info_text(&models, &ws);
        assert!(text.starts_with("# Models\n\n"), "{text}");
        assert!(
            text.contains("- `model`: **org/gpt** (revision `abc123`). Tokenizer: `tokenizer`.\n"),
            "{text}"
        );
        assert!(text.contains(
            "- `m2`: **hidden-model-1**, a hidden model: which model it is is deliberately not \
             disclosed; a PEFT adapter on **hidden-model-1-base**, kept as a `peft.PeftModel`"
        ));
        assert!(text.contains("Tokenizer: `m2_tokenizer`."));
        assert!(
            text.contains("merged into the base model's weights"),
            "{text}"
        );
        assert!(text.contains("`model.device`"), "{text}");
        assert!(text.contains("# Libraries\n") && text.contains("## tools\n\nTools.\n"));
        for secret in ["/sb/", "deadbeef"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }

        // Not preloaded: paths of visible models only.
        let lazy = WorkspaceConfig {
            preload_models: false,
            ..Default::default()
        };
        let text = model_info_text(&models, &lazy);
        assert!(
            text.contains("at `/hub/snap/abc`") && !text.contains("/sb/"),
            "{text}"
        );
        assert!(!text.contains("Tokenizer:"));
        assert_eq!(model_info_text(&[], &WorkspaceConfig::default()), "");
    }
}

/// End-to-end tests: the generated Python runs in a real interpreter with torch,
/// transformers and peft from PyPI (a venv made with uv and cached under the target
/// folder) against tiny random models made offline by `tests/fixtures/make_tiny_model.py`.
/// Set `SEER_SKIP_PYTHON_TESTS=1` to skip them.
#[cfg(test)]
mod python_tests {
    use super::tests::{DOCSTRING_CASES, handle};
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
    use std::sync::OnceLock;

    const PACKAGES: [&str; 3] = ["torch", "transformers", "peft"];

    fn skip() -> bool {
        let skip = std::env::var("SEER_SKIP_PYTHON_TESTS").is_ok_and(|v| v == "1");
        if skip {
            eprintln!("skipped: SEER_SKIP_PYTHON_TESTS=1");
        }
        skip
    }

    /// `CARGO_TARGET_TMPDIR` is only set for integration tests; a unit test binary lives
    /// in `<target>/<profile>/deps/`, so use `<target>/tmp` next to it.
    fn test_tmp() -> PathBuf {
        if let Some(d) = option_env!("CARGO_TARGET_TMPDIR") {
            return PathBuf::from(d);
        }
        let exe = std::env::current_exe().unwrap();
        exe.ancestors().nth(3).unwrap().join("tmp")
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn find_uv() -> PathBuf {
        let on_path = Command::new("uv")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if on_path {
            return "uv".into();
        }
        let p = dirs::home_dir()
            .unwrap()
            .join(".pyenv/versions/3.11.7/bin/uv");
        assert!(
            p.exists(),
            "uv is neither on PATH nor at {}; install it with `pip install uv`",
            p.display()
        );
        p
    }

    fn check(out: &Output, what: &str) {
        assert!(
            out.status.success(),
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The venv's python, made on first use.
    fn python() -> &'static Path {
        static PY: OnceLock<PathBuf> = OnceLock::new();
        PY.get_or_init(|| {
            let root = test_tmp().join("seer-workspace-pyenv-v1");
            let py = root.join("bin/python");
            let ready = root.join(".ready");
            if ready.exists() && py.exists() {
                return py;
            }
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(test_tmp()).unwrap();
            let uv = find_uv();
            let out = Command::new(&uv)
                .args(["venv", "--quiet"])
                .arg(&root)
                .env("UV_PYTHON_DOWNLOADS", "never")
                .output()
                .unwrap();
            check(&out, "uv venv");
            let install = |offline: bool| {
                let mut c = Command::new(&uv);
                c.args(["pip", "install", "--quiet", "--python"]).arg(&py);
                if offline {
                    c.arg("--offline");
                }
                c.args(PACKAGES).output().unwrap()
            };
            if !install(true).status.success() {
                check(&install(false), "uv pip install torch transformers peft");
            }
            fs::write(&ready, "ok\n").unwrap();
            py
        })
    }

    fn offline(cmd: &mut Command) -> &mut Command {
        cmd.env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1")
            .env("PYTHONIOENCODING", "utf-8")
            // Bytecode is written as usual: the reload test depends on stale `.pyc` files
            // being dropped by `install`.
            .env_remove("PYTHONDONTWRITEBYTECODE")
    }

    /// The tiny models, made once per target folder.
    fn tiny() -> &'static Path {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let dir = test_tmp().join("seer-workspace-tiny-v1");
            if dir.join(".complete").exists() {
                return dir;
            }
            let out = offline(
                Command::new(python())
                    .arg(fixture("make_tiny_model.py"))
                    .arg(&dir),
            )
            .output()
            .unwrap();
            check(&out, "make_tiny_model.py");
            dir
        })
    }

    fn tiny_path(sub: &str) -> String {
        tiny().join(sub).display().to_string()
    }

    /// Runs `code` as a script in `dir`.
    fn run_script(dir: &Path, code: &str) -> Output {
        let file = dir.join("run_init.py");
        fs::write(&file, code).unwrap();
        offline(Command::new(python()).arg(&file).current_dir(dir))
            .output()
            .unwrap()
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn py_literals_and_docstrings_agree_with_python() {
        if skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let strings = [
            "plain",
            "it's \"quoted\"",
            "back\\slash\\",
            "l1\nl2\r\n\ttab",
            "nul\0 bell\x07 del\x7f",
            "é 日本 🦀 \u{2028}",
            "'''\"\"\"",
        ];
        let mut code = String::from("import ast, json, os\nlits = [\n");
        for s in strings {
            code.push_str(&format!("    {},\n", py_str(s)));
        }
        code.push_str("]\ndocs = []\nfor src in [\n");
        for (src, _) in DOCSTRING_CASES {
            code.push_str(&format!("    {},\n", py_str(src)));
        }
        code.push_str(
            "]:\n    try:\n        docs.append(ast.get_docstring(ast.parse(src.encode())) or '')\n    \
             except SyntaxError:\n        docs.append(None)\n",
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"/x\xff'\\y"));
            code.push_str(&format!("path = os.fsencode({}).hex()\n", py_path(p)));
        }
        #[cfg(not(unix))]
        code.push_str("path = ''\n");
        code.push_str("print(json.dumps({'lits': lits, 'docs': docs, 'path': path}))\n");
        let out = run_script(tmp.path(), &code);
        check(&out, "literal check");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let lits: Vec<String> = serde_json::from_value(v["lits"].clone()).unwrap();
        assert_eq!(lits, strings);
        let docs: Vec<Option<String>> = serde_json::from_value(v["docs"].clone()).unwrap();
        for ((src, ours), python) in DOCSTRING_CASES.iter().zip(docs) {
            // Python rejects some cases outright; ours must then find nothing.
            assert_eq!(*ours, python.unwrap_or_default(), "for {src:?}");
        }
        #[cfg(unix)]
        assert_eq!(v["path"], hex::encode(b"/x\xff'\\y"));
    }

    #[test]
    fn plain_models_library_and_custom_code() {
        if skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("script");
        fs::create_dir_all(&base).unwrap();
        fs::write(
            base.join("mathlib.py"),
            "\"\"\"Math helpers.\"\"\"\ndef double(x):\n    return 2 * x\n",
        )
        .unwrap();
        let ws = WorkspaceConfig {
            libraries: vec![Library::from_file(&base, "mathlib.py").unwrap()],
            custom_init_code: Some("CUSTOM = mathlib.double(21)\nprint('custom ran')\n".into()),
            ..Default::default()
        };
        // A libraries folder whose name needs escaping.
        let libs = tmp.path().join("libs 'ü\" \\");
        let inst = install(&ws, &libs, &tmp.path().join("ws"), &base).unwrap();
        let odd_name = "tïny \"m2\" 'x'\\y";
        let models = [
            ModelSpec::from(handle("tiny-llama", &tiny_path("base"), "model")),
            ModelSpec::from(handle(odd_name, &tiny_path("base_notok"), "m2")),
        ];
        check_conflicts(&ws, &models).unwrap();
        let mut code = init_code(&ws, &inst, &models, InitOptions::default());
        code.push_str(&format!(
            r#"
import torch
ids = tokenizer("the quick brown fox", return_tensors="pt")
with torch.no_grad():
    logits = model(**ids).logits
assert logits.shape == (1, 4, 1000), logits.shape
assert type(model).__name__ == "LlamaForCausalLM" and not model.training
assert type(m2).__name__ == "LlamaForCausalLM" and not m2.training
assert m2_tokenizer is None
assert model.config._name_or_path == {base}, model.config._name_or_path
assert mathlib.double(4) == 8 and CUSTOM == 42
assert sys.path[0] == {libs}, sys.path[0]
print("CHECKS OK")
"#,
            base = py_str(&tiny_path("base")),
            libs = py_path(&libs),
        ));
        let out = run_script(tmp.path(), &code);
        check(&out, "init code");
        let stdout = text(&out.stdout);
        assert!(stdout.contains("CHECKS OK"), "{stdout}");
        assert!(stdout.contains("custom ran"), "{stdout}");
        assert!(
            stdout.contains("seer: loaded tiny-llama as `model` (tokenizer: `tokenizer`)"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("seer: loaded {odd_name} as `m2`\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains("warning: the tokenizer for `m2` could not be loaded (")
                && stdout.contains("`m2_tokenizer` is None"),
            "{stdout}"
        );
    }

    #[test]
    fn peft_merged_and_kept() {
        if skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let adapter = |var: &str, dir: &str| {
            let mut h = handle("tiny-lora", &tiny_path(dir), var);
            h.is_peft = true;
            h.base_model = Some("tiny-llama".into());
            h.base_model_path = Some(tiny_path("base"));
            h
        };
        let models = [
            ModelSpec::from(handle("tiny-llama", &tiny_path("base"), "base")),
            ModelSpec::new(adapter("merged", "lora"), false),
            ModelSpec::new(adapter("kept", "lora_tok"), true),
        ];
        let ws = WorkspaceConfig::default();
        let inst = install(
            &ws,
            &tmp.path().join("libs"),
            &tmp.path().join("ws"),
            tmp.path(),
        )
        .unwrap();
        let mut code = init_code(&ws, &inst, &models, InitOptions::default());
        code.push_str(
            r#"
import peft, torch
assert not isinstance(merged, peft.PeftModel), type(merged)
assert type(merged).__name__ == "LlamaForCausalLM", type(merged)
assert isinstance(kept, peft.PeftModel), type(kept)
assert not kept.training and not merged.training
ids = base_tokenizer("hello world", return_tensors="pt")
with torch.no_grad():
    lb = base(**ids).logits
    lm = merged(**ids).logits
    lk = kept(**ids).logits
    with kept.disable_adapter():
        lk0 = kept(**ids).logits
assert torch.allclose(lm, lk, atol=1e-4), "merged and kept adapters disagree"
assert not torch.allclose(lb, lm, atol=1e-4), "the adapter changed nothing"
assert torch.allclose(lk0, lb, atol=1e-5), "disable_adapter is not the base"
# lora_tok has its own tokenizer (one extra token); lora has none, so the base's is used.
assert len(kept_tokenizer) == len(base_tokenizer) + 1, (len(kept_tokenizer), len(base_tokenizer))
assert len(merged_tokenizer) == len(base_tokenizer)
print("CHECKS OK")
"#,
        );
        let out = run_script(tmp.path(), &code);
        check(&out, "PEFT init code");
        assert!(text(&out.stdout).contains("CHECKS OK"));
    }

    #[test]
    fn hidden_models_are_masked() {
        if skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut plain = handle("hidden-model-0", &tiny_path("base"), "model");
        plain.hidden = true;
        let mut adapter = handle("hidden-model-1", &tiny_path("lora"), "secret");
        adapter.hidden = true;
        adapter.is_peft = true;
        adapter.base_model = Some("hidden-model-1-base".into());
        adapter.base_model_path = Some(tiny_path("base"));
        let mut notok = handle("hidden-model-2", &tiny_path("base_notok"), "notok");
        notok.hidden = true;
        let mut broken = handle("hidden-model-3", &tiny_path("missing"), "broken");
        broken.hidden = true;
        let models = [
            ModelSpec::from(plain),
            ModelSpec::new(adapter, true),
            ModelSpec::from(notok),
        ];
        let ws = WorkspaceConfig::default();
        let inst = install(
            &ws,
            &tmp.path().join("libs"),
            &tmp.path().join("ws"),
            tmp.path(),
        )
        .unwrap();
        let mut code = init_code(&ws, &inst, &models, InitOptions::default());
        code.push_str(
            r#"
print("MODEL", model.config._name_or_path, model.name_or_path, tokenizer.name_or_path)
print("SECRET", secret.config._name_or_path, secret.name_or_path,
      secret.get_base_model().name_or_path, secret.peft_config["default"].base_model_name_or_path,
      secret_tokenizer.name_or_path)
print("NOTOK", notok.config._name_or_path, notok_tokenizer)
print(repr(tokenizer))
print(tokenizer.init_kwargs)
print(model.config)
print(secret.peft_config)
"#,
        );
        // Loading a hidden model that fails says so without details.
        code.push_str(&init_code(
            &WorkspaceConfig::default(),
            &inst,
            &[ModelSpec::from(broken)],
            InitOptions::default(),
        ));
        let out = run_script(tmp.path(), &code);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            !out.status.success(),
            "the broken model should fail:\n{stdout}"
        );
        assert!(
            stdout.contains("MODEL hidden-model-0 hidden-model-0 hidden-model-0\n"),
            "{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains(
                "SECRET hidden-model-1 hidden-model-1 hidden-model-1 hidden-model-1-base \
                 hidden-model-1\n"
            ),
            "{stdout}"
        );
        assert!(stdout.contains("NOTOK hidden-model-2 None\n"), "{stdout}");
        assert!(
            stdout.contains(
                "warning: the tokenizer for `notok` could not be loaded (ValueError); \
                 `notok_tokenizer` is None"
            ),
            "{stdout}"
        );
        assert!(
            stderr.contains(
                "RuntimeError: loading hidden-model-3 into `broken` failed (OSError); the \
                 details are withheld because the model is hidden"
            ),
            "{stderr}"
        );
        let root = tiny().display().to_string();
        for (name, s) in [("stdout", &stdout), ("stderr", &stderr)] {
            // The failing line of the script quotes the call; that is the script's own
            // source, which the kernel runs hidden. Nothing else may name the folder.
            let leaks: Vec<&str> = s
                .lines()
                .filter(|l| l.contains(&root) && !l.contains("_seer_load_model("))
                .collect();
            assert!(
                leaks.is_empty(),
                "{name} names the model folder: {leaks:#?}\n{s}"
            );
        }
    }

    #[test]
    fn broken_library_fails_at_start_with_its_traceback() {
        if skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("broken.py"),
            "x = 1\nraise ValueError('boom from broken')\n",
        )
        .unwrap();
        let ws = WorkspaceConfig {
            libraries: vec![Library::from_file(tmp.path(), "broken.py").unwrap()],
            custom_init_code: Some("print('must not run')".into()),
            ..Default::default()
        };
        let inst = install(
            &ws,
            &tmp.path().join("libs"),
            &tmp.path().join("ws"),
            tmp.path(),
        )
        .unwrap();
        let out = run_script(
            tmp.path(),
            &init_code(&ws, &inst, &[], InitOptions::default()),
        );
        let stderr = text(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("ValueError: boom from broken"), "{stderr}");
        assert!(stderr.contains("broken.py\", line 2"), "{stderr}");
        assert!(!text(&out.stdout).contains("must not run"));

        // A broken custom_init_code shows its own line in the traceback.
        let ws = WorkspaceConfig {
            custom_init_code: Some("a = 1\nb = a / 0\n".into()),
            ..Default::default()
        };
        let inst = install(
            &ws,
            &tmp.path().join("libs"),
            &tmp.path().join("ws"),
            tmp.path(),
        )
        .unwrap();
        assert_eq!(inst.removed_modules, ["broken"]);
        // (Source lines come from linecache, which IPython's and the traceback module's
        // formatting read; the kernel driver uses the latter.)
        let mut k = Kernel::start(tmp.path());
        let (ok, out) = k.run_cell(&init_code(&ws, &inst, &[], InitOptions::default()));
        assert!(!ok);
        assert!(
            out.contains("File \"<custom_init_code>\", line 2") && out.contains("b = a / 0"),
            "{out}"
        );
    }

    /// A [`fixture`] `kernel_driver.py` process: cells in, output out.
    struct Kernel {
        child: Child,
        stdin: ChildStdin,
        stdout: BufReader<ChildStdout>,
    }

    impl Kernel {
        fn start(cwd: &Path) -> Kernel {
            let mut child = offline(Command::new(python()).arg(fixture("kernel_driver.py")))
                .current_dir(cwd)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Kernel {
                child,
                stdin,
                stdout,
            }
        }

        /// Runs a cell: whether it succeeded, and its output (with the traceback if not).
        fn run_cell(&mut self, code: &str) -> (bool, String) {
            writeln!(self.stdin, "{}", serde_json::to_string(code).unwrap()).unwrap();
            self.stdin.flush().unwrap();
            let mut output = String::new();
            loop {
                let mut line = String::new();
                assert!(self.stdout.read_line(&mut line).unwrap() > 0, "{output}");
                match line.trim_end() {
                    "<<seer-cell-done ok>>" => return (true, output),
                    "<<seer-cell-done error>>" => return (false, output),
                    _ => output.push_str(&line),
                }
            }
        }

        /// Runs a cell that must succeed; its output.
        fn run(&mut self, code: &str) -> String {
            let (ok, output) = self.run_cell(code);
            assert!(ok, "cell failed:\n{code}\n---\n{output}");
            output
        }
    }

    impl Drop for Kernel {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn reinstall_then_reload() {
        if skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("script");
        let put = |rel: &str, text: &str| {
            let p = base.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        put("mylib.py", "def f():\n    return 1\n");
        put("pkg/__init__.py", "from .sub import g\n");
        put("pkg/sub.py", "def g():\n    return 'a'\n");
        let mut ws = WorkspaceConfig {
            libraries: vec![
                Library::from_file(&base, "mylib.py").unwrap(),
                Library::from_directory(&base, "pkg").unwrap(),
            ],
            ..Default::default()
        };
        let libs = tmp.path().join("libs");
        let ws_dir = tmp.path().join("ws");
        let first = install(&ws, &libs, &ws_dir, &base).unwrap();
        assert_eq!(first.changed_modules, ["mylib", "pkg"]);

        let mut k = Kernel::start(tmp.path());
        k.run(&init_code(&ws, &first, &[], InitOptions::default()));
        assert_eq!(k.run("print(mylib.f(), pkg.g())"), "1 a\n");

        // Same sizes, same second: only fresh bytecode handling makes this reload right.
        put("mylib.py", "def f():\n    return 2\n");
        put("pkg/sub.py", "def g():\n    return 'b'\n");
        put("newlib.py", "N = 'new'\n");
        ws.libraries
            .push(Library::from_file(&base, "newlib.py").unwrap());
        let second = install(&ws, &libs, &ws_dir, &base).unwrap();
        assert_eq!(second.changed_modules, ["mylib", "pkg", "newlib"]);
        let out = k.run(&reload_code(&second.changed_modules));
        assert_eq!(
            out,
            "seer: reloaded mylib\nseer: reloaded pkg\nseer: reloaded newlib\n"
        );
        assert_eq!(
            k.run("print(mylib.f(), pkg.g(), pkg.sub.g(), newlib.N)"),
            "2 b b new\n"
        );
        let third = install(&ws, &libs, &ws_dir, &base).unwrap();
        assert!(third.changed_modules.is_empty());
        assert_eq!(reload_code(&third.changed_modules), "");
    }
}
