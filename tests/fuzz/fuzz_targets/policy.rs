//! Any text as a policy file: parsing and validation never panic, and a
//! policy that validates never exceeds the daemon's ceilings.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paddock_policies::{parse_policy, DaemonConfig};

fn config() -> &'static DaemonConfig {
    static C: OnceLock<DaemonConfig> = OnceLock::new();
    C.get_or_init(DaemonConfig::embedded_default)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let c = config();
    if let Ok(p) = parse_policy("fuzz", text, Path::new("/nonexistent/fuzz.toml"), c) {
        let l = &p.limits;
        let ceil = &c.ceilings;
        if !ceil.clamp {
            assert!(l.memory_bytes <= ceil.memory_bytes);
            assert!(l.timeout <= ceil.timeout);
            assert!(l.pids <= ceil.pids);
            assert!(l.output_bytes <= ceil.output_bytes);
        }
        for b in &p.filesystem.read_only {
            assert!(b.path.is_absolute());
        }
    }
});
