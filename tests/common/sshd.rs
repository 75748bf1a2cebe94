//! A private OpenSSH server on 127.0.0.1 for the ssh backend's tests: its own config, host
//! key, client key and `authorized_keys` in a temp folder, started by absolute path and
//! ended by PID. Clients reach it as the alias [`Sshd::HOST`] through [`Sshd::options`].

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `PATH` the tests' daemons (sshd, the Slurm cluster) start with, as from a service
/// manager: their environment is otherwise empty.
pub const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (run tests/setup.sh)");
    assert!(out.status.success(), "{out:?}");
}

impl Sshd {
    /// The host alias of the private client config.
    pub const HOST: &'static str = "seer-test-host";

    pub fn start() -> Self {
        Self::start_with("")
    }

    /// [`Sshd::start`] with more lines of server config (e.g. `SetEnv` for the sessions).
    pub fn start_with(extra_config: &str) -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: run tests/setup.sh (it installs openssh-server)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = format!(
            "ListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
             AllowTcpForwarding yes\nAllowStreamLocalForwarding yes\nMaxSessions 64\n\
             MaxStartups 64:30:128\nClientAliveInterval 5\nClientAliveCountMax 3\n{extra_config}",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), cfg).unwrap();
        let client = format!(
            "Host {host}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  \
             IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  BatchMode yes\n  \
             UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  \
             LogLevel ERROR\n",
            host = Self::HOST,
            d = d.display()
        );
        std::fs::write(d.join("ssh_config"), client).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        // As a host's service manager starts it: none of this process's environment (its
        // `SSL_CERT_FILE`, proxies, keys) may reach the sessions, which get what a login
        // on the host gives.
        let child = Command::new(sshd)
            .env_clear()
            .env("PATH", SERVICE_PATH)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let me = Self { dir, port, child };
        let started = Instant::now();
        loop {
            let out = me.ssh(&["true"]);
            if out.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sshd did not accept a login: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(me.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// `ssh_options` of a sandbox config reaching this server.
    pub fn options(&self) -> String {
        format!("[\"-F\", \"{}\"]", self.config().display())
    }

    /// Runs a command on the "remote host" through this server.
    pub fn ssh(&self, cmd: &[&str]) -> std::process::Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.config())
            .arg(Self::HOST)
            .args(cmd)
            .output()
            .expect("run ssh")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
