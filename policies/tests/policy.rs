//! Policy parsing and every rejection, through the public API.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paddock_policies::{
    parse_policy, parse_policy_with_warnings, DaemonConfig, LandlockMode, Mode, PolicyError,
    Protocol, Runtime, SeccompProfile, Severity,
};

const NATIVE: &str = "runtime = \"native\"\ncommand = [\"/usr/bin/python3\", \"/fn/handler.py\"]\n";

/// A temp dir holding `NAME.toml`'s directory and a function dir `NAME/`.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("f")).unwrap();
        fs::write(dir.path().join("f/handler.py"), "print('hi')\n").unwrap();
        Env { dir }
    }

    fn source(&self) -> PathBuf {
        self.dir.path().join("f.toml")
    }

    fn parse(&self, text: &str) -> Result<paddock_policies::Policy, PolicyError> {
        self.parse_with(text, &DaemonConfig::embedded_default())
    }

    fn parse_with(
        &self,
        text: &str,
        config: &DaemonConfig,
    ) -> Result<paddock_policies::Policy, PolicyError> {
        parse_policy("f", text, &self.source(), config)
    }

    fn reject(&self, text: &str) -> String {
        match self.parse(text) {
            Ok(p) => panic!("accepted:\n{text}\n{p:?}"),
            Err(e) => e.to_string(),
        }
    }
}

fn config(text: &str) -> DaemonConfig {
    DaemonConfig::parse(text, Path::new("/etc/paddock/paddockd.toml")).unwrap()
}

#[test]
fn policy_minimal_native_gets_defaults() {
    let env = Env::new();
    let p = env.parse(NATIVE).unwrap();
    assert_eq!(p.name.as_str(), "f");
    assert_eq!(p.protocol, Protocol::Stdio);
    assert_eq!(p.mode, Mode::Oneshot);
    assert_eq!(p.limits.timeout, Duration::from_millis(5000));
    assert_eq!(p.limits.kill_grace, Duration::from_millis(100));
    assert_eq!(p.limits.memory_bytes, 128 << 20);
    assert_eq!(p.limits.pids, 32);
    assert_eq!(p.limits.cpu_millicores, 1000);
    assert_eq!(p.limits.output_bytes, 1 << 20);
    assert_eq!(p.limits.tmp_bytes, 16 << 20);
    assert_eq!(p.limits.tmp_inodes, 4096);
    assert_eq!(p.limits.nofile, 256);
    assert_eq!(p.limits.fsize_bytes, 16 << 20);
    assert_eq!(p.limits.concurrency, 4);
    assert_eq!(p.limits.wasm_fuel, 5_000_000_000);
    assert_eq!(p.seccomp.profile, SeccompProfile::Default);
    assert_eq!(p.landlock, LandlockMode::Required);
    // Default directory: <policy dir>/<name>/.
    assert_eq!(
        p.directory.as_deref(),
        Some(env.dir.path().join("f").as_path())
    );
    let ro: Vec<_> = p
        .filesystem
        .read_only
        .iter()
        .map(|b| b.path.to_str().unwrap())
        .collect();
    assert!(ro.contains(&"/usr"), "{ro:?}");
    assert!(p.filesystem.writable.is_empty());
    assert_eq!(p.source, env.source());
}

#[test]
fn policy_every_field_is_parsed() {
    let env = Env::new();
    fs::create_dir(env.dir.path().join("other")).unwrap();
    let text = r#"
description = "all of it"
runtime = "native"
protocol = "file"
mode = "oneshot"
command = ["/fn/run", "--flag"]
directory = "other"
env = { LANG = "C.UTF-8", _X1 = "y" }
env_passthrough = ["MY_VAR"]

[limits]
timeout_ms = "2s"
kill_grace_ms = 250
memory = "256MiB"
pids = 10
cpu = 0.5
output = "2MiB"
tmp = "8MiB"
tmp_inodes = 100
nofile = 64
fsize = 1048576
concurrency = 2
wasm_fuel = 1_000

[filesystem]
read_only = ["/usr", "/etc/localtime"]
writable = []

[network]
mode = "none"

[seccomp]
profile = "strict"
allow = ["socket"]
deny = ["chmod"]

[landlock]
mode = "best_effort"
"#;
    let p = env.parse(text).unwrap();
    assert_eq!(p.description.as_deref(), Some("all of it"));
    assert_eq!(p.protocol, Protocol::File);
    assert_eq!(p.mode, Mode::Oneshot);
    assert_eq!(
        p.runtime,
        Runtime::Native {
            command: vec!["/fn/run".into(), "--flag".into()]
        }
    );
    assert_eq!(
        p.directory.as_deref(),
        Some(env.dir.path().join("other").as_path())
    );
    assert_eq!(p.env.get("LANG").map(String::as_str), Some("C.UTF-8"));
    assert!(p.env_passthrough.contains("MY_VAR"));
    let l = &p.limits;
    assert_eq!(l.timeout, Duration::from_secs(2));
    assert_eq!(l.kill_grace, Duration::from_millis(250));
    assert_eq!(l.memory_bytes, 256 << 20);
    assert_eq!(l.pids, 10);
    assert_eq!(l.cpu_millicores, 500);
    assert_eq!(l.output_bytes, 2 << 20);
    assert_eq!(l.tmp_bytes, 8 << 20);
    assert_eq!(l.tmp_inodes, 100);
    assert_eq!(l.nofile, 64);
    assert_eq!(l.fsize_bytes, 1 << 20);
    assert_eq!(l.concurrency, 2);
    assert_eq!(l.wasm_fuel, 1000);
    assert_eq!(p.filesystem.read_only.len(), 2);
    // /etc/localtime is usually a symlink into /usr/share/zoneinfo.
    let lt = &p.filesystem.read_only[1];
    assert!(
        lt.host.starts_with("/usr") || lt.host == Path::new("/etc/localtime"),
        "{lt:?}"
    );
    assert_eq!(p.seccomp.profile, SeccompProfile::Strict);
    let sys = p.seccomp.syscalls();
    assert!(sys.contains("socket") && !sys.contains("chmod"));
    assert_eq!(p.landlock, LandlockMode::BestEffort);
}

#[test]
fn policy_fsize_defaults_to_tmp() {
    let env = Env::new();
    let p = env
        .parse(&format!("{NATIVE}[limits]\ntmp = \"4MiB\"\n"))
        .unwrap();
    assert_eq!(p.limits.fsize_bytes, 4 << 20);
}

#[test]
fn policy_wasm_defaults_to_wasm_profile() {
    let env = Env::new();
    let p = env
        .parse("runtime = \"wasm\"\nmodule = \"m.wasm\"\n")
        .unwrap();
    assert_eq!(
        p.runtime,
        Runtime::Wasm {
            module: "m.wasm".into()
        }
    );
    assert_eq!(p.seccomp.profile, SeccompProfile::Wasm);
}

#[test]
fn policy_warm_is_for_wasm_over_stdio_or_file() {
    let env = Env::new();
    let p = env
        .parse("runtime = \"wasm\"\nmodule = \"m.wasm\"\nmode = \"warm\"\n")
        .unwrap();
    assert_eq!(p.mode, Mode::Warm);
    let p = env
        .parse("runtime = \"wasm\"\nmodule = \"m.wasm\"\nmode = \"warm\"\nprotocol = \"file\"\n")
        .unwrap();
    assert_eq!((p.mode, p.protocol), (Mode::Warm, Protocol::File));
    let e = env.reject("runtime = \"native\"\ncommand = [\"/bin/sh\"]\nmode = \"warm\"\n");
    assert!(e.contains("mode = \"warm\" is for wasm functions"), "{e}");
}

#[test]
fn policy_unknown_keys_are_rejected_in_every_table() {
    let env = Env::new();
    let cases = [
        ("caps = [\"SYS_ADMIN\"]\n", "caps"),
        ("privileged = true\n", "privileged"),
        ("[limits]\nmemroy = \"1MiB\"\n", "memroy"),
        ("[filesystem]\nbind = [\"/\"]\n", "bind"),
        ("[network]\nhost = true\n", "host"),
        ("[seccomp]\ndisable = true\n", "disable"),
        ("[landlock]\noff = true\n", "off"),
    ];
    for (extra, key) in cases {
        let text = format!("{NATIVE}{extra}");
        let e = env.parse(&text).unwrap_err();
        let PolicyError::Syntax { problem } = &e else {
            panic!("{e}")
        };
        assert!(
            problem.message.contains(&format!("unknown field `{key}`")),
            "{e}"
        );
        assert!(problem.line.is_some(), "{e}");
    }
}

#[test]
fn policy_network_true_is_rejected() {
    let env = Env::new();
    let e = env.parse(&format!("network = true\n{NATIVE}")).unwrap_err();
    assert!(
        matches!(&e, PolicyError::Syntax { problem } if problem.line == Some(1)),
        "{e}"
    );
    let e = env.reject(&format!("{NATIVE}[network]\nmode = \"host\"\n"));
    assert!(e.contains("host"), "{e}");
}

#[test]
fn policy_bad_units_are_rejected() {
    let env = Env::new();
    for v in [
        "\"12 parsecs\"",
        "\"-1MiB\"",
        "\"1e309\"",
        "-5",
        "1.5",
        "\"1.5GiB\"",
        "\"../x\"",
        "true",
    ] {
        for key in ["memory", "output", "tmp", "fsize"] {
            let text = format!("{NATIVE}[limits]\n{key} = {v}\n");
            let e = env.parse(&text).unwrap_err();
            assert!(
                matches!(&e, PolicyError::Syntax { problem } if problem.line == Some(4)),
                "{key} = {v}: {e}"
            );
        }
    }
    for v in ["\"5 fortnights\"", "-1", "\"5\""] {
        let e = env
            .parse(&format!("{NATIVE}[limits]\ntimeout_ms = {v}\n"))
            .unwrap_err();
        assert!(matches!(&e, PolicyError::Syntax { .. }), "{v}: {e}");
    }
    for v in ["0", "-1", "1e309", "inf", "nan", "0.0001"] {
        let e = env.reject(&format!("{NATIVE}[limits]\ncpu = {v}\n"));
        assert!(
            e.contains("limits.cpu") || e.contains("f.toml:4:"),
            "{v}: {e}"
        );
    }
}

#[test]
fn policy_limits_over_ceiling_are_rejected_naming_key_value_and_ceiling() {
    let env = Env::new();
    let cases = [
        (
            "timeout_ms = 60001",
            "limits.timeout_ms = 60001 exceeds the ceiling 60000",
        ),
        (
            "kill_grace_ms = \"6s\"",
            "limits.kill_grace_ms = 6s exceeds the ceiling 5000",
        ),
        (
            "memory = \"100GiB\"",
            "limits.memory = 100GiB exceeds the ceiling 1GiB (paddockd.toml ceilings.memory)",
        ),
        ("pids = 257", "limits.pids = 257 exceeds the ceiling 256"),
        ("cpu = 4.0", "limits.cpu = 4 exceeds the ceiling 2"),
        (
            "output = \"17MiB\"",
            "limits.output = 17MiB exceeds the ceiling 16MiB",
        ),
        (
            "tmp = \"1GiB\"",
            "limits.tmp = 1GiB exceeds the ceiling 256MiB",
        ),
        (
            "tmp_inodes = 65537",
            "limits.tmp_inodes = 65537 exceeds the ceiling 65536",
        ),
        (
            "nofile = 100000",
            "limits.nofile = 100000 exceeds the ceiling 4096",
        ),
        (
            "fsize = \"1TiB\"",
            "limits.fsize = 1TiB exceeds the ceiling 256MiB",
        ),
        (
            "concurrency = 17",
            "limits.concurrency = 17 exceeds the ceiling 16",
        ),
        (
            "wasm_fuel = 100_000_000_001",
            "limits.wasm_fuel = 100000000001 exceeds the ceiling 100000000000",
        ),
    ];
    for (line, want) in cases {
        let e = env.reject(&format!("{NATIVE}[limits]\n{line}\n"));
        assert!(e.contains(want), "{line}: {e}");
        assert!(e.contains("f.toml:4:"), "{line}: {e}");
    }
}

#[test]
fn policy_limits_below_minimum_are_rejected() {
    let env = Env::new();
    for line in [
        "timeout_ms = 0",
        "memory = \"1MiB\"",
        "pids = 0",
        "tmp = 0",
        "tmp_inodes = 0",
        "nofile = 2",
        "concurrency = 0",
        "wasm_fuel = 0",
    ] {
        let e = env.reject(&format!("{NATIVE}[limits]\n{line}\n"));
        assert!(e.contains("below the minimum"), "{line}: {e}");
    }
}

#[test]
fn policy_clamp_mode_clamps_and_warns() {
    let env = Env::new();
    let cfg = config("[ceilings]\nclamp = true\n");
    let text = format!("{NATIVE}[limits]\nmemory = \"100GiB\"\npids = 1000\n");
    let (p, warnings) = parse_policy_with_warnings("f", &text, &env.source(), &cfg).unwrap();
    assert_eq!(p.limits.memory_bytes, 1 << 30);
    assert_eq!(p.limits.pids, 256);
    assert_eq!(warnings.len(), 2);
    assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
    assert!(
        warnings[0].to_string().contains("clamped"),
        "{}",
        warnings[0]
    );
    // Below-minimum values are never clamped.
    let e = env
        .parse_with(&format!("{NATIVE}[limits]\npids = 0\n"), &cfg)
        .unwrap_err();
    assert!(matches!(e, PolicyError::Invalid { .. }));
}

#[test]
fn policy_defaults_above_a_low_ceiling_are_lowered() {
    let env = Env::new();
    let cfg = config("[ceilings]\nmemory = \"64MiB\"\npids = 8\n");
    let p = env.parse_with(NATIVE, &cfg).unwrap();
    assert_eq!(p.limits.memory_bytes, 64 << 20);
    assert_eq!(p.limits.pids, 8);
}

#[test]
fn policy_bad_read_only_paths_are_rejected() {
    let env = Env::new();
    let cases = [
        ("\"usr\"", "not absolute"),
        ("\"../x\"", "not absolute"),
        ("\"/usr/../etc\"", "'..'"),
        ("\"/usr/./lib\"", "'.'"),
        ("\"/usr//lib\"", "'//'"),
        ("\"/usr/\"", "ends with '/'"),
        ("\"/\"", "/ is never allowed"),
        ("\"/proc\"", "/proc is never allowed"),
        ("\"/sys/kernel\"", "/sys is never allowed"),
        ("\"/dev\"", "/dev is never allowed"),
        ("\"/var/run/docker.sock\"", "docker.sock is never allowed"),
        ("\"/run/docker.sock\"", "is never allowed"),
        ("\"/etc/shadow\"", "/etc/shadow is never allowed"),
        ("\"/etc\"", "would expose"),
        ("\"/root\"", "/root is never allowed"),
        ("\"/boot\"", "/boot is never allowed"),
        ("\"/home\"", "not within the allowed paths"),
        ("\"/usr/no-such-dir-here\"", "does not exist"),
        ("\"/lib/x86_64-linux-gnu\"", ""),
        ("\"/tmp\"", "/tmp is the sandbox's own mount"),
        ("\"/tmp/x\"", "/tmp is the sandbox's own mount"),
        ("\"/fn/lib\"", "/fn is the sandbox's own mount"),
        ("\"/work\"", "/work is the sandbox's own mount"),
    ];
    for (path, want) in cases {
        if path.contains("/lib/") && !Path::new("/lib").is_symlink() {
            continue;
        }
        let e = env.reject(&format!("{NATIVE}[filesystem]\nread_only = [{path}]\n"));
        assert!(
            e.contains(want) && e.contains("filesystem.read_only"),
            "{path}: {e}"
        );
    }
}

#[test]
fn policy_intermediate_symlink_path_is_rejected() {
    let env = Env::new();
    let root = tempfile::tempdir_in("/var/tmp").unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("real/sub")).unwrap();
    std::os::unix::fs::symlink("real", r.join("link")).unwrap();
    let cfg = config(&format!(
        "[ceilings]\nread_only_paths = [\"/usr\", {:?}]\n",
        r.to_str().unwrap()
    ));
    let ok = format!(
        "{NATIVE}[filesystem]\nread_only = [\"/usr\", {:?}]\n",
        r.join("link").to_str().unwrap()
    );
    let p = env.parse_with(&ok, &cfg).unwrap();
    assert_eq!(p.filesystem.read_only[1].host, r.join("real"));
    let bad = format!(
        "{NATIVE}[filesystem]\nread_only = [\"/usr\", {:?}]\n",
        r.join("link/sub").to_str().unwrap()
    );
    let e = env.parse_with(&bad, &cfg).unwrap_err().to_string();
    assert!(e.contains("is a symlink"), "{e}");
}

#[test]
fn policy_writable_paths_are_rejected_by_default() {
    let env = Env::new();
    for p in ["/proc/sys", "/tmp", "/usr"] {
        let e = env.reject(&format!("{NATIVE}[filesystem]\nwritable = [{p:?}]\n"));
        assert!(e.contains("writable paths are not allowed"), "{e}");
    }
}

#[test]
fn policy_writable_proc_sys_is_rejected_even_when_allowed() {
    let env = Env::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let cfg = config(&format!(
        "[ceilings]\nwritable_paths = [{:?}]\n",
        dir.path().to_str().unwrap()
    ));
    let ok = format!(
        "{NATIVE}[filesystem]\nwritable = [{:?}]\n",
        dir.path().to_str().unwrap()
    );
    assert_eq!(
        env.parse_with(&ok, &cfg).unwrap().filesystem.writable.len(),
        1
    );
    let bad = format!("{NATIVE}[filesystem]\nwritable = [\"/proc/sys\"]\n");
    let e = env.parse_with(&bad, &cfg).unwrap_err().to_string();
    assert!(e.contains("/proc is never allowed"), "{e}");
}

#[test]
fn policy_writable_path_also_read_only_is_rejected() {
    let env = Env::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let d = dir.path().to_str().unwrap();
    let cfg = config(&format!(
        "[ceilings]\nwritable_paths = [{d:?}]\nread_only_paths = [\"/usr\", {d:?}]\n"
    ));
    let both = format!("{NATIVE}[filesystem]\nread_only = [{d:?}]\nwritable = [{d:?}]\n");
    let e = env.parse_with(&both, &cfg).unwrap_err().to_string();
    assert!(
        e.contains("filesystem.writable") && e.contains("also in filesystem.read_only"),
        "{e}"
    );
    // Beneath a read-only path is fine: a writable spot in a read-only tree.
    fs::create_dir(dir.path().join("data")).unwrap();
    let nested = format!(
        "{NATIVE}[filesystem]\nread_only = [\"/usr\", {d:?}]\nwritable = [{:?}]\n",
        dir.path().join("data").to_str().unwrap()
    );
    let p = env.parse_with(&nested, &cfg).unwrap();
    assert_eq!(p.filesystem.writable[0].path, dir.path().join("data"));
}

#[test]
fn policy_bad_names_are_rejected() {
    let env = Env::new();
    let long = "a".repeat(300);
    for name in [
        "../../etc/passwd",
        "..",
        "",
        "a/b",
        "-rf",
        long.as_str(),
        "ｆｏｏ",
        "x\n",
    ] {
        let e = parse_policy(
            name,
            NATIVE,
            &env.source(),
            &DaemonConfig::embedded_default(),
        )
        .unwrap_err();
        assert!(matches!(e, PolicyError::Name { .. }), "{name:?}: {e}");
    }
}

#[test]
fn policy_runtime_rules_are_enforced() {
    let env = Env::new();
    let cases = [
        ("runtime = \"native\"\n", "needs a command"),
        ("runtime = \"native\"\ncommand = []\n", "command is empty"),
        (
            "runtime = \"native\"\ncommand = [\"python3\"]\n",
            "not absolute",
        ),
        (
            "runtime = \"native\"\ncommand = [\"/opt/x\"]\n",
            "would not exist in the sandbox",
        ),
        (
            "runtime = \"native\"\ncommand = [\"/bin/sh\", \"a\\u0000b\"]\n",
            "NUL",
        ),
        (
            "runtime = \"native\"\ncommand = [\"/bin/sh\"]\nmodule = \"m.wasm\"\n",
            "module is only for",
        ),
        ("runtime = \"wasm\"\n", "needs a module"),
        (
            "runtime = \"wasm\"\nmodule = \"m.wasm\"\ncommand = [\"/bin/sh\"]\n",
            "command is only for",
        ),
        ("runtime = \"wasm\"\nmodule = \"../m.wasm\"\n", "'..'"),
        ("runtime = \"wasm\"\nmodule = \"/m.wasm\"\n", "relative"),
        (
            "runtime = \"python\"\ncommand = [\"/bin/sh\"]\n",
            "unknown variant",
        ),
        ("command = [\"/bin/sh\"]\n", "missing field `runtime`"),
        (
            "runtime = \"native\"\ncommand = [\"/bin/sh\"]\nprotocol = \"http\"\n",
            "unknown variant",
        ),
        (
            "runtime = \"native\"\ncommand = [\"/bin/sh\"]\nmode = \"hot\"\n",
            "unknown variant",
        ),
    ];
    for (text, want) in cases {
        let e = env.reject(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn policy_wasm_without_directory_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let e = parse_policy(
        "w",
        "runtime = \"wasm\"\nmodule = \"m.wasm\"\n",
        &dir.path().join("w.toml"),
        &DaemonConfig::embedded_default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("function directory"), "{e}");
}

#[test]
fn policy_directory_rules_are_enforced() {
    let env = Env::new();
    fs::write(env.dir.path().join("file"), "").unwrap();
    std::os::unix::fs::symlink("f", env.dir.path().join("link")).unwrap();
    let cases = [
        ("\"file\"", "not a directory"),
        ("\"link\"", "is a symlink"),
        ("\"missing\"", "does not exist"),
        ("\"../f\"", "'..'"),
        ("\"/\"", "never allowed"),
        ("\"/etc\"", "would expose"),
        ("\"/proc/self\"", "never allowed"),
    ];
    for (d, want) in cases {
        let e = env.reject(&format!("{NATIVE}directory = {d}\n"));
        assert!(e.contains(want) && e.contains("directory"), "{d}: {e}");
    }
}

#[test]
fn policy_default_directory_symlink_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", dir.path().join("g")).unwrap();
    let e = parse_policy(
        "g",
        NATIVE,
        &dir.path().join("g.toml"),
        &DaemonConfig::embedded_default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("is a symlink"), "{e}");
}

#[test]
fn policy_env_rules_are_enforced() {
    let env = Env::new();
    for k in [
        "FUNCTION_NAME",
        "EXECUTION_ID",
        "TIMEOUT_MS",
        "TRACE_ID",
        "INPUT_FILE",
        "OUTPUT_FILE",
    ] {
        let e = env.reject(&format!("{NATIVE}env = {{ {k} = \"x\" }}\n"));
        assert!(e.contains("is reserved"), "{e}");
        let e = env.reject(&format!("{NATIVE}env_passthrough = [{k:?}]\n"));
        assert!(e.contains("is reserved"), "{e}");
    }
    for k in ["lang", "1A", "\"A-B\"", "\"\""] {
        let e = env.reject(&format!("{NATIVE}env = {{ {k} = \"x\" }}\n"));
        assert!(e.contains("not a valid variable name"), "{k}: {e}");
    }
    let e = env.reject(&format!("{NATIVE}env = {{ A = \"x\\u0000y\" }}\n"));
    assert!(e.contains("NUL"), "{e}");
    let e = env.reject(&format!("{NATIVE}env_passthrough = [\"lower\"]\n"));
    assert!(e.contains("not a valid variable name"), "{e}");
}

#[test]
fn policy_seccomp_rules_are_enforced() {
    let env = Env::new();
    for s in [
        "ptrace",
        "mount",
        "bpf",
        "clone3",
        "io_uring_setup",
        "unshare",
        "kexec_load",
    ] {
        let e = env.reject(&format!("{NATIVE}[seccomp]\nallow = [{s:?}]\n"));
        assert!(e.contains(&format!("{s} is never allowed")), "{e}");
    }
    let e = env.reject(&format!("{NATIVE}[seccomp]\nallow = [\"frobnicate\"]\n"));
    assert!(e.contains("not an x86_64 syscall"), "{e}");
    let e = env.reject(&format!("{NATIVE}[seccomp]\ndeny = [\"stime\"]\n"));
    assert!(e.contains("not an x86_64 syscall"), "{e}");
    let e = env.reject(&format!("{NATIVE}[seccomp]\nprofile = \"unconfined\"\n"));
    assert!(e.contains("unknown variant"), "{e}");
}

#[test]
fn policy_all_errors_are_reported_together() {
    let env = Env::new();
    let e = env
        .parse(&format!(
            "{NATIVE}[limits]\nmemory = \"100GiB\"\npids = 9999\n"
        ))
        .unwrap_err();
    let PolicyError::Invalid { problems } = &e else {
        panic!("{e}")
    };
    assert_eq!(problems.len(), 2, "{e}");
    assert_eq!(problems[0].line, Some(4));
    assert_eq!(problems[1].line, Some(5));
}
