//! SASL DIGEST-MD5 (RFC 2831) tokens as ZooKeeper's peers exchange them in GetSASLRequest /
//! SetSASLResponse: the directive syntax ([`parse_directives`]) and the response value both
//! sides compute ([`response_value`], qop `auth`). Shared by the server's mechanism
//! (`rzk_core::sasl`) and the client's (`rzk_client`); pure.

use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// The protocol every ZooKeeper DIGEST-MD5 exchange names (`zookeeper/zk-sasl-md5`).
pub const SERVICE: &str = "zookeeper";
/// The server name, which Java's server also offers as its only realm.
pub const SERVER_NAME: &str = "zk-sasl-md5";

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
