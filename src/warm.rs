//! The warm pool of `seer run --watch`: sandboxes and notebook kernels that outlive one
//! run so the next run of the edited script finds them ready.
//!
//! - `Sandbox(cfg).start()` returns the live sandbox a previous run started with the same
//!   config (same JSON, same snapshot) instead of starting a new one.
//! - A notebook session on such a sandbox, with the same name and the same workspace setup
//!   code, adopts the previous run's kernel (variables and loaded models stay); libraries
//!   whose files changed are re-installed and reloaded; the notebook file is new.
//! - After a run that ends without error, whatever it did not claim is ended (a sandbox
//!   removed from the script does not linger). After a failed or cancelled run everything
//!   is kept, so fixing the error reruns warm. Everything ends when the watch ends.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::kernel::Kernel;
use crate::sandbox::{Sandbox, SandboxConfig};

struct WarmSandbox {
    key: String,
    sandbox: Arc<dyn Sandbox>,
    claimed: bool,
}

struct WarmKernel {
    sandbox_id: String,
    key: String,
    kernel: Kernel,
    /// The run that left it.
    run: u64,
}

#[derive(Default)]
struct State {
    sandboxes: Vec<WarmSandbox>,
    kernels: Vec<WarmKernel>,
    run: u64,
}

#[derive(Default)]
pub struct WarmPool {
    state: Mutex<State>,
}

/// The pool key of a sandbox config (and the snapshot it starts from).
pub fn sandbox_key(config: &SandboxConfig, snapshot: Option<&str>) -> String {
    let json = serde_json::to_string(&(config, snapshot)).unwrap_or_default();
    hex::encode(Sha256::digest(json.as_bytes()))
}

/// The pool key of a kernel: its session's name and workspace setup code.
pub fn kernel_key(session_name: &str, init_code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{session_name}\0{init_code}").as_bytes(),
    ))
}

impl WarmPool {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// A new run begins: nothing is claimed yet; ended sandboxes are forgotten.
    pub fn begin_run(&self) {
        let mut st = self.state();
        st.run += 1;
        st.sandboxes
            .retain(|s| !s.sandbox.is_terminated() && !s.sandbox.is_detached());
        for s in &mut st.sandboxes {
            s.claimed = false;
        }
    }

    /// The live sandbox started earlier with this key, if any (now claimed).
    pub fn claim(&self, key: &str) -> Option<Arc<dyn Sandbox>> {
        let mut st = self.state();
        let s = st.sandboxes.iter_mut().find(|s| {
            s.key == key && !s.claimed && !s.sandbox.is_terminated() && !s.sandbox.is_detached()
        })?;
        s.claimed = true;
        Some(s.sandbox.clone())
    }

    /// A sandbox this run started: pooled, claimed.
    pub fn started(&self, key: String, sandbox: Arc<dyn Sandbox>) {
        self.state().sandboxes.push(WarmSandbox {
            key,
            sandbox,
            claimed: true,
        });
    }

    pub fn holds(&self, sandbox_id: &str) -> bool {
        self.state()
            .sandboxes
            .iter()
            .any(|s| s.sandbox.info().id == sandbox_id)
    }

    /// Keeps a session's kernel for the next run.
    pub fn put_kernel(&self, sandbox_id: String, key: String, kernel: Kernel) {
        let mut st = self.state();
        let run = st.run;
        st.kernels.push(WarmKernel {
            sandbox_id,
            key,
            kernel,
            run,
        });
    }

    /// The kernel a previous run's session left with this key on this sandbox.
    pub fn take_kernel(&self, sandbox_id: &str, key: &str) -> Option<Kernel> {
        let mut st = self.state();
        let i = st
            .kernels
            .iter()
            .position(|k| k.sandbox_id == sandbox_id && k.key == key && !k.kernel.is_dead())?;
        Some(st.kernels.remove(i).kernel)
    }

    /// A run ended (its sessions' kernels already put back). After a clean run, ends the
    /// sandboxes it did not claim and the kernels of earlier runs no session adopted;
    /// returns the ids of the sandboxes ended.
    pub fn end_run(&self, clean: bool) -> Vec<String> {
        if !clean {
            return vec![];
        }
        let (ended, kernels) = {
            let mut st = self.state();
            let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut st.sandboxes)
                .into_iter()
                .partition(|s| s.claimed);
            st.sandboxes = keep;
            // Kept: kernels this run's sessions left on sandboxes still pooled.
            let live: Vec<String> = st.sandboxes.iter().map(|s| s.sandbox.info().id).collect();
            let run = st.run;
            let (keep_k, drop_k): (Vec<_>, Vec<_>) = std::mem::take(&mut st.kernels)
                .into_iter()
                .partition(|k| k.run == run && live.contains(&k.sandbox_id));
            st.kernels = keep_k;
            (drop, drop_k)
        };
        for mut k in kernels {
            k.kernel.kill();
        }
        let mut ids = vec![];
        for s in ended {
            let id = s.sandbox.info().id;
            if !s.sandbox.is_terminated()
                && let Err(e) = s.sandbox.terminate()
            {
                tracing::warn!("could not end warm sandbox {id}: {e:#}");
            }
            ids.push(id);
        }
        ids
    }

    /// Ends everything (the watch is over).
    pub fn terminate_all(&self) {
        let (sandboxes, kernels) = {
            let mut st = self.state();
            (
                std::mem::take(&mut st.sandboxes),
                std::mem::take(&mut st.kernels),
            )
        };
        for mut k in kernels {
            k.kernel.kill();
        }
        for s in sandboxes {
            if !s.sandbox.is_terminated()
                && !s.sandbox.is_detached()
                && let Err(e) = s.sandbox.terminate()
            {
                eprintln!(
                    "warning: could not terminate sandbox {}: {e:#}",
                    s.sandbox.info().id
                );
            }
        }
    }
}
