//! `emolab status`: where every run of an experiment's plan ([`crate::work`]) is, from its run folder (`meta.json`,
//! `progress.json`) and, where it was submitted, Slurm's view of its array task.
//!
//! A run whose `meta.json` says `running` is *running* while its process lives (the same host
//! and pid, or its Slurm task is running) and *interrupted* once it does not (killed, timed out,
//! preempted, cancelled): submitting again resumes it from its checkpoint.

use std::fmt;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::cluster::slurm::{JobState, Jobs, Role};
use crate::results::{RunDir, RunStatus};
use crate::train::checkpoint::read_progress;
use crate::work::Plan;

/// Where one run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Complete,
    Running,
    Pending,
    Interrupted,
    Failed,
    NotStarted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Complete => "complete",
            State::Running => "running",
            State::Pending => "pending",
            State::Interrupted => "interrupted",
            State::Failed => "failed",
            State::NotStarted => "not started",
        }
    }

    /// Still to change on its own.
    pub fn active(self) -> bool {
        matches!(self, State::Running | State::Pending)
    }
}

/// One row of the status table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub task: usize,
    pub run: String,
    pub state: State,
    /// Test UA of a complete run, the epoch and validation UA so far of a running one, the
    /// error of a failed one, Slurm's reason for a pending one.
    pub detail: String,
    /// `JOB_TASK STATE` where Slurm ran or queues it.
    pub slurm: Option<String>,
}

/// The status of one experiment.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub experiment: String,
    pub rows: Vec<Row>,
    /// Prepare and collect jobs: (role, job, state).
    pub jobs: Vec<(String, String, String)>,
}

impl Status {
    pub fn count(&self, s: State) -> usize {
        self.rows.iter().filter(|r| r.state == s).count()
    }

    /// Any run pending or running, or a prepare/collect job still to finish.
    pub fn active(&self) -> bool {
        self.rows.iter().any(|r| r.state.active())
            || self
                .jobs
                .iter()
                .any(|(_, _, s)| crate::cluster::slurm::state_active(s))
    }

    pub fn all_complete(&self) -> bool {
        self.rows.iter().all(|r| r.state == State::Complete)
    }

    /// `4 runs: 2 complete, 1 running, 1 pending`.
    pub fn counts(&self) -> String {
        let mut parts = Vec::new();
        for s in [
            State::Complete,
            State::Running,
            State::Pending,
            State::Interrupted,
            State::Failed,
            State::NotStarted,
        ] {
            let n = self.count(s);
            if n > 0 {
                parts.push(format!("{n} {}", s.name()));
            }
        }
        format!("{} runs: {}", self.rows.len(), parts.join(", "))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.experiment, self.counts())?;
        let w = self
            .rows
            .iter()
            .map(|r| r.run.len())
            .max()
            .unwrap_or(3)
            .max(3);
        writeln!(
            f,
            "  {:>4}  {:<w$}  {:<11}  {:<24}  detail",
            "task", "run", "state", "slurm"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "  {:>4}  {:<w$}  {:<11}  {:<24}  {}",
                r.task,
                r.run,
                r.state.name(),
                r.slurm.as_deref().unwrap_or("-"),
                r.detail
            )?;
        }
        for (role, job, state) in &self.jobs {
            writeln!(f, "  {role} job {job}: {state}")?;
        }
        Ok(())
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > 160 {
        format!("{}…", l.chars().take(160).collect::<String>())
    } else {
        l.to_string()
    }
}

/// The state of every run of `plan` in `exp_dir`.
pub fn status(exp_dir: &Path, plan: &Plan) -> Result<Status> {
    let jobs = Jobs::read(exp_dir)?;
    let this_host = crate::util::hostname();
    let mut rows = Vec::new();
    for t in &plan.tasks {
        let dir = RunDir::new(exp_dir.join(&t.run));
        let slurm = jobs.tasks.get(&t.index);
        let slurm_text = slurm.map(|s| format!("{} {}", s.job, s.state));
        let slurm_active = slurm.is_some_and(JobState::active);
        let slurm_running = slurm.is_some_and(|s| s.state == "RUNNING");
        let progress = || {
            read_progress(&dir.dir).map_or_else(
                || "starting".to_string(),
                |p| {
                    format!(
                        "epoch {}/{}, val UA {:.3} (best {:.3}){}",
                        p.epoch,
                        p.epochs,
                        p.val_ua,
                        p.best_val_ua,
                        if p.resumed_from > 1 {
                            format!(", resumed at epoch {}", p.resumed_from)
                        } else {
                            String::new()
                        }
                    )
                },
            )
        };
        let (state, detail) = match dir.meta() {
            Err(_) if slurm_active => (
                State::Pending,
                slurm
                    .map(|s| format!("Slurm: {}", s.reason))
                    .unwrap_or_default(),
            ),
            Err(_) => (State::NotStarted, String::new()),
            Ok(m) => match m.status {
                RunStatus::Complete => {
                    let detail = dir
                        .metrics()
                        .map(|x| format!("test UA {:.3}, val UA {:.3}", x.test.ua, x.val_ua))
                        .unwrap_or_default();
                    (State::Complete, detail)
                }
                RunStatus::Failed => (
                    State::Failed,
                    first_line(m.error.as_deref().unwrap_or("failed")),
                ),
                RunStatus::Running => {
                    let local = m.host.is_some() && m.host == this_host;
                    let alive = if slurm_running {
                        true
                    } else if slurm_active {
                        // Requeued (pending again): it resumes when it starts.
                        false
                    } else if local {
                        m.pid.is_some_and(crate::util::emolab_process_alive)
                    } else {
                        // Another host and no Slurm task to ask: take the folder's word.
                        slurm.is_none()
                    };
                    if alive {
                        let mut d = progress();
                        if !local && !slurm_running {
                            if let Some(h) = &m.host {
                                d.push_str(&format!(" (on {h}; not checked from here)"));
                            }
                        }
                        (State::Running, d)
                    } else if slurm_active {
                        (
                            State::Pending,
                            format!("{}; resumes from its checkpoint", progress()),
                        )
                    } else {
                        (
                            State::Interrupted,
                            format!(
                                "stopped at {}; submit again to resume",
                                read_progress(&dir.dir).map_or("epoch 0".to_string(), |p| format!(
                                    "epoch {}/{}",
                                    p.epoch, p.epochs
                                ))
                            ),
                        )
                    }
                }
            },
        };
        rows.push(Row {
            task: t.index,
            run: t.run.clone(),
            state,
            detail,
            slurm: slurm_text,
        });
    }
    let jobs = jobs
        .others
        .iter()
        .map(|(role, s)| {
            (
                match role {
                    Role::Prepare => "prepare",
                    Role::Collect => "collect",
                    Role::Array => "array",
                }
                .to_string(),
                s.job.clone(),
                s.state.clone(),
            )
        })
        .collect();
    Ok(Status {
        experiment: plan.experiment.clone(),
        rows,
        jobs,
    })
}

/// The status of every target; with `wait`, polled every `interval` (a line on standard error
/// whenever the counts change) until no run is running or pending.
pub fn watch(
    targets: &[(std::path::PathBuf, Plan)],
    wait: bool,
    interval: std::time::Duration,
) -> Result<Vec<Status>> {
    let mut last = String::new();
    loop {
        let all = targets
            .iter()
            .map(|(dir, plan)| status(dir, plan))
            .collect::<Result<Vec<_>>>()?;
        if !wait || !all.iter().any(Status::active) {
            return Ok(all);
        }
        let line = all
            .iter()
            .map(|s| format!("{}: {}", s.experiment, s.counts()))
            .collect::<Vec<_>>()
            .join("; ");
        if line != last {
            eprintln!("{} {line}", chrono::Utc::now().format("%H:%M:%S"));
            last = line;
        }
        std::thread::sleep(interval);
    }
}
