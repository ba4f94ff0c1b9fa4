//! docs/schema/*.json against what git-ci really writes: job, claim,
//! result and worker documents on a hub, and `git ci claim --json`.
//!
//! The schemas keep to a small subset of JSON Schema (the keywords in
//! [`KEYWORDS`]), checked here by a validator of a few dozen lines rather
//! than the `jsonschema` crate, whose dependencies (an HTTP client, a
//! regex engine of its own) cost minutes of build for six keywords. A
//! schema that used another keyword fails the test instead of passing
//! unchecked.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::env::{TestEnv, wait_until};

const KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "minLength",
];

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The errors of `doc` against `schema`, each with its JSON path.
fn validate(schema: &Value, doc: &Value, at: &str, errors: &mut Vec<String>) {
    let s = schema.as_object().expect("a schema is an object");
    for k in s.keys() {
        assert!(KEYWORDS.contains(&k.as_str()), "{at}: keyword {k} is outside the subset this test checks");
    }
    let mut fail = |m: String| errors.push(format!("{at}: {m}"));
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            t => vec![t.as_str().unwrap()],
        };
        let is = |t: &str| match t {
            "object" => doc.is_object(),
            "array" => doc.is_array(),
            "string" => doc.is_string(),
            "integer" => doc.is_i64() || doc.is_u64(),
            "number" => doc.is_number(),
            "boolean" => doc.is_boolean(),
            "null" => doc.is_null(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| is(t)) {
            return fail(format!("{doc} is not {types:?}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array).filter(|e| !e.contains(doc)) {
        fail(format!("{doc} is not one of {e:?}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), doc.as_f64())
        && n < min
    {
        fail(format!("{n} < {min}"));
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), doc.as_f64())
        && n > max
    {
        fail(format!("{n} > {max}"));
    }
    if let (Some(min), Some(text)) = (s.get("minLength").and_then(Value::as_u64), doc.as_str())
        && (text.chars().count() as u64) < min
    {
        fail(format!("{text:?} is shorter than {min}"));
    }
    if let (Some(items), Some(array)) = (s.get("items"), doc.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(items, item, &format!("{at}[{i}]"), errors);
        }
    }
    let Some(obj) = doc.as_object() else { return };
    for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
        if !obj.contains_key(r.as_str().unwrap()) {
            errors.push(format!("{at}: lacks {r}"));
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, v) in obj {
        match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
            (Some(p), _) => validate(p, v, &format!("{at}.{k}"), errors),
            (None, Some(Value::Bool(false))) => errors.push(format!("{at}: {k} is not in the schema")),
            (None, Some(extra @ Value::Object(_))) => validate(extra, v, &format!("{at}.{k}"), errors),
            (None, _) => {}
        }
    }
}

fn check(name: &str, docs: &[Value]) {
    assert!(!docs.is_empty(), "no {name} document to check");
    let schema = schema(name);
    for doc in docs {
        let mut errors = Vec::new();
        validate(&schema, doc, "$", &mut errors);
        assert!(errors.is_empty(), "{name}:\n{}\n{doc:#}", errors.join("\n"));
    }
}

fn blob(env: &TestEnv, hub: &Path, rev: &str) -> Value {
    serde_json::from_str(&env.git(hub, &["cat-file", "blob", rev])).unwrap()
}

#[test]
fn the_validator_refuses_what_the_schemas_forbid() {
    let mut errors = Vec::new();
    let bad = serde_json::json!({"version": 2, "id": "x", "status": "great", "exit_code": "1", "extra": 1});
    validate(&schema("result.json"), &bad, "$", &mut errors);
    let text = errors.join("\n");
    for needle in
        ["$.version: 2 is not one of", "$.status", "$.exit_code", "extra is not in the schema", "lacks \"worker\""]
    {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
}

#[test]
fn the_documents_git_ci_writes_match_docs_schema() {
    let env = TestEnv::new();
    let pipeline = "[job.build]\nrun = \"mkdir -p out; echo x > out/a; echo '<testsuite><testcase name=\\\"t\\\"/></testsuite>' > r.xml\"\nartifacts = [\"out/*\"]\njunit = [\"r.xml\"]\n\n[job.test]\nrun = \"true\"\nneeds = [\"build\"]\nmatrix = { py = [\"3.11\", \"3.12\"] }\nenv = { A = \"1\" }\n\n[job.lab]\nrun = \"true\"\nqueue = \"lab\"\nworker = \"w9\"\n";
    let (repo, hub) = env.project_on_hub(pipeline);
    let hub_path = Path::new(&hub).to_path_buf();
    env.ci(&repo, &["submit", "--hub", &hub]).expect(0);
    env.ci(&repo, &["submit", "--hub", &hub, "--run", "exit 3", "--repeat", "2", "--priority", "-1"]).expect(0);
    let queued: Vec<Value> = env
        .ci_refs(&hub_path)
        .iter()
        .filter(|(n, _)| n.starts_with("refs/ci/queue/"))
        .map(|(n, _)| {
            let kind = env.git(&hub_path, &["cat-file", "-t", n]);
            blob(&env, &hub_path, &if kind == "tree" { format!("{n}:job.json") } else { n.clone() })
        })
        .collect();
    assert_eq!(queued.len(), 6);
    check("job.json", &queued);

    let claimed = env.ci(&repo, &["claim", "--hub", &hub, "--queue", "lab", "--name", "w9", "--json"]).expect(0).json();
    check("claimed.json", std::slice::from_ref(&claimed));
    check("job.json", &[claimed["job"].clone()]);
    let id = claimed["id"].as_str().unwrap();
    check("claim.json", &[blob(&env, &hub_path, &format!("refs/ci/claims/{id}"))]);
    env.ci(&repo, &["complete", id, "--status", "error", "--reason", "no board"]).expect(0);

    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w1", "--label", "zone=a"]);
    wait_until(Duration::from_secs(30), "the worker registers", || {
        env.ci_refs(&hub_path).iter().any(|(n, _)| n == "refs/ci/workers/w1")
    });
    check("worker.json", &[blob(&env, &hub_path, "refs/ci/workers/w1")]);
    wait_until(Duration::from_secs(60), "every job is published", || env.published_ids(&hub_path).len() == 6);
    worker.signal("TERM");
    worker.wait_within(Duration::from_secs(20));
    let mut results = Vec::new();
    let mut jobs = Vec::new();
    for (chain, _) in env.ci_refs(&hub_path).iter().filter(|(n, _)| n.starts_with("refs/ci/done/")) {
        for path in env.git(&hub_path, &["ls-tree", "-r", "--name-only", chain, "--", "results"]).lines() {
            let doc = || blob(&env, &hub_path, &format!("{chain}:{path}"));
            match path.rsplit('/').next() {
                Some("result.json") => results.push(doc()),
                Some("job.json") => jobs.push(doc()),
                _ => {}
            }
        }
    }
    assert_eq!((results.len(), jobs.len()), (6, 6));
    check("result.json", &results);
    check("job.json", &jobs);
}
