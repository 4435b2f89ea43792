//! Slurm: the job script, `sbatch` submission and job states
//! read back from `scontrol` (accounting, `sacct`, is often absent and is never needed).
//!
//! One submission is up to three jobs, all running the same emolab binary:
//! 1. `prepare`: scan and compute every missing feature into the shared cache, once;
//! 2. the array (`--dependency=afterok:prepare`): task `i` runs entry `i` of `plan.json`,
//!    only entries that are not complete and not already pending or running in Slurm;
//! 3. `collect` (`--dependency=afterany:array`): the summary, seed ensembles and sweep table.
//!
//! Job ids are appended to `results/<name>/slurm/jobs.json`, logs go to
//! `results/<name>/slurm/` (`<array>_<task>.out`, `prepare-<job>.out`, `collect-<job>.out`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::experiment::SlurmSpec;
use crate::work::Plan;

/// What went wrong talking to Slurm.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("`{0}` was not found: Slurm's client commands must be on PATH (on one machine, scripts/slurm-local.sh start brings up a local Slurm)")]
    NotInstalled(String),
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("the plan has task {max}, but this cluster's MaxArraySize is {limit} (indices up to {}): run fewer trials or seeds per submission (a `folds:` or `seeds:` selection, or a smaller sweep), or ask for a larger MaxArraySize", limit - 1)]
    ArrayTooLarge { max: usize, limit: usize },
    #[error("slurm.cpus is {asked}, but the largest node{} has {largest} CPUs: the jobs would wait forever; ask for fewer (--slurm-opt cpus={largest})", partition.as_ref().map(|p| format!(" of partition {p}")).unwrap_or_default())]
    TooManyCpus {
        asked: usize,
        largest: usize,
        partition: Option<String>,
    },
}

/// The most CPUs of any node (of `partition`) as `sinfo` reports them; `None` when it cannot
/// tell.
fn largest_node_cpus(partition: Option<&str>) -> Option<usize> {
    let mut args = vec!["-h".to_string(), "-o".into(), "%c".into()];
    if let Some(p) = partition {
        args.extend(["-p".into(), p.to_string()]);
    }
    let text = slurm("sinfo", &args).ok()?;
    largest_cpus(&text)
}

/// The largest CPU count in `sinfo -o %c` output (`4`, or `2+` for mixed node groups).
fn largest_cpus(text: &str) -> Option<usize> {
    text.lines()
        .filter_map(|l| l.trim().trim_end_matches('+').parse::<usize>().ok())
        .max()
}

/// Run a Slurm command; its stdout.
fn slurm(cmd: &str, args: &[String]) -> Result<String, SlurmError> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SlurmError::NotInstalled(cmd.into())
        } else {
            SlurmError::Command {
                command: cmd.into(),
                status: e.to_string(),
                stderr: String::new(),
            }
        }
    })?;
    if !out.status.success() {
        return Err(SlurmError::Command {
            command: format!("{cmd} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Prepare,
    Array,
    Collect,
}

/// One submitted job, as `jobs.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub role: Role,
    /// Plan entries of an array job.
    #[serde(default)]
    pub tasks: Vec<usize>,
    pub submitted_at: String,
}

/// The Slurm folder of an experiment's results.
pub fn slurm_dir(exp_dir: &Path) -> PathBuf {
    exp_dir.join("slurm")
}

/// Every job recorded for the experiment, oldest first.
pub fn read_jobs(exp_dir: &Path) -> Result<Vec<JobRecord>> {
    let p = slurm_dir(exp_dir).join("jobs.json");
    if !p.exists() {
        return Ok(Vec::new());
    }
    crate::results::read_json(&p)
}

fn write_jobs(exp_dir: &Path, jobs: &[JobRecord]) -> Result<()> {
    crate::results::write_json(&slurm_dir(exp_dir).join("jobs.json"), &jobs)
}

/// A job's (or array task's) state as `scontrol` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobState {
    /// `JOBID` or `ARRAYJOB_TASK`.
    pub job: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, `PREEMPTED`, …
    pub state: String,
    pub reason: String,
}

impl JobState {
    /// A job `scontrol` no longer reports (finished long ago, or purged).
    fn unknown(job: String) -> JobState {
        JobState {
            job,
            state: "UNKNOWN".into(),
            reason: "no longer known to Slurm".into(),
        }
    }

    /// Pending or running: the task will still do something.
    pub fn active(&self) -> bool {
        state_active(&self.state)
    }
}

/// Whether a Slurm job state (`PENDING`, `RUNNING`, …) will still do something.
pub fn state_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "REQUEUED"
            | "RESIZING"
            | "SUSPENDED"
            | "STAGE_OUT"
            | "SIGNALING"
    )
}

/// Array task indices of `ArrayTaskId=` (`3`, `0-7%2`, `1,4-6`, `0-9:2`).
pub fn parse_task_ids(s: &str) -> Vec<usize> {
    let s = s.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (range, step) = match part.split_once(':') {
            Some((r, st)) => (r, st.parse().unwrap_or(1).max(1)),
            None => (part, 1),
        };
        match range.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend((a..=b).step_by(step));
                }
            }
            None => out.extend(range.parse::<usize>().ok()),
        }
    }
    out
}

/// `0-3,7,9-10`: indices as an `--array` list.
pub fn array_spec(indices: &[usize]) -> String {
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Parse `scontrol show job -o` output: one state per job or array task (index → state for
/// array tasks, with `None` as the key of a plain job).
fn parse_scontrol(text: &str) -> Vec<(Option<usize>, JobState)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f: BTreeMap<&str, &str> = BTreeMap::new();
        for tok in line.split_whitespace() {
            if let Some((k, v)) = tok.split_once('=') {
                f.entry(k).or_insert(v);
            }
        }
        let state = f.get("JobState").copied().unwrap_or("UNKNOWN").to_string();
        let reason = f.get("Reason").copied().unwrap_or("None").to_string();
        match (f.get("ArrayJobId"), f.get("ArrayTaskId")) {
            (Some(a), Some(t)) => {
                for i in parse_task_ids(t) {
                    out.push((
                        Some(i),
                        JobState {
                            job: format!("{a}_{i}"),
                            state: state.clone(),
                            reason: reason.clone(),
                        },
                    ));
                }
            }
            _ => out.push((
                None,
                JobState {
                    job: f.get("JobId").copied().unwrap_or("?").to_string(),
                    state,
                    reason,
                },
            )),
        }
    }
    out
}

/// States of one job id (every task of an array); empty when Slurm no longer knows it
/// (finished longer than `MinJobAge` ago) or is not reachable.
pub fn query(id: &str) -> Vec<(Option<usize>, JobState)> {
    match slurm(
        "scontrol",
        &["show".into(), "job".into(), "-o".into(), id.into()],
    ) {
        Ok(text) => parse_scontrol(&text),
        Err(_) => Vec::new(),
    }
}

/// The Slurm state of every plan entry that a recorded array job ran (the latest job wins),
/// and of the prepare and collect jobs.
pub struct Jobs {
    pub tasks: BTreeMap<usize, JobState>,
    pub others: Vec<(Role, JobState)>,
    pub records: Vec<JobRecord>,
}

impl Jobs {
    pub fn read(exp_dir: &Path) -> Result<Jobs> {
        let records = read_jobs(exp_dir)?;
        let mut tasks = BTreeMap::new();
        let mut others = Vec::new();
        for r in &records {
            let states = query(&r.id);
            match r.role {
                Role::Array => {
                    // Array task i of a submission runs plan entry i (array indices are plan
                    // indices); a later submission of an entry replaces what an earlier said.
                    let known: BTreeMap<usize, JobState> = states
                        .into_iter()
                        .filter_map(|(i, s)| Some((i?, s)))
                        .collect();
                    for &i in &r.tasks {
                        let s = known
                            .get(&i)
                            .cloned()
                            .unwrap_or_else(|| JobState::unknown(format!("{}_{i}", r.id)));
                        tasks.insert(i, s);
                    }
                }
                role => {
                    let s = states
                        .into_iter()
                        .next()
                        .map(|x| x.1)
                        .unwrap_or_else(|| JobState::unknown(r.id.clone()));
                    others.push((role, s));
                }
            }
        }
        Ok(Jobs {
            tasks,
            others,
            records,
        })
    }
}

/// The job script: `job.sbatch prepare | task | collect`.
pub fn script(plan: &Plan, spec: &SlurmSpec, exp_dir: &Path, bin: &Path, cwd: &Path) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let args: Vec<String> = plan.invocation.args().iter().map(|a| q(a)).collect();
    let mut head = vec![
        format!("#SBATCH --job-name=emolab-{}", plan.experiment),
        format!("#SBATCH --cpus-per-task={}", spec.cpus),
        format!(
            "#SBATCH --output={}",
            slurm_dir(exp_dir).join("%A_%a.out").display()
        ),
    ];
    for (k, v) in [
        ("partition", &spec.partition),
        ("mem", &spec.mem),
        ("time", &spec.time),
    ] {
        if let Some(v) = v {
            head.push(format!("#SBATCH --{k}={v}"));
        }
    }
    for x in &spec.extra {
        head.push(format!("#SBATCH {x}"));
    }
    let mut env = vec![
        "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}".to_string(),
        "export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}".to_string(),
    ];
    for (k, v) in &spec.env {
        env.push(format!("export {k}={}", q(v)));
    }
    format!(
        "#!/bin/bash
# emolab on Slurm: {name}, {n} runs (array task i runs entry i of {plan}).
# Written by `emolab {kind} --slurm`; submit again with the same command, which submits only
# runs that are not complete (a task killed by Slurm resumes from its checkpoint).
{head}
set -euo pipefail
cd {cwd}
{env}
{setup}
case \"${{1:-task}}\" in
  prepare) exec {bin} {args} --prepare-only ;;
  task) exec {bin} {args} --task \"$SLURM_ARRAY_TASK_ID\" ;;
  collect) exec {bin} {args} --collect ;;
  *) echo \"usage: $0 prepare|task|collect\" >&2; exit 2 ;;
esac
",
        name = plan.experiment,
        n = plan.tasks.len(),
        plan = Plan::path(exp_dir).display(),
        kind = plan.invocation.args()[0],
        head = head.join("\n"),
        cwd = q(&cwd.display().to_string()),
        env = env.join("\n"),
        setup = spec.setup.join("\n"),
        bin = q(&bin.display().to_string()),
        args = args.join(" "),
    )
}

/// What a submission did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub script: PathBuf,
    /// Plan entries submitted.
    pub tasks: Vec<usize>,
    pub complete: usize,
    /// Entries left alone because Slurm still runs or queues them.
    pub active: usize,
    /// The sbatch command lines (run, or to run when dry).
    pub commands: Vec<String>,
    /// (role, job id) submitted.
    pub jobs: Vec<(Role, String)>,
}

/// The `MaxArraySize` of the cluster, when `scontrol` tells it.
fn max_array_size() -> Option<usize> {
    let text = slurm("scontrol", &["show".into(), "config".into()]).ok()?;
    text.lines()
        .find(|l| l.trim_start().starts_with("MaxArraySize"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

/// Write the script and submit prepare → array → collect for every entry of `plan` that is not
/// complete and not pending or running in Slurm.
pub fn submit(
    plan: &Plan,
    spec: &SlurmSpec,
    exp_dir: &Path,
    encoder_features: bool,
    dry_run: bool,
) -> Result<Submission> {
    let dir = slurm_dir(exp_dir);
    let bin = std::env::current_exe().context("cannot find the emolab binary")?;
    let cwd = std::env::current_dir().context("no current folder")?;
    let script_path = dir.join("job.sbatch");
    let text = script(plan, spec, exp_dir, &bin, &cwd);
    crate::util::atomic_write_bytes(&script_path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755));
    }
    let jobs = if dry_run {
        None
    } else {
        Some(Jobs::read(exp_dir)?)
    };
    let mut sub = Submission {
        script: script_path.clone(),
        ..Default::default()
    };
    for t in &plan.tasks {
        if crate::results::RunDir::new(exp_dir.join(&t.run)).is_complete() {
            sub.complete += 1;
        } else if jobs
            .as_ref()
            .and_then(|j| j.tasks.get(&t.index))
            .is_some_and(JobState::active)
        {
            sub.active += 1;
        } else {
            sub.tasks.push(t.index);
        }
    }
    if sub.tasks.is_empty() {
        return Ok(sub);
    }
    let max = *sub.tasks.iter().max().expect("non-empty");
    if !dry_run {
        if let Some(limit) = max_array_size() {
            if max >= limit {
                return Err(SlurmError::ArrayTooLarge { max, limit }.into());
            }
        }
        if let Some(largest) = largest_node_cpus(spec.partition.as_deref()) {
            if spec.cpus > largest {
                return Err(SlurmError::TooManyCpus {
                    asked: spec.cpus,
                    largest,
                    partition: spec.partition.clone(),
                }
                .into());
            }
        }
    }
    let script_s = script_path.display().to_string();
    let log = |name: &str| format!("--output={}", dir.join(name).display());
    let name = format!("--job-name=emolab-{}", plan.experiment);
    let mut prepare = vec![
        "--parsable".to_string(),
        format!("{name}-prepare"),
        log("prepare-%j.out"),
    ];
    if encoder_features {
        prepare.extend(spec.gres.iter().map(|g| format!("--gres={g}")));
    }
    let mut array = vec![
        "--parsable".to_string(),
        name.clone(),
        format!(
            "--array={}{}",
            array_spec(&sub.tasks),
            spec.throttle.map(|n| format!("%{n}")).unwrap_or_default()
        ),
        "--kill-on-invalid-dep=yes".into(),
        log("%A_%a.out"),
    ];
    array.extend(spec.gres.iter().map(|g| format!("--gres={g}")));
    let collect = vec![
        "--parsable".to_string(),
        format!("{name}-collect"),
        "--cpus-per-task=1".into(),
        log("collect-%j.out"),
    ];
    let show = |args: &[String], dep: &str, mode: &str| {
        let mut a = args.to_vec();
        if !dep.is_empty() {
            a.push(dep.to_string());
        }
        format!("sbatch {} {script_s} {mode}", a.join(" "))
    };
    if dry_run {
        sub.commands = vec![
            show(&prepare, "", "prepare"),
            show(&array, "--dependency=afterok:<prepare>", "task"),
            show(&collect, "--dependency=afterany:<array>", "collect"),
        ];
        return Ok(sub);
    }
    let mut records = jobs.map(|j| j.records).unwrap_or_default();
    let mut run =
        |mut args: Vec<String>, dep: Option<String>, mode: &str, role: Role| -> Result<String> {
            if let Some(d) = dep {
                args.push(d);
            }
            sub.commands.push(show(&args, "", mode));
            args.push(script_s.clone());
            args.push(mode.into());
            let out = slurm("sbatch", &args)?;
            let id = out
                .trim()
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
                anyhow::bail!("sbatch printed `{}`, not a job id", out.trim());
            }
            records.push(JobRecord {
                id: id.clone(),
                role,
                tasks: if role == Role::Array {
                    sub.tasks.clone()
                } else {
                    Vec::new()
                },
                submitted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            // Recorded as soon as it exists, so a failure further on loses no job id.
            write_jobs(exp_dir, &records)?;
            sub.jobs.push((role, id.clone()));
            Ok(id)
        };
    let p = run(prepare, None, "prepare", Role::Prepare)?;
    let a = run(
        array,
        Some(format!("--dependency=afterok:{p}")),
        "task",
        Role::Array,
    )?;
    run(
        collect,
        Some(format!("--dependency=afterany:{a}")),
        "collect",
        Role::Collect,
    )?;
    Ok(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_round_trip() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(array_spec(&[5]), "5");
        assert_eq!(parse_task_ids("0-3,7,9-10%2"), vec![0, 1, 2, 3, 7, 9, 10]);
        assert_eq!(parse_task_ids("0-6:3"), vec![0, 3, 6]);
        assert_eq!(parse_task_ids("4"), vec![4]);
    }

    #[test]
    fn scontrol_lines_give_one_state_per_task() {
        let text = "JobId=12 ArrayJobId=11 ArrayTaskId=1 JobName=x JobState=RUNNING Reason=None Dependency=(null)
JobId=11 ArrayJobId=11 ArrayTaskId=2-3%1 JobName=x JobState=PENDING Reason=JobArrayTaskLimit Dependency=(null)
JobId=10 JobName=p JobState=COMPLETED Reason=None Dependency=(null)
";
        let s = parse_scontrol(text);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].0, Some(1));
        assert_eq!(s[0].1.job, "11_1");
        assert!(s[0].1.active());
        assert_eq!(s[2].0, Some(3));
        assert_eq!(s[2].1.reason, "JobArrayTaskLimit");
        assert_eq!(largest_cpus("2\n4+\n\n"), Some(4));
        assert_eq!(largest_cpus(""), None);
        assert_eq!(s[3].0, None);
        assert_eq!(s[3].1.job, "10");
        assert!(!s[3].1.active());
    }

    #[test]
    fn the_spec_refuses_what_sbatch_would_misread() {
        let mut s = SlurmSpec::default();
        assert!(s.check().is_ok());
        s.extra = vec!["account=x".into()];
        assert_eq!(s.check().unwrap_err().0, "extra[0]");
        s.extra.clear();
        s.cpus = 0;
        assert_eq!(s.check().unwrap_err().0, "cpus");
        s.cpus = 2;
        s.time = Some("4 hours".into());
        assert_eq!(s.check().unwrap_err().0, "time");
    }
}
