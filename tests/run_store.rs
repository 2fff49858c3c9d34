//! Atomic writes and provenance.

mod common;

use common::git;
use geosr::runs::manifest::git_state;
use geosr::runs::{write_atomic, Manifest, Provenance, RunDir, Status};

#[test]
fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/eval.csv");
    write_atomic(&path, b"old,contents\n1,2\n").unwrap();
    write_atomic(&path, b"new\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("eval.csv")], "no temp files remain");
}

#[test]
fn atomic_write_to_unwritable_place_fails_without_touching_target() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    // A path under a regular file cannot be created.
    let err = write_atomic(&blocker.join("eval.csv"), b"data").unwrap_err();
    assert!(err.to_string().contains("eval.csv"), "{err}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
}

#[test]
fn manifest_round_trips_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path(), "quick", "a-s0-0123456789");
    assert!(run.read_manifest().unwrap().is_none());
    let m = Manifest {
        experiment: "quick".into(),
        label: "a".into(),
        variant: "a".into(),
        seed: 0,
        run_id: "0123456789".into(),
        status: Status::Failed,
        reason: Some("loss became NaN at step 3".into()),
        failed_step: Some(3),
        started: Some("2026-01-01T00:00:00Z".into()),
        ended: None,
        provenance: Provenance::collect("ndarray", "cpu"),
        pid: None,
        slurm_task: None,
        resumed_from_step: None,
        cost: None,
        synthetic_version: Some(3),
        data_fingerprint: None,
        attempts: Vec::new(),
        reruns: Vec::new(),
        files: Default::default(),
    };
    run.write_manifest(&m).unwrap();
    assert_eq!(run.read_manifest().unwrap(), Some(m));
    assert!(run.manifest_path().ends_with("runs/quick/a-s0-0123456789/manifest.json"));
}

#[test]
fn provenance_records_versions_host_and_command() {
    let p = Provenance::collect("ndarray", "cpu");
    assert_eq!(p.burn_version, "0.21.0");
    assert_eq!(p.geosr_version, env!("CARGO_PKG_VERSION"));
    assert!(p.rustc_version.starts_with("rustc "), "{}", p.rustc_version);
    assert_eq!((p.backend.as_str(), p.device.as_str()), ("ndarray", "cpu"));
    assert!(!p.host.is_empty() && p.cpu_cores >= 1);
    assert!(!p.command.is_empty());
}


#[test]
fn git_state_reports_commit_branch_and_dirty_diff() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "trunk"]);
    std::fs::write(d.join(".gitignore"), "results/\n").unwrap();
    std::fs::write(d.join("a.txt"), "one\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "first"]);
    let head = String::from_utf8(
        std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(d).output().unwrap().stdout,
    )
    .unwrap();

    std::fs::create_dir_all(d.join("results")).unwrap();
    std::fs::write(d.join("results/ignored.csv"), "x").unwrap();
    let clean = git_state(d);
    assert_eq!(clean.commit.as_deref(), Some(head.trim()));
    assert_eq!(clean.branch.as_deref(), Some("trunk"));
    assert!(!clean.dirty, "ignored files do not make a tree dirty");
    assert!(clean.diff.is_none());

    std::fs::write(d.join("a.txt"), "two\n").unwrap();
    std::fs::write(d.join(".env"), "TOKEN=secret\n").unwrap();
    let dirty = git_state(d);
    assert!(dirty.dirty);
    assert_eq!(dirty.changed, ["a.txt"]);
    let diff = dirty.diff.unwrap();
    assert!(diff.contains("-one") && diff.contains("+two"), "{diff}");
    // Untracked files are named with their sizes, never copied.
    assert!(!diff.contains("secret"), "an untracked file's contents leaked into the diff: {diff}");
    assert_eq!(dirty.untracked.len(), 1);
    assert_eq!((dirty.untracked[0].path.as_str(), dirty.untracked[0].bytes), (".env", 13));
    assert!(!dirty.diff_truncated);
    let first_hash = dirty.diff_hash.clone().unwrap();
    // Another patch, another hash: two dirty trees are told apart.
    std::fs::write(d.join("a.txt"), "three\n").unwrap();
    assert_ne!(git_state(d).diff_hash.unwrap(), first_hash);
}

/// A patch longer than the limit is cut and says so; a 4 MB untracked file adds
/// nothing but its name and size.
#[test]
fn the_recorded_patch_is_capped_and_untracked_contents_never_copied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::write(d.join("big.txt"), "x\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "first"]);
    let line = "y".repeat(99) + "\n";
    std::fs::write(d.join("big.txt"), line.repeat(5000)).unwrap();
    std::fs::write(d.join("data.bin"), vec![7u8; 4 << 20]).unwrap();
    let s = git_state(d);
    assert!(s.diff_truncated);
    let diff = s.diff.unwrap();
    assert!(diff.len() <= geosr::runs::manifest::DIFF_LIMIT, "{}", diff.len());
    assert_eq!(s.untracked.iter().map(|u| (u.path.as_str(), u.bytes)).collect::<Vec<_>>(), [("data.bin", 4 << 20)]);
}

#[test]
fn outside_a_repository_there_is_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = git_state(dir.path());
    assert!(s.commit.is_none() && !s.dirty);
}

#[test]
fn a_run_lock_is_exclusive_and_released_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path(), "quick", "a-s0-0123456789");
    assert!(!run.is_locked());
    let held = run.try_lock().unwrap().expect("free lock");
    assert!(run.is_locked());
    assert!(run.try_lock().unwrap().is_none(), "a second holder is refused");
    drop(held);
    assert!(!run.is_locked());
    assert!(run.try_lock().unwrap().is_some());
}

/// A binary built from one source, run in that checkout after an edit, says so; run
/// in another folder (a research repository of its own), it does not compare.
#[test]
fn a_binary_built_from_other_source_than_the_checkout_is_flagged() {
    use geosr::runs::manifest::source_mismatch;
    use geosr::runs::source::source_hash;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "pub fn a() {}\n").unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\n").unwrap();
    let built = source_hash(dir.path()).unwrap();
    assert_eq!(source_mismatch(dir.path(), &built, dir.path()), None);
    std::fs::write(dir.path().join("src/lib.rs"), "pub fn b() {}\n").unwrap();
    let warning = source_mismatch(dir.path(), &built, dir.path()).expect("an edit after the build is flagged");
    assert!(warning.contains(&built) && warning.contains("rebuild"), "{warning}");
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(source_mismatch(dir.path(), &built, elsewhere.path()), None);
    // Only the files that make the binary count: a README edit changes nothing.
    let edited = source_hash(dir.path()).unwrap();
    assert_ne!(edited, built);
    std::fs::write(dir.path().join("README.md"), "x").unwrap();
    assert_eq!(source_hash(dir.path()).unwrap(), edited);
}

/// The training fingerprint moves with the code between a config and its scores and
/// stands still when only reporting code changes; the whole-source one moves with both.
#[test]
fn the_training_fingerprint_ignores_reporting_code_only() {
    use geosr::runs::source::{source_hash, training_hash};
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("src/model/mod.rs", "pub fn a() {}\n");
    write("src/report/plot/canvas.rs", "pub fn p() {}\n");
    write("src/cli/report.rs", "pub fn t() {}\n");
    write("src/cli/run.rs", "pub fn r() {}\n");
    let (source, training) = (source_hash(dir.path()).unwrap(), training_hash(dir.path()).unwrap());
    write("src/report/plot/canvas.rs", "pub fn p() { /* wider title */ }\n");
    write("src/cli/report.rs", "pub fn t() { /* a note */ }\n");
    assert_ne!(source_hash(dir.path()).unwrap(), source);
    assert_eq!(training_hash(dir.path()).unwrap(), training, "a plot or table edit trains nothing differently");
    write("src/cli/run.rs", "pub fn r() { /* threads */ }\n");
    let after_run = training_hash(dir.path()).unwrap();
    assert_ne!(after_run, training, "the code that launches a run counts");
    write("src/model/mod.rs", "pub fn b() {}\n");
    assert_ne!(training_hash(dir.path()).unwrap(), after_run, "the model counts");
    // A file named like a reporting one elsewhere is not exempt.
    write("src/model/report.rs", "x");
    assert_ne!(training_hash(dir.path()).unwrap(), after_run);
}
