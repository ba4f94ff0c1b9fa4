//! What a job definition must be for a worker to run it as written: one
//! rule per field, applied where jobs are made (`.git-ci.toml`, with the
//! line; `git ci submit --run`), by the hub's guard, and by workers before
//! they claim. A job that breaks one is refused up front, not run into a
//! panic or an error at run time.

use std::time::Duration;

/// The longest a job may run: a week. Longer is a slip (`"30d"` for
/// `"30m"`), and a bound keeps every deadline computable.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);

/// A timeout in whole seconds, as `job.json` stores it.
pub fn timeout_secs(secs: u64) -> Result<(), String> {
    if secs == 0 {
        return Err("timeout must be at least 1 second".into());
    }
    if secs > MAX_TIMEOUT.as_secs() {
        return Err(format!(
            "timeout {secs} (seconds) is too long: the maximum is {} ({})",
            MAX_TIMEOUT.as_secs(),
            humantime::format_duration(MAX_TIMEOUT)
        ));
    }
    Ok(())
}

/// The script: a process's arguments cannot hold a NUL byte.
pub fn script(run: &str) -> Result<(), String> {
    match run.find('\0') {
        Some(at) => Err(format!("run holds a NUL byte (at byte {at}), which no shell can be given")),
        None => Ok(()),
    }
}

/// One environment variable: a name the environment can hold, no NUL.
pub fn env_var(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!("env: {name:?} is not a variable name (it must be non-empty, without `=` or NUL)"));
    }
    if value.contains('\0') {
        return Err(format!("env: the value of {name} holds a NUL byte, which no environment can hold"));
    }
    Ok(())
}

/// A path pattern of `artifacts` or `junit` (`field`).
pub fn pattern(field: &str, p: &str) -> Result<(), String> {
    if p.contains('\0') {
        return Err(format!("{field}: {p:?} holds a NUL byte, which no path can hold"));
    }
    globset::GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .map(drop)
        .map_err(|e| format!("{field}: {p:?} is not a valid glob pattern: {}", e.kind()))
}

/// A matrix key: also an environment variable that `run` reads as `$key`,
/// so a shell name.
pub fn matrix_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("matrix: {key:?} is not a usable variable name (letters, digits and _, not starting with a digit)"))
    }
}
