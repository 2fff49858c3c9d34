//! Runs that outlive the machine: `archive` and `import` (round trip, damage, conflicts),
//! a store shared by two working folders, and the generated blocks of `geosr docs`.
//! Runs here train for real (tiny, about a second each).

mod common;

use std::path::{Path, PathBuf};

use common::{geosr_in, tiny_experiment, Project};

/// A two-row experiment (a: gated fusion, b: additive) over two seeds, claiming a > b.
fn tiny(p: &Project) {
    let tables = "[[variants]]\nlabel = \"a\"\n[[variants]]\nlabel = \"b\"\nset = { \"model.fusion\" = \"additive\" }\n";
    let text = tiny_experiment("[0, 1]", "steps = 4", tables).replacen("title = \"tiny\"", "title = \"tiny\"\nclaims = [\"a > b\"]", 1);
    p.write("experiments/tiny.toml", &text);
}

fn ok(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir` (following the store's layout), path -> bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A trained project and its archive.
fn trained() -> (Project, PathBuf) {
    let p = Project::new();
    tiny(&p);
    ok(geosr_in(p.path()).args(["sweep", "tiny"]));
    let out = ok(geosr_in(p.path()).args(["archive", "tiny"]));
    assert!(out.contains("archived 4 run(s) to results/archive/tiny.parquet"), "{out}");
    let archive = p.path().join("results/archive/tiny.parquet");
    (p, archive)
}

/// A fresh project with the same experiment and the archive copied in.
fn clone_of(archive: &Path) -> Project {
    let q = Project::new();
    tiny(&q);
    std::fs::create_dir_all(q.path().join("results/archive")).unwrap();
    std::fs::copy(archive, q.path().join("results/archive/tiny.parquet")).unwrap();
    q
}

#[test]
fn an_archive_restores_runs_whose_tables_and_claims_are_byte_identical() {
    let (p, archive) = trained();
    let bytes = std::fs::read(&archive).unwrap();
    // Deterministic: the same runs give the same file.
    ok(geosr_in(p.path()).args(["archive", "tiny", "--out", "again.parquet"]));
    assert_eq!(std::fs::read(p.path().join("again.parquet")).unwrap(), bytes, "archiving twice gave other bytes");

    let q = clone_of(&archive);
    let out = ok(geosr_in(q.path()).arg("import"));
    assert!(out.contains("4 run(s): 4 imported, 0 already in the store, 0 conflict(s)"), "{out}");
    for args in [&["table", "tiny", "--format", "md"][..], &["table", "tiny"], &["runs", "--format", "csv"], &["status", "tiny"]] {
        let here = ok(geosr_in(p.path()).args(args));
        let there = ok(geosr_in(q.path()).args(args));
        assert_eq!(here, there, "`geosr {}` differs after the round trip", args.join(" "));
    }
    let table = ok(geosr_in(q.path()).args(["table", "tiny", "--format", "md"]));
    assert!(table.contains("| a > b |") && table.contains("2/2"), "claims over both seeds:\n{table}");
    // What scores a run is restored bit for bit.
    let store = |x: &Project| -> Vec<(PathBuf, Vec<u8>)> {
        tree(&x.path().join("results/store")).into_iter().filter(|(f, _)| ["eval.csv", "predictions.csv", "config.toml", "manifest.json"].iter().any(|n| f.ends_with(n))).collect()
    };
    assert_eq!(store(&p), store(&q));
    // Each run is linked under its experiment as sweeping it would.
    assert_eq!(std::fs::read_dir(q.path().join("results/runs/tiny")).unwrap().count(), 4);

    // A second import changes nothing.
    let before = tree(&q.path().join("results"));
    let out = ok(geosr_in(q.path()).arg("import"));
    assert!(out.contains("0 imported, 4 already in the store"), "{out}");
    assert_eq!(tree(&q.path().join("results")), before);

    // And a sweep there has nothing left to train.
    let out = ok(geosr_in(q.path()).args(["sweep", "tiny"]));
    assert!(out.contains("0 to run"), "{out}");
}

#[test]
fn a_truncated_or_edited_archive_is_refused_naming_the_run_and_nothing_is_written() {
    let (_p, archive) = trained();
    let bytes = std::fs::read(&archive).unwrap();
    let runs = geosr::archive::read(&archive).unwrap();

    // Cut short.
    let q = clone_of(&archive);
    let copy = q.path().join("results/archive/tiny.parquet");
    std::fs::write(&copy, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = geosr_in(q.path()).arg("import").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tiny.parquet") && err.contains("cut short"), "{err}");
    assert!(!q.path().join("results/store").exists(), "nothing may be written");

    // One score changed, its sha256 column brought up to date (as a script editing the
    // file with pandas would): the run's manifest still has the old hash.
    let mut edited = runs.clone();
    let eval = edited[1].files.get_mut("eval.csv").unwrap();
    let at = eval.iter().rposition(u8::is_ascii_digit).unwrap();
    eval[at] = if eval[at] == b'9' { b'8' } else { eval[at] + 1 };
    geosr::archive::write(&copy, &edited).unwrap();
    let out = geosr_in(q.path()).arg("import").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("run {}", edited[1].run_id)) && err.contains("eval.csv"), "{err}");
    assert!(!q.path().join("results/store").exists(), "nothing may be written");

    // Bytes flipped inside the file: refused whatever they hit.
    for at in [bytes.len() / 5, bytes.len() / 2] {
        let mut flipped = bytes.clone();
        for b in &mut flipped[at..at + 8] {
            *b ^= 0x5a;
        }
        std::fs::write(&copy, &flipped).unwrap();
        let out = geosr_in(q.path()).arg("import").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "flipped at {at}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!q.path().join("results/store").exists());
    }
}

#[test]
fn a_run_the_store_holds_with_other_results_is_a_conflict_and_is_kept() {
    let (_p, archive) = trained();
    let q = clone_of(&archive);
    ok(geosr_in(q.path()).arg("import"));
    let run = &geosr::archive::read(&archive).unwrap()[0];
    let eval = q.path().join("results/store").join(&run.run_id).join("eval.csv");
    let mine = b"subtask,score\nmine,1\n";
    std::fs::write(&eval, mine).unwrap();
    let out = geosr_in(q.path()).arg("import").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("conflict: run {}", run.run_id)) && err.contains("eval.csv"), "{err}");
    assert_eq!(std::fs::read(&eval).unwrap(), mine, "the store's copy must be kept");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 imported, 3 already in the store, 1 conflict(s)"), "{stdout}");
}

/// Two working folders (two people, or two Slurm nodes) sweep one experiment at once
/// into one store: every run is trained once, and both see all of them.
#[test]
fn two_processes_on_one_shared_store_train_each_run_once() {
    let shared = tempfile::tempdir().unwrap();
    let (a, b) = (Project::new(), Project::new());
    tiny(&a);
    tiny(&b);
    let start = |p: &Project| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("geosr"))
            .current_dir(p.path())
            .args(["sweep", "tiny", "-j", "2", "--store"])
            .arg(shared.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (start(&a), start(&b));
    for child in [ca, cb] {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
        assert!(!stderr.contains("is not read"), "GEOSR_STORE is not a config variable to warn about: {stderr}");
    }
    let runs: Vec<PathBuf> = std::fs::read_dir(shared.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    for run in &runs {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["status"], "done", "{}", run.display());
        assert_eq!(m["attempts"].as_array().unwrap().len(), 1, "{} was trained more than once: {}", run.display(), m["attempts"]);
    }
    assert!(!a.path().join("results/store").exists() && !b.path().join("results/store").exists(), "runs belong in the shared store");
    // Both folders see every run, done, from the shared store.
    for p in [&a, &b] {
        let status = ok(geosr_in(p.path()).args(["status", "tiny", "--store"]).arg(shared.path()));
        assert!(status.contains("4 done"), "{status}");
    }
}

#[test]
fn docs_blocks_are_written_from_the_runs_and_a_changed_digit_fails_the_check() {
    let (p, _) = trained();
    let doc = "# Results\n\nWhat tiny gives:\n\n<!-- geosr: table tiny --format md -->\n<!-- /geosr -->\n\nThe figure:\n<!-- geosr: plot tiny --out docs/figures -->\n<!-- /geosr -->\n";
    p.write("docs/results.md", doc);
    let check = |p: &Project| geosr_in(p.path()).args(["docs", "--check", "docs/results.md"]).output().unwrap();
    // Empty blocks differ from what the runs give.
    assert_eq!(check(&p).status.code(), Some(1));
    let out = ok(geosr_in(p.path()).args(["docs", "docs/results.md"]));
    assert!(out.contains("2 of 2 generated block(s)"), "{out}");
    let text = std::fs::read_to_string(p.path().join("docs/results.md")).unwrap();
    let table = ok(geosr_in(p.path()).args(["table", "tiny", "--format", "md"]));
    assert!(text.contains(table.trim_end()), "the block holds the table:\n{text}");
    assert!(text.contains("![tiny](figures/tiny.svg)") && p.path().join("docs/figures/tiny.svg").is_file(), "{text}");
    let out = check(&p);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // One digit of the table changed by hand.
    let start = text.find("| a ").unwrap();
    let at = start + text[start..].find(|c: char| c.is_ascii_digit()).unwrap();
    let digit = text.as_bytes()[at];
    let mut edited = text.clone().into_bytes();
    edited[at] = if digit == b'9' { b'8' } else { digit + 1 };
    std::fs::write(p.path().join("docs/results.md"), &edited).unwrap();
    let out = check(&p);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("docs/results.md:5: `geosr table tiny --format md` differs"), "{stdout}");
    assert!(stdout.contains("1 of 2"), "{stdout}");

    // A figure edited by hand is named too; `docs` puts both back.
    std::fs::write(p.path().join("docs/results.md"), &text).unwrap();
    std::fs::write(p.path().join("docs/figures/tiny.svg"), "<svg/>").unwrap();
    let stdout = String::from_utf8_lossy(&check(&p).stdout).into_owned();
    let line = text.lines().position(|l| l.contains("geosr: plot")).unwrap() + 1;
    assert!(stdout.contains(&format!("docs/results.md:{line}: `geosr plot tiny --out docs/figures` draws a figure that differs")), "{stdout}");
    ok(geosr_in(p.path()).args(["docs", "docs/results.md"]));
    assert!(check(&p).status.success());
}

/// The repository's own docs: every generated block in README.md and docs/*.md is what
/// the committed archive gives, so no number in them lacks a stored run behind it.
#[test]
fn the_repository_docs_match_the_committed_archive() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = tempfile::tempdir().unwrap();
    let geosr = || {
        let mut c = geosr_in(root);
        c.env("GEOSR_OUTPUT__RESULTS_DIR", results.path()).env("GEOSR_STORE", results.path().join("store"));
        c
    };
    let archives: Vec<PathBuf> = std::fs::read_dir(root.join("results/archive"))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "parquet")).collect())
        .unwrap_or_default();
    if !archives.is_empty() {
        ok(geosr().arg("import").arg("--results").arg(results.path()).args(&archives));
    }
    let out = geosr().args(["docs", "--check"]).output().unwrap();
    assert!(
        out.status.success(),
        "generated blocks differ from the archive (run `geosr import && geosr docs`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
