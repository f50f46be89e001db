//! Shell-style brace expansion of shard patterns, as the `braceexpand` package used by WebDataset
//! does it: `{000..099}` numeric ranges (zero-padded when an end is), `{a,b}` lists, nesting.

use crate::{Error, Result};

/// Every string `pattern` stands for, in order.
pub(crate) fn expand(pattern: &str) -> Result<Vec<String>> {
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(Error::Source(format!("unbalanced `}}` in shard pattern `{pattern}`")));
        }
        return Ok(vec![pattern.to_owned()]);
    };
    let mut depth = 0;
    let mut close = None;
    for (i, ch) in pattern[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| Error::Source(format!("unbalanced `{{` in shard pattern `{pattern}`")))?;
    let (head, body, tail) = (&pattern[..open], &pattern[open + 1..close], &pattern[close + 1..]);
    let tails = expand(tail)?;
    let mut out = Vec::new();
    let Some(choices) = alternatives(body)? else {
        // `{x}` with no comma or range is literal, as in bash and braceexpand.
        return Ok(tails.iter().map(|rest| format!("{head}{{{body}}}{rest}")).collect());
    };
    for alternative in choices {
        for middle in expand(&alternative)? {
            for rest in &tails {
                out.push(format!("{head}{middle}{rest}"));
            }
        }
    }
    Ok(out)
}

/// The choices inside one pair of braces: a numeric range or a top-level comma list; `None` when
/// the braces are literal.
fn alternatives(body: &str) -> Result<Option<Vec<String>>> {
    if let Some((lo, hi)) = body.split_once("..")
        && let (Ok(a), Ok(b)) = (lo.parse::<i64>(), hi.parse::<i64>())
    {
        let padded = |s: &str| s.trim_start_matches('-').len() > 1 && s.trim_start_matches('-').starts_with('0');
        let width = if padded(lo) || padded(hi) { lo.len().max(hi.len()) } else { 0 };
        let count = a.abs_diff(b) + 1;
        if count > 10_000_000 {
            return Err(Error::Source(format!("shard range {{{body}}} has {count} entries")));
        }
        let values: Vec<i64> = if a <= b { (a..=b).collect() } else { (b..=a).rev().collect() };
        return Ok(Some(values.into_iter().map(|v| format!("{v:0width$}")).collect()));
    }
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in body.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(body[start..i].to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(body[start..].to_owned());
    Ok((parts.len() > 1).then_some(parts))
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges_lists_and_nesting() {
        assert_eq!(expand("s-{000..002}.tar").unwrap(), ["s-000.tar", "s-001.tar", "s-002.tar"]);
        assert_eq!(expand("{8..10}").unwrap(), ["8", "9", "10"]);
        assert_eq!(expand("{a,b{1..2}}/x").unwrap(), ["a/x", "b1/x", "b2/x"]);
        assert_eq!(expand("{0..1}{a,b}").unwrap(), ["0a", "0b", "1a", "1b"]);
        assert_eq!(expand("{3..1}").unwrap(), ["3", "2", "1"]);
        assert_eq!(expand("plain.tar").unwrap(), ["plain.tar"]);
        assert_eq!(expand("{x}").unwrap(), ["{x}"]);
        assert!(expand("bad{0..2").is_err());
        assert!(expand("bad}").is_err());
    }
}
