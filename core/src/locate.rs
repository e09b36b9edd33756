//! Finds the line of a field in a block-style YAML document, so that errors
//! found after parsing (a missing file, an undefined template variable) can
//! still point at a line. Best effort: flow-style collections (`{a: 1}`) are
//! located as a whole; when a path cannot be followed to the end, the line of
//! the deepest part found is returned.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Entry<'s> {
    line: usize,
    indent: usize,
    text: &'s str,
}

fn entries(src: &str) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    for (n, raw) in src.lines().enumerate() {
        let mut text = raw.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - text.len();
        // "- key: v" is a list item whose first key sits two columns deeper.
        while text == "-" || text.starts_with("- ") {
            out.push(Entry {
                line: n + 1,
                indent,
                text: "-",
            });
            let rest = text[1..].trim_start();
            indent += text.len() - rest.len();
            text = rest;
            if text.is_empty() {
                break;
            }
        }
        if !text.is_empty() {
            out.push(Entry {
                line: n + 1,
                indent,
                text,
            });
        }
    }
    out
}

fn is_key(text: &str, key: &str) -> bool {
    fn unquoted<'t>(t: &'t str, key: &str) -> Option<&'t str> {
        for q in ['"', '\''] {
            if let Some(r) = t
                .strip_prefix(q)
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix(q))
            {
                return Some(r);
            }
        }
        t.strip_prefix(key)
    }
    match unquoted(text, key) {
        Some(rest) => rest.starts_with(':'),
        None => false,
    }
}

/// 1-based line of `path` in `src`, or of the deepest prefix of it that exists.
pub fn locate(src: &str, path: &[Seg<'_>]) -> Option<usize> {
    let es = entries(src);
    let (mut lo, mut hi) = (0usize, es.len());
    let mut found = None;
    for seg in path {
        if lo >= hi {
            break;
        }
        let child_indent = es[lo].indent;
        let mut count = 0usize;
        let mut hit = None;
        for (i, e) in es.iter().enumerate().take(hi).skip(lo) {
            if e.indent != child_indent {
                continue;
            }
            let matched = match seg {
                Seg::Key(k) => is_key(e.text, k),
                Seg::Index(want) => {
                    let item = e.text == "-";
                    if item && count == *want {
                        true
                    } else {
                        count += usize::from(item);
                        false
                    }
                }
            };
            if matched {
                hit = Some(i);
                break;
            }
        }
        let Some(i) = hit else { break };
        found = Some(es[i].line);
        let end = es
            .iter()
            .enumerate()
            .skip(i + 1)
            .take(hi - i - 1)
            // A key's list items may sit at the key's own indent ("key:\n- a").
            .find(|(_, e)| {
                e.indent < child_indent || (e.indent == child_indent && (e.text != "-" || es[i].text == "-"))
            })
            .map_or(hi, |(j, _)| j);
        lo = i + 1;
        hi = end;
    }
    found
}

/// Parses a path such as `prompts[1].user` into segments.
pub fn parse_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else { break };
            if let Ok(i) = r[..close].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[close + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\nmodels:\n  - id: a\n    backend: sim\n  - id: b\n    params:\n      temperature: 1\nprompts:\n- name: p\n  user: |\n    hello {{ query }}\nconditions: [{name: c}]\n";

    #[test]
    fn finds_nested_keys_and_list_items() {
        assert_eq!(locate(DOC, &parse_path("name")), Some(1));
        assert_eq!(locate(DOC, &parse_path("models[0].backend")), Some(4));
        assert_eq!(locate(DOC, &parse_path("models[1]")), Some(5));
        assert_eq!(locate(DOC, &parse_path("models[1].id")), Some(5));
        assert_eq!(locate(DOC, &parse_path("models[1].params.temperature")), Some(7));
        assert_eq!(locate(DOC, &parse_path("prompts[0].user")), Some(10));
    }

    #[test]
    fn falls_back_to_the_deepest_part_found() {
        assert_eq!(locate(DOC, &parse_path("conditions[0].name")), Some(12));
        assert_eq!(locate(DOC, &parse_path("models[7].id")), Some(2));
        assert_eq!(locate(DOC, &parse_path("nothing")), None);
    }
}
