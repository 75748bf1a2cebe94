//! A private single-node Slurm cluster for the slurm backend's tests: munged, slurmctld and
//! slurmd from Debian's packages, with the config of `tests/fixtures/slurm/` (placeholders
//! filled in), every path in a temp folder, ports of its own, two fake GPUs (character
//! devices listed in `gres.conf`). Clients find it through `SLURM_CONF`; the daemons are
//! ended by PID on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Env;

pub struct Slurm {
    pub dir: tempfile::TempDir,
    /// munged, slurmctld, slurmd.
    daemons: Vec<Child>,
}

/// One line of `squeue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: String,
    pub name: String,
    pub state: String,
    pub reason: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/slurm")
        .join(template);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (k, v) in vars {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    assert!(!text.contains("{"), "unfilled placeholder in {template}");
    text
}

fn daemon(program: &str, args: &[&str], log: &Path) -> Child {
    assert!(
        Path::new(program).exists(),
        "{program} is missing: run tests/setup.sh (it installs slurm-wlm and munge)"
    );
    let log = std::fs::File::create(log).unwrap();
    // As a service manager starts them: a job's environment is what its submitter passes
    // and the node gives, never this process's (its `SSL_CERT_FILE`, proxies, keys).
    Command::new(program)
        .env_clear()
        .env("PATH", super::sshd::SERVICE_PATH)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"))
}

impl Slurm {
    pub const NODE: &'static str = "seer0";

    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["munge", "state", "spool", "dev"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("munge"), std::fs::Permissions::from_mode(0o700)).unwrap();
        // Slurm takes character devices only as GPU files: two like /dev/null.
        for i in 0..2 {
            let dev = d.join(format!("dev/nvidia{i}"));
            nix::sys::stat::mknod(
                &dev,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap();
        }
        let key = d.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        getrandom_fill(&mut bytes);
        std::fs::write(&key, &bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let vars = [
            ("host", host),
            ("ctld_port", free_port().to_string()),
            ("slurmd_port", free_port().to_string()),
            ("dir", d.display().to_string()),
            ("node", Self::NODE.to_string()),
            ("cpus", cpus.to_string()),
            ("memory", "4096".to_string()),
        ];
        std::fs::write(d.join("slurm.conf"), fill("slurm.conf", &vars)).unwrap();
        std::fs::write(d.join("gres.conf"), fill("gres.conf", &vars)).unwrap();
        let m = |f: &str| d.join("munge").join(f).display().to_string();
        let mut daemons = vec![daemon(
            "/usr/sbin/munged",
            &[
                "--force",
                "--foreground",
                &format!("--key-file={}", m("munge.key")),
                &format!("--socket={}", m("munge.socket")),
                &format!("--pid-file={}", m("munged.pid")),
                &format!("--log-file={}", m("munged.log")),
                &format!("--seed-file={}", m("munged.seed")),
            ],
            &d.join("munged.out"),
        )];
        let started = Instant::now();
        while !d.join("munge/munge.socket").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "munged did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let conf = d.join("slurm.conf").display().to_string();
        daemons.push(daemon(
            "/usr/sbin/slurmctld",
            &["-D", "-i", "-f", &conf],
            &d.join("slurmctld.out"),
        ));
        daemons.push(daemon(
            "/usr/sbin/slurmd",
            &["-D", "-N", Self::NODE, "-f", &conf],
            &d.join("slurmd.out"),
        ));
        let me = Self { dir, daemons };
        // Ready when the node is idle (sinfo retries forever when slurmctld died: a
        // timeout of its own).
        let started = Instant::now();
        loop {
            let out = me
                .cmd("timeout")
                .args([
                    "2",
                    "sinfo",
                    "--noheader",
                    "--format=%t",
                    "--partition=debug",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).trim() == "idle" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the Slurm node did not become idle: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(me.dir.path().join("slurmctld.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm client command of this cluster.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// Every job Slurm knows (ended ones too, for a while), oldest first.
    pub fn jobs(&self) -> Vec<QueuedJob> {
        let out = self
            .cmd("squeue")
            .args([
                "--noheader",
                "--states=all",
                "--sort=i",
                "--format=%i|%j|%T|%r",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.trim().split('|').collect();
                QueuedJob {
                    id: f[0].into(),
                    name: f[1].into(),
                    state: f[2].into(),
                    reason: f[3].into(),
                }
            })
            .collect()
    }

    /// Jobs that are queued or hold resources.
    pub fn live_jobs(&self) -> Vec<QueuedJob> {
        self.jobs()
            .into_iter()
            .filter(|j| {
                matches!(
                    j.state.as_str(),
                    "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING"
                )
            })
            .collect()
    }

    /// Sandbox config fields (inside `#{ }`) for a sandbox on this cluster, with seer's
    /// shared folder in the test's folder and its env cache linked to the tests' shared
    /// one (a cluster keeps its cache warm too).
    pub fn fields(&self, env: &Env) -> String {
        let shared = Self::shared_dir(env);
        std::fs::create_dir_all(&shared).unwrap();
        let cache = shared.join("cache");
        if !cache.exists() {
            std::os::unix::fs::symlink(super::shared_cache(), &cache).unwrap();
        }
        format!("backend: \"slurm\", shared_dir: \"{}\"", shared.display())
    }

    /// seer's folder "on the cluster" of a test.
    pub fn shared_dir(env: &Env) -> PathBuf {
        env.path().join("shared")
    }

    /// [`Env::cmd`] reaching this cluster.
    pub fn seer(&self, env: &Env) -> Command {
        let mut c = env.cmd();
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// `seer run main.rhai` after writing it.
    pub fn run(&self, env: &Env, script: &str) -> std::process::Output {
        env.write("main.rhai", script);
        self.seer(env).args(["run", "main.rhai"]).output().unwrap()
    }

    /// `seer run NAME` in the background after writing it.
    pub fn spawn(&self, env: &Env, name: &str, script: &str) -> super::Running {
        env.write(name, script);
        let mut c = self.seer(env);
        c.args(["run", name]);
        super::Running::start(c)
    }

    /// Waits until `want` holds for the cluster's jobs (within `secs`).
    pub fn wait_jobs(
        &self,
        what: &str,
        secs: u64,
        want: impl Fn(&[QueuedJob]) -> bool,
    ) -> Vec<QueuedJob> {
        let started = Instant::now();
        loop {
            let jobs = self.jobs();
            if want(&jobs) {
                return jobs;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "timed out waiting for {what}; jobs: {jobs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Random bytes for the munge key.
fn getrandom_fill(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // Jobs first (their steps are processes of slurmd), then the daemons.
        let _ = self.cmd("scancel").args(["--full", "--user=root"]).output();
        for child in self.daemons.iter_mut().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}
