//! The report's sections, one module each, in the order they appear: [`SECTIONS`]. A section is
//! a method on the shared [`Builder`] (entries, tables, chart ids) returning a [`Section`];
//! adding one is a new file here plus one line in [`SECTIONS`].

mod about;
mod by_sex;
mod calibration;
mod confusion;
mod cross;
mod curves;
mod embeddings;
mod importance;
mod issues;
mod layers;
mod leaderboard;
mod leakage;
mod paired;
mod per_class;
mod per_speaker;
mod sweeps;

/// What the section modules use from the document builder, the tables and the charts.
pub(in crate::report) mod prelude {
    pub(in crate::report) use std::collections::BTreeMap;

    pub(in crate::report) use polars::prelude::DataFrame;

    pub(in crate::report) use super::super::document::{
        count, crema_references, legend_for, mean_sd, pct, pm, Block, Builder, Chart, Entry,
        Section, Table,
    };
    pub(in crate::report) use super::super::tables::{
        bool_col, f64_col, opt_str_col, rows_where, str_col, u64_col, value_columns,
    };
    pub(in crate::report) use super::super::{ReportOptions, Result};
    pub(in crate::report) use crate::charts::{
        self, palette, Bar, BarChart, Heatmap, Interval, LineChart, Mark, Series,
    };
}

use prelude::*;

/// What every section builder gets besides the builder.
pub(in crate::report) struct Context<'a> {
    pub opts: &'a ReportOptions,
    pub paired: &'a DataFrame,
}

/// Builds one section, or none where it has nothing to show.
pub(in crate::report) type BuildFn = fn(&mut Builder<'_>, &Context<'_>) -> Result<Option<Section>>;

/// Every section, in report order.
pub(in crate::report) const SECTIONS: &[BuildFn] = &[
    |b, _| b.when_runs(Builder::leaderboard),
    |b, _| b.when_runs(Builder::leakage),
    |b, cx| {
        if b.entries.is_empty() {
            return Ok(None);
        }
        b.paired(cx.paired, cx.opts.bootstrap).map(Some)
    },
    |b, _| b.when_runs(Builder::per_class),
    |b, _| b.when_runs(Builder::per_speaker),
    |b, _| b.when_runs(Builder::confusion),
    |b, _| b.when_runs(Builder::curves),
    |b, _| b.when_runs(Builder::calibration),
    |b, _| {
        if b.entries.is_empty() || b.tables.sweep_trials.height() == 0 {
            return Ok(None);
        }
        b.sweeps().map(Some)
    },
    |b, _| b.when_runs(Builder::by_sex),
    |b, _| b.cross_corpus(),
    |b, _| {
        if b.entries.is_empty() || b.tables.embedding_scores.height() == 0 {
            return Ok(None);
        }
        b.embeddings().map(Some)
    },
    |b, _| {
        if b.entries.is_empty() || b.tables.importance.height() == 0 {
            return Ok(None);
        }
        b.importance().map(Some)
    },
    |b, _| {
        if b.entries.is_empty() {
            return Ok(None);
        }
        b.layers()
    },
    |b, _| b.issues().map(Some),
    |b, cx| Ok(Some(b.about(cx.opts))),
];

impl Builder<'_> {
    /// A section that needs at least one entry.
    fn when_runs(&mut self, f: fn(&mut Self) -> Result<Section>) -> Result<Option<Section>> {
        if self.entries.is_empty() {
            Ok(None)
        } else {
            f(self).map(Some)
        }
    }
}
