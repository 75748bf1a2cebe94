//! The slurm backend against a real single-node Slurm cluster the tests start
//! (`common::slurm`): seer submits a job, waits in the queue, runs its agent in the job with
//! `srun --overlap`, and cancels the job when the sandbox ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::time::Duration;

use common::slurm::Slurm;
use common::sshd::Sshd;
use common::{Env, failed, lines, ok, wait_gone};

/// What the command lines of the sandbox's processes on the node contain.
fn needle(env: &Env) -> String {
    Slurm::shared_dir(env).to_string_lossy().to_string()
}

/// Asserts that the cluster has no job queued or running and the node no seer process.
fn nothing_left(slurm: &Slurm, env: &Env) {
    slurm.wait_jobs("every job to end", 20, |jobs| {
        jobs.iter()
            .all(|j| !matches!(j.state.as_str(), "PENDING" | "RUNNING" | "COMPLETING"))
    });
    wait_gone(&needle(env), Duration::from_secs(10));
}

#[test]
fn a_gpu_sandbox_runs_commands_and_a_notebook_in_its_job() {
    let slurm = Slurm::start();
    let env = Env::new();
    let out = slurm.run(
        &env,
        &format!(
            r#"
let sb = Sandbox(#{{ {}, gpu: "any", gpu_count: 1, execution_mode: "notebook", timeout: 600 }}).start();
print(sb.backend);
let e = sb.exec("echo $CUDA_VISIBLE_DEVICES");
e.trim();
print(e);
let s = create_notebook_session(sb, (), #{{ name: "nb" }});
print(s.exec("import os; os.environ['CUDA_VISIBLE_DEVICES'], 6 * 7").text);
"#,
            slurm.fields(&env)
        ),
    );
    assert_eq!(lines(&ok(&out)), ["slurm", "0", "('0', 42)"]);
    // One job, named after the sandbox, cancelled at the end of the run.
    let jobs = slurm.wait_jobs("the job to end", 20, |jobs| {
        jobs.len() == 1 && jobs[0].state != "RUNNING" && jobs[0].state != "COMPLETING"
    });
    // `seer ps` names the job.
    let ps = slurm
        .seer(&env)
        .args(["ps", "--all", "--json"])
        .output()
        .unwrap();
    let records: serde_json::Value = serde_json::from_str(&ok(&ps)).unwrap();
    let rec = &records[0];
    assert_eq!(
        (
            rec["backend"].as_str(),
            rec["job_id"].as_str(),
            rec["status"].as_str(),
            format!("seer-{}", rec["id"].as_str().unwrap())
        ),
        (
            Some("slurm"),
            Some(jobs[0].id.as_str()),
            Some("terminated"),
            jobs[0].name.clone()
        )
    );
    assert_eq!(jobs[0].state, "CANCELLED");
    // The notebook was written here.
    let runs = env.runs();
    let nb = common::read_json(&runs[0].join("nb.ipynb"));
    assert_eq!(
        common::cell_sources(&nb).last().map(String::as_str),
        Some("import os; os.environ['CUDA_VISIBLE_DEVICES'], 6 * 7")
    );
    nothing_left(&slurm, &env);
}

#[test]
fn while_the_gpus_are_taken_a_sandbox_waits_in_the_queue_ctrl_c_cancels_it_and_it_starts_when_they_are_free()
 {
    let slurm = Slurm::start();
    let env = Env::new();
    let fields = slurm.fields(&env);
    let release = env.path().join("release");
    // The first sandbox takes both GPUs until the test lets it go (a file in the test's
    // folder, which an isolated sandbox would not see).
    let mut holder = slurm.spawn(
        &env,
        "hold.rhai",
        &format!(
            "let sb = Sandbox(#{{ {fields}, gpu: \"any\", gpu_count: 2, isolation: \"none\" }}).start();\nprint(\"holding\");\nsb.exec(\"while [ ! -f {} ]; do sleep 0.1; done\");\nprint(\"released\");",
            release.display()
        ),
    );
    holder.expect("holding", 60);
    let waiter = format!(
        "let sb = Sandbox(#{{ {fields}, gpu: \"any\", gpu_count: 1 }}).start();\nlet e = sb.exec(\"echo started with GPU $CUDA_VISIBLE_DEVICES\");\ne.trim();\nprint(e);"
    );
    let pending = |jobs: &[common::slurm::QueuedJob]| {
        jobs.iter()
            .filter(|j| j.state == "PENDING" && j.reason == "Resources")
            .count()
    };
    // Queued behind the holder: Ctrl-C cancels its job.
    let mut impatient = slurm.spawn(&env, "impatient.rhai", &waiter);
    let jobs = slurm.wait_jobs("a job pending for resources", 30, |j| pending(j) == 1);
    let queued = jobs
        .iter()
        .find(|j| j.state == "PENDING")
        .unwrap()
        .id
        .clone();
    impatient.ctrl_c();
    let jobs = slurm.wait_jobs("the queued job to be cancelled", 10, |jobs| {
        jobs.iter()
            .any(|j| j.id == queued && j.state == "CANCELLED")
    });
    assert_eq!(jobs.iter().filter(|j| j.state == "RUNNING").count(), 1);
    // Another one waits, and starts once the holder is done.
    let mut patient = slurm.spawn(&env, "patient.rhai", &waiter);
    slurm.wait_jobs("a job pending for resources", 30, |j| pending(j) == 1);
    std::fs::write(&release, "").unwrap();
    holder.expect("released", 30);
    assert_eq!(patient.next_line(60), "started with GPU 0");
    assert!(
        patient.child.wait().unwrap().success(),
        "{}",
        patient.transcript()
    );
    assert!(
        holder.child.wait().unwrap().success(),
        "{}",
        holder.transcript()
    );
    nothing_left(&slurm, &env);
}

#[test]
fn killing_seer_ends_the_job_and_every_process_of_the_sandbox() {
    let slurm = Slurm::start();
    let env = Env::new();
    let mut run = slurm.spawn(
        &env,
        "main.rhai",
        &format!(
            "let sb = Sandbox(#{{ {}, execution_mode: \"notebook\" }}).start();\nlet s = create_notebook_session(sb, (), #{{ name: \"k\" }});\nprint(\"ready\");\ns.exec(\"import time; time.sleep(120)\");",
            slurm.fields(&env)
        ),
    );
    run.expect("ready", 120);
    assert!(!common::pids_matching(&needle(&env)).is_empty());
    assert_eq!(slurm.live_jobs().len(), 1);
    run.signal(nix::sys::signal::Signal::SIGKILL);
    // The agent sees its stream close and ends the sandbox; the job's script then ends
    // the job (it completes rather than being cancelled).
    let jobs = slurm.wait_jobs("the job to end", 30, |jobs| {
        jobs.len() == 1 && jobs[0].state == "COMPLETED"
    });
    assert_eq!(jobs.len(), 1);
    wait_gone(&needle(&env), Duration::from_secs(10));
}

#[test]
fn a_detached_sandbox_keeps_its_job_and_from_id_reattaches() {
    let slurm = Slurm::start();
    let env = Env::new();
    let out = slurm.run(
        &env,
        &format!(
            "let sb = Sandbox(#{{ {}, timeout: 300 }}).start();\nsb.write_file(\"kept.txt\", \"still here\");\nsb.detach();\nprint(sb.id);",
            slurm.fields(&env)
        ),
    );
    let id = ok(&out).trim().to_string();
    // The run ended; the job holds on (its script sees the detached sandbox).
    std::thread::sleep(Duration::from_secs(3));
    let live = slurm.live_jobs();
    assert_eq!(
        live.iter()
            .map(|j| (j.name.as_str(), j.state.as_str()))
            .collect::<Vec<_>>(),
        [(format!("seer-{id}").as_str(), "RUNNING")]
    );
    let out = slurm.run(
        &env,
        &format!(
            "let sb = Sandbox::from_id(\"{id}\");\nprint(sb.read_file(\"kept.txt\"));\nsb.terminate();"
        ),
    );
    assert_eq!(lines(&ok(&out)), ["still here"]);
    nothing_left(&slurm, &env);
}

#[test]
fn a_job_ended_by_its_time_limit_is_a_clear_error_and_the_notebook_stays() {
    let slurm = Slurm::start();
    let env = Env::new();
    // The `short` partition gives jobs without a limit of their own one minute
    // (`timeout: 0` asks for none).
    let out = slurm.run(
        &env,
        &format!(
            r#"
let sb = Sandbox(#{{ {}, partition: "short", timeout: 0, execution_mode: "notebook" }}).start();
let s = create_notebook_session(sb, (), #{{ name: "long" }});
s.exec("1 + 1");
s.exec("import time; time.sleep(300)");
"#,
            slurm.fields(&env)
        ),
    );
    let stderr = failed(&out);
    // seer reports the end as soon as Slurm kills the step; the job itself may still be
    // COMPLETING then, and shows TIMEOUT once the node has cleaned up.
    let jobs = slurm.wait_jobs("the job to finish completing", 30, |jobs| {
        jobs.len() == 1 && !matches!(jobs[0].state.as_str(), "RUNNING" | "COMPLETING")
    });
    let job = jobs[0].clone();
    assert_eq!(job.state, "TIMEOUT");
    assert!(
        stderr.contains(&format!(
            "Slurm job {} was ended by Slurm: it reached its time limit",
            job.id
        )),
        "{stderr}"
    );
    let nb = common::read_json(&env.runs()[0].join("long.ipynb"));
    assert_eq!(common::cell_sources(&nb)[0], "1 + 1");
    nothing_left(&slurm, &env);
}

#[test]
fn off_the_cluster_every_slurm_command_goes_through_the_login_node() {
    let slurm = Slurm::start();
    // The "login node" is the loopback sshd, whose sessions know the cluster; seer's own
    // environment does not (it names no SLURM_CONF).
    let sshd = Sshd::start_with(&format!("SetEnv SLURM_CONF={}\n", slurm.conf().display()));
    let env = Env::new();
    env.write(
        "main.rhai",
        &format!(
            "let sb = Sandbox(#{{ {}, login: \"{}\", ssh_options: {}, gpu: \"any\" }}).start();\nlet e = sb.exec(\"echo $CUDA_VISIBLE_DEVICES\");\ne.trim();\nprint(e);",
            slurm.fields(&env),
            Sshd::HOST,
            sshd.options()
        ),
    );
    let out = env
        .cmd()
        .env_remove("SLURM_CONF")
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    assert_eq!(lines(&ok(&out)), ["0"]);
    let jobs = slurm.wait_jobs("the job to be cancelled", 20, |jobs| {
        jobs.len() == 1 && jobs[0].state == "CANCELLED"
    });
    assert!(jobs[0].name.starts_with("seer-sb-"), "{jobs:?}");
    nothing_left(&slurm, &env);
}
