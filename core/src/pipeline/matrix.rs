//! `matrix = { python = ["3.11", "3.12"], db = ["sqlite", "postgres"] }`:
//! one job per combination, with `exclude` and `include` as GitHub Actions
//! has them.

use std::collections::BTreeMap;

use serde::{Deserialize, de};
use toml::Spanned;

use crate::model::Matrix;
use crate::model::spec_rules as rules;

/// The most jobs one matrix may expand to: a pipeline is one push, and a
/// job document carries the ids of the jobs it needs.
pub const MAX_COMBINATIONS: usize = 256;

/// A `matrix` table as written, its keys in the order declared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatrixDef {
    pub axes: Vec<(String, Vec<String>)>,
    pub include: Vec<Matrix>,
    pub exclude: Vec<Matrix>,
}

/// Deserializes a `matrix` table, refusing what could not be an
/// environment variable or would be read wrongly (a float loses its
/// trailing zeros: `3.10` is `3.1`).
pub fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<MatrixDef>, D::Error> {
    let table = BTreeMap::<Spanned<String>, toml::Value>::deserialize(d)?;
    let mut entries: Vec<(Spanned<String>, toml::Value)> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut def = MatrixDef::default();
    for (key, value) in entries {
        let key = key.into_inner();
        match key.as_str() {
            "include" | "exclude" => {
                let list = combinations(&key, value).map_err(de::Error::custom)?;
                if key == "include" { def.include = list } else { def.exclude = list }
            }
            _ => {
                rules::matrix_key(&key).map_err(de::Error::custom)?;
                let toml::Value::Array(values) = value else {
                    return Err(de::Error::custom(format!("matrix.{key} must be a list of values")));
                };
                if values.is_empty() {
                    return Err(de::Error::custom(format!("matrix.{key} is empty: it would make no job")));
                }
                let values = values.iter().map(|v| scalar(&key, v)).collect::<Result<Vec<_>, _>>();
                def.axes.push((key, values.map_err(de::Error::custom)?));
            }
        }
    }
    if def.axes.is_empty() && def.include.is_empty() {
        return Err(de::Error::custom("matrix has no values (write `matrix = { KEY = [\"a\", \"b\"] }`)"));
    }
    let count = def.expand().len();
    if count == 0 {
        return Err(de::Error::custom("matrix: `exclude` leaves no combination"));
    }
    if count > MAX_COMBINATIONS {
        return Err(de::Error::custom(format!("matrix makes {count} jobs, over the limit of {MAX_COMBINATIONS}")));
    }
    Ok(Some(def))
}

fn scalar(key: &str, v: &toml::Value) -> Result<String, String> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Float(f) => {
            return Err(format!(
                "matrix.{key}: {f} is a number with a fraction; quote it (\"{f}\") so it is kept as written"
            ));
        }
        other => return Err(format!("matrix.{key}: {other} is not a string, integer or boolean")),
    };
    rules::env_var(key, &s).map_err(|e| format!("matrix.{key}: {e}"))?;
    Ok(s)
}

fn combinations(field: &str, value: toml::Value) -> Result<Vec<Matrix>, String> {
    let toml::Value::Array(items) = value else {
        return Err(format!("matrix.{field} must be a list of tables, like [{{ python = \"3.11\" }}]"));
    };
    items
        .into_iter()
        .map(|item| {
            let toml::Value::Table(t) = item else {
                return Err(format!("matrix.{field} must be a list of tables, like [{{ python = \"3.11\" }}]"));
            };
            let mut m = Matrix::default();
            for (k, v) in &t {
                rules::matrix_key(k).map_err(|e| format!("{field}: {e}"))?;
                m.set(k, &scalar(k, v)?);
            }
            Ok(m)
        })
        .collect()
}

impl MatrixDef {
    /// Every combination, in the declared order of axes and values: the
    /// cartesian product less `exclude`, then `include` (GitHub's rules:
    /// an include extends each combination it does not contradict, and is
    /// a combination of its own when it extends none).
    pub fn expand(&self) -> Vec<Matrix> {
        let mut combos = vec![Matrix::default()];
        for (key, values) in &self.axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.set(key, v);
                        c
                    })
                })
                .collect();
        }
        if self.axes.is_empty() {
            combos.clear();
        }
        combos.retain(|c| !self.exclude.iter().any(|x| x.iter().all(|(k, v)| c.get(k) == Some(v))));
        let original: Vec<Matrix> = combos.clone();
        let is_axis = |k: &str| self.axes.iter().any(|(a, _)| a == k);
        for inc in &self.include {
            let mut extended = false;
            for (i, base) in original.iter().enumerate() {
                // It may not change a value of the original combination
                // (values added by an earlier include it may).
                let fits = inc.iter().filter(|(k, _)| is_axis(k)).all(|(k, v)| base.get(k) == Some(v));
                if fits {
                    for (k, v) in inc.iter() {
                        combos[i].set(k, v);
                    }
                    extended = true;
                }
            }
            if !extended {
                combos.push(inc.clone());
            }
        }
        combos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> Matrix {
        Matrix(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn axes(a: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        a.iter().map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect()
    }

    #[test]
    fn expands_the_product_in_declared_order() {
        let def =
            MatrixDef { axes: axes(&[("python", &["3.11", "3.12"]), ("db", &["sqlite", "pg"])]), ..Default::default() };
        let got: Vec<String> = def.expand().iter().map(Matrix::to_string).collect();
        assert_eq!(
            got,
            ["python=3.11, db=sqlite", "python=3.11, db=pg", "python=3.12, db=sqlite", "python=3.12, db=pg"]
        );
    }

    #[test]
    fn exclude_and_include_follow_github() {
        let def = MatrixDef {
            axes: axes(&[("os", &["linux", "mac"]), ("v", &["1", "2"])]),
            exclude: vec![m(&[("os", "mac"), ("v", "1")])],
            include: vec![m(&[("os", "linux"), ("extra", "yes")]), m(&[("os", "windows"), ("v", "2")])],
        };
        let got: Vec<String> = def.expand().iter().map(Matrix::to_string).collect();
        assert_eq!(got, ["os=linux, v=1, extra=yes", "os=linux, v=2, extra=yes", "os=mac, v=2", "os=windows, v=2"]);
    }
}
