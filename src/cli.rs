//! The command line: `seer run`, `seer check`, `seer repl`, `seer docs`, `seer definitions`,
//! `seer ps`, `seer gc`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::sandbox::registry::{self, now};
use crate::sandbox::watchdog;
use crate::script::reference;
use crate::script::runner::{self, Outcome, RunOptions};

#[derive(Parser, Debug)]
#[command(
    name = "seer",
    version,
    about = "Run interpretability experiments written in Rhai"
)]
struct Cli {
    /// More logging: -v for info, -vv for debug (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a script to its end.
    Run {
        /// Run again on every save of the script or a file it read, keeping sandboxes and
        /// kernels warm; Ctrl-C ends the watch.
        #[arg(long, conflicts_with = "resume")]
        watch: bool,
        /// Run in this earlier run's folder (`outputs/<script>-<time>`): its sweeps run only
        /// the items that run did not finish, keeping the finished ones' results.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Where run folders go.
        #[arg(long, default_value = "outputs", env = "SEER_OUTPUT_DIR")]
        output_dir: PathBuf,
        file: PathBuf,
        /// Arguments for the script, after `--`; the script reads them as `ARGS`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Check scripts for syntax errors without running them.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Interactive Rhai with the whole API: variables, functions and imports persist
    /// across lines; `:help` lists the commands.
    Repl {
        /// Where the REPL's run folder (notebooks, transcripts) goes.
        #[arg(long, default_value = "outputs", env = "SEER_OUTPUT_DIR")]
        output_dir: PathBuf,
    },
    /// Serve past runs (their notebooks, transcripts and run.json) read-only in the browser,
    /// on 127.0.0.1 with a token in the URL, until Ctrl-C.
    View {
        /// The folder of run folders.
        #[arg(default_value = "outputs", env = "SEER_OUTPUT_DIR")]
        dir: PathBuf,
        /// The port (0: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Open `jupyter console --existing` on a live sandbox's kernel (or print the
    /// connection file and the command).
    Attach {
        /// The sandbox id (see `seer ps`).
        sandbox: String,
        /// The notebook session whose kernel to attach to (its name); the newest when
        /// not given.
        #[arg(long)]
        session: Option<String>,
    },
    /// Print a Markdown reference of the registered Rhai API.
    Docs,
    /// Write Rhai definition files (`.d.rhai`) for the Rhai language server into DIR.
    Definitions { dir: PathBuf },
    /// List live sandboxes.
    Ps {
        /// Include ended sandboxes.
        #[arg(long)]
        all: bool,
        /// Print JSON records.
        #[arg(long)]
        json: bool,
    },
    /// End sandboxes whose seer process is gone.
    Gc,
    /// Serve MCP tools over stdio (for MCP clients such as Claude Desktop or Claude Code).
    Mcp {
        #[command(subcommand)]
        server: McpServer,
    },
    /// Internal: end a sandbox at its deadline.
    #[command(name = "__watchdog", hide = true)]
    Watchdog { dir: PathBuf },
    /// Internal: host a sandbox for a seer on another machine, over stdin/stdout.
    #[command(name = "__sandbox-agent", hide = true)]
    SandboxAgent {
        /// Frame stdin and stdout and acknowledge each message (`remote::link`).
        #[arg(long)]
        acknowledged: bool,
    },
    /// Internal: print what a `backend: "modal"` sandbox config (a JSON file) would ask
    /// Modal for, built with the real SDK offline.
    #[command(name = "__modal-describe", hide = true)]
    ModalDescribe { config: PathBuf },
}

#[derive(Subcommand, Debug)]
enum McpServer {
    /// A new notebook session on a live sandbox (see `seer ps`; start it with
    /// `execution_mode: "notebook"` and `detach()` it), served over stdio.
    Notebook {
        /// The sandbox id.
        sandbox: String,
        /// Notebook name; the .ipynb goes to `--output-dir`.
        #[arg(long, default_value = "mcp")]
        name: String,
        #[arg(long, default_value = "outputs", env = "SEER_OUTPUT_DIR")]
        output_dir: PathBuf,
    },
}

/// `seer mcp notebook SANDBOX`: stdout carries the protocol, so logs go to stderr. The
/// session is set up like a script's (`create_notebook_session(sb, ())`): the sandbox's
/// models are preloaded by the same init code.
fn mcp_notebook(sandbox: &str, name: &str, output_dir: PathBuf) -> anyhow::Result<()> {
    use crate::notebook::mcp::{ServerOptions, serve_stdio};
    use crate::session_setup::{NotebookRequest, open_notebook};
    use crate::workspace::WorkspaceConfig;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sb = crate::sandbox::attach(sandbox).await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let req = NotebookRequest {
            name: name.to_string(),
            output_dir,
            ..Default::default()
        };
        let base_dir = std::env::current_dir()?;
        let opened = open_notebook(
            sb,
            &WorkspaceConfig::default(),
            &base_dir,
            req,
            None,
            &cancel,
        )
        .await?;
        let session = opened.session;
        eprintln!(
            "seer: serving notebook {} over stdio",
            session.notebook_path.display()
        );
        let served = serve_stdio(session.tools(), ServerOptions::default()).await;
        session.shutdown().await?;
        served
    })
}

/// An engine with the whole API registered, for reading its metadata (nothing runs).
fn api_engine() -> anyhow::Result<(tokio::runtime::Runtime, rhai::Engine)> {
    crate::script::api_engine()
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        // zeromq warns about each failed reconnect to a kernel socket; a kernel that is
        // ending (its forwarded socket on another host already gone) is expected to fail.
        _ => EnvFilter::new(match verbose {
            0 => "warn,zeromq=error",
            1 => "warn,zeromq=error,seer=info",
            _ => "info,seer=debug",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .try_init();
}

fn age(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86400),
    }
}

fn ps(all: bool, as_json: bool) -> ExitCode {
    let recs: Vec<_> = registry::list_all()
        .into_iter()
        .filter(|r| all || r.status.is_live())
        .collect();
    if as_json {
        match serde_json::to_string_pretty(&recs) {
            Ok(s) => {
                crate::output::out_line(&s);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    // A closed stdout (`seer ps | head -1`) ends the listing quietly.
    if !crate::output::out_line(&format!(
        "{:<16} {:<7} {:<10} {:>6} {:<14} {:<20} DIR",
        "ID", "BACKEND", "STATUS", "AGE", "OWNER", "PIDS"
    )) {
        return ExitCode::SUCCESS;
    }
    let t = now();
    for r in recs {
        let owner = match r.owner_pid {
            None => "detached".to_string(),
            Some(p) if r.owner_gone() => format!("{p} (gone)"),
            Some(p) => p.to_string(),
        };
        let pids: Vec<String> = r.live_pids().iter().map(|p| p.to_string()).collect();
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let line = format!(
            "{:<16} {:<7} {:<10} {:>6} {:<14} {:<20} {}",
            r.id,
            match &r.job_id {
                Some(job) => format!("{}:{job}", r.backend),
                None => r.backend.clone(),
            },
            status,
            age(t - r.created_at),
            owner,
            if pids.is_empty() {
                "-".into()
            } else {
                pids.join(",")
            },
            r.dir.display()
        );
        if !crate::output::out_line(&line) {
            break;
        }
    }
    ExitCode::SUCCESS
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match cli.command {
        Cmd::Run {
            watch,
            resume,
            output_dir,
            file,
            args,
        } => {
            let opts = RunOptions {
                script: file,
                args,
                output_root: output_dir,
                resume,
            };
            let o: Outcome = if watch {
                crate::script::watch::watch(opts)
            } else {
                runner::run(opts)
            };
            ExitCode::from(o.code())
        }
        Cmd::Check { files } => {
            let mut code = 0;
            for f in files {
                code = code.max(runner::check(&f).code());
            }
            ExitCode::from(code)
        }
        Cmd::Repl { output_dir } => crate::repl::run(output_dir),
        Cmd::View { dir, port } => match crate::view::serve_dir(dir, port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::Attach { sandbox, session } => crate::view::attach::run(&sandbox, session.as_deref()),
        Cmd::Docs => match api_engine() {
            Ok((_rt, engine)) => {
                crate::output::out(&reference::markdown(&engine));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::Definitions { dir } => {
            let written = api_engine()
                .and_then(|(_rt, engine)| Ok(reference::write_definitions(&engine, &dir)?));
            match written {
                Ok(files) => {
                    for f in files {
                        crate::output::out_line(&dir.join(f).display().to_string());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: writing definitions to {}: {e:#}", dir.display());
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Ps { all, json } => ps(all, json),
        Cmd::Gc => {
            let ended = registry::gc();
            if ended.is_empty() {
                crate::output::out_line("no orphaned sandboxes");
            }
            for id in ended {
                crate::output::out_line(&format!("ended {id}"));
            }
            ExitCode::SUCCESS
        }
        Cmd::Mcp {
            server:
                McpServer::Notebook {
                    sandbox,
                    name,
                    output_dir,
                },
        } => match mcp_notebook(&sandbox, &name, output_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::ModalDescribe { config } => match modal_describe(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::SandboxAgent { acknowledged } => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("sandbox agent: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let code = match rt.block_on(crate::sandbox::remote::agent::run(acknowledged)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("sandbox agent: {e:#}");
                    1
                }
            };
            // stdin's reader thread would keep the runtime alive: leave at once.
            std::process::exit(code)
        }
        Cmd::Watchdog { dir } => match watchdog::run(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("watchdog: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `seer __modal-describe CONFIG`.
fn modal_describe(config: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let cfg: crate::sandbox::config::SandboxConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a sandbox config", config.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::sandbox::remote::modal::describe(
        &cfg,
        &tokio_util::sync::CancellationToken::new(),
    ))
}
