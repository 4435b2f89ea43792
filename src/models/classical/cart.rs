//! A classification tree (CART, Breiman et al. 1984): at each node the split of one feature at
//! a midpoint between two sorted values that most lowers the weighted Gini impurity, grown
//! until the node is pure, cannot be split, or reaches the depth limit (linfa-trees' and
//! scikit-learn's defaults: no minimum leaf size, an impurity decrease of at least 1e-5).
//!
//! Deterministic: ties go to the first feature in the tree's list and the first position in
//! sorted order, and a leaf's class is the most frequent one (the lowest index on a tie), so the
//! same rows give the same tree in every process.

use ndarray::{Array2, ArrayView1};

/// The smallest impurity decrease worth a split.
const MIN_DECREASE: f64 = 1e-5;

#[derive(Debug, Clone)]
enum Node {
    Leaf(usize),
    /// Rows with `x[feature] <= threshold` go left.
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Tree {
    nodes: Vec<Node>,
}

fn gini_sum(counts: &[f64], n: f64) -> f64 {
    // n · Gini = n − Σ c² / n
    if n <= 0.0 {
        return 0.0;
    }
    n - counts.iter().map(|c| c * c).sum::<f64>() / n
}

impl Tree {
    /// Grow a tree on `rows` of `x` (repeats allowed: a bootstrap sample), reading only the
    /// columns `cols`, with labels `y[row]` in `0..k`.
    pub fn fit(
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
        rows: Vec<usize>,
        cols: &[usize],
        max_depth: Option<usize>,
    ) -> Tree {
        let mut nodes = Vec::new();
        // (node slot, rows, depth)
        let mut todo = vec![(0usize, rows, 0usize)];
        nodes.push(Node::Leaf(0));
        let mut order: Vec<(f64, usize)> = Vec::new();
        while let Some((slot, rows, depth)) = todo.pop() {
            let mut counts = vec![0f64; k];
            for &r in &rows {
                counts[y[r]] += 1.0;
            }
            let modal = (0..k)
                .max_by(|&a, &b| counts[a].total_cmp(&counts[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            let n = rows.len() as f64;
            let pure = counts.iter().filter(|&&c| c > 0.0).count() <= 1;
            if pure || rows.len() < 2 || max_depth.is_some_and(|m| depth >= m) {
                nodes[slot] = Node::Leaf(modal);
                continue;
            }
            let parent = gini_sum(&counts, n);
            // (impurity sum, feature, threshold)
            let mut best: Option<(f64, usize, f64)> = None;
            let mut left = vec![0f64; k];
            for &f in cols {
                order.clear();
                order.extend(rows.iter().map(|&r| (x[[r, f]], y[r])));
                order.sort_by(|a, b| a.0.total_cmp(&b.0));
                if order[0].0 == order[order.len() - 1].0 {
                    continue;
                }
                left.iter_mut().for_each(|c| *c = 0.0);
                let (mut sq_l, mut sq_r) = (0f64, counts.iter().map(|c| c * c).sum::<f64>());
                for i in 1..order.len() {
                    let c = order[i - 1].1;
                    // Move one row of class c from right to left; update Σc² of both sides.
                    let (l, r) = (left[c], counts[c] - left[c]);
                    sq_l += 2.0 * l + 1.0;
                    sq_r -= 2.0 * r - 1.0;
                    left[c] += 1.0;
                    if order[i - 1].0 == order[i].0 {
                        continue;
                    }
                    let (nl, nr) = (i as f64, n - i as f64);
                    let imp = (nl - sq_l / nl) + (nr - sq_r / nr);
                    if best.is_none_or(|b| imp < b.0) {
                        let mid = order[i - 1].0 + (order[i].0 - order[i - 1].0) / 2.0;
                        best = Some((imp, f, mid));
                    }
                }
            }
            match best {
                Some((imp, f, t)) if (parent - imp) / n >= MIN_DECREASE => {
                    let (l, r): (Vec<usize>, Vec<usize>) =
                        rows.iter().partition(|&&r| x[[r, f]] <= t);
                    let (li, ri) = (nodes.len(), nodes.len() + 1);
                    nodes.push(Node::Leaf(0));
                    nodes.push(Node::Leaf(0));
                    nodes[slot] = Node::Split {
                        feature: f,
                        threshold: t,
                        left: li,
                        right: ri,
                    };
                    todo.push((ri, r, depth + 1));
                    todo.push((li, l, depth + 1));
                }
                _ => nodes[slot] = Node::Leaf(modal),
            }
        }
        Tree { nodes }
    }

    /// The class of one row (all columns of the matrix the tree was grown on).
    pub fn predict(&self, row: ArrayView1<f64>) -> usize {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Leaf(c) => return *c,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if row[*feature] <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
            }
        }
    }

    pub fn leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grown_tree_fits_its_rows_and_reads_only_its_columns() {
        // Class 0 left of x0 = 0.5, else 1 above x1 = 0.5, else 2; column 2 is noise the tree
        // may not read.
        let n = 64;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
            0 => (i % 8) as f64 / 7.0,
            1 => (i / 8) as f64 / 7.0,
            _ => ((i * 37) % 11) as f64,
        });
        let y: Vec<usize> = (0..n)
            .map(|i| match (x[[i, 0]] > 0.5, x[[i, 1]] > 0.5) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => 2,
            })
            .collect();
        let t = Tree::fit(&x, &y, 3, (0..n).collect(), &[0, 1], None);
        for i in 0..n {
            assert_eq!(t.predict(x.row(i)), y[i], "row {i}");
        }
        assert_eq!(t.leaves(), 3);
        // Noise in the unread column changes nothing.
        let mut x2 = x.clone();
        x2.column_mut(2).fill(-1e9);
        assert!((0..n).all(|i| t.predict(x2.row(i)) == t.predict(x.row(i))));
        // Depth 1: one split, two leaves.
        assert_eq!(
            Tree::fit(&x, &y, 3, (0..n).collect(), &[0, 1], Some(1)).leaves(),
            2
        );
        // The same rows give the same tree.
        let again = Tree::fit(&x, &y, 3, (0..n).collect(), &[0, 1], None);
        assert_eq!(format!("{:?}", again.nodes), format!("{:?}", t.nodes));
    }
}
