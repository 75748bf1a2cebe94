#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
#[test]
fn hold() {
    let slurm = common::slurm::Slurm::start();
    std::fs::write("/tmp/slurm-conf-path", slurm.conf().display().to_string()).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3000));
}
