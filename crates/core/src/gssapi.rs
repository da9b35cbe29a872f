//! The server side of SASL GSSAPI (RFC 4752, Kerberos V5) as ZooKeeper runs it: Java's
//! `GssKrb5Server` for the service principal of the JAAS `Server` section, and
//! `SaslServerCallbackHandler`'s naming of the authenticated principal.
//!
//! This module owns one connection's negotiation ([`GssapiServer`]): the GSS-API context
//! tokens until the context is established, then the security-layer negotiation (the
//! server's wrapped offer: `auth` only, receive buffer 65536; the client's wrapped choice and
//! authorization id), and the `sasl` id the connection gets ([`KerberosNaming::sasl_id`]:
//! `KerberosName`'s DEFAULT rule, `kerberos.removeHostFromPrincipal`,
//! `kerberos.removeRealmFromPrincipal`).
//!
//! The GSS-API itself (a C library holding keys) stays outside the pure core: the shell
//! injects a [`GssAcceptor`], whose contexts ([`GssContext`]) accept tokens and wrap and
//! unwrap messages. The core calls them synchronously; they read no clock of the core's and
//! talk to no network (an acceptor needs only its keytab). A test or simulator injects a fake.

use crate::sasl::{SaslError, Step};

/// Java's default `javax.security.sasl.maxbuffer` for the GSSAPI server.
pub const RECV_MAX_BUF_BYTES: u32 = 65536;
/// RFC 4752 security layers: no security layer (`auth`).
pub const LAYER_NONE: u8 = 1;
/// A token longer than this is refused before the GSS-API sees it (a Kerberos AP-REQ with
/// a large PAC is some KiB; `jute.maxbuffer` bounds it anyway).
pub const TOKEN_BYTES_MAX: usize = 64 * 1024;

/// What the shell's GSS-API library does for the core: one acceptor per server (the service
/// principal's keys), a context per connection.
pub trait GssAcceptor: Send + Sync + std::fmt::Debug {
    /// A new acceptor context for one connection.
    fn new_context(&self) -> Box<dyn GssContext>;
    /// The realm of the Kerberos library's `default_realm` (for `KerberosName`'s DEFAULT
    /// rule), if it has one.
    fn default_realm(&self) -> Option<String>;
}

/// One GSS-API acceptor context. Errors are the library's messages (logged, never sent).
pub trait GssContext: Send + std::fmt::Debug {
    /// `gss_accept_sec_context`: the token to send back (maybe none), and whether the
    /// context is now established.
    fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), String>;
    /// The initiator's principal (`gss_display_name` of the source name), once established.
    fn source_name(&self) -> Result<String, String>;
    /// `gss_wrap` without confidentiality (integrity only).
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, String>;
    /// `gss_unwrap`.
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, String>;
}

/// How the authenticated principal becomes the connection's `sasl` id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosNaming {
    /// `zookeeper.kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
    /// The Kerberos library's default realm (`KerberosName`'s DEFAULT rule shortens only
    /// principals of that realm).
    pub default_realm: Option<String>,
}

impl KerberosNaming {
    /// `SaslServerCallbackHandler.handleAuthorizeCallback`: `KerberosName(principal)`'s short
    /// name, then `/host` and `@REALM` unless removed. A principal the DEFAULT rule does not
    /// shorten (another realm) keeps its whole name: ZooKeeper then keeps the authorization id,
    /// which its client sets to the principal (rzk never takes a client-chosen authzid).
    pub fn sasl_id(&self, principal: &str) -> String {
        let (name, realm) = match principal.split_once('@') {
            Some((n, r)) => (n, Some(r)),
            None => (principal, None),
        };
        let (service, host) = match name.split_once('/') {
            Some((s, h)) => (s, Some(h)),
            None => (name, None),
        };
        let Some(realm) = realm else {
            return service.to_string();
        };
        if self.default_realm.as_deref() != Some(realm) {
            return principal.to_string();
        }
        let mut id = service.to_string();
        if let Some(h) = host.filter(|_| !self.remove_host) {
            id.push('/');
            id.push_str(h);
        }
        if !self.remove_realm {
            id.push('@');
            id.push_str(realm);
        }
        id
    }
}

enum State {
    /// Context tokens until the context is established.
    Context,
    /// Established; the server's offer goes out on the next (empty) client token.
    Established { principal: String },
    /// The offer was sent; the client's wrapped choice is next.
    OfferSent { principal: String },
    /// Completed or failed.
    Done,
}

/// One connection's GSSAPI negotiation.
pub struct GssapiServer {
    ctx: Box<dyn GssContext>,
    state: State,
    /// The authorization id the client asked for (its principal when it named none), once
    /// complete: the quorum's `SaslQuorumServerCallbackHandler` compares it with the principal.
    requested_authzid: Option<String>,
}

impl std::fmt::Debug for GssapiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Context => "context",
            State::Established { .. } => "established",
            State::OfferSent { .. } => "offer sent",
            State::Done => "done",
        };
        f.debug_struct("GssapiServer").field("state", &state).finish()
    }
}

fn fail<T>(m: impl Into<String>) -> Result<T, SaslError> {
    Err(SaslError(m.into()))
}

impl GssapiServer {
    /// A negotiation over a fresh acceptor context.
    pub fn new(ctx: Box<dyn GssContext>) -> Self {
        GssapiServer { ctx, state: State::Context, requested_authzid: None }
    }

    /// The authorization id the client asked for (its principal when it named none), once
    /// the negotiation has completed.
    pub fn requested_authorization_id(&self) -> Option<&str> {
        self.requested_authzid.as_deref()
    }

    /// Whether the negotiation has ended (completed or failed).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// `GssKrb5Server.evaluateResponse`: the client's token in, the next step out. A
    /// [`Step::Complete`] carries an empty token: ZooKeeper answers it with a null token.
    pub fn evaluate_response(&mut self, token: &[u8], naming: &KerberosNaming) -> Result<Step, SaslError> {
        if token.len() > TOKEN_BYTES_MAX {
            self.state = State::Done;
            return fail(format!("GSSAPI: a token of {} bytes is longer than {TOKEN_BYTES_MAX}", token.len()));
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Context => {
                let (out, established) = self.ctx.accept(token).map_err(|e| SaslError(format!("GSS initiate failed: {e}")))?;
                if !established {
                    self.state = State::Context;
                    return Ok(Step::Challenge(out.unwrap_or_default()));
                }
                let principal = self.ctx.source_name().map_err(|e| SaslError(format!("GSSAPI: no initiator name: {e}")))?;
                match out {
                    // The last context token (the AP-REP) first; the offer on the next turn.
                    Some(t) if !t.is_empty() => {
                        self.state = State::Established { principal };
                        Ok(Step::Challenge(t))
                    }
                    _ => self.offer(principal, &[]),
                }
            }
            State::Established { principal } => self.offer(principal, token),
            State::OfferSent { principal } => self.accept_choice(principal, token, naming),
            State::Done => fail("GSSAPI: SASL authentication already complete"),
        }
    }

    /// `doHandshake1`: the client sends nothing; the server offers its layers, wrapped.
    fn offer(&mut self, principal: String, token: &[u8]) -> Result<Step, SaslError> {
        if !token.is_empty() {
            return fail("Handshake expecting no response data from server");
        }
        let b = RECV_MAX_BUF_BYTES.to_be_bytes();
        let offer = [LAYER_NONE, b[1], b[2], b[3]];
        let wrapped = self.ctx.wrap(&offer).map_err(|e| SaslError(format!("Problem wrapping handshake1: {e}")))?;
        self.state = State::OfferSent { principal };
        Ok(Step::Challenge(wrapped))
    }

    /// `doHandshake2`: the client's chosen layer, its buffer size and authorization id.
    fn accept_choice(&mut self, principal: String, token: &[u8], naming: &KerberosNaming) -> Result<Step, SaslError> {
        let plain = self.ctx.unwrap(token).map_err(|e| SaslError(format!("Final handshake failed: {e}")))?;
        if plain.len() < 4 {
            return fail(format!("Final handshake response must be at least 4 bytes, got {}", plain.len()));
        }
        if plain[0] & LAYER_NONE == 0 {
            return fail(format!("Client selected unsupported protection: {}", plain[0]));
        }
        let authzid = if plain.len() > 4 {
            String::from_utf8(plain[4..].to_vec()).map_err(|_| SaslError("GSSAPI: the authorization id is not UTF-8".into()))?
        } else {
            principal.clone()
        };
        if authzid != principal {
            // ZooKeeper's handler authorizes anyone as anything, then replaces the id by the
            // principal's name (in the default realm); rzk always names the principal.
            tracing::info!(%principal, %authzid, "GSSAPI client asked for another authorization id; the principal's name is used");
        }
        let authorization_id = naming.sasl_id(&principal);
        self.requested_authzid = Some(authzid);
        Ok(Step::Complete { token: Vec::new(), authentication_id: principal, authorization_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake mechanism: the context takes `n` tokens ("t1", "t2", ...), answers "r1", ...,
    /// the last answer as `last`; wrap prefixes "W", unwrap strips it.
    #[derive(Debug)]
    struct Fake {
        n: usize,
        seen: usize,
        last: Option<Vec<u8>>,
    }

    impl GssContext for Fake {
        fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), String> {
            self.seen += 1;
            if token != format!("t{}", self.seen).as_bytes() {
                return Err("bad token".into());
            }
            if self.seen == self.n {
                return Ok((self.last.clone(), true));
            }
            Ok((Some(format!("r{}", self.seen).into_bytes()), false))
        }
        fn source_name(&self) -> Result<String, String> {
            Ok("bob/client.example@EXAMPLE.COM".into())
        }
        fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, String> {
            Ok([b"W".as_slice(), m].concat())
        }
        fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, String> {
            t.strip_prefix(b"W").map(<[u8]>::to_vec).ok_or_else(|| "bad wrap".into())
        }
    }

    fn naming() -> KerberosNaming {
        KerberosNaming { default_realm: Some("EXAMPLE.COM".into()), ..KerberosNaming::default() }
    }

    fn offer() -> Vec<u8> {
        vec![b'W', 1, 0x01, 0x00, 0x00]
    }

    #[test]
    fn login_with_a_last_context_token() {
        let mut s = GssapiServer::new(Box::new(Fake { n: 1, seen: 0, last: Some(b"aprep".to_vec()) }));
        assert_eq!(s.evaluate_response(b"t1", &naming()).unwrap(), Step::Challenge(b"aprep".to_vec()));
        assert_eq!(s.evaluate_response(b"", &naming()).unwrap(), Step::Challenge(offer()));
        let choice = [b"W".as_slice(), &[1, 0, 0x10, 0], b"bob/client.example@EXAMPLE.COM"].concat();
        match s.evaluate_response(&choice, &naming()).unwrap() {
            Step::Complete { token, authentication_id, authorization_id } => {
                assert!(token.is_empty());
                assert_eq!(authentication_id, "bob/client.example@EXAMPLE.COM");
                assert_eq!(authorization_id, "bob/client.example@EXAMPLE.COM");
            }
            other => panic!("{other:?}"),
        }
        assert!(s.is_done());
        assert!(s.evaluate_response(b"", &naming()).unwrap_err().0.contains("already complete"));
    }

    #[test]
    fn login_in_several_context_steps_without_a_last_token() {
        let mut s = GssapiServer::new(Box::new(Fake { n: 2, seen: 0, last: None }));
        assert_eq!(s.evaluate_response(b"t1", &naming()).unwrap(), Step::Challenge(b"r1".to_vec()));
        // Established without a token to send: the offer goes out at once.
        assert_eq!(s.evaluate_response(b"t2", &naming()).unwrap(), Step::Challenge(offer()));
        // No authorization id: the principal.
        let Step::Complete { authorization_id, .. } = s.evaluate_response(b"W\x01\x00\x00\x00", &naming()).unwrap() else { panic!() };
        assert_eq!(authorization_id, "bob/client.example@EXAMPLE.COM");
    }

    #[test]
    fn failures() {
        let start = || GssapiServer::new(Box::new(Fake { n: 1, seen: 0, last: None }));
        let mut s = start();
        assert!(s.evaluate_response(b"garbage", &naming()).unwrap_err().0.contains("GSS initiate failed"));
        assert!(s.is_done());
        let mut s = start();
        s.evaluate_response(b"t1", &naming()).unwrap();
        assert!(s.evaluate_response(b"not wrapped", &naming()).unwrap_err().0.contains("Final handshake failed"));
        let mut s = start();
        s.evaluate_response(b"t1", &naming()).unwrap();
        assert!(s.evaluate_response(b"W\x01", &naming()).unwrap_err().0.contains("at least 4 bytes"));
        let mut s = start();
        s.evaluate_response(b"t1", &naming()).unwrap();
        assert!(s.evaluate_response(b"W\x04\x00\x00\x00", &naming()).unwrap_err().0.contains("unsupported protection"));
        // A client-chosen authorization id does not change the id.
        let mut s = start();
        s.evaluate_response(b"t1", &naming()).unwrap();
        let Step::Complete { authorization_id, .. } = s.evaluate_response(b"W\x01\x00\x00\x00super", &naming()).unwrap() else { panic!() };
        assert_eq!(authorization_id, "bob/client.example@EXAMPLE.COM");
        assert_eq!(s.requested_authorization_id(), Some("super"));
        let mut s = start();
        assert!(s.evaluate_response(&vec![0; TOKEN_BYTES_MAX + 1], &naming()).is_err());
    }

    #[test]
    fn naming_as_sasl_server_callback_handler() {
        let n = |host, realm| KerberosNaming { remove_host: host, remove_realm: realm, default_realm: Some("EXAMPLE.COM".into()) };
        let p = "bob/client.example@EXAMPLE.COM";
        assert_eq!(n(false, false).sasl_id(p), p);
        assert_eq!(n(true, false).sasl_id(p), "bob@EXAMPLE.COM");
        assert_eq!(n(false, true).sasl_id(p), "bob/client.example");
        assert_eq!(n(true, true).sasl_id(p), "bob");
        assert_eq!(n(true, true).sasl_id("alice@EXAMPLE.COM"), "alice");
        // Another realm: the DEFAULT rule does not apply; the whole principal.
        assert_eq!(n(true, true).sasl_id("bob/h@OTHER.ORG"), "bob/h@OTHER.ORG");
        assert_eq!(n(true, true).sasl_id("plain"), "plain");
        assert_eq!(KerberosNaming { remove_realm: true, ..KerberosNaming::default() }.sasl_id("a@R"), "a@R");
    }
}
