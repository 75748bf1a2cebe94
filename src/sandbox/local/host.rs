//! What the machine a local sandbox runs on has: its NVIDIA GPUs and Debian packages,
//! checked against the config before anything is provisioned.

use anyhow::{Context, Result, bail};

use crate::sandbox::config::SandboxConfig;

/// Number of NVIDIA GPUs on this machine.
fn gpu_count() -> usize {
    if let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") {
        return entries.count();
    }
    std::process::Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("GPU "))
                .count()
        })
        .unwrap_or(0)
}

/// Checks `gpu`/`gpu_count` against this machine; the `CUDA_VISIBLE_DEVICES` value the
/// sandbox gets (`None` without `gpu`).
pub(super) fn check_gpu(cfg: &SandboxConfig) -> Result<Option<String>> {
    let Some(gpu) = &cfg.gpu else { return Ok(None) };
    let have = gpu_count();
    if have == 0 {
        bail!(
            "gpu: \"{gpu}\" was requested but this machine has no NVIDIA GPU; use `gpu: ()` to run on the CPU, or a backend with GPUs"
        );
    }
    let want = cfg.gpu_count as usize;
    if want > have {
        bail!("gpu_count: {want} GPUs requested but this machine has {have}");
    }
    Ok(Some(
        (0..want)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ))
}

/// Fails naming every `system_packages` entry dpkg does not list as installed.
pub(super) fn check_system_packages(pkgs: &[String]) -> Result<()> {
    if pkgs.is_empty() {
        return Ok(());
    }
    let mut missing = vec![];
    for p in pkgs {
        let out = std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", p])
            .output()
            .context("checking system_packages needs dpkg-query (Debian/Ubuntu)")?;
        if !String::from_utf8_lossy(&out.stdout).contains("install ok installed") {
            missing.push(p.as_str());
        }
    }
    if !missing.is_empty() {
        bail!(
            "system_packages not installed on this machine: {}. The local backend does not install system packages; run `sudo apt-get install {}` and start again",
            missing.join(", "),
            missing.join(" ")
        );
    }
    Ok(())
}
