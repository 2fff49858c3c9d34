//! Generated blocks in Markdown documents: a block is a geosr command between markers,
//!
//! ```text
//! <!-- geosr: table table3 --format md -->
//! ...what the command prints, written by `geosr docs`...
//! <!-- /geosr -->
//! ```
//!
//! so a number in the docs comes from the stored runs, and `geosr docs --check` can say
//! which blocks no longer match them. This module finds and splices blocks; running
//! their commands is the command line's job.

use std::path::{Path, PathBuf};

pub const OPEN: &str = "<!-- geosr:";
pub const CLOSE: &str = "<!-- /geosr -->";

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("{}:{line}: {message}", path.display())]
    Malformed { path: PathBuf, line: usize, message: String },
}

/// One generated block of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// 1-based line of the opening marker.
    pub line: usize,
    /// The command's words, without the leading `geosr`.
    pub args: Vec<String>,
    /// The text between the markers, as the document has it now.
    pub body: String,
    /// Byte range of `body` in the document.
    range: std::ops::Range<usize>,
}

impl Block {
    /// The command as the marker gives it.
    pub fn command(&self) -> String {
        format!("geosr {}", shlex::try_join(self.args.iter().map(String::as_str)).unwrap_or_else(|_| self.args.join(" ")))
    }
}

/// Every block of `text` (the document at `path`, named in errors), in order.
pub fn blocks(path: &Path, text: &str) -> Result<Vec<Block>, DocsError> {
    let malformed = |line: usize, message: String| DocsError::Malformed { path: path.to_path_buf(), line, message };
    let mut out = Vec::new();
    let mut offset = 0;
    let mut open: Option<(usize, Vec<String>, usize)> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let number = i + 1;
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(OPEN) {
            if let Some((at, ..)) = &open {
                return Err(malformed(number, format!("a block opens before the one of line {at} is closed with `{CLOSE}`")));
            }
            let inner = rest
                .strip_suffix("-->")
                .ok_or_else(|| malformed(number, format!("expected the marker on one line: `{OPEN} COMMAND -->`")))?;
            let args = shlex::split(inner.trim()).filter(|a| !a.is_empty()).ok_or_else(|| {
                malformed(number, format!("expected a geosr command after `{OPEN}`, e.g. `{OPEN} table table3 --format md -->`"))
            })?;
            open = Some((number, args, offset + line.len()));
        } else if trimmed == CLOSE {
            let Some((at, args, start)) = open.take() else {
                return Err(malformed(number, format!("`{CLOSE}` closes no block")));
            };
            out.push(Block { line: at, args, body: text[start..offset].to_string(), range: start..offset });
        }
        offset += line.len();
    }
    if let Some((at, ..)) = open {
        return Err(malformed(at, format!("this block is never closed: expected `{CLOSE}`")));
    }
    Ok(out)
}

/// `text` with each block's body replaced by the matching entry of `bodies`.
pub fn splice(text: &str, blocks: &[Block], bodies: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (block, body) in blocks.iter().zip(bodies) {
        out.push_str(&text[at..block.range.start]);
        out.push_str(body);
        at = block.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// A command's output as a block body, under a line naming the command (the marker
/// itself does not show once the Markdown is rendered): Markdown as it is (`--format
/// md`, figures), anything else as preformatted text, so terminal tables keep their columns.
pub fn body(command: &str, output: &str, markdown: bool) -> String {
    let output = output.trim_end();
    let caption = format!("<sub>`{command}`</sub>\n\n");
    if output.is_empty() {
        return caption;
    }
    if markdown {
        format!("{caption}{output}\n")
    } else {
        format!("{caption}```text\n{output}\n```\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Results\n\nProse 1.\n<!-- geosr: table table3 --format md -->\nold | table\n<!-- /geosr -->\nProse 2.\n<!-- geosr: runs --where \"metrics.avg > 50\" -->\n<!-- /geosr -->\n";

    #[test]
    fn blocks_are_found_with_their_commands_and_spliced_in_place() {
        let found = blocks(Path::new("doc.md"), DOC).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].line, found[0].args.join(" ")), (4, "table table3 --format md".to_string()));
        assert_eq!(found[0].body, "old | table\n");
        assert_eq!(found[1].args, ["runs", "--where", "metrics.avg > 50"]);
        assert_eq!(found[1].body, "");
        let new = splice(DOC, &found, &["new\n".into(), body(&found[1].command(), "a  b", false)]);
        assert!(new.contains("--format md -->\nnew\n<!-- /geosr -->\nProse 2."), "{new}");
        assert!(new.contains("50\" -->\n<sub>`geosr runs --where 'metrics.avg > 50'`</sub>\n\n```text\na  b\n```\n<!-- /geosr -->\n"), "{new}");
        // Splicing what is there changes nothing.
        let same: Vec<String> = found.iter().map(|b| b.body.clone()).collect();
        assert_eq!(splice(DOC, &found, &same), DOC);
    }

    #[test]
    fn unclosed_nested_and_stray_markers_name_their_line() {
        let err = |text: &str| blocks(Path::new("d.md"), text).unwrap_err().to_string();
        assert!(err("a\n<!-- geosr: table t -->\nx\n").contains("d.md:2: this block is never closed"));
        assert!(err("<!-- geosr: table t -->\n<!-- geosr: table u -->\n").contains("d.md:2: a block opens before"));
        assert!(err("x\n<!-- /geosr -->\n").contains("d.md:2: `<!-- /geosr -->` closes no block"));
        assert!(err("<!-- geosr: -->\n<!-- /geosr -->\n").contains("expected a geosr command"));
        assert!(err("<!-- geosr: table t\n").contains("on one line"));
    }
}
