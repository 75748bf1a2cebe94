//! Building workspace values: [`Library`] and [`Skill`] from files, folders or inline
//! text (relative paths taken from the script's folder), and [`ModelSpec`] from resolved
//! models.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::names::{check_module_name, check_skill_name};
use super::pydoc::extract_docstring;
use super::pyfunc::functions;
use super::skill_md::{parse_front_matter, yaml_scalar};
use super::{Library, LibrarySource, ModelSpec, Skill};
use crate::sandbox::models::ModelHandle;

/// `p` taken relative to `base_dir`, made absolute.
pub(super) fn resolve(base_dir: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

pub(super) fn cannot_read(what: &str, given: &Path, path: &Path) -> String {
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
pub(super) fn dir_name(path: &Path) -> Option<String> {
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
                source: LibrarySource::ToolkitModule {
                    file: file.to_string(),
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
    pub(super) fn origin(&self) -> String {
        match &self.source {
            LibrarySource::File { path, .. } => format!("the file {}", path.display()),
            LibrarySource::Directory { path } => format!("the package {}", path.display()),
            LibrarySource::Code { .. } => "inline code".to_string(),
            LibrarySource::SkillDir { path, .. } => {
                format!("the skill library {}", path.display())
            }
            LibrarySource::Toolkit {} => "the toolkit shipped with seer".to_string(),
            LibrarySource::ToolkitModule { file } => {
                format!("toolkit/{file} shipped with seer")
            }
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

    /// A skill made from one `@expose` function (`function`, the name it is served under)
    /// of the interface file `path`, read without running it: the skill is named after the
    /// function (`_` as `-`) unless `name` is given, its description is the docstring's
    /// first paragraph unless `description` is given, and its body shows the signature and
    /// the whole docstring. Seer's `Skill.from_function`.
    pub fn from_function(
        base_dir: &Path,
        path: impl AsRef<Path>,
        function: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Skill> {
        let given = path.as_ref();
        let path = resolve(base_dir, given);
        let code = fs::read_to_string(&path)
            .with_context(|| cannot_read("interface file", given, &path))?;
        let file = path.file_name().map_or_else(
            || given.display().to_string(),
            |f| f.to_string_lossy().to_string(),
        );
        let all = functions(&code);
        let exposed: Vec<&str> = all
            .iter()
            .filter(|f| f.exposed)
            .map(|f| f.name.as_str())
            .collect();
        let listed = if exposed.is_empty() {
            "it exposes none (mark a function with `@expose`)".to_string()
        } else {
            format!("its exposed functions: {}", exposed.join(", "))
        };
        let Some(f) = all.iter().find(|f| f.exposed && f.name == function) else {
            if all.iter().any(|f| !f.exposed && f.def_name == function) {
                bail!(
                    "`{function}` in {} is not marked `@expose`; mark it (only exposed \
                     functions are served), or take one of {listed}",
                    path.display()
                );
            }
            if let Some(alias) = all.iter().find(|f| f.exposed && f.def_name == function) {
                bail!(
                    "`{function}` in {} is served as `{}` (its `@expose(name=...)`); give \
                     that name",
                    path.display(),
                    alias.name
                );
            }
            bail!(
                "{} has no `@expose` function `{function}`; {listed}",
                path.display()
            );
        };
        let skill_name = name.map_or_else(|| f.name.replace('_', "-"), str::to_string);
        check_skill_name(
            &skill_name,
            &format!("skill from `{function}` of {}", path.display()),
        )?;
        let summary = f
            .doc
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let description = match description {
            Some(d) => d.to_string(),
            None if summary.is_empty() => {
                format!(
                    "`{}{}`, a function of the interface {file}",
                    f.name, f.signature
                )
            }
            None => summary,
        };
        let module = path.file_stem().map_or_else(
            || "interface".to_string(),
            |s| s.to_string_lossy().to_string(),
        );
        let mut body = format!(
            "# {skill_name}\n\n```python\n{}{}\n```\n\n",
            f.name, f.signature
        );
        if !f.doc.is_empty() {
            body.push_str(&f.doc);
            body.push_str("\n\n");
        }
        body.push_str(&format!(
            "A function of the interface `{file}`, served from a scoped sandbox: call it as \
             `{module}.{}(...)` when the interface is served as a library (`import {module}`), \
             or as the tool `{}` when it is served over MCP.\n",
            f.name, f.name
        ));
        Ok(Skill {
            name: skill_name,
            description,
            body,
            dir: None,
        })
    }

    /// An inline skill: [`install`](fn@super::install) writes its `SKILL.md`.
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
    pub(super) fn render(&self) -> String {
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

impl ModelSpec {
    pub fn new(handle: ModelHandle, load_as_peft: bool) -> Self {
        ModelSpec {
            handle,
            load_as_peft,
        }
    }
}

/// A resolved model as its config asked to load it (`load_as_peft` travels on the handle).
impl From<ModelHandle> for ModelSpec {
    fn from(handle: ModelHandle) -> Self {
        let load_as_peft = handle.load_as_peft;
        ModelSpec::new(handle, load_as_peft)
    }
}

#[cfg(test)]
#[path = "constructors_tests.rs"]
mod tests;
