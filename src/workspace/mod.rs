//! Workspaces: what a notebook session mounts into its kernel.
//!
//! A workspace gathers
//! - **libraries**: Python modules the agent can `import` (a `.py` file, a package folder,
//!   inline code, or a *skill library*: a folder with `code.py` plus `SKILL.md`);
//! - **skills**: `SKILL.md` folders for Claude-style agents, installed under
//!   `<workspace>/.claude/skills/<name>/`;
//! - **local files and folders** copied from the host into the workspace;
//! - **custom init code** run in the kernel once the files and libraries are in place and
//!   the models loaded, before seer imports the libraries (Seer's order);
//! - whether the configured **models** are preloaded into the kernel.
//!
//! The flow is: build [`Library`] / [`Skill`] values with their constructors (relative
//! paths are taken from the script's folder), put them in a [`WorkspaceConfig`], pair the
//! resolved models with their `load_as_peft` flags ([`ModelSpec::from_resolved`]), call
//! [`check_conflicts`] and [`install`](fn@install), then run [`init_code`] hidden in a
//! fresh kernel and give the agent [`model_info_text`] and [`library_docs`].
//!
//! [`install`](fn@install) is idempotent: it rewrites only files whose content changed,
//! removes the libraries and skills a previous install put there that are no longer
//! configured, and reports which library modules changed, so a hot reload can re-install
//! and then run [`reload_code`] for [`Installed::changed_modules`].
//!
//! Generated Python embeds every string through
//! [`py_str`](crate::python_syntax::py_str), so any model name, path or code is safe to
//! embed.
//!
//! This file holds the types. `constructors` builds them (with the name rules of `names`),
//! `install` writes a workspace to disk (through [`crate::sandbox::sync`]), `codegen`
//! generates the kernel's Python, `prompt` the agent's text, and `pydoc` and `skill_md`
//! read module docstrings and `SKILL.md` front matter.

mod codegen;
mod constructors;
mod install;
mod names;
mod prompt;
mod pydoc;
mod pyfunc;
mod skill_md;

#[cfg(test)]
mod python_tests;
#[cfg(test)]
#[path = "test_util_tests.rs"]
mod test_util;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sandbox::models::ModelHandle;

pub use codegen::{init_code, reload_code};
pub use install::{check_conflicts, install, install_into};
pub use prompt::{library_docs, model_info_text};
pub use pydoc::extract_docstring;

fn yes() -> bool {
    true
}

/// The `workspace` section of a script.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// Python modules installed into the libraries folder (first on the kernel's
    /// `sys.path`), imported by seer after `custom_init_code`.
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
    /// what is there. Destinations are placed as a sandbox's are
    /// ([`crate::sandbox::fsutil::copy_dest`]): relative to the workspace, Seer's `/root/x`
    /// and `/workspace/x` at `<workspace>/x` ([`crate::sandbox::seer_paths`]), another
    /// absolute `/a/x` at `<workspace>/a/x`, never outside it.
    #[serde(default)]
    pub local_dirs: Vec<(String, String)>,
    /// `(host file, destination in the workspace)`, placed like `local_dirs`; a destination
    /// ending in `/` (or `.`) is a folder that receives the file under its own name.
    #[serde(default)]
    pub local_files: Vec<(String, String)>,
    /// Python run in the kernel once the libraries are importable and the models loaded,
    /// before seer imports the libraries.
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
/// was made; [`install`](fn@install) reads the files at `path` again (so edits are picked
/// up) and falls back to the snapshot only when the file is gone.
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
    /// One module of the shipped toolkit (`Library::from_file("toolkit/x.py")` with no
    /// such file beside the script): `file` names it in [`crate::toolkit::FILES`].
    ToolkitModule { file: String },
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

/// Options for [`init_code`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// The kernel has CUDA: models are loaded with `device_map="auto"` (needs `accelerate`).
    pub cuda: bool,
}

/// What [`install`](fn@install) did.
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

/// The variable holding a model's tokenizer.
fn tokenizer_var(var: &str) -> String {
    if var == "model" {
        "tokenizer".into()
    } else {
        format!("{var}_tokenizer")
    }
}
