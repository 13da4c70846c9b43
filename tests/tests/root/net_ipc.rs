//! IX1, IX2, IX3: network, abstract unix sockets, SysV IPC, /dev/shm, environment.

use integration_tests::*;
use std::time::Duration;

/// The SysV key the probe's `ipc_create`/`ipc_list` use.
const IPC_KEY: libc::key_t = 0x5044_4b31;

// IX1: no network, and no raw/packet/vsock/netlink sockets.
// UDP connect is not mediated by Landlock: the empty network namespace answers.
errno_test!(
    net_udp_connect_external_is_enetunreach,
    ["connect_inet", "1.1.1.1", "53", "udp"],
    "ENETUNREACH"
);
errno_test!(
    net_udp_connect_loopback_is_enetunreach,
    ["connect_inet", "127.0.0.1", "53", "udp"],
    "ENETUNREACH"
);

// TCP connect: ENETUNREACH from the network namespace, or EACCES when Landlock's
// TCP-connect right (ABI 4+) is handled and answers first.
#[test]
fn net_tcp_connect_external_is_denied() {
    require_root();
    let (_d, p) = setup();
    assert_errno_in(
        &probe(&p, &["connect_inet", "1.1.1.1", "53"]),
        &["ENETUNREACH", "EACCES"],
    );
}

#[test]
fn net_tcp_connect_loopback_is_denied() {
    require_root();
    let (_d, p) = setup();
    assert_errno_in(
        &probe(&p, &["connect_inet", "127.0.0.1", "80"]),
        &["ENETUNREACH", "EACCES"],
    );
}
errno_test!(
    net_packet_socket_is_eperm,
    ["socket", "packet", "raw"],
    "EPERM"
);
errno_test!(net_raw_socket_is_eperm, ["socket", "inet", "raw"], "EPERM");
errno_test!(
    net_vsock_socket_is_eperm,
    ["socket", "vsock", "stream"],
    "EPERM"
);
errno_test!(
    net_netlink_socket_is_eperm,
    ["socket", "netlink", "raw"],
    "EPERM"
);
errno_test!(
    net_alg_socket_is_eperm,
    ["socket", "alg", "seqpacket"],
    "EPERM"
);

#[test]
fn net_allowed_socket_families_work() {
    require_root();
    let (_d, p) = setup();
    for fam in ["unix", "inet", "inet6"] {
        assert_ok(&probe(&p, &["socket", fam, "stream"]));
    }
}

#[test]
fn net_only_lo_exists() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["read", "/proc/self/net/dev"]);
    assert_ok(&r);
    let ifaces: Vec<&str> = r["content"]
        .as_str()
        .unwrap_or("")
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{r}");
}

// IX2: abstract unix sockets do not cross the sandbox boundary.
#[test]
fn ipc_abstract_socket_of_host_is_econnrefused() {
    require_root();
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("paddock-host-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    let _l = std::os::unix::net::UnixListener::bind_addr(&addr).expect("bind host abstract socket");
    let (_d, p) = setup();
    assert_errno(&probe(&p, &["abstract_connect", &name]), "ECONNREFUSED");
    let unix = probe(&p, &["read", "/proc/self/net/unix"]);
    assert!(
        !unix["content"].as_str().unwrap_or("").contains(&name),
        "{unix}"
    );
}

#[test]
fn ipc_abstract_socket_across_sandboxes_is_econnrefused() {
    require_root();
    let d = FnDir::new();
    let pa = d.policy().name("server").write();
    let pb = d.policy().name("client").write();
    let a = spawn(
        &pa,
        &["/fn/probe", "abstract_bind", "paddock-x", "1.5"],
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let b = probe(&pb, &["abstract_connect", "paddock-x"]);
    let a = a.wait().probe_exited();
    assert_ok(&a);
    assert_errno(&b, "ECONNREFUSED");
    assert_eq!(a["accepted"], 0, "{a}");
}

// IX3: SysV IPC, /dev/shm and the environment.
#[test]
fn ipc_sysv_across_sandboxes_is_invisible() {
    require_root();
    let d = FnDir::new();
    let pa = d.policy().name("maker").write();
    let pb = d.policy().name("looker").write();
    let a = spawn(&pa, &["/fn/probe", "then_sleep", "1.5", "ipc_create"], None);
    std::thread::sleep(Duration::from_millis(500));
    let b = probe(&pb, &["ipc_list"]);
    assert_ok(&a.wait().probe_exited());
    for k in ["shm_key_found", "msg_key_found", "sem_key_found"] {
        assert_eq!(b[k], false, "{b}");
    }
    for k in ["shm_used_ids", "msg_queues", "sem_sets"] {
        assert_eq!(b[k], 0, "{b}");
    }
}

#[test]
fn ipc_host_sysv_is_invisible() {
    require_root();
    // SAFETY: shmget takes no pointers.
    let id = unsafe { libc::shmget(IPC_KEY, 4096, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "host shmget failed");
    let (_d, p) = setup();
    let r = probe(&p, &["ipc_list"]);
    // SAFETY: IPC_RMID ignores the buffer pointer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    assert_eq!(r["shm_key_found"], false, "{r}");
    assert_eq!(r["shm_used_ids"], 0, "{r}");
}

#[test]
fn ipc_dev_shm_across_sandboxes_is_invisible() {
    require_root();
    let d = FnDir::new();
    let pa = d.policy().name("writer").write();
    let pb = d.policy().name("reader").write();
    let a = spawn(
        &pa,
        &[
            "/fn/probe",
            "then_sleep",
            "1.5",
            "write",
            "/dev/shm/x",
            "secret",
        ],
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let b = probe(&pb, &["read", "/dev/shm/x"]);
    assert_ok(&a.wait().probe_exited());
    assert_errno(&b, "ENOENT");
}

#[test]
fn ipc_env_has_only_declared_variables() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().env("GREETING", "hi").write();
    let r = probe(&p, &["env"]);
    let env = r["env"].as_object().expect("env");
    assert_eq!(
        env.get("GREETING").and_then(|v| v.as_str()),
        Some("hi"),
        "{r}"
    );
    assert_eq!(
        env.get("LANG").and_then(|v| v.as_str()),
        Some("C.UTF-8"),
        "{r}"
    );
    // Declared, the per-run variables of DESIGN.md, and a fixed PATH (not the host's).
    let allowed = [
        "GREETING",
        "LANG",
        "FUNCTION_NAME",
        "EXECUTION_ID",
        "TIMEOUT_MS",
        "TRACE_ID",
        "PATH",
    ];
    for k in env.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "undeclared variable {k}: {r}"
        );
    }
    let host_path = std::env::var("PATH").unwrap_or_default();
    if let Some(path) = env.get("PATH").and_then(|v| v.as_str()) {
        assert!(
            path != host_path || path == "/usr/local/bin:/usr/bin:/bin",
            "host PATH leaked: {r}"
        );
    }
    assert_eq!(
        env.get("FUNCTION_NAME").and_then(|v| v.as_str()),
        Some("probe"),
        "{r}"
    );
}

#[test]
fn ipc_hostname_is_paddock() {
    require_root();
    let (_d, p) = setup();
    assert_eq!(probe(&p, &["hostname"])["hostname"], "paddock");
}
