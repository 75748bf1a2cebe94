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
///
/// Inside a Slurm job (the slurm backend's agent runs in one) the GPUs are the ones Slurm
/// allocated to it, named by the `CUDA_VISIBLE_DEVICES` Slurm set.
pub(super) fn check_gpu(cfg: &SandboxConfig) -> Result<Option<String>> {
    let Some(gpu) = &cfg.gpu else { return Ok(None) };
    if std::env::var_os("SLURM_JOB_ID").is_some()
        && let Ok(given) = std::env::var("CUDA_VISIBLE_DEVICES")
    {
        return slurm_gpus(&given, cfg.gpu_count as usize).map(Some);
    }
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

/// The first `want` of the GPUs Slurm gave the job (`CUDA_VISIBLE_DEVICES`).
fn slurm_gpus(given: &str, want: usize) -> Result<String> {
    let ids: Vec<&str> = given.split(',').filter(|s| !s.trim().is_empty()).collect();
    if ids.len() < want {
        bail!(
            "gpu_count: {want} GPUs requested but the Slurm job was given {} (CUDA_VISIBLE_DEVICES={given})",
            ids.len()
        );
    }
    Ok(ids[..want].join(","))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_gpus_are_the_first_of_the_jobs() {
        assert_eq!(slurm_gpus("2,3", 1).unwrap(), "2");
        assert_eq!(slurm_gpus("0,1", 2).unwrap(), "0,1");
        assert_eq!(
            slurm_gpus("", 1).unwrap_err().to_string(),
            "gpu_count: 1 GPUs requested but the Slurm job was given 0 (CUDA_VISIBLE_DEVICES=)"
        );
    }
}
