//! `report.md`: the document as GitHub-flavoured Markdown. Charts are linked as
//! `charts/<id>.svg` (written next to it); flagged rows show their ⚠ warnings in a column.

use super::document::{Block, Document, Table};

/// Render the document as Markdown.
pub fn render(doc: &Document) -> String {
    let mut out = format!("# {}\n\n", doc.title);
    for b in &doc.summary {
        block(&mut out, b);
    }
    out.push_str("Contents: ");
    out.push_str(
        &doc.sections
            .iter()
            .map(|s| format!("[{}](#{})", s.title, anchor(&s.title)))
            .collect::<Vec<_>>()
            .join(" · "),
    );
    out.push_str("\n\n");
    for s in &doc.sections {
        out.push_str(&format!("## {}\n\n", s.title));
        for b in &s.blocks {
            block(&mut out, b);
        }
    }
    out
}

/// GitHub's heading anchor: lower case, spaces to dashes, punctuation dropped.
fn anchor(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn block(out: &mut String, b: &Block) {
    match b {
        Block::Text(t) => {
            out.push_str(t);
            out.push_str("\n\n");
        }
        Block::Warning(t) => {
            out.push_str(&format!("> **⚠ Warning:** {t}\n\n"));
        }
        Block::Heading(h) => out.push_str(&format!("### {h}\n\n")),
        Block::List(items) => {
            for i in items {
                out.push_str(&format!("- {i}\n"));
            }
            out.push('\n');
        }
        Block::Table(t) => table(out, t),
        Block::Charts(charts) => {
            for c in charts {
                out.push_str(&format!("![{}](charts/{}.svg)\n", c.title, c.id));
            }
            out.push('\n');
        }
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(out: &mut String, t: &Table) {
    out.push_str(&format!(
        "| {} |\n",
        t.header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    out.push_str(&format!(
        "|{}|\n",
        (0..t.header.len())
            .map(|i| if t.numeric.get(i).copied().unwrap_or(false) {
                "---:"
            } else {
                "---"
            })
            .collect::<Vec<_>>()
            .join("|")
    ));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if let Some(src) = &t.source {
        out.push_str(&format!(
            "\n<sub>Table: `tables/{src}.csv` / `tables/{src}.parquet`</sub>\n"
        ));
    }
    out.push('\n');
}
