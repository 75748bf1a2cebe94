//! `seer attach SANDBOX_ID [--session NAME]`: a person pokes the kernel an agent uses.
//! Each notebook session records its kernel's connection file in the sandbox's `tmp/`
//! (`session-<name>.kernel`); attach opens `jupyter console --existing` on it when
//! `jupyter` is on PATH and stdin is a terminal, and otherwise prints the file and the
//! command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::sandbox::registry;

/// The connection file of the kernel of `session` (the newest session when `None`) in
/// the live sandbox `id`.
pub fn connection_file(id: &str, session: Option<&str>) -> anyhow::Result<PathBuf> {
    let rec = registry::list_all()
        .into_iter()
        .find(|r| r.id == id)
        .with_context(|| format!("no sandbox {id} (see `seer ps`)"))?;
    if !rec.status.is_live() {
        bail!("sandbox {id} is not running");
    }
    let tmp = rec.dir.join("tmp");
    let record = match session {
        Some(name) => {
            crate::paths::check_file_name("--session", name)?;
            let p = crate::notebook::session::kernel_record(&rec.dir, name);
            if !p.is_file() {
                bail!(
                    "sandbox {id} has no notebook session named {name:?}{}",
                    known(&tmp)
                );
            }
            p
        }
        None => {
            let mut records: Vec<(std::time::SystemTime, PathBuf)> = sessions(&tmp)
                .into_iter()
                .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
                .collect();
            records.sort();
            match records.pop() {
                Some((_, p)) => p,
                None => bail!("sandbox {id} has no notebook session with a kernel"),
            }
        }
    };
    let file = PathBuf::from(
        std::fs::read_to_string(&record)
            .with_context(|| format!("reading {}", record.display()))?
            .trim(),
    );
    if !file.is_file() {
        bail!(
            "the kernel of that session is gone ({} no longer exists)",
            file.display()
        );
    }
    Ok(file)
}

fn sessions(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("session-") && n.ends_with(".kernel"))
        })
        .collect()
}

fn known(tmp: &Path) -> String {
    let mut names: Vec<String> = sessions(tmp)
        .iter()
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?;
            Some(
                n.strip_prefix("session-")?
                    .strip_suffix(".kernel")?
                    .to_string(),
            )
        })
        .collect();
    names.sort();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (its sessions: {})", names.join(", "))
    }
}

fn jupyter_on_path() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("jupyter"))
            .find(|p| p.is_file())
    })
}

/// The command line.
pub fn run(id: &str, session: Option<&str>) -> ExitCode {
    let file = match connection_file(id, session) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let shown = file.display().to_string();
    match jupyter_on_path() {
        Some(jupyter) if std::io::stdin().is_terminal() => {
            eprintln!("seer attach: jupyter console --existing {shown}");
            match std::process::Command::new(jupyter)
                .args(["console", "--existing"])
                .arg(&file)
                .status()
            {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(s) => {
                    eprintln!("error: jupyter console ended with {s}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: starting jupyter console: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            crate::output::out_line(&format!("kernel connection file: {shown}"));
            crate::output::out_line(&format!("attach with: jupyter console --existing {shown}"));
            ExitCode::SUCCESS
        }
    }
}
