//! A matrix job's values: `{"python": "3.11", "db": "postgres"}`, kept in
//! the order `.git-ci.toml` declares its keys, because that is the order a
//! person reads them in (`test (python=3.11, db=postgres)`).

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ordered `(key, value)` pairs, serialized as a JSON object in that order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Matrix(pub Vec<(String, String)>);

impl Matrix {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `key`, keeping its place when it is already there.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
    }
}

/// `python=3.11, db=postgres`.
impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl Serialize for Matrix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Matrix, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Matrix;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matrix, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if pairs.iter().any(|(seen, _): &(String, String)| *seen == k) {
                        return Err(serde::de::Error::custom(format!("matrix key {k:?} appears twice")));
                    }
                    pairs.push((k, v));
                }
                Ok(Matrix(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_declared_order_through_json() {
        let m = Matrix(vec![("python".into(), "3.11".into()), ("db".into(), "postgres".into())]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"python":"3.11","db":"postgres"}"#);
        assert_eq!(serde_json::from_str::<Matrix>(&json).unwrap(), m);
        assert_eq!(m.to_string(), "python=3.11, db=postgres");
        assert!(serde_json::from_str::<Matrix>(r#"{"a":"1","a":"2"}"#).is_err());
    }
}
