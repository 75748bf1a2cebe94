//! `seer __watchdog DIR`: a small process started with each sandbox that has a `timeout`.
//! It lives in its own process group, so it outlives a killed seer, and ends the sandbox
//! at its deadline, or as soon as the seer process that owns it is gone without ending it
//! (killed with SIGKILL, or its terminal closed): a detached sandbox has no owner and lives
//! to its deadline. It exits early once the sandbox has ended some other way. If the
//! sandbox's folder is removed under it (a deleted state dir), it ends the process groups
//! it last read there and those whose processes carry the sandbox's id in their
//! environment, since nothing else could find them any more.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::registry::{SandboxRecord, Status, now};

pub fn run(dir: &Path) -> Result<()> {
    // The sandbox's id and process groups as last read, for when its folder is gone
    // (read every second at most, so a recorded group cannot have been reused meanwhile).
    let mut last: Option<(String, Vec<i32>, Vec<std::path::PathBuf>)> = None;
    loop {
        let mut rec = match SandboxRecord::load(dir) {
            Ok(rec) => rec,
            Err(_) if !dir.exists() => {
                if let Some((id, mut groups, cgroups)) = last {
                    eprintln!(
                        "sandbox {id}: its folder {} was removed; ending its processes",
                        dir.display()
                    );
                    // Groups started since the last read carry the sandbox's id.
                    groups.extend(crate::process::groups_with_env("SEER_SANDBOX_ID", &id));
                    groups.sort();
                    groups.dedup();
                    crate::process::kill_groups(&groups, Duration::from_secs(1));
                    // What is left in its cgroups goes too, and the cgroups with it.
                    crate::sandbox::bounds::end_groups(&cgroups);
                }
                return Ok(());
            }
            Err(_) => return Ok(()),
        };
        if !rec.status.is_live() {
            return Ok(());
        }
        if rec.owner_gone() {
            rec.watchdog_pid = None;
            eprintln!("sandbox {}: its seer process is gone; ending it", rec.id);
            return rec.end(Status::Orphaned, "owner process gone (watchdog)");
        }
        let Some(deadline) = rec.deadline else {
            return Ok(());
        };
        let left = deadline - now();
        if left <= 0.0 {
            // Do not kill ourselves through the record's watchdog pid.
            rec.watchdog_pid = None;
            eprintln!("sandbox {} reached its timeout; ending it", rec.id);
            return rec.end(Status::TimedOut, "timeout reached");
        }
        let groups = rec.procs().list().into_iter().map(|(g, _)| g).collect();
        last = Some((
            rec.id.clone(),
            groups,
            crate::sandbox::bounds::recorded(dir),
        ));
        std::thread::sleep(Duration::from_secs_f64(left.clamp(0.05, 1.0)));
    }
}
