//! The client side of SASL DIGEST-MD5 as ZooKeeper's Java client (and kazoo) run it against
//! `zookeeper/zk-sasl-md5`: the mechanism is `rzk_proto::sasl::client` (shared with a server
//! logging in to another); the session task sends the tokens ([`crate::session`]).

pub use rzk_proto::sasl::client::{ClientError as SaslError, DigestMd5Client, SaslCredentials};
