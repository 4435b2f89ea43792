//! Embedding maps: does a model group clips by emotion, or by speaker?
//!
//! After training, a network run embeds its held-out clips (the validation and the test
//! speakers, whom its weights never saw) with [`crate::train::Trained::embed`], the
//! penultimate layer: what the classifier layer sees. They are written per run as
//! `embeddings.parquet` (clip id, speaker, label, role, and the vector as a `List<Float32>`).
//! `emolab report` projects one run's vectors to 2-D by principal component analysis ([`pca`])
//! and colours the map by emotion and by speaker, and scores every run by the silhouette
//! (Rousseeuw 1987; scikit-learn's `silhouette_score`, Euclidean) of the full-width vectors
//! grouped by emotion and grouped by speaker ([`silhouette`]): a speaker silhouette above the
//! emotion silhouette means the representation separates speakers better than emotions.
//!
//! Classical models (SVM, forests, logistic regression) have no penultimate layer and write no
//! embeddings.

use std::path::Path;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use tch::{Device, Kind, Tensor};

/// The run file.
pub const FILE: &str = "embeddings.parquet";

/// Held-out clips and their penultimate-layer vectors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    pub clip_id: Vec<String>,
    pub speaker: Vec<Option<String>>,
    pub label: Vec<String>,
    /// `val` or `test`.
    pub role: Vec<String>,
    pub vectors: Vec<Vec<f32>>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Width of the vectors (0 when empty).
    pub fn width(&self) -> usize {
        self.vectors.first().map_or(0, Vec::len)
    }

    /// Write `<dir>/embeddings.parquet` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let n = self.len();
        if [
            self.clip_id.len(),
            self.speaker.len(),
            self.label.len(),
            self.role.len(),
        ]
        .iter()
        .any(|&l| l != n)
        {
            bail!("embeddings: columns of different lengths");
        }
        let lists: Vec<Series> = self
            .vectors
            .iter()
            .map(|v| Series::new(PlSmallStr::EMPTY, v))
            .collect();
        let mut df = DataFrame::new(vec![
            Column::new("clip_id".into(), &self.clip_id),
            Column::new("speaker".into(), &self.speaker),
            Column::new("label".into(), &self.label),
            Column::new("role".into(), &self.role),
            Column::new("embedding".into(), lists),
        ])?;
        let path = dir.join(FILE);
        crate::util::atomic_write(&path, |w| {
            ParquetWriter::new(w)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut df)?;
            Ok(())
        })
        .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Read an `embeddings.parquet`.
    pub fn read(path: &Path) -> Result<Embeddings> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let df = ParquetReader::new(file)
            .finish()
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        let strings = |name: &str| -> Result<Vec<Option<String>>> {
            Ok(df
                .column(name)
                .with_context(|| format!("{}: no column {name}", path.display()))?
                .str()?
                .into_iter()
                .map(|s| s.map(str::to_string))
                .collect())
        };
        let required = |name: &str| -> Result<Vec<String>> {
            strings(name)?
                .into_iter()
                .map(|s| s.with_context(|| format!("{}: a null {name}", path.display())))
                .collect()
        };
        let mut vectors = Vec::with_capacity(df.height());
        let lists = df
            .column("embedding")
            .with_context(|| format!("{}: no column embedding", path.display()))?
            .list()?;
        for (i, s) in lists.into_iter().enumerate() {
            let s = s.with_context(|| format!("{}: row {i} has no embedding", path.display()))?;
            let v: Vec<f32> = s.f32()?.into_no_null_iter().collect();
            vectors.push(v);
        }
        let e = Embeddings {
            clip_id: required("clip_id")?,
            speaker: strings("speaker")?,
            label: required("label")?,
            role: required("role")?,
            vectors,
        };
        if e.vectors.iter().any(|v| v.len() != e.width()) {
            bail!("{}: embeddings of different widths", path.display());
        }
        Ok(e)
    }
}

/// A 2-D (or k-D) principal-component projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Per point, its coordinates on the components.
    pub points: Vec<Vec<f64>>,
    /// Per component, its share of the total variance.
    pub explained: Vec<f64>,
    /// Per component, its unit direction in the input space (`width` values).
    pub components: Vec<Vec<f64>>,
}

/// Principal component analysis of `rows` (points × width), keeping `k` components: the
/// rows are centred and the eigenvectors of their scatter matrix (LAPACK's symmetric
/// eigensolver through LibTorch, in f64; the `n × n` Gram matrix when there are fewer points
/// than dimensions) give the directions, largest eigenvalue first. Each direction's sign is
/// fixed so that its largest-magnitude entry is positive, so the map does not flip between
/// runs of the same numbers. Fewer than `k` components come back when the data have fewer
/// non-zero directions (`n - 1` at most).
pub fn pca(rows: &[Vec<f32>], k: usize) -> Result<Projection> {
    let n = rows.len();
    let d = rows.first().map_or(0, Vec::len);
    if n < 2 || d == 0 {
        bail!("PCA needs at least 2 points of width ≥ 1 (got {n} of width {d})");
    }
    if rows.iter().any(|r| r.len() != d) {
        bail!("PCA: rows of different widths");
    }
    let flat: Vec<f64> = rows.iter().flatten().map(|&v| v as f64).collect();
    let x = Tensor::from_slice(&flat)
        .reshape([n as i64, d as i64])
        .to_kind(Kind::Double)
        .to_device(Device::Cpu);
    let x = &x - x.mean_dim([0i64].as_slice(), true, Kind::Double);
    let total = f64::try_from(x.square().sum(Kind::Double))?;
    // Directions `[d, m]` and eigenvalues `[m]`, largest first.
    let (values, directions) = if d <= n {
        let (vals, vecs) = x.transpose(0, 1).matmul(&x).linalg_eigh("L");
        (vals.flip([0]), vecs.flip([1]))
    } else {
        let (vals, vecs) = x.matmul(&x.transpose(0, 1)).linalg_eigh("L");
        let (vals, u) = (vals.flip([0]), vecs.flip([1]));
        // v = Xᵀu / ‖Xᵀu‖ (= Xᵀu / √λ).
        let v = x.transpose(0, 1).matmul(&u);
        let norms = v
            .square()
            .sum_dim_intlist([0i64].as_slice(), true, Kind::Double)
            .sqrt()
            .clamp_min(1e-300);
        (vals, v / norms)
    };
    let values: Vec<f64> = Vec::try_from(&values)?;
    let tol = values.first().copied().unwrap_or(0.0).abs() * 1e-10 + 1e-300;
    let keep = values.iter().take(k).take_while(|&&v| v > tol).count();
    let mut components = Vec::with_capacity(keep);
    for j in 0..keep {
        let mut c: Vec<f64> = Vec::try_from(&directions.select(1, j as i64))?;
        let big = c
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(1.0);
        if big < 0.0 {
            c.iter_mut().for_each(|v| *v = -*v);
        }
        components.push(c);
    }
    let xs: Vec<f64> = Vec::try_from(&x.reshape([-1]))?;
    let points = xs
        .chunks(d)
        .map(|row| {
            components
                .iter()
                .map(|c| row.iter().zip(c).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    Ok(Projection {
        points,
        explained: values[..keep]
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect(),
        components,
    })
}

/// Mean silhouette of `rows` grouped by `groups` (Euclidean distance): per point,
/// `(b - a) / max(a, b)` with `a` its mean distance to the rest of its group and `b` its mean
/// distance to the nearest other group; a point alone in its group scores 0 (as in
/// scikit-learn). `None` with fewer than 2 groups or with every point in its own group.
/// Ranges from -1 to 1: near 1, tight and well-apart groups; near 0, overlapping ones.
pub fn silhouette<R: AsRef<[f32]>, G: PartialEq>(rows: &[R], groups: &[G]) -> Option<f64> {
    let n = rows.len();
    assert_eq!(n, groups.len(), "one group per row");
    let mut ids: Vec<usize> = Vec::with_capacity(n);
    let mut distinct: Vec<&G> = Vec::new();
    for g in groups {
        let i = match distinct.iter().position(|d| *d == g) {
            Some(i) => i,
            None => {
                distinct.push(g);
                distinct.len() - 1
            }
        };
        ids.push(i);
    }
    let k = distinct.len();
    if k < 2 || k == n {
        return None;
    }
    let mut sizes = vec![0usize; k];
    ids.iter().for_each(|&g| sizes[g] += 1);
    let dist = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mut total = 0.0;
    let mut sums = vec![0f64; k];
    for i in 0..n {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for j in 0..n {
            if i != j {
                sums[ids[j]] += dist(rows[i].as_ref(), rows[j].as_ref());
            }
        }
        let own = ids[i];
        if sizes[own] < 2 {
            continue; // a singleton scores 0
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&g| g != own)
            .map(|g| sums[g] / sizes[g] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        total += if m > 0.0 { (b - a) / m } else { 0.0 };
    }
    Some(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn pca_of_a_known_matrix() {
        // Points on the line y = 2x (plus a small orthogonal wobble) in 3-D, centred at (1, 2, 3):
        // the first direction is (1, 2, 0)/√5, the second (-2, 1, 0)/√5 up to sign (fixed: its
        // largest entry positive, so (2, -1, 0)/√5), and the third axis carries no variance.
        let ts = [-2.0f32, -1.0, 0.0, 1.0, 2.0];
        let wobble = [0.1f32, -0.2, 0.0, 0.2, -0.1]; // Σw = 0 and Σtw = 0
        let rows: Vec<Vec<f32>> = ts
            .iter()
            .zip(&wobble)
            .map(|(&t, &w)| {
                // t along (1, 2)/√5, w along (2, -1)/√5.
                let s = 5f32.sqrt();
                vec![1.0 + (t + 2.0 * w) / s, 2.0 + (2.0 * t - w) / s, 3.0]
            })
            .collect();
        let p = pca(&rows, 3).unwrap();
        // Only two directions carry variance.
        assert_eq!(p.components.len(), 2);
        let s5 = 5f64.sqrt();
        let want1 = [1.0 / s5, 2.0 / s5, 0.0];
        let want2 = [2.0 / s5, -1.0 / s5, 0.0];
        for (got, want) in p.components[0].iter().zip(want1) {
            assert!(close(*got, want, 1e-5), "{:?}", p.components[0]);
        }
        for (got, want) in p.components[1].iter().zip(want2) {
            assert!(close(*got, want, 1e-5), "{:?}", p.components[1]);
        }
        // Coordinates are t and w themselves; variance shares 10 / 10.1 and 0.1 / 10.1.
        for (pt, (&t, &w)) in p.points.iter().zip(ts.iter().zip(&wobble)) {
            assert!(
                close(pt[0], t as f64, 1e-5) && close(pt[1], w as f64, 1e-5),
                "{pt:?}"
            );
        }
        assert!(
            close(p.explained[0], 10.0 / 10.1, 1e-6),
            "{:?}",
            p.explained
        );
        assert!(close(p.explained[1], 0.1 / 10.1, 1e-6), "{:?}", p.explained);

        // Wider than tall (the Gram-matrix path): the same points padded with zero columns give
        // the same coordinates and shares.
        let wide: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0.0, 7))
                    .collect()
            })
            .collect();
        let q = pca(&wide, 2).unwrap();
        for (a, b) in p.points.iter().zip(&q.points) {
            assert!(
                close(a[0], b[0], 1e-5) && close(a[1], b[1], 1e-5),
                "{a:?} {b:?}"
            );
        }
        assert!(close(q.explained[0], p.explained[0], 1e-9));
        assert!(pca(&rows[..1], 2).is_err());
    }

    #[test]
    fn silhouette_of_hand_computed_groups() {
        // 1-D points 0, 1 (group a) and 5, 6 (group b). Point 0: a = 1, b = (5 + 6) / 2 = 5.5,
        // s = 4.5 / 5.5; point 1: a = 1, b = 4.5, s = 3.5 / 4.5; symmetric for b.
        let rows = vec![vec![0f32], vec![1.0], vec![5.0], vec![6.0]];
        let want = (4.5 / 5.5 + 3.5 / 4.5) / 2.0;
        let s = silhouette(&rows, &["a", "a", "b", "b"]).unwrap();
        assert!(close(s, want, 1e-12), "{s} vs {want}");
        // Grouping across the gap is worse than chance-level (negative).
        assert!(silhouette(&rows, &["a", "b", "a", "b"]).unwrap() < 0.0);
        // A singleton scores 0: groups {0}, {1, 5, 6}.
        let s = silhouette(&rows, &[1, 2, 2, 2]).unwrap();
        let p1 = {
            let a = (4.0 + 5.0) / 2.0;
            let b = 1.0;
            (b - a) / f64::max(a, b)
        };
        let p5 = {
            let a = (4.0 + 1.0) / 2.0;
            (5.0 - a) / 5.0
        };
        let p6 = {
            let a = (5.0 + 1.0) / 2.0;
            (6.0 - a) / 6.0
        };
        assert!(close(s, (p1 + p5 + p6) / 4.0, 1e-12));
        assert_eq!(silhouette(&rows, &[0, 0, 0, 0]), None);
        assert_eq!(silhouette(&rows, &[0, 1, 2, 3]), None);
    }

    #[test]
    fn embeddings_round_trip_through_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let e = Embeddings {
            clip_id: vec!["a".into(), "b".into()],
            speaker: vec![Some("03".into()), None],
            label: vec!["anger".into(), "sadness".into()],
            role: vec!["val".into(), "test".into()],
            vectors: vec![vec![1.0, -2.5, 3.0], vec![0.0, 0.5, 1e-3]],
        };
        e.write(dir.path()).unwrap();
        assert_eq!(Embeddings::read(&dir.path().join(FILE)).unwrap(), e);
    }
}
