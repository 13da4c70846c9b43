//! Root integration tests: real sandboxes started with `paddockd run`, checked
//! against the rows of ATTACKS.md. Every test fails (never skips) without root.
//! Run with `cargo test -p integration-tests --features root-tests` after
//! `cargo build --workspace` (paddockd and probe must be built).

/// One test that runs the probe once and expects a given errno.
macro_rules! errno_test {
    ($(#[$m:meta])* $name:ident, [$($arg:expr),* $(,)?], $errno:expr) => {
        $(#[$m])*
        #[test]
        fn $name() {
            integration_tests::require_root();
            let (_d, p) = integration_tests::setup();
            let line = integration_tests::probe(&p, &[$($arg),*]);
            integration_tests::assert_errno(&line, $errno);
        }
    };
}

#[cfg(test)]
mod fd;
#[cfg(test)]
mod fs;
#[cfg(test)]
mod leaks;
#[cfg(test)]
mod life;
#[cfg(test)]
mod net_ipc;
#[cfg(test)]
mod privs;
#[cfg(test)]
mod proc;
#[cfg(test)]
mod resources;
#[cfg(test)]
mod runtimes;
#[cfg(test)]
mod seccomp;
#[cfg(test)]
mod wasm;
