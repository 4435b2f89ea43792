//! Hyper-parameter sweeps: the Cartesian product of listed values, or random search with a
//! budget; one run folder per trial × fold × seed; selection on validation UA only.
//!
//! A trial is named by a hash of its parameter values (`t-1a2b3c4d`), so growing a grid keeps
//! the folders of trials already run, and a second invocation runs nothing new. The selected
//! trial is the one with the best mean validation UA; its test figures are reported, never used
//! to choose. `--slurm` submits the runs as a Slurm job array ([`crate::cluster`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_yaml::Value;

use crate::config::ConfigError;
use crate::experiment::{Distribution, Experiment, SweepSpec, SweepValues};

/// One point of the search space.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub id: String,
    pub params: Vec<(String, Value)>,
}

impl Trial {
    fn new(params: Vec<(String, Value)>) -> Trial {
        let text = serde_json::to_string(
            &params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect::<Vec<_>>(),
        )
        .expect("serialisable");
        let id = format!("t-{}", &blake3::hash(text.as_bytes()).to_hex()[..8]);
        Trial { id, params }
    }

    /// `key=value` pairs, for people.
    pub fn label(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={}", yaml_scalar(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn json_params(&self) -> BTreeMap<String, serde_json::Value> {
        self.params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
            .collect()
    }
}

fn yaml_scalar(v: &Value) -> String {
    serde_yaml::to_string(v)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Parse `--grid key=v1,v2,…` arguments into a sweep spec (values parsed as YAML scalars).
pub fn grid_from_args(args: &[String]) -> Result<SweepSpec, String> {
    let mut spec = SweepSpec::default();
    for a in args {
        let (k, vs) = a
            .split_once('=')
            .ok_or_else(|| format!("--grid `{a}`: expected key.path=v1,v2,..."))?;
        let values = vs
            .split(',')
            .map(|v| {
                serde_yaml::from_str::<Value>(v.trim()).map_err(|e| format!("--grid `{a}`: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        spec.params
            .insert(k.trim().to_string(), SweepValues::List(values));
    }
    Ok(spec)
}

/// The trials of a sweep: the full grid, or `budget` random draws.
pub fn trials(spec: &SweepSpec) -> Vec<Trial> {
    let keys: Vec<&String> = spec.params.keys().collect();
    let all_lists = spec
        .params
        .values()
        .all(|v| matches!(v, SweepValues::List(_)));
    if all_lists {
        let mut grid: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for k in &keys {
            let SweepValues::List(vals) = &spec.params[*k] else {
                unreachable!()
            };
            grid = grid
                .into_iter()
                .flat_map(|prefix| {
                    vals.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push(((*k).clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
        let mut out: Vec<Trial> = grid.into_iter().map(Trial::new).collect();
        if let Some(b) = spec.budget {
            if b < out.len() {
                // Random search over the grid: a seeded sample without replacement.
                let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
                rand::seq::SliceRandom::shuffle(out.as_mut_slice(), &mut rng);
                out.truncate(b);
            }
        }
        return out;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let budget = spec.budget.unwrap_or(1);
    let mut out = Vec::new();
    for _ in 0..budget {
        let params = keys
            .iter()
            .map(|k| {
                let v = match &spec.params[*k] {
                    SweepValues::List(vals) => vals[rng.random_range(0..vals.len())].clone(),
                    SweepValues::Dist(Distribution::Uniform([lo, hi])) => {
                        Value::from(round_sig(rng.random_range(*lo..*hi)))
                    }
                    SweepValues::Dist(Distribution::LogUniform([lo, hi])) => {
                        Value::from(round_sig((rng.random_range(lo.ln()..hi.ln())).exp()))
                    }
                };
                ((*k).clone(), v)
            })
            .collect();
        out.push(Trial::new(params));
    }
    out
}

/// 4 significant digits, so trial values read well and print the same everywhere.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let p = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * p).round() / p
}

/// The experiment of one trial.
pub fn trial_experiment(exp: &Experiment, t: &Trial) -> Result<Experiment, ConfigError> {
    let mut e = exp.with(&t.params)?;
    e.name = exp.name.clone();
    Ok(e)
}

/// One row per trial: parameters, runs, mean validation UA (selection) and test figures.
pub fn table(results: &Path, name: &str, trials: &[Trial]) -> Result<DataFrame> {
    let summary = crate::results::summary(&results.join(name))?;
    let mut ids = Vec::new();
    let mut labels = Vec::new();
    let mut runs = Vec::new();
    let (mut val, mut ua, mut wa, mut f1) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut param_cols: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in trials {
        let rows = summary
            .clone()
            .lazy()
            .filter(col("trial").eq(lit(t.id.clone())))
            .collect()?;
        let mean = |c: &str| -> Result<Option<f64>> { Ok(rows.column(c)?.f64()?.mean()) };
        ids.push(t.id.clone());
        labels.push(t.label());
        runs.push(rows.height() as u32);
        val.push(mean("val_ua")?);
        ua.push(mean("ua")?);
        wa.push(mean("wa")?);
        f1.push(mean("macro_f1")?);
        for (k, v) in &t.params {
            param_cols
                .entry(k.clone())
                .or_default()
                .push(yaml_scalar(v));
        }
    }
    let mut cols = vec![
        Column::new("trial".into(), ids),
        Column::new("params".into(), labels),
    ];
    for (k, v) in param_cols {
        cols.push(Column::new(format!("param:{k}").into(), v));
    }
    cols.extend([
        Column::new("runs".into(), runs),
        Column::new("val_ua".into(), val),
        Column::new("test_ua".into(), ua),
        Column::new("test_wa".into(), wa),
        Column::new("test_macro_f1".into(), f1),
    ]);
    Ok(DataFrame::new(cols)?)
}

/// The trial with the best mean validation UA (ties: the first).
pub fn select(table: &DataFrame) -> Result<Option<usize>> {
    let val: Vec<Option<f64>> = table.column("val_ua")?.f64()?.into_iter().collect();
    Ok(val
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .fold(None, |best: Option<(usize, f64)>, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i))
}

/// Write `results/<name>/sweep.parquet` from the complete runs of every trial.
pub fn write_table(exp: &Experiment, trials: &[Trial]) -> Result<DataFrame> {
    let mut t = table(&exp.results, &exp.name, trials)?;
    crate::util::atomic_write(&exp.dir().join("sweep.parquet"), |w| {
        ParquetWriter::new(w).finish(&mut t)?;
        Ok(())
    })?;
    Ok(t)
}

/// `selected on validation UA: t-… (params): test UA … (reported, not used to choose)`.
pub fn selection_line(table: &DataFrame) -> Result<Option<String>> {
    let Some(i) = select(table)? else {
        return Ok(None);
    };
    let row = table.get_row(i)?;
    Ok(Some(format!(
        "selected on validation UA: {} ({}): test UA {} (reported, not used to choose)",
        row.0[0],
        row.0[1],
        row.0[row.0.len() - 3]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_cartesian_product_with_stable_ids() {
        let spec = grid_from_args(&[
            "model.dropout=0.3,0.5".into(),
            "train.lr=1e-3,5e-4,1e-4".into(),
        ])
        .unwrap();
        let t = trials(&spec);
        assert_eq!(t.len(), 6);
        let ids: std::collections::BTreeSet<_> = t.iter().map(|x| x.id.clone()).collect();
        assert_eq!(ids.len(), 6, "distinct trials get distinct ids");
        assert_eq!(trials(&spec), t, "same spec, same trials");
        assert_eq!(t[0].label(), "model.dropout=0.3 train.lr=0.001");
        // Growing the grid keeps the ids of trials already there.
        let bigger = grid_from_args(&[
            "model.dropout=0.3,0.5,0.7".into(),
            "train.lr=1e-3,5e-4,1e-4".into(),
        ])
        .unwrap();
        let big_ids: std::collections::BTreeSet<_> =
            trials(&bigger).into_iter().map(|x| x.id).collect();
        assert!(ids.is_subset(&big_ids));
        assert!(grid_from_args(&["model.dropout".into()]).is_err());
    }

    #[test]
    fn random_search_draws_the_budget_within_bounds() {
        let mut spec = SweepSpec {
            budget: Some(5),
            seed: 3,
            ..Default::default()
        };
        spec.params.insert(
            "train.lr".into(),
            SweepValues::Dist(Distribution::LogUniform([1e-4, 1e-2])),
        );
        let t = trials(&spec);
        assert_eq!(t.len(), 5);
        for x in &t {
            let v = x.params[0].1.as_f64().unwrap();
            assert!((1e-4..=1e-2).contains(&v), "{v}");
        }
        assert_eq!(trials(&spec), t);
        // A budget smaller than a grid samples it.
        let mut g = grid_from_args(&["a.b=1,2,3,4".into()]).unwrap();
        g.budget = Some(2);
        assert_eq!(trials(&g).len(), 2);
    }
}
