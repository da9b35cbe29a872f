//! The server side of SASL DIGEST-MD5 (RFC 2831) as ZooKeeper runs it: Java's
//! `DigestMD5Server` for the service `zookeeper` and server name (and realm) `zk-sasl-md5`,
//! qop `auth` only, with users from the JAAS `Server` section (`SaslServerCallbackHandler`).
//!
//! This module owns one connection's negotiation ([`DigestMd5Server`]): the challenge
//! (`realm`, `nonce`, `charset`, `algorithm`; no `qop`, which means auth), the checks of the
//! client's response in Java's order with Java's failure messages (they are logged), the
//! `rspauth` answer, and the authorization id the connection gets (`sasl`, NAME). It is pure:
//! the nonce's random bytes come in as an argument.
//!
//! The same mechanism authenticates servers to each other (`SaslQuorumAuthServer`) as
//! `zookeeper-quorum/zk-quorum-sasl-md5` ([`DigestMd5Server::for_service`] with [`QUORUM`]).
//!
//! Two round trips, as the Java and kazoo clients do them: an empty token (or an initial
//! response, ignored as Java ignores it) → the challenge; the digest response → `rspauth=...`
//! and completion. Any token after that fails (the server is "at illegal state", as Java's is).

use rzk_proto::sasl::{parse_directives, response_value};
use std::collections::BTreeMap;

pub use rzk_proto::sasl::{DigestService, CLIENT_PORT, QUORUM, SERVER_NAME, SERVICE};
/// Java's `DigestMD5Server` refuses longer responses.
pub const RESPONSE_BYTES_MAX: usize = 4096;
/// Bytes of randomness in a nonce (Java: 30, base64-encoded to 40 characters).
pub const NONCE_RAW_BYTES: usize = 30;

/// A failed negotiation, with Java's `SaslException` message (logged, never sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SaslError(pub String);

fn fail<T>(m: impl Into<String>) -> Result<T, SaslError> {
    Err(SaslError(m.into()))
}

/// The DIGEST-MD5 users (`user_NAME="password"` of the JAAS section) and the password of
/// `super` from `zookeeper.SASLAuthenticationProvider.superPassword`, which wins. Its `Debug`
/// shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SaslUsers {
    /// Name → password.
    pub users: BTreeMap<String, String>,
    /// The user `super`'s password, if set by system property.
    pub super_password: Option<String>,
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslUsers")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("super_password", &self.super_password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Compares two response values in time that does not depend on where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SaslUsers {
    fn password(&self, user: &str) -> Option<&str> {
        if user == "super" {
            if let Some(p) = &self.super_password {
                return Some(p);
            }
        }
        self.users.get(user).map(String::as_str)
    }
}

/// What one client token gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token (the digest challenge) and wait for the next.
    Challenge(Vec<u8>),
    /// Authenticated: send `rspauth`; the connection is `authorization_id`.
    Complete {
        /// `rspauth=<hex>`.
        token: Vec<u8>,
        /// The name the client proved (`username`).
        authentication_id: String,
        /// The id the connection gets: `SaslServerCallbackHandler` derives it from the
        /// authentication id (a Kerberos-style name keeps its host and realm), not from an
        /// `authzid` the client asks for.
        authorization_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Initial,
    ChallengeSent {
        nonce: Vec<u8>,
    },
    /// Completed or failed: Java's server is then "at illegal state".
    Done,
}

/// One connection's DIGEST-MD5 negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMd5Server {
    service: DigestService,
    state: State,
}

impl Default for DigestMd5Server {
    fn default() -> Self {
        Self::new()
    }
}

const PEM: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Java's nonce: 30 random bytes, base64-encoded without padding (40 characters).
fn encode_nonce(raw: &[u8; NONCE_RAW_BYTES]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_RAW_BYTES * 4 / 3);
    for c in raw.chunks(3) {
        let (a, b, d) = (c[0], c[1], c[2]);
        out.push(PEM[(a >> 2) as usize]);
        out.push(PEM[(((a << 4) & 0x30) | (b >> 4)) as usize]);
        out.push(PEM[(((b << 2) & 0x3c) | (d >> 6)) as usize]);
        out.push(PEM[(d & 0x3f) as usize]);
    }
    out
}

impl DigestMd5Server {
    /// A negotiation on the client port that has not started.
    pub fn new() -> Self {
        Self::for_service(CLIENT_PORT)
    }

    /// A negotiation for `service` (the client port's, or [`QUORUM`] between servers).
    pub fn for_service(service: DigestService) -> Self {
        DigestMd5Server { service, state: State::Initial }
    }

    /// `SaslServer.evaluateResponse`: the client's token in, the next step out. `nonce_raw`
    /// is asked for once, for the challenge. After an error the negotiation is over.
    pub fn evaluate_response(
        &mut self,
        response: &[u8],
        users: &SaslUsers,
        nonce_raw: impl FnOnce() -> [u8; NONCE_RAW_BYTES],
    ) -> Result<Step, SaslError> {
        if response.len() > RESPONSE_BYTES_MAX {
            self.state = State::Done;
            return fail(format!("DIGEST-MD5: Invalid digest response length. Got:  {}", response.len()));
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => {
                // An initial response ("subsequent authentication", RFC 2831 2.2) is not
                // supported, so it is ignored and the negotiation starts over, as Java does.
                let nonce = encode_nonce(&nonce_raw());
                let mut c = format!("realm=\"{}\",nonce=\"", self.service.server_name).into_bytes();
                c.extend_from_slice(&nonce);
                // No qop directive: Java's server offers the default (auth) by leaving it out.
                c.extend_from_slice(b"\",charset=utf-8,algorithm=md5-sess");
                self.state = State::ChallengeSent { nonce };
                Ok(Step::Challenge(c))
            }
            State::ChallengeSent { nonce } => {
                let d = parse_directives(response).map_err(|e| SaslError(e.0))?;
                Self::validate(self.service, &d, &nonce, users)
            }
            State::Done => fail("DIGEST-MD5: Server at illegal state"),
        }
    }

    /// Whether the negotiation has ended (completed or failed).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// `DigestMD5Server.validateClientResponse`, in Java's order.
    fn validate(service: DigestService, d: &BTreeMap<String, Vec<u8>>, nonce: &[u8], users: &SaslUsers) -> Result<Step, SaslError> {
        let text = |k: &str| d.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        let violation = |m: String| SaslError(format!("DIGEST-MD5: digest response format violation. {m}"));
        if let Some(cs) = text("charset") {
            if cs != "utf-8" {
                return Err(violation(format!("Incompatible charset value: {cs}")));
            }
        }
        if let Some(m) = text("maxbuf") {
            if m.trim().parse::<i32>().is_err() {
                return fail(format!("DIGEST-MD5: invalid maxbuf: {m}"));
            }
        }
        let Some(username) = text("username") else {
            return Err(violation("Missing username.".into()));
        };
        let realm = text("realm").unwrap_or_default();
        if realm != service.server_name {
            return Err(violation(format!("Nonexistent realm: {realm}")));
        }
        match d.get("nonce") {
            None => return Err(violation("Missing nonce.".into())),
            Some(n) if n.as_slice() != nonce => return Err(violation("Mismatched nonce.".into())),
            Some(_) => {}
        }
        let Some(cnonce) = d.get("cnonce") else {
            return Err(violation("Missing cnonce.".into()));
        };
        if let Some(nc) = text("nc") {
            if i64::from_str_radix(nc.trim(), 16).ok() != Some(1) {
                return Err(violation(format!("Nonce count does not match: {nc}")));
            }
        }
        let qop = text("qop").unwrap_or_else(|| "auth".into());
        match qop.as_str() {
            "auth" => {}
            "auth-int" | "auth-conf" => return fail(format!("DIGEST-MD5: server does not support  qop: {qop}")),
            _ => return Err(violation(format!("Invalid QOP: {qop}"))),
        }
        let expected_uri = service.digest_uri();
        let digest_uri = match text("digest-uri") {
            Some(u) if u.eq_ignore_ascii_case(&expected_uri) => u,
            other => return Err(violation(format!("Mismatched URI: {}; expecting: {expected_uri}", other.as_deref().unwrap_or("null")))),
        };
        let Some(client_response) = d.get("response") else {
            return fail("DIGEST-MD5: digest response format  violation. Missing response.");
        };
        let authzid = d.get("authzid").map(Vec::as_slice);
        let Some(password) = users.password(&username) else {
            return fail(format!("DIGEST-MD5: cannot acquire password for {username} in realm : {realm}"));
        };
        let expected = response_value("AUTHENTICATE", &digest_uri, &username, &realm, password, nonce, cnonce, authzid);
        if !same_bytes(client_response, &expected) {
            return Err(violation("Mismatched response.".into()));
        }
        let mut token = b"rspauth=".to_vec();
        token.extend(response_value("", &digest_uri, &username, &realm, password, nonce, cnonce, authzid));
        Ok(Step::Complete { token, authorization_id: username.clone(), authentication_id: username })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> SaslUsers {
        SaslUsers { users: [("bob".to_string(), "bobsecret".to_string())].into(), super_password: None }
    }

    /// A client as pure-sasl and Java's DigestMD5Client compute it.
    fn client_response(challenge: &[u8], user: &str, password: &str, cnonce: &str) -> Vec<u8> {
        let d = parse_directives(challenge).unwrap();
        let nonce = d["nonce"].clone();
        let uri = "zookeeper/zk-sasl-md5";
        let r = response_value("AUTHENTICATE", uri, user, SERVER_NAME, password, &nonce, cnonce.as_bytes(), None);
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={},qop=auth",
            String::from_utf8_lossy(&nonce),
            String::from_utf8_lossy(&r)
        )
        .into_bytes()
    }

    #[test]
    fn login() {
        let mut s = DigestMd5Server::new();
        let Step::Challenge(c) = s.evaluate_response(b"", &users(), || [7; NONCE_RAW_BYTES]).unwrap() else { panic!() };
        let text = String::from_utf8(c.clone()).unwrap();
        assert!(text.starts_with("realm=\"zk-sasl-md5\",nonce=\""), "{text}");
        assert!(text.ends_with("\",charset=utf-8,algorithm=md5-sess"), "{text}");
        let resp = client_response(&c, "bob", "bobsecret", "abc");
        match s.evaluate_response(&resp, &users(), || unreachable!()).unwrap() {
            Step::Complete { token, authorization_id, .. } => {
                assert!(token.starts_with(b"rspauth="));
                assert_eq!(token.len(), 8 + 32);
                assert_eq!(authorization_id, "bob");
            }
            other => panic!("{other:?}"),
        }
        // Anything after completion fails.
        assert!(s.evaluate_response(b"", &users(), || unreachable!()).is_err());
    }

    #[test]
    fn failures() {
        let start = || {
            let mut s = DigestMd5Server::new();
            let Step::Challenge(c) = s.evaluate_response(b"", &users(), || [1; NONCE_RAW_BYTES]).unwrap() else { panic!() };
            (s, c)
        };
        let (mut s, c) = start();
        let e = s.evaluate_response(&client_response(&c, "bob", "wrong", "x"), &users(), || unreachable!()).unwrap_err();
        assert!(e.0.contains("Mismatched response"), "{e}");
        assert!(s.is_done());
        let (mut s, c) = start();
        let e = s.evaluate_response(&client_response(&c, "eve", "x", "x"), &users(), || unreachable!()).unwrap_err();
        assert!(e.0.contains("cannot acquire password for eve"), "{e}");
        let (mut s, _) = start();
        let e = s.evaluate_response(b"\x00\x01garbage", &users(), || unreachable!()).unwrap_err();
        assert!(e.0.contains("'=' expected"), "{e}");
        let (mut s, _) = start();
        let e = s.evaluate_response(b"username=\"bob\",username=\"bob\"", &users(), || unreachable!()).unwrap_err();
        assert!(e.0.contains("more than one username"), "{e}");
        let (mut s, c) = start();
        let bad_uri =
            String::from_utf8(client_response(&c, "bob", "bobsecret", "x")).unwrap().replace("zookeeper/zk-sasl-md5", "zookeeper/other");
        let e = s.evaluate_response(bad_uri.as_bytes(), &users(), || unreachable!()).unwrap_err();
        assert!(e.0.contains("Mismatched URI"), "{e}");
        let mut s = DigestMd5Server::new();
        assert!(matches!(s.evaluate_response(b"x=y", &users(), || [0; NONCE_RAW_BYTES]), Ok(Step::Challenge(_))));
        let mut s = DigestMd5Server::new();
        assert!(s.evaluate_response(&[b'a'; RESPONSE_BYTES_MAX + 1], &users(), || unreachable!()).is_err());
    }

    /// A learner (rzk's client mechanism for the quorum service) against the quorum server.
    #[test]
    fn quorum_service_login() {
        use rzk_proto::sasl::client::{DigestMd5Client, SaslCredentials};
        let users = SaslUsers { users: [("zk".to_string(), "pw".to_string())].into(), super_password: None };
        let login = |password: &str| {
            let mut s = DigestMd5Server::for_service(QUORUM);
            let creds = SaslCredentials { username: "zk".into(), password: password.into() };
            let mut c = DigestMd5Client::for_service(QUORUM, creds, "cn".into());
            let Step::Challenge(ch) = s.evaluate_response(&c.initial_token(), &users, || [3; NONCE_RAW_BYTES]).unwrap() else { panic!() };
            assert!(ch.starts_with(b"realm=\"zk-quorum-sasl-md5\""));
            let resp = c.evaluate_challenge(&ch).unwrap().unwrap();
            assert!(String::from_utf8_lossy(&resp).contains("digest-uri=\"zookeeper-quorum/zk-quorum-sasl-md5\""));
            match s.evaluate_response(&resp, &users, || unreachable!())? {
                Step::Complete { token, authorization_id, .. } => {
                    assert_eq!(c.evaluate_challenge(&token).unwrap(), None);
                    Ok::<String, SaslError>(authorization_id)
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(login("pw").unwrap(), "zk");
        assert!(login("wrong").unwrap_err().0.contains("Mismatched response"));
        // A client-port response is refused by the quorum service.
        let mut s = DigestMd5Server::for_service(QUORUM);
        let Step::Challenge(ch) = s.evaluate_response(b"", &users, || [3; NONCE_RAW_BYTES]).unwrap() else { panic!() };
        let resp = client_response(&ch, "zk", "pw", "x");
        assert!(s.evaluate_response(&resp, &users, || unreachable!()).is_err());
    }

    #[test]
    fn no_password_in_debug() {
        let u = SaslUsers { users: [("bob".to_string(), "hunter2".to_string())].into(), super_password: Some("s3cret".into()) };
        let d = format!("{u:?}");
        assert!(d.contains("bob") && !d.contains("hunter2") && !d.contains("s3cret"), "{d}");
        assert!(same_bytes(b"ab", b"ab") && !same_bytes(b"ab", b"ac") && !same_bytes(b"ab", b"a"));
    }

    #[test]
    fn super_password_wins() {
        let u = SaslUsers { users: [("super".to_string(), "a".to_string())].into(), super_password: Some("b".into()) };
        assert_eq!(u.password("super"), Some("b"));
        assert_eq!(SaslUsers { super_password: None, ..u }.password("super"), Some("a"));
    }

    #[test]
    fn nonce_is_java_base64() {
        let n = encode_nonce(&[0xff; NONCE_RAW_BYTES]);
        assert_eq!(n.len(), 40);
        assert!(n.iter().all(|&b| b == b'/'));
    }
}
