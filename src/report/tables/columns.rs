//! Columns of a report table as plain vectors, and row filters.

use polars::prelude::*;

use super::super::{Result, TableContext};

/// The names of a wide table's value columns: every column but `entry`.
pub fn value_columns(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c != "entry")
        .collect()
}

/// A string column (nulls as empty strings).
pub fn str_col(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    Ok(opt_str_col(df, name)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

pub fn opt_str_col(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::String))
        .table(name)?;
    Ok(c.str()
        .table(name)?
        .into_iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

/// A numeric column as f64 (nulls and NaN as `None`).
pub fn f64_col(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .table(name)?;
    Ok(c.f64()
        .table(name)?
        .into_iter()
        .map(|v| v.filter(|x| !x.is_nan()))
        .collect())
}

/// A boolean column (nulls as false).
pub fn bool_col(df: &DataFrame, name: &str) -> Result<Vec<bool>> {
    let c = df.column(name).table(name)?;
    Ok(c.bool()
        .table(name)?
        .into_iter()
        .map(|v| v.unwrap_or(false))
        .collect())
}

/// An integer column as u64 (nulls as 0).
pub fn u64_col(df: &DataFrame, name: &str) -> Result<Vec<u64>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::UInt64))
        .table(name)?;
    Ok(c.u64()
        .table(name)?
        .into_iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

/// The rows of `df` whose `column` equals `value`.
pub fn rows_where(df: &DataFrame, column: &str, value: &str) -> Result<DataFrame> {
    df.clone()
        .lazy()
        .filter(col(column).eq(lit(value.to_string())))
        .collect()
        .table(column)
}
