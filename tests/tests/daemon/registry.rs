//! RG4: redeploy under load.

use std::time::Duration;

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

#[test]
fn registry_redeploy_while_running_keeps_the_running_version() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_sh("ver", "sleep 1; echo v1\n", "");
    let mut c = d.client();
    c.send(&json!({"id": "old", "op": "invoke", "function": "ver"}));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.deploy_sh("ver", "echo v2\n", ""), 2);
    let v = d.invoke("ver", "");
    assert_eq!(v["result"]["stdout"], "v2\n", "{v}");
    assert_eq!(v["result"]["version"], 2);
    let v = c.recv();
    assert_eq!(v["id"], "old");
    assert_eq!(v["result"]["stdout"], "v1\n", "{v}");
    assert_eq!(v["result"]["version"], 1, "{v}");
    // v1 is gone once nothing uses it.
    let gone = integration_tests::eventually(Duration::from_secs(2), || {
        version_dirs(&d, "ver") == vec!["v2".to_string()]
    });
    assert!(
        gone,
        "version directories left: {:?}",
        version_dirs(&d, "ver")
    );
}

fn version_dirs(d: &TestDaemon, name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.state_dir().join("functions").join(name))
        .expect("function dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "current")
        .collect();
    v.sort();
    v
}

#[test]
fn registry_parallel_deploys_get_distinct_increasing_versions() {
    require_root();
    let d = TestDaemon::start();
    let sock = d.socket();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&sock);
                let mut versions = Vec::new();
                for i in 0..25u64 {
                    let script = format!("echo {t}-{i}\n");
                    let v = c.call(&deploy_req(
                        i,
                        "busy-fn",
                        &sh_policy("", ""),
                        &[("h.sh", script.as_bytes(), true)],
                    ));
                    assert_eq!(v["ok"], true, "{v}");
                    assert_eq!(v["id"], i);
                    versions.push(v["result"]["version"].as_u64().expect("version"));
                }
                versions
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        let v = h.join().expect("deployer");
        assert!(v.windows(2).all(|w| w[0] < w[1]), "not increasing: {v:?}");
        all.extend(v);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 100, "versions not distinct");
    let last = *all.last().expect("some");
    assert_eq!(version_dirs(&d, "busy-fn"), vec![format!("v{last}")]);
    let cur =
        std::fs::read_to_string(d.state_dir().join("functions/busy-fn/current")).expect("current");
    assert_eq!(cur.trim(), format!("v{last}"));
    let v = d.invoke("busy-fn", "");
    assert_eq!(v["result"]["version"], last, "{v}");
}
