//! One finding of `git ci doctor`: how bad, what, and what to do. A leaf,
//! so that the checks of each part of a hub (the doctor's own, ownership)
//! can make them without knowing each other.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Not checked, or not a problem: said so that nothing is silently skipped.
    Info,
    Problem,
}

#[derive(Clone, Debug)]
pub struct Check {
    pub level: Level,
    pub what: String,
    /// For a problem: what to do.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(what: impl Into<String>) -> Check {
        Check { level: Level::Ok, what: what.into(), fix: None }
    }
    pub fn info(what: impl Into<String>) -> Check {
        Check { level: Level::Info, what: what.into(), fix: None }
    }
    pub fn problem(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { level: Level::Problem, what: what.into(), fix: Some(fix.into()) }
    }
}
