//! The clients' versions follow the server's: the Rust client, the npm package and the
//! Python package all carry the workspace's version.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of the first `key = "value"` (TOML) or `"key": "value"` (JSON) line.
fn first_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix(&format!("{key} = "))
            .or_else(|| line.strip_prefix(&format!("\"{key}\": ")))?;
        Some(rest.trim_end_matches(',').trim_matches('"').to_owned())
    })
}

#[test]
fn every_client_carries_the_servers_version() {
    let server = first_value(&read("../../Cargo.toml"), "version").expect("the server's version");
    assert_eq!(env!("CARGO_PKG_VERSION"), server, "crates/client");
    let npm = first_value(&read("../../clients/typescript/package.json"), "version");
    assert_eq!(
        npm.as_deref(),
        Some(server.as_str()),
        "clients/typescript/package.json"
    );
    let python = first_value(&read("../../clients/python/pyproject.toml"), "version");
    assert_eq!(
        python.as_deref(),
        Some(server.as_str()),
        "clients/python/pyproject.toml"
    );
    let module = read("../../clients/python/src/leasehold/_version.py");
    assert!(
        module.contains(&format!("\"{server}\"")),
        "clients/python/src/leasehold/_version.py says {module}"
    );
}
