//! What a key may do: IAM-style Allow statements over `execute-api`
//! actions and API Gateway ARNs, with `*` and `?` wildcards as IAM has them.

/// The action for `$connect` (and any route) invocation.
pub const INVOKE: &str = "execute-api:Invoke";
/// The action for the `@connections` management API.
pub const MANAGE_CONNECTIONS: &str = "execute-api:ManageConnections";

/// One Allow statement: an action and a resource, each a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub action: String,
    pub resource: String,
}

impl Allow {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Allow {
        Allow {
            action: action.into(),
            resource: resource.into(),
        }
    }
}

/// A key's permissions; empty allows nothing. As in IAM, an explicit
/// deny wins over any allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow: Vec<Allow>,
    /// The action and resource pairs of Deny statements.
    pub deny: Vec<Allow>,
}

impl Policy {
    /// Everything: the key wsgate generates for a session.
    pub fn allow_all() -> Policy {
        Policy {
            allow: vec![Allow::new("*", "*")],
            deny: Vec::new(),
        }
    }

    /// Whether `action` on `resource` is allowed. Actions compare without
    /// case (as IAM's), resources with.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let matching = |a: &Allow| {
            wildcard_match_ignore_case(&a.action, action) && wildcard_match(&a.resource, resource)
        };
        self.allow.iter().any(matching) && !self.deny.iter().any(matching)
    }
}

/// The ARN API Gateway gives an invocation: route keys (`$connect`) and
/// management paths (`POST/@connections/<id>`) follow the stage.
pub fn execute_api_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    rest: &str,
) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{rest}")
}

/// IAM's wildcard match: `*` any run of characters, `?` exactly one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    matches(pattern, text, |p, t| p == t)
}

/// The same, with ASCII letters compared without case (IAM's actions).
pub fn wildcard_match_ignore_case(pattern: &str, text: &str) -> bool {
    matches(pattern, text, |p, t| p.eq_ignore_ascii_case(&t))
}

/// Greedy match with backtracking to the last `*`: linear in practice,
/// never exponential. Positions are byte offsets at character
/// boundaries, so nothing is copied (it runs on every signed call).
fn matches(pattern: &str, text: &str, same: impl Fn(char, char) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in the text its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while let Some(t) = text[ti..].chars().next() {
        match pattern[pi..].chars().next() {
            // A last `*` takes whatever is left (`*` alone allows all).
            Some('*') if pi + 1 == pattern.len() => return true,
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(p) if p == '?' || same(p, t) => {
                pi += p.len_utf8();
                ti += t.len_utf8();
                continue;
            }
            _ => {}
        }
        let Some((star_pi, star_ti)) = star else {
            return false;
        };
        // The `*` takes one more character; the rest is tried again.
        let taken = text[star_ti..].chars().next().map_or(1, char::len_utf8);
        pi = star_pi + 1;
        ti = star_ti + taken;
        star = Some((star_pi, ti));
    }
    pattern[pi..].chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "arn:aws:execute-api:x"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(wildcard_match(
            "*/POST/@connections/*",
            "api/prod/POST/@connections/x="
        ));
        assert!(!wildcard_match(
            "*/POST/@connections/*",
            "api/prod/GET/@connections/x="
        ));
        assert!(wildcard_match("**a", "bba"));
        // A `*` in the text is text: the pattern's `*` still spans it.
        assert!(wildcard_match("*a", "*ba"));
        assert!(!wildcard_match("a", "*"));
        // `?` is one character, however many bytes it takes.
        assert!(wildcard_match("a?c", "aéc"));
        assert!(wildcard_match("é*", "éà"));
        assert!(!wildcard_match("a?c", "aéèc"));
        assert!(wildcard_match("*?", "é"));
        assert!(!wildcard_match("?", ""));
        assert!(wildcard_match_ignore_case(
            "Execute-API:*",
            "execute-api:Invoke"
        ));
        assert!(!wildcard_match("Execute-API:*", "execute-api:Invoke"));
    }

    /// The obvious recursive matcher, exponential but plainly right.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match (pattern.first(), text.first()) {
            (None, _) => text.is_empty(),
            (Some('*'), _) => {
                reference(&pattern[1..], text)
                    || (!text.is_empty() && reference(pattern, &text[1..]))
            }
            (Some(p), Some(t)) if *p == '?' || p == t => reference(&pattern[1..], &text[1..]),
            _ => false,
        }
    }

    #[test]
    fn wildcards_agree_with_the_reference_on_every_short_string() {
        let alphabet = ['a', 'b', '*', '?', 'é'];
        let strings = |max: usize| {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        };
        let (patterns, texts) = (strings(4), strings(4));
        for pattern in &patterns {
            let p: Vec<char> = pattern.chars().collect();
            for text in &texts {
                let t: Vec<char> = text.chars().collect();
                assert_eq!(
                    wildcard_match(pattern, text),
                    reference(&p, &t),
                    "{pattern:?} against {text:?}"
                );
            }
        }
    }

    #[test]
    fn policy_matches_actions_without_case_and_resources_with() {
        let arn = execute_api_arn(
            "us-east-1",
            "000000000000",
            "abc",
            "prod",
            "POST/@connections/id",
        );
        let policy = Policy {
            allow: vec![Allow::new(
                "execute-api:manageconnections",
                "arn:aws:execute-api:*:*:abc/*/POST/@connections/*",
            )],
            deny: Vec::new(),
        };
        assert!(policy.allows(MANAGE_CONNECTIONS, &arn));
        assert!(!policy.allows(INVOKE, &arn));
        assert!(!policy.allows(MANAGE_CONNECTIONS, &arn.replace("abc/", "ABC/")));
        assert!(!Policy::default().allows(MANAGE_CONNECTIONS, &arn));
        assert!(Policy::allow_all().allows(INVOKE, &arn));
        let any_action = Policy {
            allow: vec![Allow::new("execute-api:*", "*")],
            deny: Vec::new(),
        };
        assert!(any_action.allows(INVOKE, &arn));
        let denied = Policy {
            allow: vec![Allow::new("*", "*")],
            deny: vec![Allow::new(
                "execute-api:Manage*",
                "arn:aws:execute-api:*:*:abc/*",
            )],
        };
        assert!(!denied.allows(MANAGE_CONNECTIONS, &arn));
        assert!(denied.allows(INVOKE, &arn));
    }
}
