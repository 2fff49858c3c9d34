// Records what a run's manifest needs to say which code ran: the Burn and rustc
// versions, the commit the binary is built from, whether its source differed from
// that commit, a fingerprint of that source and of Cargo.lock, and the profile.
use std::path::Path;
use std::process::Command;

#[path = "src/runs/source.rs"]
mod source;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let burn = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"burn\"\n"))
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map(|l| l.trim_start_matches("version = ").trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GEOSRBUILD_BURN_VERSION={burn}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GEOSRBUILD_RUSTC_VERSION={version}");

    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    // Only the files that make the binary count: an edited README does not.
    let dirty = git(&["status", "--porcelain", "--untracked-files=all", "--", "src", "Cargo.toml", "Cargo.lock", "build.rs"])
        .is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=GEOSRBUILD_COMMIT={commit}");
    println!("cargo:rustc-env=GEOSRBUILD_DIRTY={}", if dirty { "1" } else { "" });
    println!("cargo:rustc-env=GEOSRBUILD_SOURCE_HASH={}", source::source_hash(root).unwrap_or_default());
    println!("cargo:rustc-env=GEOSRBUILD_TRAINING_HASH={}", source::training_hash(root).unwrap_or_default());
    println!("cargo:rustc-env=GEOSRBUILD_CARGO_LOCK_HASH={}", source::file_hash(&root.join("Cargo.lock")).unwrap_or_default());
    println!("cargo:rustc-env=GEOSRBUILD_PROFILE={}", std::env::var("PROFILE").unwrap_or_default());
    println!("cargo:rustc-env=GEOSRBUILD_ROOT={}", root.display());

    for path in ["src", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    // A new commit changes what the binary reports as its commit. A path that does not
    // exist would make Cargo rerun this script on every build, so only existing ones.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        let git_dir = root.join(git_dir);
        let mut watched = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(git_dir.join(reference));
        }
        for path in watched.into_iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
