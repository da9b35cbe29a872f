//! The client side of SASL DIGEST-MD5 as ZooKeeper's Java client (and kazoo) run it against
//! `zookeeper/zk-sasl-md5`: an empty first token, the digest response to the server's
//! challenge, then the check of the server's `rspauth` (the server proves it knows the
//! password too). Pure: the session task sends the tokens ([`crate::session`]).

use rzk_proto::sasl::{parse_directives, response_value, SERVER_NAME, SERVICE};

/// A DIGEST-MD5 login: the `username` / `password` of a JAAS `Client` section's
/// `DigestLoginModule`, or given directly.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials").field("username", &self.username).field("password", &"***").finish()
    }
}

/// The negotiation failed on the client's side (a challenge it cannot answer, a server that
/// did not prove the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SASL DIGEST-MD5: {0}")]
pub struct SaslError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    Responded { rspauth: Vec<u8> },
    Done,
}

/// One login's DIGEST-MD5 exchange.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    creds: SaslCredentials,
    cnonce: String,
    state: State,
}

/// Quotes a directive value (RFC 2831's quoted-string: `"` and `\` escaped).
fn quoted(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

impl DigestMd5Client {
    /// A login with a random client nonce (`cnonce`, at least 64 bits of randomness).
    pub fn new(creds: SaslCredentials, cnonce: String) -> Self {
        DigestMd5Client { creds, cnonce, state: State::Start }
    }

    /// The first token: DIGEST-MD5 has no initial response, so it is empty.
    pub fn initial_token(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the server has proved it knows the password.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// The server's token in; the next token to send (`None`: done, nothing to send).
    pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        let d = parse_directives(challenge).map_err(|e| SaslError(e.0))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start => {
                let Some(nonce) = d.get("nonce") else {
                    return Err(SaslError("the server's challenge has no nonce".into()));
                };
                if let Some(q) = d.get("qop") {
                    if !String::from_utf8_lossy(q).split(',').any(|q| q.trim() == "auth") {
                        return Err(SaslError(format!("the server offers no qop auth ({})", String::from_utf8_lossy(q))));
                    }
                }
                let realm = d.get("realm").map(|r| String::from_utf8_lossy(r).into_owned()).unwrap_or_else(|| SERVER_NAME.to_string());
                let uri = format!("{SERVICE}/{SERVER_NAME}");
                let SaslCredentials { username, password } = &self.creds;
                let cnonce = self.cnonce.as_bytes();
                let response = response_value("AUTHENTICATE", &uri, username, &realm, password, nonce, cnonce, None);
                let rspauth = response_value("", &uri, username, &realm, password, nonce, cnonce, None);
                let charset = if d.get("charset").is_some_and(|c| c.as_slice() == b"utf-8") { "charset=utf-8," } else { "" };
                let token = format!(
                    "{charset}username={},realm={},nonce={},nc=00000001,cnonce={},digest-uri={},maxbuf=65536,response={},qop=auth",
                    quoted(username),
                    quoted(&realm),
                    quoted(&String::from_utf8_lossy(nonce)),
                    quoted(&self.cnonce),
                    quoted(&uri),
                    String::from_utf8_lossy(&response),
                );
                self.state = State::Responded { rspauth };
                Ok(Some(token.into_bytes()))
            }
            State::Responded { rspauth } => match d.get("rspauth") {
                Some(r) if *r == rspauth => Ok(None),
                Some(_) => Err(SaslError("the server's rspauth is wrong: it does not know the password".into())),
                None => Err(SaslError("the server's last token has no rspauth".into())),
            },
            State::Done => Err(SaslError("the exchange is already complete".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_challenge_and_checks_rspauth() {
        let creds = SaslCredentials { username: "bob".into(), password: "pw".into() };
        let mut c = DigestMd5Client::new(creds, "abc".into());
        let challenge = b"realm=\"zk-sasl-md5\",nonce=\"N0NCE\",charset=utf-8,algorithm=md5-sess";
        let token = String::from_utf8(c.evaluate_challenge(challenge).unwrap().unwrap()).unwrap();
        assert!(token.starts_with("charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"N0NCE\",nc=00000001,cnonce=\"abc\""));
        let expected = response_value("", "zookeeper/zk-sasl-md5", "bob", "zk-sasl-md5", "pw", b"N0NCE", b"abc", None);
        let mut ok = c.clone();
        let mut rsp = b"rspauth=".to_vec();
        rsp.extend(&expected);
        assert_eq!(ok.evaluate_challenge(&rsp), Ok(None));
        assert!(ok.is_complete());
        assert!(c.evaluate_challenge(b"rspauth=00000000000000000000000000000000").is_err());
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
