//! Resource limits: no core dumps, a cap on open files and on file size.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::error::{At, ChildError, Step};
use crate::spec::Rlimits;

/// The values to set, clamped in the parent to what the caller's own hard
/// limits allow (raising a hard limit needs CAP_SYS_RESOURCE, which a root
/// daemon may not have). Clamping only ever narrows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitPlan {
    nofile: u64,
    fsize: u64,
}

impl RlimitPlan {
    pub(crate) fn new(r: &Rlimits) -> RlimitPlan {
        let hard = |res| getrlimit(res).map(|(_, h)| h).unwrap_or(u64::MAX);
        RlimitPlan {
            nofile: r.nofile.min(hard(Resource::RLIMIT_NOFILE)),
            fsize: r.fsize_bytes.min(hard(Resource::RLIMIT_FSIZE)),
        }
    }
}

/// In the child.
pub(crate) fn apply(p: &RlimitPlan) -> Result<(), ChildError> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).at(Step::Rlimits)?;
    setrlimit(Resource::RLIMIT_NOFILE, p.nofile, p.nofile).at(Step::Rlimits)?;
    setrlimit(Resource::RLIMIT_FSIZE, p.fsize, p.fsize).at(Step::Rlimits)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_plan_never_exceeds_the_callers_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let p = RlimitPlan::new(&Rlimits {
            nofile: u64::MAX,
            fsize_bytes: 1024,
        });
        assert_eq!(p.nofile, hard);
        assert_eq!(p.fsize, 1024);
    }
}
