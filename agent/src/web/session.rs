//! Who may press the page's buttons: a login with the token of `[web] token_file`, a session
//! cookie, and a CSRF token for every POST.
//!
//! - The token is compared in constant time (over SHA-256 digests, so its length does not leak
//!   either); a wrong one costs the caller a second, which makes guessing over the network slow.
//! - A session is 32 random bytes in a cookie that scripts cannot read (`HttpOnly`) and other
//!   sites cannot send (`SameSite=Strict`), kept in memory only: a restart logs everyone out.
//! - Its CSRF token (32 other random bytes) is handed to the page's script, which sends it as
//!   `X-CSRF-Token` with every POST; a form on another site cannot know it.
//!
//! Pure apart from the random source, so the rules are unit-tested here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "dockhand_session";

/// How long a login lasts: one working shift and then some.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// More sessions than this and the oldest goes: a script logging in in a loop cannot grow memory.
const MAX_SESSIONS: usize = 64;

/// Why a request may not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("actions are off: set [web] token_file in the config to enable them")]
    ActionsOff,
    #[error("not logged in (or the session expired): log in with the gateway's web token")]
    NotLoggedIn,
    #[error("the request has no valid CSRF token: reload the page and try again")]
    BadCsrf,
}

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// The logged-in sessions of one daemon.
#[derive(Debug)]
pub(crate) struct Sessions {
    /// `None`: no token configured, the page is read-only.
    token_digest: Option<[u8; 32]>,
    sessions: Mutex<HashMap<String, Session>>,
    random: SystemRandom,
}

/// A session just opened: the cookie value and the CSRF token for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    pub(crate) id: String,
    pub(crate) csrf: String,
}

impl Sessions {
    /// `token`: the configured web token, `None` for a read-only page.
    pub(crate) fn new(token: Option<&str>) -> Sessions {
        Sessions { token_digest: token.map(digest), sessions: Mutex::new(HashMap::new()), random: SystemRandom::new() }
    }

    pub(crate) fn actions_enabled(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Opens a session when `offered` is the token.
    pub(crate) fn login(&self, offered: &str) -> Result<Opened, Refusal> {
        let Some(expected) = &self.token_digest else { return Err(Refusal::ActionsOff) };
        if !constant_time_eq(&digest(offered), expected) {
            return Err(Refusal::NotLoggedIn);
        }
        let opened = Opened { id: self.random_hex(), csrf: self.random_hex() };
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(opened.id.clone(), Session { csrf: opened.csrf.clone(), expires: now + SESSION_TTL });
        Ok(opened)
    }

    pub(crate) fn logout(&self, cookie_header: Option<&str>) {
        if let Some(id) = cookie_header.and_then(session_id) {
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        }
    }

    /// The CSRF token of the session named by the request's `Cookie` header, if it is live.
    pub(crate) fn csrf_of(&self, cookie_header: Option<&str>) -> Option<String> {
        let id = cookie_header.and_then(session_id)?;
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(id).filter(|s| s.expires > Instant::now()).map(|s| s.csrf.clone())
    }

    /// Whether a POST with this `Cookie` and `X-CSRF-Token` may act.
    pub(crate) fn authorize(&self, cookie_header: Option<&str>, csrf_header: Option<&str>) -> Result<(), Refusal> {
        if !self.actions_enabled() {
            return Err(Refusal::ActionsOff);
        }
        let csrf = self.csrf_of(cookie_header).ok_or(Refusal::NotLoggedIn)?;
        match csrf_header {
            Some(offered) if constant_time_eq(offered.as_bytes(), csrf.as_bytes()) => Ok(()),
            _ => Err(Refusal::BadCsrf),
        }
    }

    fn random_hex(&self) -> String {
        let mut bytes = [0u8; 32];
        // The system's random source failing is a broken machine; a session id of zeros would
        // be guessable, so refuse to make one rather than carry on.
        self.random.fill(&mut bytes).expect("the system random source works");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The `Set-Cookie` value opening a session; `secure` adds `Secure` (served over HTTPS).
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value ending a session.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id in a `Cookie` header (`a=1; dockhand_session=…`).
fn session_id(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('=')).filter(|v| !v.is_empty())
}

fn digest(text: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal without an early exit, so the time taken says nothing about where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(id: &str) -> String {
        format!("theme=dark; {COOKIE}={id}")
    }

    #[test]
    fn without_a_token_nobody_logs_in_or_acts() {
        let s = Sessions::new(None);
        assert!(!s.actions_enabled());
        assert_eq!(s.login(""), Err(Refusal::ActionsOff));
        assert_eq!(s.authorize(None, None), Err(Refusal::ActionsOff));
    }

    #[test]
    fn the_right_token_opens_a_session_whose_csrf_token_must_come_with_each_post() {
        let s = Sessions::new(Some("s3cret"));
        assert_eq!(s.login("s3cret "), Err(Refusal::NotLoggedIn));
        assert_eq!(s.login("wrong"), Err(Refusal::NotLoggedIn));
        let opened = s.login("s3cret").unwrap();
        assert_eq!(opened.id.len(), 64);
        assert_ne!(opened.id, opened.csrf);
        let c = cookie(&opened.id);
        assert_eq!(s.authorize(Some(&c), Some(&opened.csrf)), Ok(()));
        assert_eq!(s.authorize(Some(&c), None), Err(Refusal::BadCsrf));
        assert_eq!(s.authorize(Some(&c), Some(&opened.id)), Err(Refusal::BadCsrf));
        assert_eq!(s.authorize(None, Some(&opened.csrf)), Err(Refusal::NotLoggedIn));
        assert_eq!(s.authorize(Some(&cookie(&opened.csrf)), Some(&opened.csrf)), Err(Refusal::NotLoggedIn));
        s.logout(Some(&c));
        assert_eq!(s.authorize(Some(&c), Some(&opened.csrf)), Err(Refusal::NotLoggedIn));
    }

    #[test]
    fn logins_in_a_loop_keep_a_bounded_number_of_sessions() {
        let s = Sessions::new(Some("t"));
        let first = s.login("t").unwrap();
        for _ in 0..MAX_SESSIONS * 2 {
            s.login("t").unwrap();
        }
        assert!(s.sessions.lock().unwrap().len() <= MAX_SESSIONS);
        assert_eq!(s.csrf_of(Some(&cookie(&first.id))), None, "the oldest session made room");
    }

    #[test]
    fn cookies_are_http_only_and_same_site_strict() {
        let c = set_cookie("abc", false);
        assert!(c.starts_with("dockhand_session=abc;") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert_eq!(session_id("a=b;dockhand_session=xyz ; c=d"), Some("xyz"));
        assert_eq!(session_id("dockhand_session_old=xyz"), None);
        assert_eq!(session_id("a=b; dockhand_session=xyz"), Some("xyz"));
        assert_eq!(session_id("dockhand_session="), None);
    }
}
