//! One error type at the edge, mapped to DESIGN.md's exit codes.

use std::process::ExitCode;

use git_ci_core::HubError;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments, configuration or input: exit 2.
    Usage { message: String, hint: Option<String> },
    /// The hub could not be reached or written: exit 3.
    Hub { error: HubError, hint: Option<String> },
    /// Some job did not pass: exit 1 (the details were already printed).
    JobsFailed,
    /// A check found problems (`doctor`, a hook run by hand): exit 1, the
    /// findings were the output.
    Findings,
    /// `status REV`: some job is still pending or running: exit 4.
    StillRunning,
    /// Something broke on this machine: exit 2 with the message.
    Internal(String),
    /// `git ci claim`: no job is claimable now: exit 4, the message on stderr.
    NothingToClaim(String),
    /// `heartbeat`, `append-log`, `complete`: the agent's claim is not its
    /// own any more (stolen after its lease, or the job cancelled or
    /// finished): exit 5. The agent must stop the job and publish nothing.
    ClaimLost(String),
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage { message: message.into(), hint: None }
    }

    pub fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::JobsFailed | CliError::Findings => 1,
            CliError::Usage { .. } | CliError::Internal(_) => 2,
            CliError::Hub { .. } => 3,
            CliError::StillRunning | CliError::NothingToClaim(_) => 4,
            CliError::ClaimLost(_) => 5,
        })
    }

    /// The lines to print on stderr, if any.
    pub fn report(&self) -> Option<String> {
        let (message, hint) = match self {
            CliError::JobsFailed | CliError::Findings | CliError::StillRunning => return None,
            CliError::Usage { message, hint } => (message.clone(), hint.clone()),
            CliError::Internal(m) => (m.clone(), None),
            CliError::NothingToClaim(m) => return Some(m.clone()),
            CliError::ClaimLost(m) => (m.clone(), Some("stop the job: another claimer runs it, or it is over".into())),
            CliError::Hub { error, hint } => (error.to_string(), hint.clone().or_else(|| hub_hint(error))),
        };
        Some(match hint {
            Some(h) => format!("error: {message}\nhint: {h}"),
            None => format!("error: {message}"),
        })
    }
}

fn hub_hint(e: &HubError) -> Option<String> {
    match e {
        HubError::Unreachable { .. } => Some(
            "check the hub's URL (`--hub`, `git config ci.hub`, $GIT_CI_HUB or the remote origin) and that it is up"
                .into(),
        ),
        HubError::Denied { cause, .. } => Some(cause.fix().into()),
        HubError::Refused { .. } => Some("check your push rights to refs/ci/* on the hub, and its hooks".into()),
        HubError::Conflict { .. } => {
            Some("another client changed the same job at the same moment; run the command again".into())
        }
        HubError::Partial { .. } => Some(
            "the hub skipped some refs of an atomic push (a hidden ref, receive.hideRefs, or a check that raced \
             another push); run the command again, and if it repeats check the hub's receive.hideRefs"
                .into(),
        ),
        HubError::Local { .. } => None,
    }
}

impl From<HubError> for CliError {
    fn from(error: HubError) -> CliError {
        CliError::Hub { error, hint: None }
    }
}

impl From<git_ci_core::pipeline::PipelineError> for CliError {
    fn from(e: git_ci_core::pipeline::PipelineError) -> CliError {
        let hint = format!("fix {}; nothing was queued", e.origin);
        CliError::usage_hint(e.to_string(), hint)
    }
}

impl From<git_ci_core::pipeline::PipelineAtCommitError> for CliError {
    fn from(e: git_ci_core::pipeline::PipelineAtCommitError) -> CliError {
        match e {
            git_ci_core::pipeline::PipelineAtCommitError::Parse(p) => p.into(),
            other => CliError::usage(other.to_string()),
        }
    }
}

impl From<git_ci_core::pipeline::UnknownJob> for CliError {
    fn from(e: git_ci_core::pipeline::UnknownJob) -> CliError {
        CliError::usage(e.to_string())
    }
}

impl From<git_ci_core::pipeline::SelectError> for CliError {
    fn from(e: git_ci_core::pipeline::SelectError) -> CliError {
        use git_ci_core::pipeline::SelectError;
        match e {
            SelectError::Unknown(u) => u.into(),
            SelectError::Repeat(_) => CliError::usage(e.to_string()),
            SelectError::TooMany(_) => CliError::usage_hint(
                e.to_string(),
                "name fewer jobs with --job, lower --repeat, or submit a shorter range; nothing was queued",
            ),
        }
    }
}

impl From<git_ci_core::id::InvalidJobId> for CliError {
    fn from(e: git_ci_core::id::InvalidJobId) -> CliError {
        CliError::usage(e.to_string())
    }
}

impl From<git_ci_core::needs::RetryError> for CliError {
    fn from(e: git_ci_core::needs::RetryError) -> CliError {
        match e {
            git_ci_core::needs::RetryError::Hub(h) => h.into(),
            other => CliError::usage(other.to_string()),
        }
    }
}
