//! SASL DIGEST-MD5 (RFC 2831) tokens as ZooKeeper's peers exchange them in GetSASLRequest /
//! SetSASLResponse (client port) and QuorumAuthPackets (between servers): the directive
//! syntax ([`parse_directives`]), the response value both sides compute ([`response_value`],
//! qop `auth`), the services ([`CLIENT_PORT`], [`QUORUM`]), and the client's side of the
//! exchange ([`client::DigestMd5Client`], used by `rzk_client` and by a server logging in
//! to another). The server's mechanism is `rzk_core::sasl`. Pure.

use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// The protocol every ZooKeeper DIGEST-MD5 exchange names (`zookeeper/zk-sasl-md5`).
pub const SERVICE: &str = "zookeeper";
/// The server name, which Java's server also offers as its only realm.
pub const SERVER_NAME: &str = "zk-sasl-md5";

/// A DIGEST-MD5 service: the protocol and server name of the `digest-uri`; the server name
/// is also the server's only realm (Java's `DigestMD5Server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestService {
    pub protocol: &'static str,
    pub server_name: &'static str,
}

impl DigestService {
    /// `protocol/server_name`.
    pub fn digest_uri(&self) -> String {
        format!("{}/{}", self.protocol, self.server_name)
    }
}

/// The client port's service (`zookeeper/zk-sasl-md5`).
pub const CLIENT_PORT: DigestService = DigestService { protocol: SERVICE, server_name: SERVER_NAME };
/// The service between servers (`QuorumAuth`: `zookeeper-quorum/zk-quorum-sasl-md5`).
pub const QUORUM: DigestService = DigestService { protocol: "zookeeper-quorum", server_name: "zk-quorum-sasl-md5" };

/// A token that is not a valid list of directives, with Java's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DirectiveError(pub String);

/// Lower-case hex, as the response values are written.
pub fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect()
}

/// `DigestMD5Base.stringToByte_8859_1` with UTF-8 negotiated: ISO-8859-1 when every char fits,
/// else UTF-8 (RFC 2831 2.1.2.1).
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) <= 0xff) {
        s.chars().map(|c| c as u32 as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

/// The response value (RFC 2831 2.1.2.1) for `method` ("AUTHENTICATE" from the client, "" for
/// the server's rspauth), qop auth.
#[allow(clippy::too_many_arguments)]
pub fn response_value(
    method: &str,
    digest_uri: &str,
    user: &str,
    realm: &str,
    password: &str,
    nonce: &[u8],
    cnonce: &[u8],
    authzid: Option<&[u8]>,
) -> Vec<u8> {
    let ha2 = hex(&Md5::digest(format!("{method}:{digest_uri}").as_bytes()));
    let mut begin = latin1_or_utf8(user);
    begin.push(b':');
    begin.extend(latin1_or_utf8(realm));
    begin.push(b':');
    begin.extend(latin1_or_utf8(password));
    let mut a1 = Md5::digest(&begin).to_vec();
    a1.push(b':');
    a1.extend_from_slice(nonce);
    a1.push(b':');
    a1.extend_from_slice(cnonce);
    if let Some(z) = authzid {
        a1.push(b':');
        a1.extend_from_slice(z);
    }
    let mut kd = hex(&Md5::digest(&a1));
    for part in [nonce, b"00000001".as_slice(), cnonce, b"auth".as_slice(), &ha2] {
        kd.push(b':');
        kd.extend_from_slice(part);
    }
    hex(&Md5::digest(&kd))
}

/// The directives of a digest response, as Java's `parseDirectives` reads them: `key=value`
/// or `key="quoted \"value\""`, separated by commas and linear white space; one of a digest
/// response's directives given twice is an error; of another, the first counts.
pub fn parse_directives(buf: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, DirectiveError> {
    const KNOWN: &[&str] =
        &["username", "realm", "nonce", "cnonce", "nc", "qop", "digest-uri", "response", "maxbuf", "charset", "cipher", "authzid"];
    let lws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let mut out = BTreeMap::new();
    let mut i = 0;
    loop {
        while i < buf.len() && (lws(buf[i]) || buf[i] == b',') {
            i += 1;
        }
        if i >= buf.len() {
            return Ok(out);
        }
        let start = i;
        while i < buf.len() && buf[i] != b'=' && !lws(buf[i]) && buf[i] != b',' {
            i += 1;
        }
        let key = String::from_utf8_lossy(&buf[start..i]).into_owned();
        while i < buf.len() && lws(buf[i]) {
            i += 1;
        }
        if i >= buf.len() || buf[i] != b'=' {
            return Err(DirectiveError(format!("'=' expected after key: {key}")));
        }
        i += 1;
        while i < buf.len() && lws(buf[i]) {
            i += 1;
        }
        if i >= buf.len() {
            return Err(DirectiveError(format!("Valueless directive found: {key}")));
        }
        let mut value = Vec::new();
        if buf[i] == b'"' {
            i += 1;
            loop {
                match buf.get(i) {
                    None => return Err(DirectiveError(format!("Unmatched quote found for directive: {key}"))),
                    Some(b'\\') => {
                        let Some(&c) = buf.get(i + 1) else {
                            return Err(DirectiveError(format!("Unmatched quote found for directive: {key}")));
                        };
                        value.push(c);
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            while i < buf.len() && lws(buf[i]) {
                i += 1;
            }
            if i < buf.len() && buf[i] != b',' {
                return Err(DirectiveError(format!(
                    "Expecting comma or linear whitespace after quoted string: \"{}\"",
                    String::from_utf8_lossy(&value)
                )));
            }
        } else {
            while i < buf.len() && buf[i] != b',' && !lws(buf[i]) {
                value.push(buf[i]);
                i += 1;
            }
        }
        if out.contains_key(&key) {
            if KNOWN.contains(&key.as_str()) {
                return Err(DirectiveError(format!("DIGEST-MD5: peer sent more than one {key} directive")));
            }
            continue; // an unknown directive given twice: the first counts
        }
        out.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2831_example() {
        // RFC 2831 section 4's example (imap/elwood.innosoft.com, realm elwood.innosoft.com).
        let r = response_value(
            "AUTHENTICATE",
            "imap/elwood.innosoft.com",
            "chris",
            "elwood.innosoft.com",
            "secret",
            b"OA6MG9tEQGm2hh",
            b"OA6MHXh6VqTrRk",
            None,
        );
        assert_eq!(r, b"d388dad90d4bbd760a152321f2143af7");
        let rspauth = response_value(
            "",
            "imap/elwood.innosoft.com",
            "chris",
            "elwood.innosoft.com",
            "secret",
            b"OA6MG9tEQGm2hh",
            b"OA6MHXh6VqTrRk",
            None,
        );
        assert_eq!(rspauth, b"ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn directives() {
        let d = parse_directives(b"a=1, b=\"x\\\"y\" ,,c=z").unwrap();
        assert_eq!(d["b"], b"x\"y", "unknown directives are kept");
        let d = parse_directives(b"username=\"b\\\"ob\",nc=00000001").unwrap();
        assert_eq!(d["username"], b"b\"ob");
        assert_eq!(d["nc"], b"00000001");
        assert!(parse_directives(b"username").is_err());
        assert!(parse_directives(b"username=\"bob").is_err());
        assert!(parse_directives(b"nc=1,nc=2").is_err());
    }
}

/// The client's side of DIGEST-MD5 (Java's `DigestMD5Client` as ZooKeeper's client, kazoo
/// and a learner use it): an empty first token, the digest response to the server's
/// challenge, then the check of the server's `rspauth` (the server proves it knows the
/// password too).
pub mod client {
    use super::{parse_directives, response_value, DigestService, CLIENT_PORT};

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
    pub struct ClientError(pub String);

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum State {
        Start,
        Responded { rspauth: Vec<u8> },
        Done,
    }

    /// One login's DIGEST-MD5 exchange.
    #[derive(Debug, Clone)]
    pub struct DigestMd5Client {
        service: DigestService,
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
        /// A login to a client port (`zookeeper/zk-sasl-md5`) with a random client nonce
        /// (`cnonce`, at least 64 bits of randomness).
        pub fn new(creds: SaslCredentials, cnonce: String) -> Self {
            Self::for_service(CLIENT_PORT, creds, cnonce)
        }

        /// A login to `service` (the client port's, or [`QUORUM`] between servers).
        pub fn for_service(service: DigestService, creds: SaslCredentials, cnonce: String) -> Self {
            DigestMd5Client { service, creds, cnonce, state: State::Start }
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
        pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
            let d = parse_directives(challenge).map_err(|e| ClientError(e.0))?;
            match std::mem::replace(&mut self.state, State::Done) {
                State::Start => {
                    let Some(nonce) = d.get("nonce") else {
                        return Err(ClientError("the server's challenge has no nonce".into()));
                    };
                    if let Some(q) = d.get("qop") {
                        if !String::from_utf8_lossy(q).split(',').any(|q| q.trim() == "auth") {
                            return Err(ClientError(format!("the server offers no qop auth ({})", String::from_utf8_lossy(q))));
                        }
                    }
                    let realm = d
                        .get("realm")
                        .map(|r| String::from_utf8_lossy(r).into_owned())
                        .unwrap_or_else(|| self.service.server_name.to_string());
                    let uri = self.service.digest_uri();
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
                    Some(_) => Err(ClientError("the server's rspauth is wrong: it does not know the password".into())),
                    None => Err(ClientError("the server's last token has no rspauth".into())),
                },
                State::Done => Err(ClientError("the exchange is already complete".into())),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::sasl::response_value;

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
}
