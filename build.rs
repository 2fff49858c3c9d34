// Records the Burn and rustc versions for run manifests.
use std::process::Command;

fn main() {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let burn = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"burn\"\n"))
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map(|l| l.trim_start_matches("version = ").trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GEOSR_BURN_VERSION={burn}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GEOSR_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
