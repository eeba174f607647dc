//! The keys wsgate accepts: configured or generated long-term keys, and the
//! short-lived session keys issued to function instances (revoked when the
//! instance ends).

use super::policy::Policy;
use base64::Engine;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

/// The account every ARN names (a local gateway has no AWS account).
pub const ACCOUNT_ID: &str = "000000000000";

/// Who signed a request, as `requestContext.identity` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub access_key: String,
    pub caller: String,
    pub user: String,
    pub user_arn: String,
}

/// One accepted key.
#[derive(Debug)]
pub struct Key {
    pub secret_access_key: String,
    /// Set for session keys: requests must carry this token.
    pub session_token: Option<String>,
    pub caller: Caller,
    pub policy: Policy,
}

/// An access key with its secret (and token, for a session).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

#[derive(Debug, Default)]
pub struct Keyring {
    keys: RwLock<HashMap<String, Arc<Key>>>,
}

impl Keyring {
    pub fn get(&self, access_key_id: &str) -> Option<Arc<Key>> {
        self.keys
            .read()
            .expect("keyring lock poisoned")
            .get(access_key_id)
            .cloned()
    }

    /// Adds a long-term key for an IAM user called `user`.
    pub fn insert_user(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        user: &str,
        policy: Policy,
    ) {
        self.insert_key(access_key_id, secret_access_key, None, user, policy);
    }

    /// Adds a key (a session's, with its token) for the user `user`.
    pub fn insert_key(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        user: &str,
        policy: Policy,
    ) {
        let key = Key {
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
            caller: Caller {
                account_id: ACCOUNT_ID.into(),
                access_key: access_key_id.into(),
                caller: principal_id("AIDA", user),
                user: principal_id("AIDA", user),
                user_arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{user}"),
            },
            policy,
        };
        self.keys
            .write()
            .expect("keyring lock poisoned")
            .insert(access_key_id.to_string(), Arc::new(key));
    }

    /// Stops accepting a key (one a config reload no longer lists).
    pub fn remove(&self, access_key_id: &str) {
        self.keys
            .write()
            .expect("keyring lock poisoned")
            .remove(access_key_id);
    }

    /// Generates a long-term key allowed everything: what `wsgate serve`
    /// creates when the config names no credentials.
    pub fn generate_user(&self, user: &str) -> Credentials {
        let access_key_id = format!("AKIA{}", random_text(KEY_ALPHABET, 16));
        let secret_access_key = random_text(SECRET_ALPHABET, 40);
        self.insert_user(
            &access_key_id,
            &secret_access_key,
            user,
            Policy::allow_all(),
        );
        Credentials {
            access_key_id,
            secret_access_key,
            session_token: None,
        }
    }

    /// Issues session credentials for `role` (a function); they are valid
    /// until the returned lease is dropped.
    pub fn issue_session(self: &Arc<Self>, role: &str, policy: Policy) -> SessionLease {
        let access_key_id = format!("ASIA{}", random_text(KEY_ALPHABET, 16));
        let mut token = [0u8; 96];
        rand::rng().fill_bytes(&mut token);
        let credentials = Credentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: random_text(SECRET_ALPHABET, 40),
            session_token: Some(base64::engine::general_purpose::STANDARD.encode(token)),
        };
        let role_id = principal_id("AROA", role);
        let key = Key {
            secret_access_key: credentials.secret_access_key.clone(),
            session_token: credentials.session_token.clone(),
            caller: Caller {
                account_id: ACCOUNT_ID.into(),
                access_key: access_key_id.clone(),
                caller: format!("{role_id}:{role}"),
                user: format!("{role_id}:{role}"),
                user_arn: format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}-role/{role}"),
            },
            policy,
        };
        self.keys
            .write()
            .expect("keyring lock poisoned")
            .insert(access_key_id, Arc::new(key));
        SessionLease {
            credentials,
            keyring: Arc::downgrade(self),
        }
    }
}

/// Session credentials, revoked when dropped.
#[derive(Debug)]
pub struct SessionLease {
    pub credentials: Credentials,
    keyring: Weak<Keyring>,
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        if let Some(keyring) = self.keyring.upgrade() {
            keyring
                .keys
                .write()
                .expect("keyring lock poisoned")
                .remove(&self.credentials.access_key_id);
        }
    }
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_text(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.next_u32() as usize % alphabet.len()] as char)
        .collect()
}

/// A stable, IAM-shaped unique id (`AIDA...`, `AROA...`) for a name.
fn principal_id(prefix: &str, name: &str) -> String {
    let id = crate::ids::api_id_for(name).to_ascii_uppercase();
    format!(
        "{prefix}{id}{}",
        crate::ids::api_id_for(&format!("{name}/")).to_ascii_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_revoked_when_the_lease_drops() {
        let keyring = Arc::new(Keyring::default());
        let lease = keyring.issue_session("Api-connect", Policy::default());
        let id = lease.credentials.access_key_id.clone();
        assert!(id.starts_with("ASIA") && id.len() == 20);
        let key = keyring.get(&id).expect("issued");
        assert_eq!(key.session_token, lease.credentials.session_token);
        assert_eq!(
            key.caller.user_arn,
            "arn:aws:sts::000000000000:assumed-role/Api-connect-role/Api-connect"
        );
        drop(lease);
        assert!(keyring.get(&id).is_none());
    }

    #[test]
    fn generated_users_may_do_anything() {
        let keyring = Keyring::default();
        let creds = keyring.generate_user("wsgate");
        assert!(creds.access_key_id.starts_with("AKIA"));
        assert_eq!(creds.secret_access_key.len(), 40);
        let key = keyring.get(&creds.access_key_id).unwrap();
        assert!(key.policy.allows("execute-api:ManageConnections", "arn:x"));
        assert_eq!(key.caller.user_arn, "arn:aws:iam::000000000000:user/wsgate");
    }
}
