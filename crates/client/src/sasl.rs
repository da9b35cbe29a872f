//! The client side of a SASL login as ZooKeeper's Java client (and kazoo) run it: DIGEST-MD5
//! against `zookeeper/zk-sasl-md5` (the mechanism is `rzk_proto::sasl::client`, shared with a
//! server logging in to another) or GSSAPI ([`crate::kerberos`]). [`SaslExchange`] is one
//! login's mechanism, token in, token out; whoever owns the connection sends the tokens in
//! `sasl` requests (the session task, [`crate::session`]; `rzk bench`).

use crate::kerberos::{GssapiClient, KerberosLogin};
pub use rzk_proto::sasl::client::{ClientError as SaslError, DigestMd5Client, SaslCredentials};

/// The login a connection makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslLogin {
    DigestMd5(SaslCredentials),
    Kerberos(KerberosLogin),
}

/// One login under way.
pub struct SaslExchange {
    mech: Mech,
}

enum Mech {
    DigestMd5(DigestMd5Client),
    Gssapi(Box<GssapiClient>),
}

impl SaslExchange {
    /// Starts `login` with the server `host:port` (GSSAPI gets its credential and service
    /// ticket here, on a blocking thread); returns the exchange and the first token to send.
    pub async fn start(login: &SaslLogin, host: &str, port: u16) -> Result<(SaslExchange, Vec<u8>), String> {
        match login {
            SaslLogin::DigestMd5(creds) => {
                let cnonce: String = (0..32).map(|_| fastrand::alphanumeric()).collect();
                let m = DigestMd5Client::new(creds.clone(), cnonce);
                let first = m.initial_token();
                Ok((SaslExchange { mech: Mech::DigestMd5(m) }, first))
            }
            SaslLogin::Kerberos(k) => {
                let (m, first) = GssapiClient::start(k, host, port).await.map_err(|e| format!("Kerberos: {e}"))?;
                Ok((SaslExchange { mech: Mech::Gssapi(Box::new(m)) }, first))
            }
        }
    }

    /// The server's token in; the next token to send, or `None` once the login is complete.
    pub fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match &mut self.mech {
            Mech::DigestMd5(m) => m.evaluate_challenge(challenge).map_err(|e| e.to_string()),
            Mech::Gssapi(m) => m.evaluate_challenge(challenge).map_err(|e| format!("SASL GSSAPI: {e}")),
        }
    }
}
