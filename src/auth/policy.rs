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

/// A key's permissions; empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow: Vec<Allow>,
}

impl Policy {
    /// Everything: the key wsgate generates for a session.
    pub fn allow_all() -> Policy {
        Policy {
            allow: vec![Allow::new("*", "*")],
        }
    }

    /// Whether `action` on `resource` is allowed. Actions compare without
    /// case (as IAM's), resources with.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.allow.iter().any(|a| {
            wildcard_match(&a.action.to_ascii_lowercase(), &action.to_ascii_lowercase())
                && wildcard_match(&a.resource, resource)
        })
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
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy match with backtracking to the last `*`: linear in practice,
    // never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
        };
        assert!(policy.allows(MANAGE_CONNECTIONS, &arn));
        assert!(!policy.allows(INVOKE, &arn));
        assert!(!policy.allows(MANAGE_CONNECTIONS, &arn.replace("abc/", "ABC/")));
        assert!(!Policy::default().allows(MANAGE_CONNECTIONS, &arn));
        assert!(Policy::allow_all().allows(INVOKE, &arn));
        let any_action = Policy {
            allow: vec![Allow::new("execute-api:*", "*")],
        };
        assert!(any_action.allows(INVOKE, &arn));
    }
}
