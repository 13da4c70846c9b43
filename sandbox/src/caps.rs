//! Capabilities: all of them go, in every set, and securebits are locked so
//! that uid 0 inside the sandbox never regains any (not even through exec).

use caps::CapSet;
use nix::errno::Errno;

use crate::error::{At, ChildError, Step};
use crate::sys;

// linux/securebits.h
const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

/// Drop every capability. `last_cap` comes from the parent, because
/// /proc/sys is not visible in the sandbox.
pub(crate) fn drop_all(last_cap: libc::c_ulong) -> Result<(), ChildError> {
    // Securebits need CAP_SETPCAP, so they come first; so does the bounding
    // set, which clearing the permitted set would make undroppable.
    sys::set_securebits(
        SECBIT_NOROOT
            | SECBIT_NOROOT_LOCKED
            | SECBIT_NO_SETUID_FIXUP
            | SECBIT_NO_SETUID_FIXUP_LOCKED
            | SECBIT_KEEP_CAPS_LOCKED
            | SECBIT_NO_CAP_AMBIENT_RAISE
            | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
    )
    .at(Step::Securebits)?;
    for cap in 0..=last_cap {
        sys::capbset_drop(cap).at(Step::CapBounding)?;
    }
    sys::clear_ambient().at(Step::Caps)?;
    sys::clear_caps().at(Step::Caps)?;
    // Check, do not assume: every set must read back empty.
    for set in [
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Ambient,
        CapSet::Bounding,
    ] {
        match caps::read(None, set) {
            Ok(s) if s.is_empty() => {}
            _ => {
                return Err(ChildError {
                    step: Step::Caps,
                    errno: Errno::EPERM,
                })
            }
        }
    }
    Ok(())
}
