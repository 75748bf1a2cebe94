//! Shared helpers for the integration tests: run the real `seer` binary against scripts
//! written into a temp dir, with its own state dir and a cache shared by all tests.
#![allow(dead_code)]

pub mod browser;
pub mod fake_anthropic;
pub mod fake_gemini;
pub mod fake_openai;
pub mod slurm;
pub mod sshd;
pub mod tmux;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// The API key agent tests give seer; it must appear in no output.
pub const TEST_KEY: &str = "sk-test-key-0123456789";

/// Sandbox config fields (inside `#{ }`) for a notebook session that loads models: torch,
/// transformers and peft from PyPI.
pub const TORCH_ENV: &str =
    "python_packages: [\"torch\", \"transformers\", \"peft\"], execution_mode: \"notebook\"";

/// A test's own folder (removed on drop) where scripts are written and run, with seer's
/// state dir (`SEER_HOME`) inside it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    /// With `SEER_TEST_BACKEND=ssh` or `slurm`: the test's own sshd or Slurm cluster, and
    /// the sandbox defaults that put every sandbox of its scripts there
    /// (`SEER_SANDBOX_DEFAULTS`).
    remote: Option<(Remote, String)>,
}

/// Where `SEER_TEST_BACKEND` puts a test's sandboxes (its daemons end on drop).
pub enum Remote {
    Ssh(sshd::Sshd),
    Slurm(slurm::Slurm),
}

thread_local! {
    /// The backend [`on_remote_backends!`] chose for this thread's test (before
    /// `SEER_TEST_BACKEND`).
    static BACKEND: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Runs `test` with every [`Env`] it makes on `backend` (`ssh` or `slurm`).
pub fn on_backend(backend: &'static str, test: fn()) {
    BACKEND.with(|b| b.set(Some(backend)));
    test();
}

/// Runs the named tests (`#[test]` functions of the calling file, which run locally) again
/// with every sandbox on a loopback sshd (`on_ssh::NAME`) and as a job of a single-node
/// Slurm cluster (`on_slurm::NAME`), each test with its own: one suite, every backend.
#[macro_export]
macro_rules! on_remote_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_backend!(on_ssh, "ssh", $($name),*);
        $crate::on_backend!(on_slurm, "slurm", $($name),*);
    };
}

/// `mod $module` of tests that run the named ones on `$backend` (see
/// [`on_remote_backends!`]).
#[macro_export]
macro_rules! on_backend {
    ($module:ident, $backend:literal, $($name:ident),*) => {
        mod $module {
            $(#[test]
            fn $name() {
                $crate::common::on_backend($backend, super::$name);
            })*
        }
    };
}

/// The cache (uv, Python envs) shared by every test, so envs are built once per machine.
pub fn shared_cache() -> PathBuf {
    seer::testenv::shared_cache()
}

impl Env {
    /// A fresh temp folder; the state dir is its `state/`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("state");
        let chosen = BACKEND.with(|b| b.get());
        let from_env = std::env::var("SEER_TEST_BACKEND");
        let backend = chosen
            .map(Ok)
            .unwrap_or(from_env.as_deref().map_err(|_| ()));
        let remote = match backend {
            Err(_) | Ok("") | Ok("local") => None,
            Ok("ssh") => {
                let sshd = sshd::Sshd::start();
                let remote = dir.path().join("remote");
                std::fs::create_dir_all(&remote).expect("mkdir remote");
                std::os::unix::fs::symlink(shared_cache(), remote.join("cache"))
                    .expect("link the remote cache");
                let defaults = serde_json::json!({
                    "backend": "ssh",
                    "host": sshd::Sshd::HOST,
                    "ssh_options": ["-F", sshd.config()],
                    "remote_dir": remote,
                });
                Some((Remote::Ssh(sshd), defaults.to_string()))
            }
            Ok("slurm") => {
                let cluster = slurm::Slurm::start();
                // As `Slurm::fields` lays it out: seer's shared folder in the test's folder,
                // its env cache linked to the tests' shared one.
                let shared = dir.path().join("shared");
                std::fs::create_dir_all(&shared).expect("mkdir shared");
                std::os::unix::fs::symlink(shared_cache(), shared.join("cache"))
                    .expect("link the cluster's cache");
                let defaults = serde_json::json!({ "backend": "slurm", "shared_dir": shared });
                Some((Remote::Slurm(cluster), defaults.to_string()))
            }
            Ok(other) => {
                panic!("SEER_TEST_BACKEND={other}: the backends are `local`, `ssh` and `slurm`")
            }
        };
        Self { dir, home, remote }
    }

    /// The test's folder (the scripts' folder and seer's working dir).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` (a path under the test's folder, parents made) and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    /// The `seer` binary in the test's folder, with its state dir, the shared cache, no
    /// `RUST_LOG` and the Hugging Face hub offline.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_seer"));
        c.current_dir(self.dir.path())
            .env("SEER_HOME", &self.home)
            .env("SEER_CACHE_DIR", shared_cache())
            .env_remove("RUST_LOG")
            .env("HF_HUB_OFFLINE", "1")
            // The live view prints its URL on stderr; its own tests turn it on.
            .env("SEER_VIEW", "off");
        if let Some((_, defaults)) = &self.remote {
            c.env("SEER_SANDBOX_DEFAULTS", defaults);
        }
        self.cluster_env(&mut c);
        c
    }

    /// With `SEER_TEST_BACKEND=slurm`, the variables by which Slurm's commands find the
    /// test's cluster (`SLURM_CONF`); none otherwise.
    pub fn cluster_vars(&self) -> Vec<(&'static str, String)> {
        match &self.remote {
            Some((Remote::Slurm(cluster), _)) => {
                vec![("SLURM_CONF", cluster.conf().display().to_string())]
            }
            _ => vec![],
        }
    }

    fn cluster_env(&self, c: &mut Command) {
        c.envs(self.cluster_vars());
    }

    /// [`Env::cmd`] with an Anthropic key ([`TEST_KEY`]).
    pub fn agent_cmd(&self) -> Command {
        let mut c = self.cmd();
        c.env("ANTHROPIC_API_KEY", TEST_KEY);
        c
    }

    /// Writes `main.rhai` and runs it with an Anthropic key ([`TEST_KEY`]) and `url` (a
    /// loopback fake) as `ARGS[0]`; returns the output and its stdout and stderr.
    pub fn run_agent_script(&self, code: &str, url: &str) -> (Output, String, String) {
        self.write("main.rhai", code);
        let out = self
            .agent_cmd()
            .args(["run", "main.rhai", "--", url])
            .output()
            .expect("run seer");
        let (o, e) = text(&out);
        (out, o, e)
    }

    /// `seer run main.rhai -- args` after writing `main.rhai`.
    pub fn run(&self, script: &str, args: &[&str]) -> Output {
        self.write("main.rhai", script);
        let mut c = self.cmd();
        c.args(["run", "main.rhai", "--"]).args(args);
        c.output().expect("run seer")
    }

    /// Starts a sandbox with config `cfg` (a Rhai map) and detaches it, so it outlives the
    /// run; returns its id. End it with [`Env::terminate`].
    pub fn detached_sandbox(&self, cfg: &str) -> String {
        let out = self.run(
            &format!("let sb = Sandbox({cfg}).start();\nsb.detach();\nprint(sb.id);"),
            &[],
        );
        ok(&out).trim().to_string()
    }

    /// Ends the sandbox `id` (from another run), asserting that it worked.
    pub fn terminate(&self, id: &str) {
        ok(&self.run(&format!("Sandbox::from_id(\"{id}\").terminate();"), &[]));
    }

    /// `seer mcp notebook <id>` driven over stdio by the official Python MCP SDK
    /// (`tests/fixtures/mcp_stdio_client.py`): the tool names and the text of one
    /// `execute_code` call of `code` (`20 + 22` if none), as JSON.
    pub fn stdio_mcp_client(&self, id: &str, code: Option<&str>) -> serde_json::Value {
        let mut c = Command::new(test_python());
        c.arg(seer::testenv::fixture("mcp_stdio_client.py"))
            .arg(env!("CARGO_BIN_EXE_seer"))
            .arg(id)
            .args(code)
            .env("SEER_HOME", &self.home)
            .env("SEER_CACHE_DIR", shared_cache())
            .env("HF_HUB_OFFLINE", "1")
            .current_dir(self.path());
        self.cluster_env(&mut c);
        let out = c.output().expect("the test Python");
        let stdout = ok(&out);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// `seer run main.rhai` in the background after writing `main.rhai`; see [`Running`].
    pub fn spawn(&self, script: &str) -> Running {
        self.write("main.rhai", script);
        let mut c = self.cmd();
        c.args(["run", "main.rhai"]);
        Running::start(c)
    }

    /// The run folders under `outputs/` (one per `seer run`), in name order.
    pub fn runs(&self) -> Vec<PathBuf> {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(self.path().join("outputs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        runs.sort();
        runs
    }

    /// The only run folder's name (`<script>-<timestamp>`), for paths seer prints.
    pub fn the_run(&self) -> String {
        let runs = self.runs();
        assert_eq!(runs.len(), 1, "one run expected: {runs:?}");
        runs[0].file_name().unwrap().to_string_lossy().to_string()
    }

    /// `s` with this test's temp dir written as `<dir>`.
    pub fn normalise(&self, s: &str) -> String {
        let real = std::fs::canonicalize(self.path()).unwrap_or_else(|_| self.path().into());
        s.replace(&*self.path().to_string_lossy(), "<dir>")
            .replace(&*real.to_string_lossy(), "<dir>")
    }
}

/// A finished process's (stdout, stderr) as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(
        o.status.success(),
        "seer failed: {:?}\n--- stdout\n{out}\n--- stderr\n{err}",
        o.status
    );
    out
}

/// Asserts that seer failed with exit code 1 (a script error, not a panic) and returns its
/// stderr.
pub fn failed(o: &Output) -> String {
    let (out, err) = text(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "exit code 1 expected\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The one line of `stderr` that starts with `error: `.
pub fn error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected in:\n{stderr}");
    lines[0]
}

/// The non-empty lines of `s`.
pub fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

/// A line of seer's log (stderr, `tracing`) without its ANSI colours and its leading
/// timestamp: `WARN message key=value`.
pub fn plain_log(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    match out.split_once(' ') {
        Some((stamp, rest)) if stamp.ends_with('Z') => rest.trim().to_string(),
        _ => out.trim().to_string(),
    }
}

/// A JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

/// A JSONL file, one value per line (every line must parse).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Every file under `dir`, recursively; symlinked directories are not entered.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Asserts that no file under `dir` contains any of `needles` (secrets, hidden names).
pub fn assert_no_file_contains(dir: &Path, needles: &[&str]) {
    let found: Vec<String> = files_under(dir)
        .into_iter()
        .filter_map(|f| {
            let data = String::from_utf8_lossy(&std::fs::read(&f).ok()?).to_string();
            let hits: Vec<&str> = needles
                .iter()
                .copied()
                .filter(|n| data.contains(n))
                .collect();
            (!hits.is_empty()).then(|| format!("{}: {hits:?}", f.display()))
        })
        .collect();
    assert_eq!(found, Vec::<String>::new(), "found under {}", dir.display());
}

/// Running processes (not zombies) whose command line contains `needle`: (pid, command
/// line with spaces between the arguments). The bubblewrap wrapper of an isolated sandbox
/// process is not one of them (its command line holds the wrapped one, and it lives as
/// long as what it runs).
pub fn processes_matching(needle: &str) -> Vec<(i32, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .map(|i| stat[i + 2..].starts_with('Z'))
            .unwrap_or(false);
        let wrapper = cmd
            .split(|b| *b == 0)
            .next()
            .is_some_and(|argv0| argv0.ends_with(b"bwrap"));
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !zombie && !wrapper && cmd.contains(needle) {
            out.push((pid, cmd));
        }
    }
    out
}

/// Pids of running processes whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<i32> {
    processes_matching(needle)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Polls `done` every 20 ms; panics naming `what` if it is still false after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for every process whose command line contains `needle` to end.
pub fn wait_gone(needle: &str, timeout: Duration) {
    let start = Instant::now();
    while !pids_matching(needle).is_empty() {
        if start.elapsed() > timeout {
            let left: Vec<String> = processes_matching(needle)
                .into_iter()
                .map(|(_, cmd)| cmd)
                .collect();
            panic!("still running after {timeout:?} (matching {needle:?}): {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `sig` to a child process.
pub fn send_signal(child: &Child, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig)
        .expect("send a signal");
}

/// Which stream a line of a [`Running`] seer came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Out,
    Err,
}

/// A `seer` running in the background, its stdout and stderr read line by line as they
/// come. Each stream is read in order; the two are read apart (their lines can arrive in
/// either order), so waiting for a line never skips a line of the other stream. Dropping it
/// ends seer (Ctrl-C, then SIGKILL) if a test left it running.
pub struct Running {
    pub child: Child,
    rx: Receiver<(Stream, String)>,
    /// Every line received so far, in the order received.
    pub log: Vec<(Stream, String)>,
    /// Per stream: the lines received, and how many of them were waited for.
    lines: [Vec<String>; 2],
    used: [usize; 2],
}

impl Running {
    /// Starts `cmd` with stdout and stderr piped.
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seer");
        let (tx, rx) = channel();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send((Stream::Out, l));
            }
        });
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                let _ = tx2.send((Stream::Err, l));
            }
        });
        Self {
            child,
            rx,
            log: vec![],
            lines: [vec![], vec![]],
            used: [0, 0],
        }
    }

    /// The log so far, stderr lines marked `stderr: `.
    pub fn transcript(&self) -> String {
        self.log
            .iter()
            .map(|(s, l)| match s {
                Stream::Out => l.clone(),
                Stream::Err => format!("stderr: {l}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn push(&mut self, (s, l): (Stream, String)) {
        self.log.push((s, l.clone()));
        self.lines[s as usize].push(l);
    }

    /// Waits (within `secs`) for the next line of one of `streams` that `want` accepts;
    /// it and the lines of its stream before it count as read.
    fn next_where(
        &mut self,
        what: &str,
        secs: u64,
        streams: &[Stream],
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            for &s in streams {
                let i = s as usize;
                if let Some(k) = self.lines[i][self.used[i]..].iter().position(|l| want(l)) {
                    self.used[i] += k + 1;
                    return self.lines[i][self.used[i] - 1].clone();
                }
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!("no {what} within {secs}s; saw:\n{}", self.transcript());
            };
            match self.rx.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {secs}s; saw:\n{}", self.transcript())
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "seer closed its output before {what}; saw:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// The next line seer prints on stdout (within `secs`).
    pub fn next_line(&mut self, secs: u64) -> String {
        self.next_where("stdout line", secs, &[Stream::Out], |_| true)
    }

    /// The next line, on stdout or stderr, that contains `want` (within `secs`).
    pub fn expect(&mut self, want: &str, secs: u64) -> String {
        self.next_where(
            &format!("line with {want:?}"),
            secs,
            &[Stream::Out, Stream::Err],
            |l| l.contains(want),
        )
    }

    /// The lines not waited for yet, after taking in what has come, without waiting.
    pub fn unread(&mut self) -> Vec<(Stream, String)> {
        while let Ok(line) = self.rx.try_recv() {
            self.push(line);
        }
        [Stream::Out, Stream::Err]
            .iter()
            .flat_map(|&s| {
                self.lines[s as usize][self.used[s as usize]..]
                    .iter()
                    .map(move |l| (s, l.clone()))
            })
            .collect()
    }

    /// Sends `sig` and waits for seer to exit.
    pub fn signal(&mut self, sig: Signal) -> ExitStatus {
        send_signal(&self.child, sig);
        self.child.wait().expect("wait for seer")
    }

    /// Ctrl-C (SIGINT); asserts seer exits with 130 (128 + SIGINT, as a shell reports it).
    pub fn ctrl_c(&mut self) {
        let status = self.signal(Signal::SIGINT);
        assert_eq!(
            status.code(),
            Some(130),
            "after Ctrl-C; saw:\n{}",
            self.transcript()
        );
    }

    /// After seer exited: every line it printed on `stream`, once its pipes closed (they
    /// close when the last process holding them ends; waits up to 10 s).
    pub fn all(&mut self, stream: Stream) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("seer's output is still open"),
            }
        }
        self.lines[stream as usize].clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            send_signal(&self.child, Signal::SIGINT);
            let start = Instant::now();
            while let Ok(None) = self.child.try_wait() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The test Python (`tests/requirements.txt`, installed by `tests/setup.sh`): nbformat,
/// the official `mcp`, `anthropic` and `openai` SDKs, torch, transformers, peft, pytest.
pub fn test_python() -> PathBuf {
    seer::testenv::python()
}

/// uv, through seer's own bootstrap into the shared test cache.
pub fn which_uv() -> PathBuf {
    seer::testenv::uv()
}

/// `models/` in the test's folder: a link to the tiny random models made once per machine
/// (`base/`, `base_notok/`, `lora/`, `lora_tok/`; see `tests/fixtures/make_tiny_model.py`).
pub fn link_tiny_models(env: &Env) -> PathBuf {
    let link = env.path().join("models");
    std::os::unix::fs::symlink(seer::testenv::tiny_models(), &link).expect("link the tiny models");
    link
}

/// The sources of a notebook's cells, each joined into one string.
pub fn cell_sources(nb: &serde_json::Value) -> Vec<String> {
    nb["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| match &c["source"] {
            serde_json::Value::Array(parts) => parts.iter().filter_map(|p| p.as_str()).collect(),
            s => s.as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Validates every .ipynb under `dir` with Python's `nbformat.validate`; returns how many.
pub fn validate_notebooks(dir: &Path) -> usize {
    let found: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    for nb in &found {
        let out = Command::new(test_python())
            .args([
                "-c",
                "import nbformat, sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))",
            ])
            .arg(nb)
            .output()
            .expect("python");
        assert!(
            out.status.success(),
            "{} is not valid nbformat: {}",
            nb.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    found.len()
}
