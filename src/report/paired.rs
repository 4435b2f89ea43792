//! Paired comparisons: two entries evaluated on the same test clips (same corpus, protocol,
//! target, class set, split seed, fold and seed), so "A beats B" is backed by numbers.
//!
//! Runs are paired with a Polars self-join of the runs table on those keys; each pair's
//! `predictions.parquet` files are joined on `clip_id`. The difference is the mean over paired
//! runs of UA(A) − UA(B) on the clips both scored. Its 95% interval is a percentile bootstrap
//! that resamples test clips with replacement within each paired run and each true class (so
//! every class keeps its support and UA stays defined), from a seeded ChaCha8 generator: the same
//! runs always give the same interval. Clips of one speaker are correlated, so the interval is
//! on the optimistic side; the count of paired runs A wins is given next to it.
//!
//! Only entries shown in detail take part (sweep trials other than the selected one do not: a
//! trial chosen on test figures would be chosen on the test set).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::load::Loaded;
use super::tables::{self, Tables};
use super::{Result, TableContext};

/// The columns a run's predictions contribute.
struct Scored {
    /// clip id → (true class, prediction is correct)
    clips: HashMap<String, (String, bool)>,
}

fn read_predictions(path: &Path) -> Option<Scored> {
    let p = crate::results::read_predictions(path, &[]).ok()?;
    let clips = p
        .clip_id
        .into_iter()
        .zip(p.truth)
        .zip(p.prediction)
        .map(|((i, t), p)| {
            let ok = t == p;
            (i, (t, ok))
        })
        .collect();
    Some(Scored { clips })
}

/// One paired run: per true class, whether A and B got each common clip right.
struct PairedRun {
    classes: Vec<(Vec<bool>, Vec<bool>)>,
}

impl PairedRun {
    fn new(a: &Scored, b: &Scored) -> PairedRun {
        let mut by_class: BTreeMap<&str, (Vec<bool>, Vec<bool>)> = BTreeMap::new();
        let mut ids: Vec<&String> = a.clips.keys().collect();
        ids.sort();
        for id in ids {
            let (truth, ca) = &a.clips[id];
            if let Some((truth_b, cb)) = b.clips.get(id) {
                if truth_b == truth {
                    let e = by_class.entry(truth.as_str()).or_default();
                    e.0.push(*ca);
                    e.1.push(*cb);
                }
            }
        }
        PairedRun {
            classes: by_class.into_values().collect(),
        }
    }

    fn clips(&self) -> usize {
        self.classes.iter().map(|c| c.0.len()).sum()
    }

    /// (UA of A, UA of B) on all common clips.
    fn ua(&self) -> (f64, f64) {
        let k = self.classes.len().max(1) as f64;
        let recall = |v: &[bool]| v.iter().filter(|x| **x).count() as f64 / v.len() as f64;
        let a = self.classes.iter().map(|c| recall(&c.0)).sum::<f64>() / k;
        let b = self.classes.iter().map(|c| recall(&c.1)).sum::<f64>() / k;
        (a, b)
    }

    /// UA(A) − UA(B) on one class-stratified resample.
    fn resampled_difference(&self, rng: &mut ChaCha8Rng) -> f64 {
        let k = self.classes.len().max(1) as f64;
        let mut diff = 0.0;
        for (ca, cb) in &self.classes {
            let n = ca.len();
            let (mut ha, mut hb) = (0usize, 0usize);
            for _ in 0..n {
                let j = rng.random_range(0..n);
                ha += ca[j] as usize;
                hb += cb[j] as usize;
            }
            diff += (ha as f64 - hb as f64) / n as f64;
        }
        diff / k
    }
}

/// A seed for one pair of entries, independent of the order pairs are computed in.
fn pair_seed(seed: u64, a: &str, b: &str) -> u64 {
    let h = blake3::hash(format!("{a}\u{0}{b}").as_bytes());
    let bytes: [u8; 8] = h.as_bytes()[..8].try_into().expect("8 bytes");
    seed ^ u64::from_le_bytes(bytes)
}

/// Compare every two entries of `tables.focus` that share test sets. A is the entry ranked
/// higher on the leaderboard. Columns: `a, b, corpus, protocol, target, paired_runs, clips,
/// ua_a, ua_b, difference, ci_low, ci_high, a_wins, verdict`.
pub fn compare(loaded: &Loaded, tables: &Tables, bootstrap: usize, seed: u64) -> Result<DataFrame> {
    let rank: HashMap<&str, u32> = tables
        .focus
        .iter()
        .enumerate()
        .map(|(i, e)| (e.as_str(), i as u32))
        .collect();
    let index: HashMap<(&str, &str), usize> = loaded
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.experiment.as_str(), r.run.as_str()), i))
        .collect();
    let entries = tables::str_col(&tables.runs, "entry")?;
    let exps = tables::str_col(&tables.runs, "experiment")?;
    let names = tables::str_col(&tables.runs, "run")?;
    let mut run_index = Vec::new();
    let mut run_rank = Vec::new();
    for i in 0..tables.runs.height() {
        let r = index[&(exps[i].as_str(), names[i].as_str())];
        match rank.get(entries[i].as_str()) {
            Some(k) if loaded.runs[r].predictions.is_some() => {
                run_index.push(Some(r as u32));
                run_rank.push(Some(*k));
            }
            _ => {
                run_index.push(None);
                run_rank.push(None);
            }
        }
    }
    let mut runs = tables.runs.clone();
    runs.with_column(Column::new("run_index".into(), run_index))
        .table("paired")?;
    runs.with_column(Column::new("rank".into(), run_rank))
        .table("paired")?;
    let keys = [
        "corpus",
        "protocol",
        "target",
        "classes",
        "split_seed",
        "fold",
        "seed",
    ];
    let side = runs.lazy().filter(col("run_index").is_not_null()).select(
        keys.iter()
            .map(|k| col(*k))
            .chain([col("entry"), col("rank"), col("run_index")])
            .collect::<Vec<_>>(),
    );
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let pairs = side
        .clone()
        .join(
            side,
            key_exprs.clone(),
            key_exprs,
            JoinArgs::new(JoinType::Inner).with_suffix(Some("_b".into())),
        )
        .filter(col("rank").lt(col("rank_b")))
        .sort(
            ["rank", "rank_b", "fold", "seed"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
        .table("paired")?;

    // (rank A, rank B) → the paired runs.
    let ra = tables::u64_col(&pairs, "rank")?;
    let rb = tables::u64_col(&pairs, "rank_b")?;
    let ia = tables::u64_col(&pairs, "run_index")?;
    let ib = tables::u64_col(&pairs, "run_index_b")?;
    let mut groups: BTreeMap<(u64, u64), Vec<(usize, usize)>> = BTreeMap::new();
    for i in 0..pairs.height() {
        groups
            .entry((ra[i], rb[i]))
            .or_default()
            .push((ia[i] as usize, ib[i] as usize));
    }

    // A predictions file that cannot be read leaves its run out of the pairs (never fatal).
    let mut cache: HashMap<usize, Option<Scored>> = HashMap::new();
    let mut out = Rows::default();
    for ((a, b), members) in groups {
        let (a, b) = (&tables.focus[a as usize], &tables.focus[b as usize]);
        let first = &loaded.runs[members[0].0].meta;
        let mut paired = Vec::new();
        for (x, y) in members {
            for i in [x, y] {
                cache.entry(i).or_insert_with(|| {
                    let path = loaded.runs[i].predictions.as_ref().expect("filtered");
                    read_predictions(path)
                });
            }
            if let (Some(sa), Some(sb)) = (&cache[&x], &cache[&y]) {
                let p = PairedRun::new(sa, sb);
                if p.clips() > 0 {
                    paired.push(p);
                }
            }
        }
        if paired.is_empty() {
            continue;
        }
        let n = paired.len() as f64;
        let uas: Vec<(f64, f64)> = paired.iter().map(PairedRun::ua).collect();
        let ua_a = uas.iter().map(|u| u.0).sum::<f64>() / n;
        let ua_b = uas.iter().map(|u| u.1).sum::<f64>() / n;
        let wins = uas.iter().filter(|u| u.0 > u.1).count() as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(pair_seed(seed, a, b));
        let mut diffs: Vec<f64> = (0..bootstrap.max(1))
            .map(|_| {
                paired
                    .iter()
                    .map(|p| p.resampled_difference(&mut rng))
                    .sum::<f64>()
                    / n
            })
            .collect();
        diffs.sort_by(f64::total_cmp);
        let q = |p: f64| diffs[((diffs.len() - 1) as f64 * p).round() as usize];
        let (lo, hi) = (q(0.025), q(0.975));
        out.a.push(a.clone());
        out.b.push(b.clone());
        out.corpus.push(first.corpus.clone());
        out.protocol.push(first.protocol.clone());
        out.target.push(first.target.clone());
        out.runs.push(paired.len() as u32);
        out.clips
            .push(paired.iter().map(|p| p.clips() as u64).sum());
        out.ua_a.push(ua_a);
        out.ua_b.push(ua_b);
        out.diff.push(ua_a - ua_b);
        out.lo.push(lo);
        out.hi.push(hi);
        out.wins.push(wins);
        out.verdict.push(
            if lo > 0.0 {
                "A better"
            } else if hi < 0.0 {
                "B better"
            } else {
                "no clear difference"
            }
            .to_string(),
        );
    }
    out.frame()
}

#[derive(Default)]
struct Rows {
    a: Vec<String>,
    b: Vec<String>,
    corpus: Vec<String>,
    protocol: Vec<String>,
    target: Vec<String>,
    runs: Vec<u32>,
    clips: Vec<u64>,
    ua_a: Vec<f64>,
    ua_b: Vec<f64>,
    diff: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    wins: Vec<u32>,
    verdict: Vec<String>,
}

impl Rows {
    fn frame(self) -> Result<DataFrame> {
        DataFrame::new(vec![
            Column::new("a".into(), self.a),
            Column::new("b".into(), self.b),
            Column::new("corpus".into(), self.corpus),
            Column::new("protocol".into(), self.protocol),
            Column::new("target".into(), self.target),
            Column::new("paired_runs".into(), self.runs),
            Column::new("clips".into(), self.clips),
            Column::new("ua_a".into(), self.ua_a),
            Column::new("ua_b".into(), self.ua_b),
            Column::new("difference".into(), self.diff),
            Column::new("ci_low".into(), self.lo),
            Column::new("ci_high".into(), self.hi),
            Column::new("a_wins".into(), self.wins),
            Column::new("verdict".into(), self.verdict),
        ])
        .table("paired")
    }
}
