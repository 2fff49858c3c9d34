//! Sweeps as a user runs them: several runs at once, failures, `kill -9` and a
//! restart, and (where Slurm is installed) a real job array.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::Project;
use predicates::prelude::*;

const TINY: &str = r#"
title = "tiny"
seeds = [0, 1]

[config]
data = { bench = "static", train_size = 64, eval_size = 32, frames = 1, vision_grid = [3, 3], geometry_grid = [2, 2] }
model = { backbone = { preset = "tiny" }, geometry = "vggt", fusion = "gated", mask = { kind = "random", gamma = 0.5, beta = 0.5 } }
train = { steps = 6, batch_size = 8, warmup_steps = 1, lr = 1e-3 }

[[variants]]
label = "a"

[[variants]]
label = "e"
set = { "model.mask.kind" = "none", "model.fusion" = "additive" }
"#;

/// A variant whose loss becomes NaN at once.
const BAD: &str = "\n[[variants]]\nlabel = \"bad\"\nset = { \"train.lr\" = 1e30 }\n";

fn geosr(p: &Project) -> Command {
    let mut c = Command::cargo_bin("geosr").unwrap();
    c.current_dir(p.path());
    c
}

fn run_dirs(p: &Project) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(p.path().join("results/runs/tiny"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn status_of(run: &Path) -> Option<String> {
    let bytes = std::fs::read(run.join("manifest.json")).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    m["status"].as_str().map(str::to_string)
}

/// Every file under `dir`, for finding leftovers of interrupted writes.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Whether a run has a complete checkpoint (a `checkpoint/step-<n>/` folder).
fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoint"))
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("step-")))
        .unwrap_or(false)
}

#[test]
fn a_parallel_sweep_runs_each_run_once_and_a_second_sweep_skips_them() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p)
        .args(["sweep", "tiny", "--jobs", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4 to run").and(predicate::str::contains("[4/4] done")));
    let dirs = run_dirs(&p);
    assert_eq!(dirs.len(), 4);
    for d in &dirs {
        assert_eq!(status_of(d).as_deref(), Some("done"), "{}", d.display());
        assert!(d.join("log.txt").exists(), "each child writes its own log");
    }
    let before: Vec<Vec<u8>> = dirs.iter().map(|d| std::fs::read(d.join("eval.csv")).unwrap()).collect();
    geosr(&p).args(["sweep", "tiny", "--jobs", "2"]).assert().success().stdout(predicate::str::contains("4 done").and(predicate::str::contains("0 to run")));
    let after: Vec<Vec<u8>> = dirs.iter().map(|d| std::fs::read(d.join("eval.csv")).unwrap()).collect();
    assert_eq!(before, after);

    // A parallel sweep gives what one run at a time gives.
    let q = Project::new();
    q.write("experiments/tiny.toml", TINY);
    geosr(&q).args(["sweep", "tiny"]).assert().success();
    let serial: Vec<Vec<u8>> = run_dirs(&q).iter().map(|d| std::fs::read(d.join("eval.csv")).unwrap()).collect();
    assert_eq!(before, serial);
}

/// `--variant` (a variant or one row of its sweep) and `--seed` narrow a sweep to those
/// runs; the plain sweep afterwards trains only the rest.
#[test]
fn a_sweep_narrowed_to_rows_and_seeds_trains_only_those() {
    let p = Project::new();
    let text = TINY.to_string() + "\n[sweep.grid]\n\"train.lr\" = [0.001, 0.002]\n";
    p.write("experiments/tiny.toml", &text);
    geosr(&p)
        .args(["sweep", "tiny", "--variant", "a_lr0.002", "--variant", "e", "--seed", "1", "--jobs", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("# tiny (rows a_lr0.002, e; seed 1): 3 runs: 0 done, 0 running or queued, 3 to run"));
    let mut trained: Vec<String> = run_dirs(&p).iter().map(|d| d.file_name().unwrap().to_string_lossy().into_owned()).collect();
    trained.sort();
    let names: Vec<&str> = trained.iter().map(|n| &n[..n.rfind('-').unwrap()]).collect();
    assert_eq!(names, ["a_lr0.002-s1", "e_lr0.001-s1", "e_lr0.002-s1"], "{trained:?}");
    for d in run_dirs(&p) {
        assert_eq!(status_of(&d).as_deref(), Some("done"), "{}", d.display());
    }
    geosr(&p).args(["status", "tiny"]).assert().success().stdout(predicate::str::contains("3 done"));
    geosr(&p).args(["sweep", "tiny", "--seed", "1"]).assert().success().stdout(predicate::str::contains("(seed 1): 4 runs: 3 done, 0 running or queued, 1 to run"));
    // A label or seed the file does not have is refused, naming what there is.
    geosr(&p)
        .args(["sweep", "tiny", "--variant", "a_lr0.003"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--variant a_lr0.003: no variant `a_lr0.003`").and(predicate::str::contains("\"a_lr0.001\"")));
    geosr(&p).args(["sweep", "tiny", "--seed", "7"]).assert().code(2).stderr(predicate::str::contains("--seed 7: expected one of the experiment's seeds [0, 1]"));
    assert_eq!(run_dirs(&p).len(), 4);
}

/// `sweep --controls` trains the file's runs, then each control's, in children that
/// are told the control; `status --control` finds them, and a second sweep has none to do.
#[test]
fn a_sweep_with_controls_trains_every_control_once() {
    let p = Project::new();
    let text = TINY.replace("seeds = [0, 1]", "seeds = [0]") + "\n[[controls]]\nname = \"faster\"\nset = { \"train.lr\" = 0.002 }\n";
    p.write("experiments/tiny.toml", &text);
    geosr(&p)
        .args(["sweep", "tiny", "--controls", "--jobs", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("# control `faster`").and(predicate::str::contains("[2/2] done")));
    // The control's runs are listed apart, under tiny-faster.
    let mut dirs = run_dirs(&p);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let mut control: Vec<PathBuf> = std::fs::read_dir(p.path().join("results/runs/tiny-faster")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(control.len(), 2, "{control:?}");
    dirs.append(&mut control);
    let lrs: Vec<String> = dirs
        .iter()
        .map(|d| {
            assert_eq!(status_of(d).as_deref(), Some("done"), "{}", d.display());
            let config: toml::Table = toml::from_str(&std::fs::read_to_string(d.join("config.toml")).unwrap()).unwrap();
            config["train"]["lr"].to_string()
        })
        .collect();
    // (A key every row reads: a run the control does not change would be shared.)
    assert_eq!(lrs.iter().filter(|g| *g == "0.002").count(), 2, "{lrs:?}");
    geosr(&p).args(["status", "tiny", "--control", "faster"]).assert().success().stdout(predicate::str::contains("2 done"));
    geosr(&p)
        .args(["status", "tiny", "--controls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 runs: 2 done").count(2).and(predicate::str::contains("\n# control `faster`\n")));
    geosr(&p).args(["sweep", "tiny", "--controls"]).assert().success().stdout(predicate::str::contains("0 to run").count(2));
    // `reproduce --controls` trains nothing more and writes the side-by-side view.
    geosr(&p).args(["reproduce", "tiny", "--controls"]).assert().success().stdout(predicate::str::contains("0 to run").count(2));
    let view = std::fs::read_to_string(p.path().join("results/tables/tiny-controls.md")).unwrap();
    assert!(view.lines().any(|l| l.starts_with("| row") && l.contains("| as written") && l.contains("| faster")), "{view}");
    assert_eq!(view.lines().filter(|l| (l.starts_with("| a ") || l.starts_with("| e ")) && !l.contains('–')).count(), 2, "{view}");
}

#[test]
fn a_failing_run_does_not_stop_the_sweep_unless_fail_fast() {
    let p = Project::new();
    // `bad` comes first in the plan, so the others run after it fails.
    let text = TINY.replace("[[variants]]\nlabel = \"a\"", &format!("{}\n[[variants]]\nlabel = \"a\"", BAD.trim()));
    p.write("experiments/tiny.toml", &text);
    geosr(&p)
        .args(["sweep", "tiny", "--fail-fast"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("NaN").and(predicate::str::contains("skipping the remaining 5")));
    assert_eq!(run_dirs(&p).len(), 1, "nothing after the failure started");

    geosr(&p).args(["sweep", "tiny", "--jobs", "2"]).assert().code(1).stderr(predicate::str::contains("2 run(s) failed"));
    let done = run_dirs(&p).iter().filter(|d| status_of(d).as_deref() == Some("done")).count();
    assert_eq!(done, 4, "the good runs all ran");
    geosr(&p)
        .args(["status", "tiny"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4 done, 2 failed").and(predicate::str::contains("loss became NaN at step")));
    // Failed runs are tried again by the next sweep.
    geosr(&p).args(["sweep", "tiny"]).assert().code(1).stdout(predicate::str::contains("2 to run"));
}

/// `geosr sweep tiny --jobs 2` as a child that a test can signal (assert_cmd only waits).
#[cfg(unix)]
fn tiny_sweep(p: &Project) -> std::process::Command {
    let mut sweep = std::process::Command::new(assert_cmd::cargo::cargo_bin("geosr"));
    sweep.args(["sweep", "tiny", "--jobs", "2"]).current_dir(p.path()).stdout(std::process::Stdio::null());
    sweep
}

#[cfg(unix)]
#[test]
fn a_sweep_killed_with_sigkill_finishes_the_rest_and_loses_nothing() {
    use std::os::unix::process::CommandExt;
    let p = Project::new();
    let long = TINY.replace("train = { steps = 6,", "train = { steps = 120, checkpoint_every = 5,");
    p.write("experiments/tiny.toml", &long);
    let mut sweep = tiny_sweep(&p).process_group(0).spawn().unwrap();
    // Wait for a finished run while another is part-way (it has a checkpoint).
    let deadline = Instant::now() + Duration::from_secs(300);
    let finished = loop {
        let dirs = run_dirs(&p);
        let done: Vec<PathBuf> = dirs.iter().filter(|d| status_of(d).as_deref() == Some("done")).cloned().collect();
        let midway = dirs.iter().any(|d| has_checkpoint(d));
        if !done.is_empty() && midway {
            break done;
        }
        assert!(Instant::now() < deadline, "no finished run beside a part-way one");
        std::thread::sleep(Duration::from_millis(5));
    };
    // The sweep and its children, all at once, as a cluster or a user would.
    unsafe { libc::killpg(sweep.id() as i32, libc::SIGKILL) };
    sweep.wait().unwrap();
    // Reaping the sweep does not wait for its children: on a loaded machine a killed
    // run-index process can still hold its run's lock for a moment, and a sweep started
    // then rightly leaves that run to its (dying) owner. Start once every lock is free.
    let deadline = Instant::now() + Duration::from_secs(30);
    while run_dirs(&p).into_iter().any(|d| geosr::runs::RunDir { path: d }.is_locked()) {
        assert!(Instant::now() < deadline, "a killed run still holds its lock after 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kept: Vec<Vec<u8>> = finished.iter().map(|d| std::fs::read(d.join("eval.csv")).unwrap()).collect();

    geosr(&p).args(["sweep", "tiny", "--jobs", "2"]).assert().success();
    let dirs = run_dirs(&p);
    assert_eq!(dirs.len(), 4);
    assert!(dirs.iter().all(|d| status_of(d).as_deref() == Some("done")));
    let again: Vec<Vec<u8>> = finished.iter().map(|d| std::fs::read(d.join("eval.csv")).unwrap()).collect();
    assert_eq!(kept, again, "finished results are untouched");
    let leftovers: Vec<PathBuf> = files(&p.path().join("results"))
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "half-written files: {leftovers:?}");
    for d in &dirs {
        let steps: Vec<u64> = csv::Reader::from_path(d.join("train.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect();
        assert_eq!(steps, (0..120).collect::<Vec<_>>(), "{}: every step once", d.display());
    }
}

/// A sweep killed on its own (its runs not signalled, as `kill PID` or an out-of-memory
/// kill does) takes its runs with it: none trains on as an orphan holding its lock.
#[cfg(target_os = "linux")]
#[test]
fn a_killed_sweep_leaves_no_run_training() {
    let p = Project::new();
    let endless = TINY.replace("train = { steps = 6,", "train = { steps = 1000000,");
    p.write("experiments/tiny.toml", &endless);
    let mut sweep = tiny_sweep(&p).stderr(std::process::Stdio::null()).spawn().unwrap();
    let locked = || run_dirs(&p).into_iter().filter(|d| geosr::runs::RunDir { path: d.clone() }.is_locked()).count();
    let deadline = Instant::now() + Duration::from_secs(300);
    while locked() < 2 {
        assert!(Instant::now() < deadline, "two runs never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(sweep.id() as i32, libc::SIGKILL) };
    sweep.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while locked() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let orphans = kill_processes_naming(p.path());
    assert_eq!(orphans, 0, "{orphans} run(s) still training 30 s after their sweep was killed");
}

/// Kills every process whose command line names `dir` and says how many there were.
#[cfg(target_os = "linux")]
fn kill_processes_naming(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(&needle) && pid != std::process::id() as i32 {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed += 1;
        }
    }
    killed
}

#[test]
fn run_index_refuses_a_run_that_changed_since_submission() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p)
        .args(["run-index", "tiny", "--index", "0", "--expect-id", "0123456789"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("0123456789 was submitted"));
    geosr(&p).args(["run-index", "tiny", "--index", "9"]).assert().code(2).stderr(predicate::str::contains("has 4 runs"));
    assert!(!p.path().join("results").exists(), "nothing written");
}

/// Whether this machine has no Slurm client, said on stderr (the Slurm tests skip).
fn no_slurm() -> bool {
    let missing = std::process::Command::new("sbatch").arg("--version").output().is_err();
    if missing {
        eprintln!("skipped: no sbatch on PATH (run .ci/slurm-up.sh for a one-node cluster)");
    }
    missing
}

/// Against the real Slurm that `.ci/run` starts (`.ci/slurm-up.sh`); skipped on
/// machines without a Slurm client.
#[test]
fn a_slurm_job_array_runs_the_sweep_and_its_table_reads_back() {
    if no_slurm() {
        return;
    }
    let p = Project::new();
    p.write("experiments/tiny.toml", &format!("{TINY}{BAD}"));
    geosr(&p)
        .args(["sweep", "tiny", "--launcher", "slurm", "--array-parallelism", "2", "--time", "0:10:00"])
        .assert()
        .success()
        .stdout(predicate::str::contains("submitted job array"));
    let script = files(&p.path().join("results/slurm/tiny")).into_iter().find(|f| f.extension().is_some_and(|e| e == "sbatch")).unwrap();
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --array=0,1,2,3,4,5%2"), "{text}");
    assert!(text.contains("%A_%a.out"));

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out = geosr(&p).args(["status", "tiny"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("4 done, 2 failed") {
            assert!(text.contains("NaN") && text.contains("slurm"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the array did not finish:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }
    geosr(&p)
        .args(["table", "tiny", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\na,").and(predicate::str::contains("\ne,")));
    // A second submission contains only the failed runs.
    let out = geosr(&p).args(["sweep", "tiny", "--launcher", "slurm"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && text.contains("2 to run"), "{text}");
    let job = text.split("submitted job array ").nth(1).and_then(|t| t.split_whitespace().next()).unwrap();
    let _ = std::process::Command::new("scancel").arg(job).status();
    let subs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("results/slurm/tiny/submissions.json")).unwrap()).unwrap();
    assert_eq!(subs.as_array().unwrap().len(), 2);
    assert_eq!(subs[1]["tasks"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["4", "5"]);
}

/// A Slurm sweep into a shared store (`--store`): the script exports it, every task
/// trains into it, and the working folder's own store stays empty.
#[test]
fn a_slurm_sweep_trains_into_the_shared_store() {
    if no_slurm() {
        return;
    }
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY.replace("seeds = [0, 1]", "seeds = [0]"));
    let shared = tempfile::tempdir().unwrap();
    let store = shared.path().canonicalize().unwrap();
    geosr(&p).args(["sweep", "tiny", "--launcher", "slurm", "--time", "0:10:00", "--store"]).arg(&store).assert().success();
    let script = files(&p.path().join("results/slurm/tiny")).into_iter().find(|f| f.extension().is_some_and(|e| e == "sbatch")).unwrap();
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains(&format!("export GEOSR_STORE={}", store.display())), "{text}");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out = geosr(&p).args(["status", "tiny", "--store"]).arg(&store).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("2 done") {
            break;
        }
        assert!(Instant::now() < deadline, "the array did not finish:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 2);
    assert!(!p.path().join("results/store").exists());
}

/// `sweep --controls` on Slurm: one array per condition, submitted in the same second,
/// each with its own script, the control's tasks told their control.
#[test]
fn a_slurm_sweep_with_controls_submits_one_array_per_control() {
    if no_slurm() {
        return;
    }
    let p = Project::new();
    let text = TINY.replace("seeds = [0, 1]", "seeds = [0]") + "\n[[controls]]\nname = \"faster\"\nset = { \"train.lr\" = 0.002 }\n";
    p.write("experiments/tiny.toml", &text);
    let out = geosr(&p).args(["sweep", "tiny", "--controls", "--launcher", "slurm", "--time", "0:10:00"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("submitted job array").count(), 2, "{stdout}");
    assert!(stdout.contains("geosr status tiny --control faster"), "{stdout}");
    // Each condition keeps its scripts and logs in its own folder.
    let scripts: Vec<String> = ["tiny", "tiny-faster"]
        .iter()
        .flat_map(|name| files(&p.path().join("results/slurm").join(name)))
        .filter(|f| f.extension().is_some_and(|e| e == "sbatch"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(scripts.len(), 2);
    assert_eq!(scripts.iter().filter(|s| s.contains("--control faster")).count(), 1);
    let deadline = Instant::now() + Duration::from_secs(600);
    for args in [vec!["status", "tiny"], vec!["status", "tiny", "--control", "faster"]] {
        loop {
            let text = String::from_utf8_lossy(&geosr(&p).args(&args).output().unwrap().stdout).to_string();
            if text.contains("2 done") {
                break;
            }
            assert!(Instant::now() < deadline, "{args:?}: the array did not finish:\n{text}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A pool starts the runs seed by seed, in the file's seed order, so a sweep stopped
/// early leaves every variant on the same seeds; within a seed the most work first, so a
/// round does not end on a long run with the other cores idle.
#[test]
fn runs_start_seed_by_seed_and_the_longest_first_within_a_seed() {
    let p = Project::new();
    p.write(
        "experiments/mixed.toml",
        &common::tiny_experiment(
            "[7, 3]",
            "steps = 4",
            "[[variants]]\nlabel = \"short\"\n[[variants]]\nlabel = \"long\"\nset = { \"train.steps\" = 40 }\n\
             [[variants]]\nlabel = \"wide\"\nset = { \"train.steps\" = 40, \"model.backbone.width\" = 64, \"model.backbone.heads\" = 4 }\n",
        ),
    );
    let (_, plan) = common::plan_in(&p, "mixed");
    let all: Vec<usize> = (0..plan.len()).collect();
    let order: Vec<String> =
        geosr::launch::sweep::run_order(&plan, &all).iter().map(|&i| format!("{} {}", plan[i].label, plan[i].seed)).collect();
    assert_eq!(order, ["wide 7", "long 7", "short 7", "wide 3", "long 3", "short 3"]);
}
