//! Where each key of a TOML document is written. Routes, authorizers and
//! the domain are read as plain values and checked afterwards, which loses
//! their spans; this index gives every problem its key's own line back.

use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub struct KeyLines<'i> {
    root: Option<DeTable<'i>>,
}

impl<'i> KeyLines<'i> {
    /// Indexes `source`; a document that does not parse has no keys (its
    /// parse error already carries a line).
    pub fn new(source: &'i str) -> KeyLines<'i> {
        KeyLines {
            root: DeTable::parse(source).ok().map(Spanned::into_inner),
        }
    }

    /// The span of the key at a dotted path such as `routes.$default.timeout`
    /// or `credentials[0].user`. Keys may themselves contain dots: the
    /// longest key that matches is taken at each level.
    pub fn key_span(&self, path: &str) -> Option<Range<usize>> {
        let mut table = self.root.as_ref()?;
        let segments: Vec<&str> = path.split('.').collect();
        let mut rest = &segments[..];
        loop {
            let (taken, key, index) = (1..=rest.len()).rev().find_map(|n| {
                let joined = rest[..n].join(".");
                let (name, index) = split_index(&joined);
                table
                    .get_key_value(name)
                    .map(|(k, v)| (n, (k.span(), v), index))
            })?;
            let (key_span, value) = key;
            let value = match index {
                None => value,
                Some(i) => value.get_ref().as_array()?.get(i)?,
            };
            rest = &rest[taken..];
            if rest.is_empty() {
                return Some(match index {
                    // An array of tables' entry is found at its header.
                    Some(_) => value.span(),
                    None => key_span,
                });
            }
            table = value.get_ref().as_table()?;
        }
    }

    /// The dotted path of the innermost key whose value contains `span`.
    /// Every table is searched: a `[header]` table's own span is only its
    /// header, not the lines under it.
    pub fn key_containing(&self, span: &Range<usize>) -> Option<String> {
        find_in_table(self.root.as_ref()?, span)
    }
}

fn holds(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn find_in_table(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let inner = find_in_value(value, span);
        let here = holds(key.span(), span) || holds(value.span(), span);
        match inner {
            Some(rest) => Some(format!("{}{rest}", key.get_ref())),
            None => here.then(|| key.get_ref().to_string()),
        }
    })
}

/// The rest of the path below a value (".user", "[1].user"), if `span` is
/// inside one of its entries.
fn find_in_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => find_in_table(table, span).map(|rest| format!(".{rest}")),
        DeValue::Array(items) => {
            items
                .iter()
                .enumerate()
                .find_map(|(i, item)| match find_in_value(item, span) {
                    Some(rest) => Some(format!("[{i}]{rest}")),
                    None => holds(item.span(), span).then(|| format!("[{i}]")),
                })
        }
        _ => None,
    }
}

/// `credentials[2]` → (`credentials`, Some(2)).
fn split_index(segment: &str) -> (&str, Option<usize>) {
    if let Some(open) = segment.rfind('[')
        && let Some(index) = segment[open + 1..]
            .strip_suffix(']')
            .and_then(|i| i.parse().ok())
    {
        return (&segment[..open], Some(index));
    }
    (segment, None)
}

/// "did you mean `listen`?" for a key that is one edit or two from a known one.
pub fn suggestion<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), k))
        .filter(|(distance, k)| *distance <= 2.min(k.len() / 2).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name = \"x\"\n[routes.\"$default\"]\nurl = \"http://a\"\ntimeout = 10\n\n[[credentials]]\naccess_key_id = \"A\"\n\n[[credentials]]\nuser = \"u\"\n[domain]\nname = \"a.b\"\n\ndns = true\n";

    fn line(span: Range<usize>) -> usize {
        DOC[..span.start].matches('\n').count() + 1
    }

    #[test]
    fn finds_each_keys_own_line() {
        let keys = KeyLines::new(DOC);
        let at = |p: &str| keys.key_span(p).map(line);
        assert_eq!(at("routes.$default.timeout"), Some(4));
        assert_eq!(at("routes.$default"), Some(2));
        assert_eq!(at("credentials[1].user"), Some(10));
        assert_eq!(at("credentials[1]"), Some(9));
        assert_eq!(at("domain.dns"), Some(14));
        assert_eq!(at("domain.cert"), None);
        assert_eq!(at("credentials[7].user"), None);
    }

    #[test]
    fn names_the_key_whose_value_holds_a_span() {
        let keys = KeyLines::new(DOC);
        let ten = DOC.find("10").unwrap();
        assert_eq!(
            keys.key_containing(&(ten..ten + 2)).as_deref(),
            Some("routes.$default.timeout")
        );
        let user = DOC.find("\"u\"").unwrap();
        assert_eq!(
            keys.key_containing(&(user..user + 3)).as_deref(),
            Some("credentials[1].user")
        );
    }

    #[test]
    fn suggests_only_near_misses() {
        let known = ["name", "listen", "routes", "stage"];
        assert_eq!(suggestion("lisen", known), Some("listen"));
        assert_eq!(suggestion("route", known), Some("routes"));
        assert_eq!(suggestion("nme", known), Some("name"));
        assert_eq!(suggestion("banana", known), None);
    }
}
