//! Launch tracing: stamps at each setup step, in the parent and in the child
//! (which sends its own over the channel before `Ready`), as nanoseconds
//! since the start of `spawn`. The child inherits the parent's start
//! `Instant` in its copy of memory, and both read the same monotonic clock.
//! Off unless [`crate::SandboxSpec::trace`] is set; then it costs one
//! vDSO clock read per step and one 16-byte message per child step.

use crate::error::Step;

/// A point in the launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A parent-side moment, by name.
    Parent(&'static str),
    /// The end of a child step.
    Child(Step),
}

/// The parent-side moments `spawn` stamps.
const PARENT_LABELS: [&str; 9] = [
    "plan",
    "channel and pipes",
    "cgroup created",
    "clone3",
    "id maps",
    "cgroup attach",
    "ready received",
    "go sent",
    "launcher",
];

impl Mark {
    /// The static label for a parent moment named `label` (as sent by a
    /// launcher); an unknown one reads "launcher".
    pub(crate) fn parent_label(label: &str) -> &'static str {
        PARENT_LABELS
            .iter()
            .copied()
            .find(|l| *l == label)
            .unwrap_or("launcher")
    }

    /// A short label.
    pub fn label(self) -> String {
        match self {
            Mark::Parent(s) => format!("parent: {s}"),
            Mark::Child(Step::Fork) => "payload: forked by init".into(),
            Mark::Child(Step::Seccomp) => "payload: seccomp installed, waiting for go".into(),
            Mark::Child(Step::Go) => "payload: go received, execve next".into(),
            Mark::Child(Step::Exec) => "init: command exited and reaped".into(),
            Mark::Child(s) => format!("child: {s}"),
        }
    }
}

/// Nanoseconds since `t0`.
pub(crate) fn since(t0: std::time::Instant) -> u64 {
    t0.elapsed().as_nanos() as u64
}

/// The child's stamps: a fixed array, so marking never allocates.
#[derive(Debug)]
pub(crate) struct ChildMarks {
    t0: Option<std::time::Instant>,
    at: [(Step, u64); 32],
    n: usize,
}

impl ChildMarks {
    /// Marks relative to `t0`; `None` turns marking off.
    pub(crate) fn new(t0: Option<std::time::Instant>) -> ChildMarks {
        ChildMarks {
            t0,
            at: [(Step::WaitParent, 0); 32],
            n: 0,
        }
    }

    /// Stamp the end of `step`.
    pub(crate) fn mark(&mut self, step: Step) {
        if let Some(t0) = self.t0 {
            if self.n < self.at.len() {
                self.at[self.n] = (step, since(t0));
                self.n += 1;
            }
        }
    }

    pub(crate) fn marks(&self) -> &[(Step, u64)] {
        &self.at[..self.n]
    }
}
