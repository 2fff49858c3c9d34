//! `docs`: rewrite the generated blocks of README.md and docs/*.md from the stored runs,
//! or (`--check`) say which no longer match them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use geosr::report::docs::{self, Block};

use super::exit::Usage;

#[derive(clap::Args)]
pub struct DocsArgs {
    /// Markdown files whose blocks to regenerate (default: README.md and docs/*.md).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write nothing: exit 1, naming each block whose text (or figure) differs from what
    /// the stored runs give now.
    #[arg(long)]
    check: bool,
}

pub fn docs(args: DocsArgs) -> Result<ExitCode> {
    let files = if args.files.is_empty() { default_files()? } else { args.files.clone() };
    let exe = std::env::current_exe()?;
    let scratch = tempfile::tempdir()?;
    let (mut stale, mut total) = (Vec::new(), 0);
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        let blocks = docs::blocks(path, &text).map_err(|e| Usage(e.to_string()))?;
        let mut bodies = Vec::new();
        for (n, block) in blocks.iter().enumerate() {
            let figures = scratch.path().join(format!("{n}"));
            let generated = generate(&exe, path, block, args.check.then_some(figures.as_path()))?;
            if generated.body != block.body || !generated.figures_match {
                stale.push(format!("{}:{}: `{}` {}", path.display(), block.line, block.command(), generated.what_differs(block)));
            }
            bodies.push(generated.body);
        }
        total += blocks.len();
        if !args.check {
            let new = docs::splice(&text, &blocks, &bodies);
            if new != text {
                geosr::runs::write_atomic(path, new.as_bytes())?;
            }
        }
    }
    if args.check {
        if stale.is_empty() {
            println!("{total} generated block(s) in {} file(s) match the stored runs", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for line in &stale {
            println!("{line}");
        }
        println!("{} of {total} generated block(s) differ from the stored runs; `geosr docs` rewrites them", stale.len());
        return Ok(ExitCode::from(1));
    }
    println!("{} of {total} generated block(s) in {} file(s) rewritten", stale.len(), files.len());
    Ok(ExitCode::SUCCESS)
}

/// README.md and the Markdown files of docs/, those that exist.
fn default_files() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if Path::new("README.md").is_file() {
        files.push("README.md".into());
    }
    if let Ok(entries) = std::fs::read_dir("docs") {
        let mut md: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")).collect();
        md.sort();
        files.extend(md);
    }
    if files.is_empty() {
        return Err(Usage("no README.md or docs/*.md here; run from the repository's root or name the files".into()).into());
    }
    Ok(files)
}

struct Generated {
    body: String,
    /// Whether every figure the block draws is, byte for byte, the one the document's
    /// folder holds (always true when writing).
    figures_match: bool,
}

impl Generated {
    fn what_differs(&self, block: &Block) -> &'static str {
        if self.body != block.body {
            "differs from the stored runs"
        } else {
            "draws a figure that differs from the one committed"
        }
    }
}

/// Runs a block's command. A `plot` block draws into its `--out` folder (into
/// `check_dir` instead when checking, to compare) and its body links the SVGs.
fn generate(exe: &Path, doc: &Path, block: &Block, check_dir: Option<&Path>) -> Result<Generated> {
    let at = || format!("{}:{}", doc.display(), block.line);
    let mut args = block.args.clone();
    let plot = args.first().is_some_and(|a| a == "plot");
    let mut out_dir = None;
    if plot {
        let i = args.iter().position(|a| a == "--out").filter(|i| i + 1 < args.len()).ok_or_else(|| {
            Usage(format!("{}: a plot block needs `--out DIR` (a tracked folder such as docs/figures) for its figure", at()))
        })?;
        out_dir = Some(PathBuf::from(&args[i + 1]));
        if let Some(dir) = check_dir {
            args[i + 1] = dir.display().to_string();
        }
    }
    let output = std::process::Command::new(exe).args(&args).output()?;
    if !output.status.success() {
        return Err(anyhow!(
            "{}: `{}` exited {}: {}",
            at(),
            block.command(),
            output.status.code().map_or("by a signal".into(), |c| c.to_string()),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(out_dir) = out_dir else {
        let markdown = args.windows(2).any(|w| w[0] == "--format" && w[1] == "md") || args.iter().any(|a| a == "--format=md");
        return Ok(Generated { body: docs::body(&block.command(), &stdout, markdown), figures_match: true });
    };
    // `plot` says `wrote PATH` for each file; the SVG is what the document shows.
    let mut links = String::new();
    let mut figures_match = true;
    for written in stdout.lines().filter_map(|l| l.strip_prefix("wrote ")).map(PathBuf::from) {
        let name = written.file_name().ok_or_else(|| anyhow!("{}: plot wrote {}", at(), written.display()))?;
        let committed = out_dir.join(name);
        if check_dir.is_some() && written.extension().is_some_and(|x| x == "svg") {
            figures_match &= std::fs::read(&written).ok() == std::fs::read(&committed).ok();
        }
        if committed.extension().is_some_and(|x| x == "svg") {
            let doc_dir = doc.parent().unwrap_or(Path::new(""));
            let link = relative(doc_dir, &committed);
            let stem = committed.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            links.push_str(&format!("![{stem}]({link})\n"));
        }
    }
    Ok(Generated { body: docs::body(&block.command(), &links, true), figures_match })
}

/// `target` as a link from a document in `from` (both relative to the working folder).
fn relative(from: &Path, target: &Path) -> String {
    let from: Vec<_> = from.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    let to: Vec<_> = target.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), from.len() - common).collect();
    parts.extend(to[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}
