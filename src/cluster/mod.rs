//! The Slurm backend: a plan's entries submitted as a job array between a prepare job and a
//! collect job, and their job states read back ([`slurm`]). A job never does anything a local
//! `emolab run` would not: array task `i` is `emolab run FILE --task i` (or
//! `emolab sweep FILE --task i`), which runs plan entry `i` ([`crate::work`]) into the same run
//! folder, resuming from its checkpoint when a previous task was killed. See `docs/cluster.md`.

pub mod slurm;

use anyhow::Result;

use crate::work::Work;

/// Number the runs of `work`, write `plan.json` and submit what is not complete or queued
/// (`--slurm`; with `dry_run`, write the script and print the commands only).
pub fn submit(work: &Work, dry_run: bool) -> Result<()> {
    let exp = &work.exp;
    let dir = work.exp_dir();
    eprintln!("{}: numbering the runs (reading the corpus)", exp.name);
    let plan = work.plan(None)?;
    plan.write(&dir)?;
    let spec = exp.slurm.clone().unwrap_or_default();
    let sub = slurm::submit(&plan, &spec, &dir, exp.pipeline.encoder.is_some(), dry_run)?;
    println!(
        "{}: {} runs: {} complete, {} pending or running in Slurm, {} to submit",
        exp.name,
        plan.tasks.len(),
        sub.complete,
        sub.active,
        sub.tasks.len()
    );
    println!("script      {}", sub.script.display());
    if dry_run {
        for c in &sub.commands {
            println!("would run   {c}");
        }
    } else if sub.tasks.is_empty() {
        println!("nothing submitted");
    } else {
        for (role, id) in &sub.jobs {
            println!("submitted   {role:?} job {id}");
        }
        println!(
            "logs        {}\nwatch with  emolab status {} --wait",
            slurm::slurm_dir(&dir).display(),
            exp.name
        );
    }
    Ok(())
}
