//! Faults that could corrupt a stored result: a process killed at any rename of a
//! run's files, a full disk, a status check racing a sweep for a run's lock, and a
//! store damaged by hand. A run must end either done with the same results an
//! unbroken run gives, or not done, and never lose a finished result.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::Project;
use predicates::prelude::*;

/// 30 steps with a checkpoint every 5: five checkpoints and 19 renames in all.
static LONG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| common::tiny_experiment("[0]", "steps = 30, checkpoint_every = 5", "[[variants]]\nlabel = \"a\"\n"));

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("geosr")
}

fn geosr(dir: &Path) -> Command {
    common::geosr_in(dir)
}

/// The one run folder of experiment `tiny` under `results`.
fn the_run(results: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(results.join("runs/tiny")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap()
}

fn status(run: &Path) -> Option<String> {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).ok()?).ok()?;
    m["status"].as_str().map(str::to_string)
}

/// Every file under `dir` whose name marks an unfinished write.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") || name.starts_with(".partial-") || name.contains("-partial") {
            out.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(leftovers(&path));
        }
    }
    out
}

/// eval.csv of an unbroken run of `LONG`.
fn reference_eval() -> Vec<u8> {
    let p = Project::new();
    p.write("experiments/tiny.toml", &LONG);
    geosr(p.path()).args(["run", "tiny"]).assert().success();
    std::fs::read(the_run(&p.path().join("results")).join("eval.csv")).unwrap()
}

/// Kills the run at each rename it makes (the checkpoints' and every result
/// file's), then runs it again: it must end done with the unbroken run's eval.csv.
#[test]
fn a_run_killed_at_any_rename_resumes_to_the_same_result() {
    if std::process::Command::new("strace").arg("-V").output().is_err() {
        panic!("this test needs strace (apt-get install strace), which .ci/run installs");
    }
    let reference = reference_eval();
    // Renames go through rename(2) (links, checkpoint folders) and renameat(2) (files).
    let count = |syscall: &str| {
        let p = Project::new();
        p.write("experiments/tiny.toml", &LONG);
        let trace = p.path().join("trace.txt");
        let ok = std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", &format!("trace={syscall}"), "-o"])
            .arg(&trace)
            .arg(bin())
            .args(["run", "tiny"])
            .current_dir(p.path())
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok);
        std::fs::read_to_string(&trace).unwrap().lines().filter(|l| l.contains(&format!("{syscall}("))).count()
    };
    let mut killed = 0;
    for syscall in ["rename", "renameat"] {
        let n = count(syscall);
        assert!(n >= 5, "{syscall}: {n} calls");
        for when in 1..=n {
            let p = Project::new();
            p.write("experiments/tiny.toml", &LONG);
            let out = std::process::Command::new("strace")
                .args(["-f", "-qq", "-o", "/dev/null", "-e", &format!("trace={syscall}"), "-e", &format!("inject={syscall}:signal=KILL:when={when}")])
                .arg(bin())
                .args(["run", "tiny"])
                .current_dir(p.path())
                .output()
                .unwrap();
            killed += usize::from(!out.status.success());
            geosr(p.path()).args(["run", "tiny"]).assert().success();
            let run = the_run(&p.path().join("results"));
            assert_eq!(status(&run).as_deref(), Some("done"), "{syscall} #{when}");
            let eval = std::fs::read(run.join("eval.csv")).unwrap();
            assert!(eval == reference, "killed at {syscall} #{when}: another result:\n{}", String::from_utf8_lossy(&eval));
            assert!(leftovers(&p.path().join("results")).is_empty(), "{syscall} #{when}: {:?}", leftovers(&p.path().join("results")));
        }
    }
    assert!(killed >= 15, "only {killed} runs were killed");
}

/// Runs on a 6 MiB tmpfs filled to leave a little room: whatever the room, a run
/// that could not finish ends failed (or, when not even its manifest fits, shows as
/// interrupted) with no half-written files, a sweep goes on to its next run, and
/// once space is freed the same command finishes with the unbroken run's result.
#[test]
fn a_full_disk_fails_the_run_cleanly_and_a_rerun_gets_it_right() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs this test as root)");
        return;
    }
    let reference = reference_eval();
    let mount = tempfile::tempdir().unwrap();
    let mnt = mount.path();
    let mounted = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"]).arg(mnt).output().unwrap();
    if !mounted.status.success() {
        // A container without the capability to mount, even as root.
        eprintln!("skipped: mount refused: {}", String::from_utf8_lossy(&mounted.stderr));
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt);
    let free = || {
        // SAFETY: statvfs fills the struct we pass for a valid, NUL-terminated path.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let c = std::ffi::CString::new(mnt.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
        s.f_bavail as u64 * s.f_frsize as u64
    };
    let two = format!("{}\n[[variants]]\nlabel = \"b\"\nset = {{ \"model.mask.gamma\" = 0.6 }}\n", *LONG);
    let mut outcomes = Vec::new();
    for room_kib in [8u64, 64, 200, 400, 700, 1200, 2000] {
        let p = Project::new();
        p.write("experiments/tiny.toml", &two);
        let results = mnt.join(format!("r{room_kib}"));
        std::fs::create_dir_all(&results).unwrap();
        let filler = mnt.join("filler");
        std::fs::write(&filler, vec![0u8; (free() - room_kib * 1024) as usize]).unwrap();
        let set = format!("output.results_dir={}", results.display());
        let out = geosr(p.path()).args(["sweep", "tiny", "--set", &set]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The sweep went on to the second run after the first one failed.
        assert!(text.contains("[2/2]"), "{room_kib} KiB: the sweep stopped early:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(leftovers(&results).is_empty(), "{room_kib} KiB: {:?}", leftovers(&results));
        let runs: Vec<PathBuf> = std::fs::read_dir(results.join("runs/tiny")).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        for run in &runs {
            let s = status(run);
            assert!(matches!(s.as_deref(), Some("failed" | "done" | "running") | None), "{room_kib} KiB: {s:?}");
            if s.as_deref() == Some("running") {
                // Only when not even the failed manifest fitted: the lock is free, so it shows as interrupted.
                geosr(p.path()).args(["status", "tiny", "--set", &set]).assert().success().stdout(predicate::str::contains("interrupted"));
            }
        }
        let states: Vec<Option<String>> = runs.iter().map(|r| status(r)).collect();
        outcomes.push((room_kib, out.status.code(), states));
        std::fs::remove_file(&filler).unwrap();
        geosr(p.path()).args(["sweep", "tiny", "--set", &set]).assert().success();
        let run_a = std::fs::read_dir(results.join("runs/tiny")).unwrap().map(|e| e.unwrap().path()).find(|r| r.file_name().unwrap().to_string_lossy().starts_with("a-")).unwrap();
        assert_eq!(std::fs::read(run_a.join("eval.csv")).unwrap(), reference, "{room_kib} KiB: another result after the disk was freed");
        std::fs::remove_dir_all(&results).unwrap();
    }
    eprintln!("free KiB, exit code, run states: {outcomes:?}");
    assert!(outcomes.iter().any(|(_, code, _)| *code != Some(0)), "the disk was never full: {outcomes:?}");
}

/// A status check asks whether a run is locked without taking the lock, so a sweep
/// starting the run at that instant never finds it taken by the checker. The race runs
/// in a process of its own: the other tests here start processes, and a child forked
/// while a lock file is open holds that lock until it execs.
#[test]
fn checking_a_lock_never_takes_it() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_race", "--ignored", "--test-threads=1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "run by checking_a_lock_never_takes_it, in a process of its own"]
fn lock_race() {
    let dir = tempfile::tempdir().unwrap();
    let run = geosr::runs::RunDir { path: dir.path().join("run") };
    drop(run.try_lock().unwrap().expect("free"));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let refused = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = run.is_locked();
            }
        });
        let mut refused = 0;
        for _ in 0..20_000 {
            match run.try_lock().unwrap() {
                Some(lock) => drop(lock),
                None => refused += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        refused
    });
    assert_eq!(refused, 0, "the checker took the lock {refused} times");
}

static TWO: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| common::tiny_experiment("[0, 1]", "steps = 4", "[[variants]]\nlabel = \"a\"\n"));

/// A damaged run (an empty manifest, a garbage row or a NaN in eval.csv, a deleted
/// config.toml) is reported as that run's problem: the table, status and plan go on
/// with the rest, and a sweep trains it again, keeping the damaged files aside.
#[test]
fn a_damaged_run_is_reported_and_trained_again() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("empty manifest", |r| std::fs::write(r.join("manifest.json"), "").unwrap()),
        ("garbage in eval.csv", |r| {
            let mut text = std::fs::read_to_string(r.join("eval.csv")).unwrap();
            text.push_str("obj_count,x,y,z\n");
            std::fs::write(r.join("eval.csv"), text).unwrap();
        }),
        ("NaN in eval.csv", |r| {
            let text = std::fs::read_to_string(r.join("eval.csv")).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
            fields[4] = "NaN".into();
            lines[1] = fields.join(",");
            std::fs::write(r.join("eval.csv"), lines.join("\n") + "\n").unwrap();
        }),
        ("no config.toml", |r| std::fs::remove_file(r.join("config.toml")).unwrap()),
    ];
    for (what, damage) in damages {
        let p = Project::new();
        p.write("experiments/tiny.toml", &TWO);
        geosr(p.path()).args(["sweep", "tiny"]).assert().success();
        let runs: Vec<PathBuf> = {
            let mut r: Vec<PathBuf> = std::fs::read_dir(p.path().join("results/runs/tiny")).unwrap().map(|e| e.unwrap().path()).collect();
            r.sort();
            r
        };
        damage(&runs[0]);
        let table = geosr(p.path()).args(["table", "tiny"]).assert().success().get_output().stdout.clone();
        let table = String::from_utf8(table).unwrap();
        assert!(!table.lines().any(|l| l.contains('|') && l.contains("NaN")), "{what}: a NaN cell: {table}");
        assert!(table.contains("skipped a seed 0") && table.contains("| 1/2 "), "{what}: {table}");
        geosr(p.path()).args(["status", "tiny"]).assert().success().stdout(predicate::str::contains("damaged").and(predicate::str::contains("1 done")));
        geosr(p.path()).args(["plan", "tiny"]).assert().success();
        geosr(p.path()).args(["sweep", "tiny"]).assert().success().stdout(predicate::str::contains("1 to run"));
        assert_eq!(status(&runs[0]).as_deref(), Some("done"), "{what}");
        let history: Vec<PathBuf> = std::fs::read_dir(runs[0].join("history")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(history.len(), 1, "{what}: the damaged files are kept aside");
        geosr(p.path()).args(["status", "tiny"]).assert().success().stdout(predicate::str::contains("2 done"));
    }
}
