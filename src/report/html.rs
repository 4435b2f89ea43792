//! `report.html`: the document as one self-contained HTML page. The stylesheet is inline, the
//! charts are inline SVG, and nothing refers to another file or the network, so the page opens
//! from a mail attachment or an air-gapped machine alike. There is no script.

use super::document::{Block, Document, Table};

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; line-height: 1.45; }
main { max-width: 1320px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { margin-top: 0.2em; }
h2 { border-bottom: 2px solid #3b6ea8; padding-bottom: 0.2em; margin-top: 2.2em; }
h3 { margin-top: 1.6em; font-size: 1.05em; }
nav { font-size: 0.92em; margin: 1em 0 1.5em; }
nav a { margin-right: 1em; white-space: nowrap; }
code { background: #f0f0f0; padding: 0 0.25em; border-radius: 3px; font-size: 0.92em; }
.warning { border-left: 5px solid #c43c3c; background: #fdf0f0; padding: 0.6em 1em;
           margin: 1em 0; }
.warning strong { color: #a02020; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.88em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left;
         vertical-align: top; }
th { background: #f2f5f9; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { white-space: normal; }
td { overflow-wrap: anywhere; }
td:last-child { min-width: 12em; }
tr.flagged td { background: #fff4e5; }
.source { font-size: 0.8em; color: #666; margin-top: 0.3em; }
.charts { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; margin: 1em 0; }
figure.chart { margin: 0; max-width: 100%; }
figure.chart svg { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
";

/// Escape text for HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Escape text, turning `backtick spans` into `<code>`.
fn inline(s: &str) -> String {
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

/// Render the document as a self-contained HTML page.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(&doc.title)));
    out.push_str(&format!(
        "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    ));
    out.push_str(&format!("<h1>{}</h1>\n", escape(&doc.title)));
    for b in &doc.summary {
        block(&mut out, b);
    }
    out.push_str("<nav>");
    for s in &doc.sections {
        out.push_str(&format!(
            "<a href=\"#{}\">{}</a>",
            escape(&s.id),
            escape(&s.title)
        ));
    }
    out.push_str("</nav>\n");
    for s in &doc.sections {
        out.push_str(&format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n",
            escape(&s.id),
            escape(&s.title)
        ));
        for b in &s.blocks {
            block(&mut out, b);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn block(out: &mut String, b: &Block) {
    match b {
        Block::Text(t) => out.push_str(&format!("<p>{}</p>\n", inline(t))),
        Block::Warning(t) => out.push_str(&format!(
            "<div class=\"warning\" role=\"alert\"><strong>⚠ Warning:</strong> {}</div>\n",
            inline(t)
        )),
        Block::Heading(h) => out.push_str(&format!("<h3>{}</h3>\n", inline(h))),
        Block::List(items) => {
            out.push_str("<ul>\n");
            for i in items {
                out.push_str(&format!("<li>{}</li>\n", inline(i)));
            }
            out.push_str("</ul>\n");
        }
        Block::Table(t) => table(out, t),
        Block::Charts(charts) => {
            out.push_str("<div class=\"charts\">\n");
            for c in charts {
                out.push_str(&format!(
                    "<figure class=\"chart\" id=\"{}\" aria-label=\"{}\">\n{}\n</figure>\n",
                    escape(&c.id),
                    escape(&c.title),
                    strip_xml_prolog(&c.svg)
                ));
            }
            out.push_str("</div>\n");
        }
    }
}

fn strip_xml_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn table(out: &mut String, t: &Table) {
    let num = |i: usize| t.numeric.get(i).copied().unwrap_or(false);
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
    for (i, h) in t.header.iter().enumerate() {
        out.push_str(&format!(
            "<th{}>{}</th>",
            if num(i) { " class=\"num\"" } else { "" },
            escape(h)
        ));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (r, row) in t.rows.iter().enumerate() {
        let flagged = t.flagged.get(r).copied().unwrap_or(false);
        out.push_str(if flagged {
            "<tr class=\"flagged\">"
        } else {
            "<tr>"
        });
        for (i, c) in row.iter().enumerate() {
            out.push_str(&format!(
                "<td{}>{}</td>",
                if num(i) { " class=\"num\"" } else { "" },
                inline(c)
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
    if let Some(src) = &t.source {
        out.push_str(&format!(
            "<div class=\"source\">Table: <code>tables/{0}.csv</code> / <code>tables/{0}.parquet</code></div>\n",
            escape(src)
        ));
    }
}
