//! # rzk-config: Apache ZooKeeper's `zoo.cfg`, parsed and validated
//!
//! This crate owns everything rzk knows about its configuration file: the Java
//! `.properties` syntax ZooKeeper reads `zoo.cfg` with ([`properties`]), the
//! meaning, types, defaults and validation of every key ZooKeeper 3.8/3.9
//! accepts there, the ensemble (`server.N`, `group.N`, `weight.N`, dynamic
//! config files), the settings ZooKeeper takes as Java system properties, the
//! `myid` file's content ([`parse_myid`]) and the body of the `conf`
//! four-letter word ([`ServerConfig::to_conf_4lw`]).
//!
//! It is pure: no global state, no clock, no I/O, except [`load`] which reads
//! the file (and the dynamic config file it names) and hands the text to the
//! parser. Starting listeners, reading `dataDir/myid` or creating directories
//! is the server's business.
//!
//! ## How ZooKeeper reads zoo.cfg, and so how rzk does
//!
//! ZooKeeper's `QuorumPeerConfig` knows a fixed set of keys (`tickTime`,
//! `dataDir`, `clientPort`, `server.N`, ...). **Every other key `k` becomes the
//! Java system property `zookeeper.k`** (`System.setProperty("zookeeper." + k,
//! value)`), and many settings are read from system properties only: that is
//! how `4lw.commands.whitelist`, `snapCount`, `skipACL`, `maxCnxns`,
//! `DigestAuthenticationProvider.superDigest`, `admin.serverPort` and many
//! more work in `zoo.cfg`. rzk models this with
//! [`ServerConfig::system_properties`] and reads its typed settings from there,
//! so a value given as `-Dzookeeper.snapCount=...` (passed in through
//! [`ParseOptions::system_properties`]) and one given in `zoo.cfg` act alike,
//! `zoo.cfg` winning as `System.setProperty` would.
//!
//! Two leniencies, each reported in [`ServerConfig::warnings`]:
//! * `jute.maxbuffer` and `readonlymode.enabled` are read by ZooKeeper
//!   without the `zookeeper.` prefix, so in `zoo.cfg` they have no effect on
//!   ZooKeeper; rzk honours them there.
//! * A `zoo.cfg` key that already starts with `zookeeper.` is stored under
//!   that name, where ZooKeeper would store (and ignore)
//!   `zookeeper.zookeeper.<...>`.
//!
//! Keys that can mean nothing to rzk (Java class names, JVM tuning) are listed
//! in [`ServerConfig::ignored`] with the reason, for the server to log. Security
//! settings rzk does not implement (SASL, Kerberos, TLS between servers, ...)
//! are errors, never ignored ([`security`]); TLS on the client port and the
//! x509 provider are read into [`ServerConfig::client_tls`].
//!
//! Errors name the file, the line and the key, e.g.
//! `zoo.cfg line 3: tickTime: expected a positive integer, got "abc"`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod properties;
pub mod sasl;
pub mod security;
mod servers;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use sasl::{EnforceAuth, SaslConfig};
pub use security::{AdminTls, ClientAuth, ClientTls, QuorumSasl, QuorumTls, StoreConfig, StoreType};
pub use servers::{parse_server_line, HostPort, PeerType, QuorumAddress, ServerSpec};

use values::*;

/// `ZooKeeperServer.DEFAULT_TICK_TIME`, milliseconds.
pub const DEFAULT_TICK_TIME: u32 = 3000;
/// The client port when there is no configuration file at all.
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// rzk's data directory when there is no configuration file at all.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default `maxClientCnxns` (per client IP).
pub const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
/// Default `globalOutstandingLimit`.
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: u32 = 1000;
/// Default `znode.container.checkIntervalMs`: one minute.
pub const DEFAULT_CONTAINER_CHECK_INTERVAL_MS: u32 = 60_000;
/// Default `zookeeper.cnxTimeout`: 5 s.
pub const DEFAULT_CNX_TIMEOUT_MS: u32 = 5000;
/// Default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_JUTE_MAXBUFFER: u32 = 0xfffff;
/// Default `snapCount`.
pub const DEFAULT_SNAP_COUNT: u32 = 100_000;
/// Default `preAllocSize`, in KiB (64 MiB).
pub const DEFAULT_PRE_ALLOC_SIZE_KB: u64 = 65536;
/// Default `zookeeper.snapshotSizeFactor` (`ZKDatabase.DEFAULT_SNAPSHOT_SIZE_FACTOR`).
pub const DEFAULT_SNAPSHOT_SIZE_FACTOR: f64 = 0.33;

/// A Java `double` setting, compared by its bits (so that the configuration is `Eq`).
#[derive(Debug, Clone, Copy)]
pub struct SizeFactor(pub f64);

impl PartialEq for SizeFactor {
    fn eq(&self, o: &Self) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}

impl Eq for SizeFactor {}
/// Minimum (and default) `autopurge.snapRetainCount`.
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;
/// rzk's default `autopurge.purgeInterval`, hours (ZooKeeper's is 0, off).
pub const DEFAULT_PURGE_INTERVAL_HOURS: u32 = 1;
/// Default `initLimit` (ticks). ZooKeeper itself requires it in quorum mode.
pub const DEFAULT_INIT_LIMIT: u32 = 10;
/// Default `syncLimit` (ticks). ZooKeeper itself requires it in quorum mode.
pub const DEFAULT_SYNC_LIMIT: u32 = 5;
/// Default `admin.serverPort`.
pub const DEFAULT_ADMIN_SERVER_PORT: u16 = 8080;
/// Default `admin.serverAddress`.
pub const DEFAULT_ADMIN_SERVER_ADDRESS: &str = "0.0.0.0";
/// Default `admin.commandURL`.
pub const DEFAULT_ADMIN_COMMAND_URL: &str = "/commands";
/// Default `admin.idleTimeout`, milliseconds.
pub const DEFAULT_ADMIN_IDLE_TIMEOUT: u32 = 30000;
/// `zookeeper.auditlog.file`'s default in ZooKeeper's shipped logging configuration.
pub const DEFAULT_AUDIT_LOG_FILE: &str = "zookeeper_audit.log";
/// The only `electionAlg` ZooKeeper 3.6+ accepts (fast leader election).
pub const ELECTION_ALG_FAST_LEADER_ELECTION: u32 = 3;
/// ZooKeeper's default `metricsProvider.className`.
pub const DEFAULT_METRICS_PROVIDER_CLASS_NAME: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// The four-letter words ZooKeeper 3.8 knows (`FourLetterCommands`), which
/// `4lw.commands.whitelist=*` enables.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat", "wchc", "wchp", "wchs", "mntr", "isro",
    "hash",
];

/// An invalid configuration. Its `Display` names the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key's value is invalid.
    #[error("{file} line {line}: {key}: {message}")]
    InvalidValue {
        /// Name of the file (`zoo.cfg` unless told otherwise).
        file: String,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The properties syntax itself is broken (a malformed `\uXXXX`).
    #[error("{file} line {line}: {message}")]
    Syntax {
        /// Name of the file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration as a whole is invalid (a required key is missing,
    /// servers and settings do not fit together).
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// Name of the file.
        file: String,
        /// The key concerned.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A system property passed in by the caller (not from the file) is invalid.
    #[error("system property {key}: {message}")]
    InvalidSystemProperty {
        /// The property name, e.g. `jute.maxbuffer`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The content of a `myid` file is not a server id.
    #[error("myid: {message}")]
    InvalidMyid {
        /// What is wrong.
        message: String,
    },
    /// A file could not be read (only from [`load`]).
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path as given.
        path: String,
        /// The OS error.
        message: String,
    },
}

impl ConfigError {
    /// The line the error is on, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::InvalidValue { line, .. } | ConfigError::Syntax { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The key (or system property) the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { key, .. } | ConfigError::Invalid { key, .. } | ConfigError::InvalidSystemProperty { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }
}

/// Which four-letter words may run (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWordWhitelist {
    /// `*`: every word in [`FOUR_LETTER_WORDS`].
    All,
    /// These words. ZooKeeper always adds `srvr` (zkServer.sh needs it), and
    /// `isro` when read-only mode is enabled; the set here includes them.
    Only(BTreeSet<String>),
}

impl FourLetterWordWhitelist {
    /// Parses the property's value as ZooKeeper does: comma-separated,
    /// each item trimmed, empty items skipped, `*` anywhere means all.
    pub fn parse(value: &str, readonly_mode_enabled: bool) -> Self {
        let mut set = BTreeSet::new();
        for item in value.split(',') {
            let item = properties::java_trim(item);
            if item == "*" {
                return FourLetterWordWhitelist::All;
            }
            if !item.is_empty() {
                set.insert(item.to_string());
            }
        }
        Self::with_implicit(set, readonly_mode_enabled)
    }

    /// ZooKeeper's default when the property is unset: `srvr` only (and
    /// `isro` in read-only mode).
    pub fn default_for(readonly_mode_enabled: bool) -> Self {
        Self::with_implicit(BTreeSet::new(), readonly_mode_enabled)
    }

    fn with_implicit(mut set: BTreeSet<String>, readonly_mode_enabled: bool) -> Self {
        if readonly_mode_enabled {
            set.insert("isro".to_string());
        }
        set.insert("srvr".to_string());
        FourLetterWordWhitelist::Only(set)
    }

    /// Whether `word` may run.
    pub fn allows(&self, word: &str) -> bool {
        match self {
            FourLetterWordWhitelist::All => FOUR_LETTER_WORDS.contains(&word),
            FourLetterWordWhitelist::Only(set) => set.contains(word),
        }
    }
}

impl Default for FourLetterWordWhitelist {
    fn default() -> Self {
        Self::default_for(false)
    }
}

/// `snapshot.compression.method` (ZooKeeper's `SnapStream.StreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotCompression {
    /// No compression, Adler-32 checked stream (the default; written `""`).
    #[default]
    Checked,
    /// `gz`.
    Gzip,
    /// `snappy`.
    Snappy,
}

impl SnapshotCompression {
    /// The name ZooKeeper uses (`""`, `gz`, `snappy`); also the snapshot
    /// file name suffix (`snapshot.<zxid>.gz`).
    pub fn name(self) -> &'static str {
        match self {
            SnapshotCompression::Checked => "",
            SnapshotCompression::Gzip => "gz",
            SnapshotCompression::Snappy => "snappy",
        }
    }

    /// Parses a name case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" => Some(SnapshotCompression::Checked),
            "gz" => Some(SnapshotCompression::Gzip),
            "snappy" => Some(SnapshotCompression::Snappy),
            _ => None,
        }
    }
}

impl fmt::Display for SnapshotCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text of a dynamic configuration file (`dynamicConfigFile=...`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DynamicConfigText {
    /// Its file name as given in `dynamicConfigFile`; the part after the last
    /// `.` is the configuration version in hex (`zoo.cfg.dynamic.100000000`).
    pub file_name: String,
    /// Its content.
    pub text: String,
}

/// Inputs to [`ServerConfig::parse_with`] besides the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Name of the file used in error messages. Default `zoo.cfg`.
    pub file_name: String,
    /// JVM-style system properties already set (e.g. from `-Dkey=value`
    /// options); keys from the file override them, as in ZooKeeper.
    pub system_properties: BTreeMap<String, String>,
    /// Content of the dynamic config file, required when the text sets
    /// `dynamicConfigFile`.
    pub dynamic_config: Option<DynamicConfigText>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { file_name: "zoo.cfg".to_string(), system_properties: BTreeMap::new(), dynamic_config: None }
    }
}

/// Runtime values the `conf` four-letter word prints besides the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfRuntime {
    /// Bytes in the snapshot directory (`dataDirSize`).
    pub data_dir_size: u64,
    /// Bytes in the transaction log directory (`dataLogSize`).
    pub data_log_size: u64,
    /// Directory relative `dataDir`/`dataLogDir` are resolved against, as
    /// Java's `getAbsolutePath` does (no normalisation). `None` prints them
    /// as configured.
    pub cwd: Option<PathBuf>,
    /// The port the client listener actually bound, if different from the
    /// configured one (e.g. configured 0). `None`: the configured one.
    pub client_port: Option<u16>,
    /// Same for the secure client port.
    pub secure_client_port: Option<u16>,
    /// This server's id (myid). In quorum mode, with a matching `server.N`,
    /// the quorum part of `conf` is printed too.
    pub my_id: Option<u64>,
}

/// A validated rzk/ZooKeeper server configuration.
///
/// Field names follow ZooKeeper's key names. Every `zoo.cfg` key is either a
/// typed field here, an entry of [`Self::ignored`], or (unknown to
/// `QuorumPeerConfig`) a system property in [`Self::system_properties`] -
/// several typed fields are read from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    // ----- directories and listeners -----
    /// `dataDir`: snapshots (in its `version-2` subdirectory) and `myid`.
    pub data_dir: PathBuf,
    /// `dataLogDir` as configured; see [`Self::data_log_dir`] for the
    /// effective one (defaults to `dataDir`).
    pub data_log_dir: Option<PathBuf>,
    /// `clientPort`. `None` when a configuration file does not set it (or
    /// sets 0): then only a `server.N` client address can give one, see
    /// [`Self::client_listen_address`].
    pub client_port: Option<u16>,
    /// `clientPortAddress`: address to bind the client port to (default all).
    pub client_port_address: Option<String>,
    /// `secureClientPort` (TLS client port), stored; 0 means unset.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`.
    pub secure_client_port_address: Option<String>,
    /// TLS on the client ports and the x509 provider (`ssl.*`, `client.portUnification`,
    /// `client.certReload`, `X509AuthenticationProvider.superUser`).
    pub client_tls: ClientTls,
    /// TLS on the AdminServer (`admin.forceHttps`, `admin.portUnification`,
    /// `admin.needClientAuth`, `ssl.quorum.keyStore.*`, `ssl.quorum.trustStore.*`).
    pub admin_tls: AdminTls,
    /// `clientPortListenBacklog`: listen backlog; -1 (default) = OS default.
    pub client_port_listen_backlog: i32,
    /// `observerMasterPort`; values <= 0 mean unset.
    pub observer_master_port: Option<u16>,

    // ----- time and limits -----
    /// `tickTime`, ms.
    pub tick_time: u32,
    /// `maxClientCnxns`: connections per client IP; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `maxCnxns` (system property `zookeeper.maxCnxns`): total client
    /// connections; 0 = unlimited.
    pub max_cnxns: u32,
    /// `minSessionTimeout` as configured (ms); see
    /// [`Self::min_session_timeout_ms`] for the effective one.
    pub min_session_timeout: Option<u32>,
    /// `maxSessionTimeout` as configured (ms); see
    /// [`Self::max_session_timeout_ms`].
    pub max_session_timeout: Option<u32>,
    /// `globalOutstandingLimit` (`zookeeper.globalOutstandingLimit`).
    pub global_outstanding_limit: u32,
    /// `jute.maxbuffer`: largest packet / znode data, bytes.
    pub jute_maxbuffer: u32,

    // ----- ensemble -----
    /// `initLimit`, ticks (default 10; ZooKeeper requires it in quorum mode,
    /// and so does rzk).
    pub init_limit: u32,
    /// `syncLimit`, ticks (default 5; required in quorum mode).
    pub sync_limit: u32,
    /// `connectToLearnerMasterLimit`, ticks; `None`: same as `initLimit`.
    pub connect_to_learner_master_limit: Option<u32>,
    /// `electionAlg`: always 3.
    pub election_alg: u32,
    /// `peerType` as configured (the `server.N` line of myid wins, see
    /// [`Self::peer_type_for`]).
    pub peer_type: PeerType,
    /// `quorumListenOnAllIPs`.
    pub quorum_listen_on_all_ips: bool,
    /// `standaloneEnabled` (default true): one participant runs standalone.
    pub standalone_enabled: bool,
    /// `reconfigEnabled` (default false).
    pub reconfig_enabled: bool,
    /// `multiAddress.enabled`: `server.N` may list `|`-separated addresses.
    pub multi_address_enabled: bool,
    /// `server.N` lines by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// `group.N=sid:sid:...` (hierarchical quorums), by group id.
    pub groups: BTreeMap<u64, Vec<u64>>,
    /// `weight.sid=w` as configured (hierarchical quorums); participants not
    /// listed weigh 1.
    pub weights: BTreeMap<u64, u64>,
    /// `dynamicConfigFile`, if the ensemble is in a separate file.
    pub dynamic_config_file: Option<String>,
    /// Configuration version (hex in files): from the dynamic config file's
    /// name suffix, or a `version` key; 0 if none.
    pub config_version: u64,

    // ----- persistence -----
    /// `snapCount` (`zookeeper.snapCount`): transactions between snapshots
    /// (ZooKeeper randomises around it); at least 2.
    pub snap_count: u32,
    /// `preAllocSize` (`zookeeper.preAllocSize`), KiB, txn log preallocation.
    pub pre_alloc_size_kb: u64,
    /// `zookeeper.snapshotSizeFactor` (ZooKeeper's `ZKDatabase`, default 0.33): a leader
    /// syncs a learner behind its in-memory window from the txn log on disk (DIFF) when the
    /// log files to read weigh at most the newest snapshot's size times this; 0 (or no
    /// snapshot): no limit; negative: never from the log (SNAP).
    pub snapshot_size_factor: SizeFactor,
    /// `forceSync` (`zookeeper.forceSync`, yes/no): fsync the txn log.
    pub force_sync: bool,
    /// `syncEnabled` (system property `zookeeper.observer.syncEnabled`, which wins, as in
    /// `QuorumPeer.getSyncEnabled`): observers log and snapshot like followers (default
    /// true); false: an observer writes no txn log (see `rzk_zab::Config::sync_enabled`).
    pub sync_enabled: bool,
    /// `autopurge.snapRetainCount`: snapshots kept (at least 3).
    pub snap_retain_count: u32,
    /// `autopurge.purgeInterval`, hours; 0 = never purge. rzk default 1.
    pub purge_interval: u32,
    /// `snapshot.compression.method` (`zookeeper.snapshot.compression.method`).
    pub snapshot_compression_method: SnapshotCompression,

    // ----- features -----
    /// `localSessionsEnabled`.
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`.
    pub local_sessions_upgrading_enabled: bool,
    /// `extendedTypesEnabled` (`zookeeper.extendedTypesEnabled`): TTL nodes.
    pub extended_types_enabled: bool,
    /// `readonlymode.enabled`.
    pub readonly_mode_enabled: bool,
    /// `skipACL` (`zookeeper.skipACL`, yes/no).
    pub skip_acl: bool,
    /// `DigestAuthenticationProvider.superDigest`
    /// (`zookeeper.DigestAuthenticationProvider.superDigest`):
    /// `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// SASL on the client port (`java.security.auth.login.config`, the `sasl` provider, ...).
    pub sasl: SaslConfig,
    /// `enforce.auth.*` / `sessionRequireClientSASLAuth`.
    pub enforce_auth: EnforceAuth,
    /// `4lw.commands.whitelist` (`zookeeper.4lw.commands.whitelist`).
    pub four_letter_word_whitelist: FourLetterWordWhitelist,

    // ----- admin server -----
    /// `admin.enableServer` (default true).
    pub admin_enable_server: bool,
    /// `admin.serverPort` (default 8080).
    pub admin_server_port: u16,
    /// `admin.serverAddress` (default 0.0.0.0).
    pub admin_server_address: String,
    /// `admin.commandURL` (default /commands).
    pub admin_command_url: String,
    /// `admin.idleTimeout`, ms (default 30000).
    pub admin_idle_timeout: u32,
    /// `admin.snapshot.enabled` (ZooKeeper 3.9, default true): the `snapshot` command serves.
    pub admin_snapshot_enabled: bool,
    /// `admin.restore.enabled` (ZooKeeper 3.9, default true): the `restore` command serves
    /// (a standalone server only, in rzk).
    pub admin_restore_enabled: bool,
    /// `admin.rateLimiterIntervalInMS` (ZooKeeper 3.9, default 300000): the `snapshot`
    /// command's rate limit. 3.9 reads it as *microseconds* for `snapshot` (one snapshot per
    /// 300 ms by default) and as milliseconds for `restore`; rzk does as 3.9.
    pub admin_rate_limiter_interval: u64,
    /// rzk's web console on the AdminServer (`rzk.console.*`; ZooKeeper has none).
    pub console: ConsoleConfig,

    // ----- audit log -----
    /// `audit.enable` (`zookeeper.audit.enable`, default false): write the audit log.
    pub audit_enable: bool,
    /// Where the audit log goes: `${zookeeper.log.dir}/${zookeeper.auditlog.file}`, the
    /// properties ZooKeeper's shipped logback/log4j configuration names its audit appender's
    /// file with (defaults `.` and `zookeeper_audit.log`).
    pub audit_log_file: PathBuf,

    // ----- the server's own log -----
    /// `zookeeper.log.dir` (as zkServer.sh passes it from ZOO_LOG_DIR): when set, the server
    /// logs to `${zookeeper.log.dir}/${zookeeper.log.file}` instead of stderr, rolled by
    /// size as ZooKeeper's shipped log4j configuration does.
    pub log_dir: Option<PathBuf>,
    /// `zookeeper.log.file` (default `zookeeper.log`).
    pub log_file: String,
    /// `zookeeper.log.maxfilesize` (default 256MB; `KB`/`MB`/`GB` suffixes as log4j reads
    /// them): the size at which the file rolls.
    pub log_max_file_bytes: u64,
    /// `zookeeper.log.maxbackupindex` (default 20): rolled files (`.1` … `.N`) kept.
    pub log_max_backups: u32,

    // ----- read by the server's components from system properties -----
    /// `zookeeper.digest.enabled` (ZooKeeper's `ZooKeeperServer`, default true): keep the
    /// tree digest and check it on apply.
    pub digest_enabled: bool,
    /// `zookeeper.enforceQuota` (ZooKeeper 3.7+'s `ZooKeeperServer`, default false; the
    /// zoo.cfg key `enforceQuota` becomes it): creates and setData that would take a quota
    /// subtree past a hard limit (`countHardLimit`, `byteHardLimit` in its
    /// `zookeeper_limits` node) fail with QuotaExceeded; soft limits only warn.
    pub enforce_quota: bool,
    /// `znode.container.checkIntervalMs` (ZooKeeper's `ContainerManager`, default 60000):
    /// how often empty containers and expired TTL nodes are looked for.
    pub container_check_interval_ms: u32,
    /// `znode.container.maxNeverUsedIntervalMs` (default 0: never): a container that never
    /// had a child is deleted after this long.
    pub container_max_never_used_interval_ms: u64,
    /// `zookeeper.cnxTimeout` (ZooKeeper's `QuorumCnxManager`, default 5000): the timeout
    /// of a connection to a peer's election port.
    pub cnx_timeout_ms: u32,
    /// `zookeeper.request_throttle_max_requests` (ZooKeeper's `RequestThrottler`, default 0:
    /// off): requests in process beyond which new ones wait.
    pub request_throttle_max_requests: u32,
    /// `zookeeper.request_throttle_stall_time` (default 100 ms): how long a waiting request
    /// waits before the throttler looks again (it also looks whenever a request finishes).
    pub request_throttle_stall_time_ms: u32,
    /// `zookeeper.request_throttle_drop_stale` (default true): a waiting request whose
    /// connection is gone is dropped.
    pub request_throttle_drop_stale: bool,
    /// `zookeeper.throttled_op_wait_time` (default 0: off): a request that waited longer
    /// than this is answered ThrottledOp.
    pub throttled_op_wait_time_ms: u32,
    /// `zookeeper.leaderServes` (default yes; only "no" turns it off, as ZooKeeper reads
    /// it): whether the leader serves clients.
    pub leader_serves: bool,
    /// `zookeeper.observer.reconnectDelayMs` (default 0; <= 0: none): an observer waits a
    /// random time below it before it connects to its leader (or, with observer masters,
    /// after trying the whole list), as ZooKeeper's `Observer.waitForReconnectDelay`.
    pub observer_reconnect_delay_ms: i64,
    /// `zookeeper.observer.election.DelayMs` (default 200; <= 0: none): an observer that
    /// stops observing waits a random time below it before its election round.
    pub observer_election_delay_ms: i64,
    /// `zookeeper.observerMaster.sizeLimit` (default 32 MiB): the bytes a ZooKeeper follower
    /// keeps of recent commits to cover the race between an observer's sync and the start
    /// of its forwarding (an observer whose sync point fell out is disconnected). rzk's
    /// follower syncs and forwards at one zxid (one thread), so it needs no such queue and
    /// keeps none: any limit holds, and no observer can fall out of it.
    pub observer_master_size_limit: i32,
    /// `zookeeper.leaderConnectDelayDuringRetryMs` (default 100): the pause between a
    /// learner's attempts to connect to its leader (or learner master).
    pub leader_connect_delay_during_retry_ms: i32,
    /// `zookeeper.connection_throttle_*` (ZooKeeper's `BlueThrottle`; tokens 0: off).
    pub connection_throttle: ConnectionThrottle,
    /// `zookeeper.largeRequestThreshold` (-1: off): requests of more bytes are large.
    pub large_request_threshold: i32,
    /// `zookeeper.largeRequestMaxBytes` (default 100 MiB): what large requests in process
    /// may hold together; a connection whose large request would go over is closed.
    pub large_request_max_bytes: i32,

    // ----- metrics -----
    /// `metricsProvider.className` if set: ZooKeeper's default provider or its
    /// Prometheus provider (the server refuses any other).
    pub metrics_provider_class_name: Option<String>,
    /// The other `metricsProvider.*` keys, without the prefix
    /// (e.g. `httpPort` -> `7000`).
    pub metrics_provider_configuration: BTreeMap<String, String>,

    // ----- bookkeeping -----
    /// Name of the file this was parsed from ([`ParseOptions::file_name`]);
    /// `None` for [`ServerConfig::default_standalone`].
    pub config_file: Option<String>,
    /// The path [`load`] read it from (as given); `None` when parsed from text. A member
    /// with `reconfigEnabled` rewrites that file.
    pub config_path: Option<std::path::PathBuf>,
    /// Java system properties as ZooKeeper would have them after reading the
    /// file: those passed in [`ParseOptions::system_properties`], then
    /// `zookeeper.<key>` for each key `QuorumPeerConfig` does not know.
    pub system_properties: BTreeMap<String, String>,
    /// TLS between the servers (`sslQuorum`, `portUnification`, `sslQuorumReloadCertFiles`,
    /// `ssl.quorum.*`).
    pub quorum_tls: QuorumTls,
    /// SASL between the servers (`quorum.auth.*` and the JAAS sections they name).
    pub quorum_sasl: QuorumSasl,
    /// The line of every key of the file (the last one, for a repeated key).
    pub key_lines: BTreeMap<String, usize>,
    /// Keys meaningless to rzk: `(key, line, reason)`, for the server to log.
    pub ignored: Vec<(String, usize, String)>,
    /// Other things worth logging: `(key, line, message)`; line 0 when the
    /// note is not about one line.
    pub warnings: Vec<(String, usize, String)>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::default_standalone()
    }
}

/// Where a system property came from, for error messages.
#[derive(Debug, Clone)]
struct Origin {
    key: String,
    line: usize,
}

/// Keys of `QuorumPeerConfig` that rzk takes no notice of, with the reason.
fn ignored_quorum_peer_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "quorum.cnxn.threads.size" => "a Java thread pool size; rzk manages its own tasks",
        "jvm.pause.monitor" | "jvm.pause.info-threshold.ms" | "jvm.pause.warn-threshold.ms" | "jvm.pause.sleep.time.ms" => {
            "the JVM pause monitor has no meaning for rzk"
        }
        "multiAddress.reachabilityCheckEnabled" | "multiAddress.reachabilityCheckTimeoutMs" => {
            "rzk does not check the reachability of multiple quorum addresses"
        }
        _ => return None,
    })
}

/// System-property keys (as written in zoo.cfg, without `zookeeper.`) that
/// mean nothing to rzk, with the reason.
fn ignored_system_key(key: &str) -> Option<&'static str> {
    let k = key.strip_prefix("zookeeper.").unwrap_or(key);
    let reason = if k.starts_with("authProvider.") {
        "an auth provider whose scheme rzk has built in"
    } else if matches!(k, "serverCnxnFactory" | "clientCnxnSocket" | "connection_throttle_weight_class")
        || k.ends_with(".className")
        || (k.ends_with(".class") && k != "audit.impl.class")
    {
        "a Java class name; rzk has its own implementation"
    } else if k == "client.secure" || k == "ssl.sslProvider" || k == "ssl.allowReverseDnsLookup" {
        "a client-side or Java TLS-provider setting; it does not change what the server accepts"
    } else if k.starts_with("sasl.client") {
        "a client-side SASL setting; it does not change what the server accepts"
    } else if k == "jaasLoginRenew" {
        "JAAS login renewal refreshes Kerberos tickets; rzk's DIGEST-MD5 login has none"
    } else if k.starts_with("nio.") || k.starts_with("netty.") || k == "serverCnxnFactory" {
        "Java NIO/Netty tuning has no meaning for rzk"
    } else if k.starts_with("jmx") || k.starts_with("jvm.") {
        "JVM/JMX settings have no meaning for rzk"
    } else {
        return None;
    };
    Some(reason)
}

/// The system properties rzk reads into typed fields.
const SYSTEM_PROPERTIES_READ: &[&str] = &[
    "zookeeper.4lw.commands.whitelist",
    "zookeeper.maxCnxns",
    "zookeeper.globalOutstandingLimit",
    "zookeeper.snapCount",
    "zookeeper.preAllocSize",
    "zookeeper.forceSync",
    "zookeeper.skipACL",
    "zookeeper.extendedTypesEnabled",
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "zookeeper.snapshot.compression.method",
    "zookeeper.admin.enableServer",
    "zookeeper.admin.serverPort",
    "zookeeper.admin.serverAddress",
    "zookeeper.admin.commandURL",
    "zookeeper.admin.idleTimeout",
    "zookeeper.admin.httpVersion",
    "zookeeper.admin.snapshot.enabled",
    "zookeeper.admin.rateLimiterIntervalInMS",
    "zookeeper.admin.restore.enabled",
    "zookeeper.rzk.console.enabled",
    "zookeeper.rzk.console.allowRemote",
    "rzk.console.enabled",
    "rzk.console.allowRemote",
    "zookeeper.multiAddress.enabled",
    "zookeeper.observer.syncEnabled",
    "zookeeper.jute.maxbuffer",
    "zookeeper.readonlymode.enabled",
    "zookeeper.audit.enable",
    "zookeeper.audit.impl.class",
    "zookeeper.log.dir",
    "zookeeper.auditlog.file",
    "jute.maxbuffer",
    "readonlymode.enabled",
    // read by the server's components (`read_component_properties`)
    "zookeeper.znode.container.checkIntervalMs",
    "zookeeper.znode.container.maxNeverUsedIntervalMs",
    "zookeeper.digest.enabled",
    "zookeeper.snapshotSizeFactor",
    "zookeeper.cnxTimeout",
    "zookeeper.enforceQuota",
    "zookeeper.request_throttle_max_requests",
    "zookeeper.request_throttle_stall_time",
    "zookeeper.request_throttle_drop_stale",
    "zookeeper.throttled_op_wait_time",
    "zookeeper.leaderServes",
    "zookeeper.observer.reconnectDelayMs",
    "zookeeper.observer.election.DelayMs",
    "zookeeper.observerMaster.sizeLimit",
    "zookeeper.leaderConnectDelayDuringRetryMs",
    "zookeeper.learner.asyncSending",
    "zookeeper.learner.closeSocketAsync",
    "zookeeper.leader.closeSocketAsync",
    "zookeeper.forceSnapshotSync",
    "zookeeper.log.file",
    "zookeeper.log.maxfilesize",
    "zookeeper.log.maxbackupindex",
    "zookeeper.largeRequestThreshold",
    "zookeeper.largeRequestMaxBytes",
    "zookeeper.connection_throttle_tokens",
    "zookeeper.connection_throttle_fill_time",
    "zookeeper.connection_throttle_fill_count",
    "zookeeper.connection_throttle_freeze_time",
    "zookeeper.connection_throttle_drop_increase",
    "zookeeper.connection_throttle_drop_decrease",
    "zookeeper.connection_throttle_decrease_ratio",
    "zookeeper.connection_throttle_weight_enabled",
    "zookeeper.connection_throttle_global_session_weight",
    "zookeeper.connection_throttle_local_session_weight",
    "zookeeper.connection_throttle_renew_session_weight",
];

/// rzk's own settings, as written in zoo.cfg.
pub const CONSOLE_KEYS: &[&str] = &["rzk.console.enabled", "rzk.console.allowRemote"];

/// rzk's web console (`rzk.console.*`), served by the AdminServer under `/console/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// `rzk.console.enabled` (default true; nothing is served without the AdminServer).
    pub enabled: bool,
    /// `rzk.console.allowRemote` (default false: only loopback clients get the console).
    pub allow_remote: bool,
    /// One of the keys was set (then `conf` prints them; by default `conf` stays
    /// ZooKeeper's, byte for byte).
    pub configured: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { enabled: true, allow_remote: false, configured: false }
    }
}

/// A log4j file size (`MaxFileSize`): bytes, or with a `KB`, `MB` or `GB` suffix.
fn log4j_file_size(v: &str) -> Result<u64, String> {
    let t = v.trim();
    let upper = t.to_ascii_uppercase();
    let (num, mult) = if let Some(n) = upper.strip_suffix("KB") {
        (n, 1u64 << 10)
    } else if let Some(n) = upper.strip_suffix("MB") {
        (n, 1 << 20)
    } else if let Some(n) = upper.strip_suffix("GB") {
        (n, 1 << 30)
    } else {
        (upper.as_str(), 1)
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n * mult),
        _ => Err(format!("expected a file size such as 256MB, got \"{v}\"")),
    }
}

/// `zookeeper.connection_throttle_*` as ZooKeeper's `BlueThrottle` reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionThrottle {
    /// Tokens in the bucket (0: no throttling).
    pub tokens: i32,
    /// `fill_time`: every this many ms...
    pub fill_time_ms: i32,
    /// ...this many tokens come back.
    pub fill_count: i32,
    /// `freeze_time`: how often BLUE adjusts its drop chance (-1: no random early drop).
    pub freeze_time_ms: i32,
    /// How much the drop chance rises when the bucket stayed empty for a freeze period...
    pub drop_increase: f64,
    /// ...and falls when it stayed at most `decrease_ratio` used.
    pub drop_decrease: f64,
    /// The used fraction of the bucket at or below which the drop chance falls.
    pub decrease_ratio: f64,
    /// `connection_throttle_weight_enabled`: new global sessions, new local sessions and
    /// reconnections take these many tokens (and the bucket and its fill scale by the
    /// global weight, as ZooKeeper's).
    pub weight_enabled: bool,
    /// Tokens a new global session takes (with weights on).
    pub global_weight: i32,
    /// Tokens a new local session takes.
    pub local_weight: i32,
    /// Tokens a reconnection takes.
    pub renew_weight: i32,
}

// The ratios are finite (the parser refuses NaN), so equality is total.
impl Eq for ConnectionThrottle {}

impl Default for ConnectionThrottle {
    fn default() -> Self {
        ConnectionThrottle {
            tokens: 0,
            fill_time_ms: 1,
            fill_count: 1,
            freeze_time_ms: -1,
            drop_increase: 0.02,
            drop_decrease: 0.002,
            decrease_ratio: 0.0,
            weight_enabled: false,
            global_weight: 3,
            local_weight: 1,
            renew_weight: 2,
        }
    }
}

/// Parse-time state.
struct Parser<'o> {
    opts: &'o ParseOptions,
    cfg: ServerConfig,
    data_dir: Option<PathBuf>,
    /// System properties set by the file, with their origin.
    origins: BTreeMap<String, Origin>,
    /// `server.`, `group.`, `weight.`, `version` entries (key, value, line, file).
    quorum_entries: Vec<(String, String, usize, String)>,
    multi_address_from_file: bool,
}

impl<'o> Parser<'o> {
    fn file(&self) -> &str {
        &self.opts.file_name
    }

    fn value_err(&self, key: &str, line: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue { file: self.opts.file_name.clone(), line, key: key.to_string(), message: message.into() }
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { file: self.opts.file_name.clone(), key: key.to_string(), message: message.into() }
    }

    fn warn(&mut self, key: &str, line: usize, message: impl Into<String>) {
        self.cfg.warnings.push((key.to_string(), line, message.into()));
    }

    /// The line of a key of the file (0 when it is not there).
    fn key_line(&self, key: &str) -> usize {
        self.cfg.key_lines.get(key).copied().unwrap_or(0)
    }

    fn ignore(&mut self, key: &str, line: usize, reason: &str) {
        self.cfg.ignored.push((key.to_string(), line, reason.to_string()));
    }

    /// Handles one (effective) key of zoo.cfg.
    fn entry(&mut self, key: &str, v: &str, line: usize, has_dynamic: bool) -> Result<(), ConfigError> {
        let err = |m: String| self.value_err(key, line, m);
        match key {
            "dataDir" => self.data_dir = Some(PathBuf::from(non_empty(v, "a directory").map_err(err)?)),
            "dataLogDir" => self.cfg.data_log_dir = Some(PathBuf::from(non_empty(v, "a directory").map_err(err)?)),
            "clientPort" => self.cfg.client_port = port_or_unset(v).map_err(err)?,
            "clientPortAddress" => self.cfg.client_port_address = Some(non_empty(v, "a host name or address").map_err(err)?.to_string()),
            "secureClientPort" => self.cfg.secure_client_port = port_or_unset(v).map_err(err)?,
            "secureClientPortAddress" => {
                self.cfg.secure_client_port_address = Some(non_empty(v, "a host name or address").map_err(err)?.to_string())
            }
            "observerMasterPort" => {
                let n = int(v).map_err(err)?;
                // An observer syncs from the voters' observer masters; a follower serves
                // observers there. Checked with the servers below.
                self.cfg.observer_master_port = if n <= 0 { None } else { Some(port(v).map_err(err)?) };
            }
            "clientPortListenBacklog" => self.cfg.client_port_listen_backlog = int(v).map_err(err)?,
            "tickTime" => self.cfg.tick_time = positive_int(v).map_err(err)?,
            "maxClientCnxns" => {
                let n = int(v).map_err(err)?;
                if n < 0 {
                    self.warn(key, line, format!("{n} is negative; no limit, as in ZooKeeper"));
                }
                self.cfg.max_client_cnxns = n.max(0) as u32;
            }
            "minSessionTimeout" | "maxSessionTimeout" => {
                let n = int(v).map_err(err)?;
                let t = match n {
                    -1 => None,
                    n if n >= 0 => Some(n as u32),
                    _ => return Err(err(format!("expected a non-negative number of milliseconds (or -1 for the default), got \"{v}\""))),
                };
                if key == "minSessionTimeout" {
                    self.cfg.min_session_timeout = t;
                } else {
                    self.cfg.max_session_timeout = t;
                }
            }
            "initLimit" => self.cfg.init_limit = non_negative_int(v).map_err(err)?,
            "syncLimit" => self.cfg.sync_limit = non_negative_int(v).map_err(err)?,
            "connectToLearnerMasterLimit" => {
                let n = non_negative_int(v).map_err(err)?;
                self.cfg.connect_to_learner_master_limit = (n > 0).then_some(n);
            }
            "electionAlg" => {
                let n = int(v).map_err(err)?;
                if n != 3 {
                    return Err(err(format!("only 3 (fast leader election) is supported, got \"{v}\"")));
                }
                self.cfg.election_alg = 3;
            }
            "quorumListenOnAllIPs" => self.cfg.quorum_listen_on_all_ips = boolean(v).map_err(err)?,
            "peerType" => {
                self.cfg.peer_type = PeerType::parse(v).ok_or_else(|| err(format!("expected participant or observer, got \"{v}\"")))?
            }
            "syncEnabled" => self.cfg.sync_enabled = boolean(v).map_err(err)?,
            "dynamicConfigFile" => self.cfg.dynamic_config_file = Some(non_empty(v, "a file name").map_err(err)?.to_string()),
            "autopurge.snapRetainCount" => {
                let n = int(v).map_err(err)?;
                if n < MIN_SNAP_RETAIN_COUNT as i32 {
                    self.warn(
                        key,
                        line,
                        format!("{n} is less than {MIN_SNAP_RETAIN_COUNT}; using {MIN_SNAP_RETAIN_COUNT}, as ZooKeeper does"),
                    );
                    self.cfg.snap_retain_count = MIN_SNAP_RETAIN_COUNT;
                } else {
                    self.cfg.snap_retain_count = n as u32;
                }
            }
            "autopurge.purgeInterval" => {
                let n = int(v).map_err(err)?;
                if n < 0 {
                    self.warn(key, line, format!("{n} is negative; purging is disabled, as in ZooKeeper"));
                }
                self.cfg.purge_interval = n.max(0) as u32;
            }
            "standaloneEnabled" => self.cfg.standalone_enabled = boolean(v).map_err(err)?,
            "reconfigEnabled" => self.cfg.reconfig_enabled = boolean(v).map_err(err)?,
            "localSessionsEnabled" => self.cfg.local_sessions_enabled = boolean(v).map_err(err)?,
            "localSessionsUpgradingEnabled" => self.cfg.local_sessions_upgrading_enabled = boolean(v).map_err(err)?,
            "multiAddress.enabled" => {
                self.cfg.multi_address_enabled = boolean(v).map_err(err)?;
                self.multi_address_from_file = true;
                if self.cfg.multi_address_enabled {
                    self.warn(
                        key,
                        line,
                        "ZooKeeper 3.8 parses server.N lines with -Dzookeeper.multiAddress.enabled only; rzk honours this key too",
                    );
                }
            }
            "sslQuorum" => self.cfg.quorum_tls.ssl_quorum = boolean(v).map_err(err)?,
            "portUnification" => self.cfg.quorum_tls.port_unification = boolean(v).map_err(err)?,
            "sslQuorumReloadCertFiles" => self.cfg.quorum_tls.tls.cert_reload = boolean(v).map_err(err)?,
            "quorum.auth.enableSasl" => self.cfg.quorum_sasl.enabled = boolean(v).map_err(err)?,
            "quorum.auth.serverRequireSasl" => self.cfg.quorum_sasl.server_require = boolean(v).map_err(err)?,
            "quorum.auth.learnerRequireSasl" => self.cfg.quorum_sasl.learner_require = boolean(v).map_err(err)?,
            "quorum.auth.learner.saslLoginContext" => self.cfg.quorum_sasl.learner_login_context = v.to_string(),
            "quorum.auth.server.saslLoginContext" => self.cfg.quorum_sasl.server_login_context = v.to_string(),
            "quorum.auth.kerberos.servicePrincipal" => {
                sasl::check_quorum_service_principal(v.trim()).map_err(err)?;
                self.cfg.quorum_sasl.kerberos_service_principal = Some(v.trim().to_string());
            }
            "metricsProvider.className" => {
                // The server accepts ZooKeeper's default and Prometheus providers and
                // refuses any other class at start-up (rzk_server::shell::metrics).
                self.cfg.metrics_provider_class_name = Some(v.to_string());
            }
            k if k.starts_with("metricsProvider.") => {
                self.cfg.metrics_provider_configuration.insert(k["metricsProvider.".len()..].to_string(), v.to_string());
            }
            k if is_quorum_key(k) && !(k == "version" && has_dynamic) => {
                if has_dynamic {
                    return Err(err("must be in the separate dynamic config file, since dynamicConfigFile is set".to_string()));
                }
                let file = self.file().to_string();
                self.quorum_entries.push((k.to_string(), v.to_string(), line, file));
            }
            "oraclePath" => {
                // A quorum rule (QuorumOracleMaj: one of two servers may go on alone): not
                // something to drop with a warning.
                return Err(err(
                    "the quorum oracle (QuorumOracleMaj, a two-server ensemble's failover) is not supported by rzk; remove the key"
                        .to_string(),
                ));
            }
            k => {
                if let Some(reason) = ignored_quorum_peer_key(k) {
                    // ZooKeeper parses these booleans and refuses bad ones.
                    if matches!(k, "jvm.pause.monitor" | "multiAddress.reachabilityCheckEnabled") {
                        boolean(v).map_err(err)?;
                    }
                    self.ignore(k, line, reason);
                } else {
                    self.system_key(k, v, line);
                }
            }
        }
        Ok(())
    }

    /// A key unknown to QuorumPeerConfig: the system property `zookeeper.<key>`.
    fn system_key(&mut self, key: &str, v: &str, line: usize) {
        let prop = if key.starts_with("zookeeper.") {
            self.warn(key, line, format!("stored as system property {key}; ZooKeeper would store it as zookeeper.{key} and not read it"));
            key.to_string()
        } else {
            format!("zookeeper.{key}")
        };
        if key == "jute.maxbuffer" || key == "readonlymode.enabled" {
            self.warn(
                key,
                line,
                format!("ZooKeeper reads {key} only as a JVM system property (-D{key}=...) and ignores it in zoo.cfg; rzk honours it"),
            );
        }
        if key.starts_with("authProvider.") && v.trim() == sasl::SASL_PROVIDER_CLASS {
            // Read by read_sasl: it makes `sasl` an ACL scheme.
        } else if let Some(reason) = ignored_system_key(key) {
            self.ignore(key, line, reason);
        } else if !SYSTEM_PROPERTIES_READ.contains(&prop.as_str())
            && !security::CLIENT_TLS_PROPERTIES.contains(&prop.as_str())
            && !security::ADMIN_TLS_PROPERTIES.contains(&prop.as_str())
            && !sasl::PROPERTIES.contains(&prop.as_str())
            && !prop.starts_with("zookeeper.superUser.")
        {
            self.warn(key, line, format!("not a setting rzk uses; kept as system property {prop}"));
        }
        self.cfg.system_properties.insert(prop.clone(), v.to_string());
        self.origins.insert(prop, Origin { key: key.to_string(), line });
    }

    /// The first of `names` that is set, parsed by `f`; errors name the
    /// zoo.cfg key and line, or the system property.
    fn sys<T>(&self, names: &[&str], f: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, ConfigError> {
        for name in names {
            if let Some(v) = self.cfg.system_properties.get(*name) {
                return match f(v) {
                    Ok(t) => Ok(Some(t)),
                    Err(m) => Err(match self.origins.get(*name) {
                        Some(o) => self.value_err(&o.key, o.line, m),
                        None => ConfigError::InvalidSystemProperty { key: name.to_string(), message: m },
                    }),
                };
            }
        }
        Ok(None)
    }

    fn sys_origin(&self, name: &str) -> (String, usize) {
        match self.origins.get(name) {
            Some(o) => (o.key.clone(), o.line),
            None => (name.to_string(), 0),
        }
    }

    /// Stops at the first system property asking for security rzk does not implement.
    fn refuse_unsupported_security(&self) -> Result<(), ConfigError> {
        let on = |k: &str| self.cfg.system_properties.get(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let admin_tls_on = on("zookeeper.admin.forceHttps") || on("zookeeper.admin.portUnification");
        let quorum_tls_on = self.cfg.quorum_tls.enabled();
        for (name, v) in &self.cfg.system_properties {
            if let Some(m) = security::unsupported_system_property(name, v, admin_tls_on, quorum_tls_on) {
                return Err(match self.origins.get(name) {
                    Some(o) => self.value_err(&o.key, o.line, m),
                    None => ConfigError::InvalidSystemProperty { key: name.clone(), message: m },
                });
            }
        }
        Ok(())
    }

    /// A store's settings (`zookeeper.ssl.keyStore` or `zookeeper.ssl.trustStore`).
    fn store(&self, prefix: &str) -> Result<Option<StoreConfig>, ConfigError> {
        let k = |s: &str| format!("{prefix}.{s}");
        let text = |v: &str| Ok::<String, String>(v.to_string());
        let Some(location) = self.sys(&[&k("location")], text)? else {
            return Ok(None);
        };
        if location.trim().is_empty() {
            return Ok(None);
        }
        let location = PathBuf::from(location.trim());
        let store_type = match self.sys(&[&k("type")], |v| if v.trim().is_empty() { Ok(None) } else { StoreType::parse(v).map(Some) })? {
            Some(Some(t)) => t,
            _ => {
                // No type: from the file's extension; an error names the location key.
                let key = k("location");
                self.sys(&[&key], |_| StoreType::from_file_name(&location))?.expect("location is set")
            }
        };
        Ok(Some(StoreConfig {
            password: self.sys(&[&k("password")], text)?,
            password_path: self.sys(&[&k("passwordPath")], text)?.filter(|p| !p.trim().is_empty()).map(PathBuf::from),
            store_type,
            location,
            location_key: k("location"),
        }))
    }

    /// SASL and authentication enforcement, from ZooKeeper's system properties.
    fn read_sasl(&mut self) -> Result<(), ConfigError> {
        let java_bool = |v: &str| Ok::<bool, String>(v.trim().eq_ignore_ascii_case("true"));
        let text = |v: &str| Ok::<String, String>(v.to_string());
        let mut s = SaslConfig { server_section: sasl::DEFAULT_SERVER_SECTION.to_string(), ..SaslConfig::default() };
        if self.cfg.system_properties.contains_key("zookeeper.java.security.auth.login.config") {
            let (k, l) = self.sys_origin("zookeeper.java.security.auth.login.config");
            self.warn(
                &k,
                l,
                "ZooKeeper reads java.security.auth.login.config only as a JVM system property (-Djava.security.auth.login.config=...) and ignores it in zoo.cfg; rzk honours it",
            );
        }
        s.jaas_file = self.sys(&["java.security.auth.login.config", "zookeeper.java.security.auth.login.config"], |v| {
            non_empty(v, "the path of a JAAS file").map(|p| PathBuf::from(p.trim()))
        })?;
        if let Some(name) = self.sys(&["zookeeper.sasl.serverconfig"], |v| non_empty(v, "a JAAS section name").map(str::to_string))? {
            s.server_section = name.trim().to_string();
            s.server_section_set = true;
        }
        s.provider = self
            .cfg
            .system_properties
            .iter()
            .any(|(k, v)| k.starts_with("zookeeper.authProvider.") && v.trim() == sasl::SASL_PROVIDER_CLASS);
        // ZooKeeperServer.isSaslSuperUser: zookeeper.superUser, or zookeeper.superUser.<anything>.
        s.super_users = self
            .cfg
            .system_properties
            .iter()
            .filter(|(k, _)| *k == "zookeeper.superUser" || k.starts_with("zookeeper.superUser."))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .collect();
        s.super_password = self.sys(&["zookeeper.SASLAuthenticationProvider.superPassword"], text)?;
        s.let_any_sasl_user_do_x = self.sys(&["zookeeper.letAnySaslUserDoX"], text)?;
        s.allow_failed_clients = self.sys(&["zookeeper.allowSaslFailedClients"], java_bool)?.unwrap_or(false);
        // SaslServerCallbackHandler compares with "true" exactly.
        let exactly_true = |v: &str| Ok::<bool, String>(v == "true");
        s.kerberos_naming.remove_host = self.sys(&["zookeeper.kerberos.removeHostFromPrincipal"], exactly_true)?.unwrap_or(false);
        s.kerberos_naming.remove_realm = self.sys(&["zookeeper.kerberos.removeRealmFromPrincipal"], exactly_true)?.unwrap_or(false);
        // KerberosName's auth_to_local rules: rzk has the DEFAULT rule only.
        self.sys(&["zookeeper.security.auth_to_local"], |v| {
            if v.trim() == "DEFAULT" {
                Ok(())
            } else {
                Err("auth_to_local rules other than DEFAULT are not supported by rzk; remove the key (rzk refuses to start rather than map principals otherwise)".to_string())
            }
        })?;

        // AuthenticationHelper: sessionRequireClientSASLAuth wins over enforce.auth.*.
        let mut e = EnforceAuth::default();
        let mut origin = "zookeeper.enforce.auth.enabled";
        if self.sys(&["zookeeper.sessionRequireClientSASLAuth"], java_bool)?.unwrap_or(false) {
            e.enabled = true;
            e.schemes.push("sasl".to_string());
            origin = "zookeeper.sessionRequireClientSASLAuth";
        } else {
            e.enabled = self.sys(&["zookeeper.enforce.auth.enabled"], java_bool)?.unwrap_or(false);
            if let Some(list) = self.sys(&["zookeeper.enforce.auth.schemes"], text)? {
                e.schemes = list.split(',').map(|s| s.trim().to_string()).collect();
            }
        }
        // An error names the zoo.cfg key and line, or the system property given on the command line.
        let prop_err = |p: &Self, name: &str, m: String| match p.origins.get(name) {
            Some(o) => p.value_err(&o.key, o.line, m),
            None => ConfigError::InvalidSystemProperty { key: name.to_string(), message: m },
        };
        if e.enabled {
            if e.schemes.is_empty() {
                return Err(prop_err(self, origin, "enforce.auth.enabled is true, so enforce.auth.schemes must be configured".into()));
            }
            for scheme in &e.schemes {
                let available = match scheme.as_str() {
                    "ip" | "digest" | "x509" => true,
                    "sasl" => s.provider,
                    _ => false,
                };
                if !available {
                    let name = if origin == "zookeeper.enforce.auth.enabled" { "zookeeper.enforce.auth.schemes" } else { origin };
                    let hint =
                        if scheme == "sasl" { format!(" (add authProvider.1={})", sasl::SASL_PROVIDER_CLASS) } else { String::new() };
                    return Err(prop_err(self, name, format!("authentication scheme {scheme} is not available{hint}")));
                }
            }
        }
        self.cfg.sasl = s;
        self.cfg.enforce_auth = e;
        Ok(())
    }

    /// The settings `X509Util` reads under one prefix (`zookeeper.ssl` for the client port,
    /// `zookeeper.ssl.quorum` for the quorum): stores, clientAuth, protocols, cipher suites,
    /// hostname verification, the unified port's handshake detection timeout.
    fn read_tls(&self, prefix: &str, mut t: ClientTls) -> Result<ClientTls, ConfigError> {
        let java_bool = |v: &str| Ok::<bool, String>(v.trim().eq_ignore_ascii_case("true"));
        let p = |name: &str| format!("{prefix}.{name}");
        t.key_store = self.store(&p("keyStore"))?;
        t.trust_store = self.store(&p("trustStore"))?;
        if let Some(a) = self.sys(&[&p("clientAuth")], ClientAuth::parse)? {
            t.client_auth = a;
        }
        if let Some(v) = self.sys(&[&p("protocol")], |v| Ok::<String, String>(v.trim().to_string()))? {
            if !v.is_empty() {
                t.protocol = v;
            }
        }
        t.enabled_protocols = match self.sys(&[&p("enabledProtocols")], |v| Ok::<_, String>(security::split_list(v)))? {
            Some(list) if !list.is_empty() => list,
            _ => vec![t.protocol.clone()],
        };
        t.ciphersuites = self.sys(&[&p("ciphersuites")], |v| Ok::<_, String>(security::split_list(v)))?.filter(|l| !l.is_empty());
        if let Some(b) = self.sys(&[&p("hostnameVerification")], java_bool)? {
            t.hostname_verification = b;
        }
        if let Some(n) = self.sys(&[&p("handshakeDetectionTimeoutMillis")], |v| decoded_int(v, 1, "a positive number of milliseconds"))? {
            t.handshake_detection_timeout_ms = n as u32;
        }
        Ok(t)
    }

    /// TLS between the servers: `sslQuorum` / `portUnification` (read from the file) with
    /// the `ssl.quorum.*` settings. Both need the key store (this server's certificate, also
    /// presented when it connects to another) and the trust store (rzk has no JDK default).
    fn read_quorum_tls(&mut self) -> Result<(), ConfigError> {
        let java_bool = |v: &str| Ok::<bool, String>(v.trim().eq_ignore_ascii_case("true"));
        let mut q = self.cfg.quorum_tls.clone();
        q.tls = self.read_tls("zookeeper.ssl.quorum", q.tls)?;
        if let Some(b) = self.sys(&["zookeeper.ssl.quorum.allowReverseDnsLookup"], java_bool)? {
            q.allow_reverse_dns_lookup = b;
        }
        if q.enabled() {
            let why = if q.ssl_quorum { "sslQuorum" } else { "portUnification" };
            if q.tls.key_store.is_none() {
                return Err(self.invalid(
                    "ssl.quorum.keyStore.location",
                    format!("{why} is set, so the quorum's TLS needs this server's key store (ssl.quorum.keyStore.location)"),
                ));
            }
            if q.tls.trust_store.is_none() {
                return Err(self.invalid(
                    "ssl.quorum.trustStore.location",
                    format!("{why} is set, so the quorum's TLS needs a trust store for the other servers' certificates (ssl.quorum.trustStore.location); rzk has no JDK default trust store"),
                ));
            }
        } else {
            // Unused settings (kept, as ZooKeeper keeps them, so that the stores can be put
            // in place before a rolling move to TLS), each said so.
            let admin = self.cfg.admin_tls.enabled();
            let unused: Vec<(String, usize)> = security::QUORUM_TLS_PROPERTIES
                .iter()
                .filter(|p| self.cfg.system_properties.contains_key(**p))
                .filter(|p| !(admin && security::ADMIN_TLS_PROPERTIES.contains(p)))
                .map(|p| self.sys_origin(p))
                .collect();
            for (k, l) in unused {
                self.warn(
                    &k,
                    l,
                    format!(
                        "{k} has no effect: neither sslQuorum nor portUnification is set, so the quorum and election ports speak plaintext"
                    ),
                );
            }
        }
        if !q.enabled() && q.tls.cert_reload {
            let line = self.key_line("sslQuorumReloadCertFiles");
            self.warn("sslQuorumReloadCertFiles", line, "sslQuorumReloadCertFiles has no effect without sslQuorum or portUnification");
        }
        self.cfg.quorum_tls = q;
        Ok(())
    }

    /// SASL between the servers: ZooKeeper's checks of the `quorum.auth.*` booleans
    /// (`QuorumPeerConfig.parseProperties`). The JAAS sections are read by `load_jaas`.
    fn check_quorum_sasl(&self) -> Result<(), ConfigError> {
        let q = &self.cfg.quorum_sasl;
        if !q.enabled && q.server_require {
            return Err(self.invalid(
                "quorum.auth.serverRequireSasl",
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ));
        }
        if !q.enabled && q.learner_require {
            return Err(self.invalid(
                "quorum.auth.learnerRequireSasl",
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl",
            ));
        }
        if !q.learner_require && q.server_require {
            return Err(self.invalid(
                "quorum.auth.serverRequireSasl",
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ));
        }
        Ok(())
    }

    /// TLS on the client port and the x509 provider, from ZooKeeper's system properties.
    fn read_client_tls(&mut self) -> Result<(), ConfigError> {
        let java_bool = |v: &str| Ok::<bool, String>(v.trim().eq_ignore_ascii_case("true"));
        let mut t = self.read_tls("zookeeper.ssl", ClientTls::default())?;
        if let Some(p) = self.sys(&["zookeeper.ssl.authProvider"], |v| {
            let v = v.trim();
            if v.is_empty() || v == "x509" {
                Ok("x509".to_string())
            } else {
                Err(format!("\"{v}\": rzk authenticates client certificates with its built-in x509 provider only"))
            }
        })? {
            t.auth_provider = p;
        }
        t.x509_super_user = self.sys(&["zookeeper.X509AuthenticationProvider.superUser"], |v| Ok::<_, String>(v.to_string()))?;
        t.port_unification = self.sys(&["zookeeper.client.portUnification"], java_bool)?.unwrap_or(false);
        t.cert_reload = self.sys(&["zookeeper.client.certReload"], java_bool)?.unwrap_or(false);
        let tls_used = self.cfg.secure_client_port.is_some() || t.port_unification;
        if tls_used {
            let why = if self.cfg.secure_client_port.is_some() { "secureClientPort" } else { "client.portUnification" };
            if t.key_store.is_none() {
                return Err(self.invalid(
                    "ssl.keyStore.location",
                    format!("{why} is set, so TLS needs the server's key store (ssl.keyStore.location)"),
                ));
            }
            if t.client_auth != ClientAuth::None && t.trust_store.is_none() {
                return Err(self.invalid(
                    "ssl.trustStore.location",
                    format!(
                        "ssl.clientAuth is {}, so client certificates need a trust store (ssl.trustStore.location); rzk has no JDK default trust store. Set ssl.clientAuth=none to accept clients without certificates",
                        t.client_auth.name()
                    ),
                ));
            }
        } else if t.key_store.is_some() || t.trust_store.is_some() {
            self.warn(
                "ssl.keyStore.location",
                0,
                "TLS stores are configured but neither secureClientPort nor client.portUnification is set: no port speaks TLS",
            );
        }
        self.cfg.client_tls = t;
        Ok(())
    }

    /// TLS on the admin server (`admin.forceHttps`, `admin.portUnification`,
    /// `admin.needClientAuth`, the `ssl.quorum.*` stores), as ZooKeeper 3.9's
    /// `JettyAdminServer` reads them (`Boolean.getBoolean`: only "true" in any case is on).
    /// ZooKeeper needs both stores once TLS is on (it fails to load an unnamed store and
    /// then runs without an AdminServer); rzk stops instead, naming the missing key.
    fn read_admin_tls(&mut self) -> Result<(), ConfigError> {
        let java_bool = |v: &str| Ok::<bool, String>(v.trim().eq_ignore_ascii_case("true"));
        let mut t = AdminTls {
            force_https: self.sys(&["zookeeper.admin.forceHttps"], java_bool)?.unwrap_or(false),
            port_unification: self.sys(&["zookeeper.admin.portUnification"], java_bool)?.unwrap_or(false),
            need_client_auth: self.sys(&["zookeeper.admin.needClientAuth"], java_bool)?.unwrap_or(false),
            ..AdminTls::default()
        };
        if t.enabled() {
            let why = if t.force_https { "admin.forceHttps" } else { "admin.portUnification" };
            t.key_store = self.store("zookeeper.ssl.quorum.keyStore")?;
            t.trust_store = self.store("zookeeper.ssl.quorum.trustStore")?;
            if t.key_store.is_none() {
                return Err(self.invalid(
                    "ssl.quorum.keyStore.location",
                    format!("{why} is set, so the admin server's TLS needs its key store (ssl.quorum.keyStore.location; ZooKeeper's admin server takes the quorum stores, not ssl.keyStore)"),
                ));
            }
            if t.trust_store.is_none() {
                return Err(self.invalid(
                    "ssl.quorum.trustStore.location",
                    format!(
                        "{why} is set, so the admin server's TLS needs a trust store (ssl.quorum.trustStore.location), as ZooKeeper's does"
                    ),
                ));
            }
        } else if t.need_client_auth {
            let (k, l) = self.sys_origin("zookeeper.admin.needClientAuth");
            self.warn(
                &k,
                l,
                "admin.needClientAuth has no effect without admin.forceHttps or admin.portUnification (the admin server speaks plain HTTP)",
            );
        }
        self.cfg.admin_tls = t;
        Ok(())
    }

    /// Typed settings ZooKeeper reads from system properties.
    fn read_system_properties(&mut self) -> Result<(), ConfigError> {
        self.refuse_unsupported_security()?;
        self.read_client_tls()?;
        self.read_admin_tls()?;
        self.read_quorum_tls()?;
        self.check_quorum_sasl()?;
        self.read_sasl()?;
        let c = &mut ServerConfig::default_standalone();
        if let Some(n) = self.sys(&["zookeeper.maxCnxns"], |v| decoded_int(v, 0, "a non-negative integer (0 = unlimited)"))? {
            c.max_cnxns = n as u32;
        }
        if let Some(n) = self.sys(&["zookeeper.globalOutstandingLimit"], |v| decoded_int(v, 1, "a positive integer"))? {
            c.global_outstanding_limit = n as u32;
        }
        if let Some(n) = self.sys(&["zookeeper.snapCount"], |v| decoded_int(v, 0, "a positive integer"))? {
            if n < 2 {
                let (k, l) = self.sys_origin("zookeeper.snapCount");
                self.warn(&k, l, format!("{n} is less than 2; using 2, as ZooKeeper does"));
            }
            c.snap_count = n.max(2) as u32;
        }
        if let Some(n) = self.sys(&["zookeeper.preAllocSize"], |v| match values::java_parse_long(v) {
            Some(n) if n >= 0 => Ok(n as u64),
            _ => Err(format!("expected a non-negative number of KiB, got \"{v}\"")),
        })? {
            c.pre_alloc_size_kb = n;
        }
        if let Some(b) = self.sys(&["zookeeper.forceSync"], yes_no)? {
            c.force_sync = b;
        }
        if let Some(b) = self.sys(&["zookeeper.skipACL"], yes_no)? {
            c.skip_acl = b;
        }
        if let Some(b) = self.sys(&["zookeeper.extendedTypesEnabled"], boolean)? {
            c.extended_types_enabled = b;
        }
        if let Some(s) = self.sys(&["zookeeper.DigestAuthenticationProvider.superDigest"], |v| {
            if v.contains(':') {
                Ok(v.to_string())
            } else {
                Err(format!("expected super:<base64 digest>, got \"{v}\""))
            }
        })? {
            c.super_digest = Some(s);
        }
        if let Some(m) = self.sys(&["zookeeper.snapshot.compression.method"], |v| {
            SnapshotCompression::parse(v).ok_or_else(|| format!("expected gz, snappy or an empty value, got \"{v}\""))
        })? {
            c.snapshot_compression_method = m;
        }
        if let Some(b) = self.sys(&["zookeeper.admin.enableServer"], boolean)? {
            c.admin_enable_server = b;
        }
        if let Some(p) = self.sys(&["zookeeper.admin.serverPort"], |v| {
            decoded_int(v, 1, "a port number (1-65535)")
                .and_then(|n| u16::try_from(n).map_err(|_| format!("expected a port number (1-65535), got \"{v}\"")))
        })? {
            c.admin_server_port = p;
        }
        if let Some(s) = self.sys(&["zookeeper.admin.serverAddress"], |v| non_empty(v, "a host name or address").map(str::to_string))? {
            c.admin_server_address = s;
        }
        if let Some(s) = self.sys(&["zookeeper.admin.commandURL"], |v| non_empty(v, "a URL path").map(str::to_string))? {
            c.admin_command_url = s;
        }
        // ZooKeeper's AdminServer speaks HTTP/1.1 unless admin.httpVersion=2; rzk's speaks 1.1.
        self.sys(&["zookeeper.admin.httpVersion"], |v| match v.trim() {
            "11" => Ok(()),
            other => Err(format!("rzk's AdminServer speaks HTTP/1.1 only (httpVersion 11), got \"{other}\"")),
        })?;
        if let Some(n) = self.sys(&["zookeeper.admin.idleTimeout"], |v| decoded_int(v, 0, "a non-negative number of milliseconds"))? {
            c.admin_idle_timeout = n as u32;
        }
        // Boolean.parseBoolean: "true" in any case is true, anything else false.
        if let Some(b) = self.sys(&["zookeeper.admin.snapshot.enabled"], |v| Ok::<_, String>(v.trim().eq_ignore_ascii_case("true")))? {
            c.admin_snapshot_enabled = b;
        }
        if let Some(b) = self.sys(&["zookeeper.admin.restore.enabled"], |v| Ok::<_, String>(v.trim().eq_ignore_ascii_case("true")))? {
            c.admin_restore_enabled = b;
        }
        if let Some(n) = self.sys(&["zookeeper.admin.rateLimiterIntervalInMS"], |v| {
            v.trim().parse::<u32>().map_err(|_| format!("expected a non-negative integer, got \"{v}\""))
        })? {
            c.admin_rate_limiter_interval = u64::from(n);
        }
        c.console = self.read_console()?;
        if let Some(n) = self.sys(&["jute.maxbuffer", "zookeeper.jute.maxbuffer"], |v| decoded_int(v, 1, "a positive number of bytes"))? {
            c.jute_maxbuffer = n as u32;
        }
        if let Some(b) = self.sys(&["readonlymode.enabled", "zookeeper.readonlymode.enabled"], boolean)? {
            c.readonly_mode_enabled = b;
        }
        if let Some(b) = self.sys(&["zookeeper.audit.enable"], boolean)? {
            c.audit_enable = b;
        }
        // ZooKeeper's own audit loggers write the line rzk writes; any other class is code
        // rzk cannot run.
        self.sys(&["zookeeper.audit.impl.class"], |v| match v.trim() {
            "org.apache.zookeeper.audit.Slf4jAuditLogger" | "org.apache.zookeeper.audit.Log4jAuditLogger" => Ok(()),
            other => Err(format!("rzk writes ZooKeeper's own audit log lines itself; it cannot load the audit logger class \"{other}\"")),
        })?;
        let log_dir = self.sys(&["zookeeper.log.dir"], |v| non_empty(v, "a directory").map(PathBuf::from))?;
        c.log_dir = log_dir.clone();
        if let Some(f) = self.sys(&["zookeeper.log.file"], |v| non_empty(v, "a file name").map(str::to_string))? {
            c.log_file = f;
        }
        if let Some(n) = self.sys(&["zookeeper.log.maxfilesize"], log4j_file_size)? {
            c.log_max_file_bytes = n;
        }
        if let Some(n) = self.sys(&["zookeeper.log.maxbackupindex"], |v| decoded_int(v.trim(), 1, "a number of files"))? {
            c.log_max_backups = n as u32;
        }
        let audit_file = self.sys(&["zookeeper.auditlog.file"], |v| non_empty(v, "a file name").map(PathBuf::from))?;
        c.audit_log_file =
            log_dir.unwrap_or_else(|| PathBuf::from(".")).join(audit_file.unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_LOG_FILE)));
        // QuorumPeer.getSyncEnabled: the system property, when set, wins over zoo.cfg's key.
        if let Some(b) = self.sys(&["zookeeper.observer.syncEnabled"], boolean)? {
            self.cfg.sync_enabled = b;
        }
        if !self.multi_address_from_file {
            if let Some(b) = self.sys(&["zookeeper.multiAddress.enabled"], boolean)? {
                self.cfg.multi_address_enabled = b;
            }
        }
        c.four_letter_word_whitelist = match self.cfg.system_properties.get("zookeeper.4lw.commands.whitelist") {
            Some(v) => {
                let w = FourLetterWordWhitelist::parse(v, c.readonly_mode_enabled);
                if let FourLetterWordWhitelist::Only(set) = &w {
                    let unknown: Vec<&str> = set.iter().map(String::as_str).filter(|w| !FOUR_LETTER_WORDS.contains(w)).collect();
                    if !unknown.is_empty() {
                        let (k, l) = self.sys_origin("zookeeper.4lw.commands.whitelist");
                        self.warn(&k, l, format!("unknown four-letter words: {}", unknown.join(", ")));
                    }
                }
                w
            }
            None => FourLetterWordWhitelist::default_for(c.readonly_mode_enabled),
        };

        let cfg = &mut self.cfg;
        cfg.max_cnxns = c.max_cnxns;
        cfg.global_outstanding_limit = c.global_outstanding_limit;
        cfg.snap_count = c.snap_count;
        cfg.pre_alloc_size_kb = c.pre_alloc_size_kb;
        cfg.force_sync = c.force_sync;
        cfg.skip_acl = c.skip_acl;
        cfg.extended_types_enabled = c.extended_types_enabled;
        cfg.super_digest = c.super_digest.take();
        cfg.snapshot_compression_method = c.snapshot_compression_method;
        cfg.admin_enable_server = c.admin_enable_server;
        cfg.admin_server_port = c.admin_server_port;
        cfg.admin_server_address = std::mem::take(&mut c.admin_server_address);
        cfg.admin_command_url = std::mem::take(&mut c.admin_command_url);
        cfg.admin_idle_timeout = c.admin_idle_timeout;
        cfg.admin_snapshot_enabled = c.admin_snapshot_enabled;
        cfg.admin_restore_enabled = c.admin_restore_enabled;
        cfg.admin_rate_limiter_interval = c.admin_rate_limiter_interval;
        cfg.console = c.console.clone();
        cfg.jute_maxbuffer = c.jute_maxbuffer;
        cfg.readonly_mode_enabled = c.readonly_mode_enabled;
        cfg.audit_enable = c.audit_enable;
        cfg.audit_log_file = std::mem::take(&mut c.audit_log_file);
        cfg.log_dir = c.log_dir.take();
        cfg.log_file = std::mem::take(&mut c.log_file);
        cfg.log_max_file_bytes = c.log_max_file_bytes;
        cfg.log_max_backups = c.log_max_backups;
        cfg.four_letter_word_whitelist = std::mem::take(&mut c.four_letter_word_whitelist);
        Ok(())
    }

    /// rzk's own `rzk.console.*` keys (zoo.cfg `rzk.console.enabled`, or the system property
    /// `rzk.console.enabled` / `zookeeper.rzk.console.enabled`). Any other `rzk.` key is a
    /// start-up error naming it: rzk never accepts a setting of its own it does not read.
    fn read_console(&self) -> Result<ConsoleConfig, ConfigError> {
        for name in self.cfg.system_properties.keys() {
            let own = name.strip_prefix("zookeeper.").unwrap_or(name);
            if own.starts_with("rzk.") && !CONSOLE_KEYS.contains(&own) {
                let message = format!("not an rzk setting (rzk's own keys are {})", CONSOLE_KEYS.join(", "));
                return Err(match self.origins.get(name) {
                    Some(o) => self.value_err(&o.key, o.line, message),
                    None => ConfigError::InvalidSystemProperty { key: name.clone(), message },
                });
            }
        }
        let mut c = ConsoleConfig::default();
        if let Some(b) = self.sys(&["zookeeper.rzk.console.enabled", "rzk.console.enabled"], boolean)? {
            c.enabled = b;
            c.configured = true;
        }
        if let Some(b) = self.sys(&["zookeeper.rzk.console.allowRemote", "rzk.console.allowRemote"], boolean)? {
            c.allow_remote = b;
            c.configured = true;
        }
        Ok(c)
    }

    /// Typed settings that ZooKeeper's components (the container manager, the digest, the
    /// election's connection manager) read from system properties, each under the name
    /// ZooKeeper reads and the `zookeeper.`-prefixed one a zoo.cfg key becomes.
    fn read_component_properties(&mut self) -> Result<(), ConfigError> {
        if let Some(b) = self.sys(&["zookeeper.digest.enabled", "digest.enabled"], boolean)? {
            self.cfg.digest_enabled = b;
        }
        if let Some(f) = self.sys(&["zookeeper.snapshotSizeFactor"], values::java_parse_double)? {
            if f > 1.0 {
                // ZKDatabase: a factor above 1 is invalid; the default is used, with a warning.
                let (key, line) = self.sys_origin("zookeeper.snapshotSizeFactor");
                self.warn(
                    &key,
                    line,
                    format!("{f} is above 1, so invalid: the default {DEFAULT_SNAPSHOT_SIZE_FACTOR} is used, as in ZooKeeper"),
                );
                self.cfg.snapshot_size_factor = SizeFactor(DEFAULT_SNAPSHOT_SIZE_FACTOR);
            } else {
                self.cfg.snapshot_size_factor = SizeFactor(f);
            }
        }
        if let Some(n) = self.sys(&["znode.container.checkIntervalMs", "zookeeper.znode.container.checkIntervalMs"], |v| {
            decoded_int(v.trim(), 1, "a positive number of milliseconds")
        })? {
            self.cfg.container_check_interval_ms = n as u32;
        }
        if let Some(n) = self.sys(&["znode.container.maxNeverUsedIntervalMs", "zookeeper.znode.container.maxNeverUsedIntervalMs"], |v| {
            match java_parse_long(v.trim()) {
                Some(n) if n >= 0 => Ok(n as u64),
                _ => Err(format!("expected a non-negative number of milliseconds (0 = never), got \"{v}\"")),
            }
        })? {
            self.cfg.container_max_never_used_interval_ms = n;
        }
        if let Some(b) = self.sys(&["zookeeper.enforceQuota"], boolean)? {
            self.cfg.enforce_quota = b;
        }
        if let Some(n) = self.sys(&["zookeeper.cnxTimeout"], |v| decoded_int(v.trim(), 1, "a positive number of milliseconds"))? {
            self.cfg.cnx_timeout_ms = n as u32;
        }
        if let Some(n) =
            self.sys(&["zookeeper.request_throttle_max_requests"], |v| decoded_int(v.trim(), 0, "a number of requests (0: off)"))?
        {
            self.cfg.request_throttle_max_requests = n as u32;
        }
        if let Some(n) =
            self.sys(&["zookeeper.request_throttle_stall_time"], |v| decoded_int(v.trim(), 1, "a positive number of milliseconds"))?
        {
            self.cfg.request_throttle_stall_time_ms = n as u32;
        }
        if let Some(b) = self.sys(&["zookeeper.request_throttle_drop_stale"], boolean)? {
            self.cfg.request_throttle_drop_stale = b;
        }
        if let Some(n) =
            self.sys(&["zookeeper.throttled_op_wait_time"], |v| decoded_int(v.trim(), 0, "a number of milliseconds (0: off)"))?
        {
            self.cfg.throttled_op_wait_time_ms = n as u32;
        }
        if let Some(n) = self.sys(&["zookeeper.largeRequestThreshold"], |v| decoded_int(v.trim(), -1, "a number of bytes (-1: off)"))? {
            self.cfg.large_request_threshold = n;
        }
        if let Some(n) = self.sys(&["zookeeper.largeRequestMaxBytes"], |v| decoded_int(v.trim(), 0, "a number of bytes"))? {
            self.cfg.large_request_max_bytes = n;
        }
        let int = |name: &str, min: i32, what: &'static str| self.sys(&[name], move |v| decoded_int(v.trim(), min, what));
        let real = |name: &str| {
            self.sys(&[name], |v| {
                v.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("expected a number, got \"{v}\""))
            })
        };
        let mut t = ConnectionThrottle::default();
        if let Some(n) = int("zookeeper.connection_throttle_tokens", 0, "a number of tokens (0: off)")? {
            t.tokens = n;
        }
        if let Some(n) = int("zookeeper.connection_throttle_fill_time", 1, "a positive number of milliseconds")? {
            t.fill_time_ms = n;
        }
        if let Some(n) = int("zookeeper.connection_throttle_fill_count", 1, "a positive number of tokens")? {
            t.fill_count = n;
        }
        if let Some(n) = int("zookeeper.connection_throttle_freeze_time", -1, "a number of milliseconds (-1: off)")? {
            t.freeze_time_ms = n;
        }
        if let Some(x) = real("zookeeper.connection_throttle_drop_increase")? {
            t.drop_increase = x;
        }
        if let Some(x) = real("zookeeper.connection_throttle_drop_decrease")? {
            t.drop_decrease = x;
        }
        if let Some(x) = real("zookeeper.connection_throttle_decrease_ratio")? {
            t.decrease_ratio = x;
        }
        if let Some(b) = self.sys(&["zookeeper.connection_throttle_weight_enabled"], boolean)? {
            t.weight_enabled = b;
        }
        // BlueThrottle's rules: a weight <= 0 is its default; global and renew are at least
        // the local weight.
        let w = |name: &str, def: i32| -> Result<i32, ConfigError> {
            Ok(self.sys(&[name], |v| decoded_int(v.trim(), i32::MIN, "a number of tokens"))?.filter(|n| *n > 0).unwrap_or(def))
        };
        t.local_weight = w("zookeeper.connection_throttle_local_session_weight", 1)?;
        t.global_weight = w("zookeeper.connection_throttle_global_session_weight", 3)?.max(t.local_weight);
        t.renew_weight = w("zookeeper.connection_throttle_renew_session_weight", 2)?.max(t.local_weight);
        self.cfg.connection_throttle = t;
        if let Some(b) = self.sys(&["zookeeper.leaderServes"], |v| Ok::<bool, String>(v != "no"))? {
            self.cfg.leader_serves = b;
        }
        // The observers' and learners' settings (Observer, ObserverMaster, Learner,
        // LearnerHandler), read as ZooKeeper reads them; a value Java would silently
        // replace by the default is refused here.
        let long_ms = |v: &str| java_parse_long(v.trim()).ok_or_else(|| format!("expected a number of milliseconds, got \"{v}\""));
        if let Some(n) = self.sys(&["zookeeper.observer.reconnectDelayMs"], long_ms)? {
            self.cfg.observer_reconnect_delay_ms = n.max(0);
        }
        if let Some(n) = self.sys(&["zookeeper.observer.election.DelayMs"], long_ms)? {
            self.cfg.observer_election_delay_ms = n.max(0);
        }
        if let Some(n) = self.sys(&["zookeeper.observerMaster.sizeLimit"], |v| decoded_int(v.trim(), i32::MIN, "a number of bytes"))? {
            self.cfg.observer_master_size_limit = n;
            let (key, line) = self.sys_origin("zookeeper.observerMaster.sizeLimit");
            self.ignore(&key, line, "it bounds ZooKeeper's queue of proposals covering an observer's sync; rzk's follower syncs an observer and starts forwarding to it at one zxid on one thread, so it keeps no such queue");
        }
        if let Some(n) =
            self.sys(&["zookeeper.leaderConnectDelayDuringRetryMs"], |v| decoded_int(v.trim(), 0, "a number of milliseconds"))?
        {
            self.cfg.leader_connect_delay_during_retry_ms = n;
        }
        // Whether a learner sends from its own thread and whether either side closes a
        // socket from another thread: rzk's shell always does both from each connection's
        // own task, which leaves the packets, their order and the node's decisions as with
        // either value.
        // Validated as ZooKeeper parses them, then logged once as meaning nothing to rzk.
        for name in ["zookeeper.learner.asyncSending", "zookeeper.learner.closeSocketAsync", "zookeeper.leader.closeSocketAsync"] {
            if self.sys(&[name], boolean)?.is_some() {
                let (key, line) = self.sys_origin(name);
                self.ignore(&key, line, "it chooses which Java thread sends or closes a quorum socket; rzk sends and closes from each connection's own task, so the packets and their order are the same");
            }
        }
        // LearnerHandler's switch (for tests) that makes every sync a SNAP: rzk's leader
        // always chooses DIFF, TRUNC or SNAP as ZooKeeper's does by default.
        let forced = |v: &str| match boolean(v)? {
            true => Err("rzk's leader has no switch forcing every sync to be a SNAP; remove it or set it to false".to_string()),
            false => Ok(()),
        };
        self.sys(&["zookeeper.forceSnapshotSync"], forced)?;
        Ok(())
    }

    /// `server.N`, `group.N`, `weight.N`, `version`: builds the ensemble.
    fn ensemble(&mut self) -> Result<(), ConfigError> {
        let entries = std::mem::take(&mut self.quorum_entries);
        let mut server_keys: BTreeMap<u64, (String, usize)> = BTreeMap::new();
        let mut group_of: BTreeMap<u64, u64> = BTreeMap::new();
        let mut group_keys: BTreeMap<u64, (String, usize)> = BTreeMap::new();
        let mut weight_keys: BTreeMap<u64, (String, usize)> = BTreeMap::new();
        for (key, value, line, file) in &entries {
            let err = |m: String| ConfigError::InvalidValue { file: file.clone(), line: *line, key: key.clone(), message: m };
            if key == "version" {
                self.cfg.config_version =
                    u64::from_str_radix(value, 16).map_err(|_| err(format!("expected a hexadecimal version, got \"{value}\"")))?;
            } else if key.starts_with("server.") {
                let sid = servers::parse_id(key).map_err(err)?;
                if let Some((k, l)) = server_keys.get(&sid) {
                    return Err(err(format!("server id {sid} is already defined by {k} on line {l}")));
                }
                let spec = servers::parse_server(sid, value, self.cfg.multi_address_enabled).map_err(err)?;
                server_keys.insert(sid, (key.clone(), *line));
                self.cfg.servers.insert(sid, spec);
            } else if key.starts_with("group.") {
                let gid = servers::parse_id(key).map_err(err)?;
                if let Some((k, l)) = group_keys.get(&gid) {
                    return Err(err(format!("group id {gid} is already defined by {k} on line {l}")));
                }
                group_keys.insert(gid, (key.clone(), *line));
                let mut members = Vec::new();
                for s in servers::java_split(value, ':') {
                    let sid = match values::java_parse_long(s) {
                        Some(n) if n >= 0 => n as u64,
                        _ => return Err(err(format!("expected colon-separated server ids, got \"{value}\""))),
                    };
                    if let Some(other) = group_of.insert(sid, gid) {
                        return Err(err(format!("server {sid} is in more than one group (group.{other} and group.{gid})")));
                    }
                    members.push(sid);
                }
                self.cfg.groups.insert(gid, members);
            } else if key.starts_with("weight.") {
                let sid = servers::parse_id(key).map_err(err)?;
                if let Some((k, l)) = weight_keys.get(&sid) {
                    return Err(err(format!("weight of server {sid} is already defined by {k} on line {l}")));
                }
                weight_keys.insert(sid, (key.clone(), *line));
                let w = match values::java_parse_long(value) {
                    Some(n) if n >= 0 => n as u64,
                    _ => return Err(err(format!("expected a non-negative integer, got \"{value}\""))),
                };
                self.cfg.weights.insert(sid, w);
            } else {
                return Err(err("expected group.<id> or weight.<id> (hierarchical quorums)".to_string()));
            }
        }

        let participants = self.cfg.servers.values().filter(|s| !s.is_observer()).count();
        let observers = self.cfg.servers.len() - participants;
        if !self.cfg.groups.is_empty() || !self.cfg.weights.is_empty() {
            for s in self.cfg.servers.values().filter(|s| !s.is_observer()) {
                if !group_of.contains_key(&s.id) {
                    let (k, l) = &server_keys[&s.id];
                    return Err(self.value_err(
                        k,
                        *l,
                        format!("server {} is not in a group, but group.N/weight.N lines make the quorum hierarchical", s.id),
                    ));
                }
            }
        }
        if participants == 0 {
            if !self.cfg.standalone_enabled {
                return Err(self.invalid("standaloneEnabled", "standaloneEnabled=false needs at least one participant server.N line"));
            }
            if observers > 0 {
                return Err(self.invalid("server", "observers without participants is an invalid configuration"));
            }
        } else if participants == 1 && self.cfg.standalone_enabled {
            if observers > 0 {
                return Err(self.invalid(
                    "server",
                    "observers without a quorum is an invalid configuration (one participant and standaloneEnabled=true)",
                ));
            }
            let (k, l) = server_keys.values().next().cloned().unwrap_or_default();
            self.warn(
                &k,
                l,
                "only one server is listed: running standalone, as ZooKeeper does (set standaloneEnabled=false for a one-server quorum)",
            );
        } else {
            if participants <= 2 {
                self.warn("server", 0, "no server failure will be tolerated: a quorum needs at least 3 servers for that");
            } else if participants % 2 == 0 {
                self.warn("server", 0, "non-optimal configuration: consider an odd number of servers");
            }
            if !self.cfg.key_lines.contains_key("initLimit") || self.cfg.init_limit == 0 {
                return Err(self.invalid("initLimit", "initLimit is not set; a quorum needs it (e.g. initLimit=10)"));
            }
            if !self.cfg.key_lines.contains_key("syncLimit") || self.cfg.sync_limit == 0 {
                return Err(self.invalid("syncLimit", "syncLimit is not set; a quorum needs it (e.g. syncLimit=5)"));
            }
        }
        if self.cfg.observer_master_port.is_some() && (participants == 0 || (participants == 1 && self.cfg.standalone_enabled)) {
            return Err(self.invalid("observerMasterPort", "observers syncing from a follower need an ensemble; remove it"));
        }
        Ok(())
    }
}

fn is_quorum_key(k: &str) -> bool {
    k.starts_with("server.") || k.starts_with("group") || k.starts_with("weight") || k == "version"
}

/// The version ZooKeeper takes from a dynamic config file's name: the part
/// after the last `.`, in hex; `None` if it is not hex.
pub fn version_from_filename(file_name: &str) -> Option<u64> {
    let (_, hex) = file_name.rsplit_once('.')?;
    if hex.is_empty() || hex.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Keeps the last of repeated keys (as `java.util.Properties` does), in
/// order of their last line; warns about the repeats.
fn effective_entries(entries: Vec<properties::Entry>, warnings: &mut Vec<(String, usize, String)>) -> Vec<properties::Entry> {
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(prev) = last.insert(e.key.clone(), i) {
            warnings.push((
                e.key.clone(),
                e.line,
                format!("set more than once (line {} and line {}); the last one wins, as in ZooKeeper", entries[prev].line, e.line),
            ));
        }
    }
    entries.into_iter().enumerate().filter(|(i, e)| last.get(&e.key) == Some(i)).map(|(_, e)| e).collect()
}

fn syntax(file: &str, e: properties::SyntaxError) -> ConfigError {
    ConfigError::Syntax { file: file.to_string(), line: e.line, message: e.message }
}

impl ServerConfig {
    /// The configuration without any file: client port 2181, dataDir
    /// `./data`, tickTime 3000 and every other default.
    pub fn default_standalone() -> Self {
        ServerConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            data_log_dir: None,
            client_port: Some(DEFAULT_CLIENT_PORT),
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            client_tls: ClientTls::default(),
            admin_tls: AdminTls::default(),
            quorum_tls: QuorumTls {
                tls: ClientTls { key_prefix: "ssl.quorum".into(), ..ClientTls::default() },
                allow_reverse_dns_lookup: true,
                ..QuorumTls::default()
            },
            quorum_sasl: QuorumSasl::default(),
            client_port_listen_backlog: -1,
            observer_master_port: None,
            tick_time: DEFAULT_TICK_TIME,
            max_client_cnxns: DEFAULT_MAX_CLIENT_CNXNS,
            max_cnxns: 0,
            min_session_timeout: None,
            max_session_timeout: None,
            global_outstanding_limit: DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
            jute_maxbuffer: DEFAULT_JUTE_MAXBUFFER,
            init_limit: DEFAULT_INIT_LIMIT,
            sync_limit: DEFAULT_SYNC_LIMIT,
            connect_to_learner_master_limit: None,
            election_alg: ELECTION_ALG_FAST_LEADER_ELECTION,
            peer_type: PeerType::Participant,
            quorum_listen_on_all_ips: false,
            standalone_enabled: true,
            reconfig_enabled: false,
            multi_address_enabled: false,
            servers: BTreeMap::new(),
            groups: BTreeMap::new(),
            weights: BTreeMap::new(),
            dynamic_config_file: None,
            config_version: 0,
            snap_count: DEFAULT_SNAP_COUNT,
            pre_alloc_size_kb: DEFAULT_PRE_ALLOC_SIZE_KB,
            snapshot_size_factor: SizeFactor(DEFAULT_SNAPSHOT_SIZE_FACTOR),
            force_sync: true,
            sync_enabled: true,
            snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            purge_interval: DEFAULT_PURGE_INTERVAL_HOURS,
            snapshot_compression_method: SnapshotCompression::Checked,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            extended_types_enabled: false,
            readonly_mode_enabled: false,
            skip_acl: false,
            super_digest: None,
            sasl: SaslConfig::default(),
            enforce_auth: EnforceAuth::default(),
            four_letter_word_whitelist: FourLetterWordWhitelist::default(),
            admin_enable_server: true,
            admin_server_port: DEFAULT_ADMIN_SERVER_PORT,
            admin_server_address: DEFAULT_ADMIN_SERVER_ADDRESS.to_string(),
            admin_command_url: DEFAULT_ADMIN_COMMAND_URL.to_string(),
            admin_idle_timeout: DEFAULT_ADMIN_IDLE_TIMEOUT,
            admin_snapshot_enabled: true,
            admin_restore_enabled: true,
            admin_rate_limiter_interval: 300_000,
            console: ConsoleConfig::default(),
            audit_enable: false,
            audit_log_file: PathBuf::from(".").join(DEFAULT_AUDIT_LOG_FILE),
            log_dir: None,
            log_file: "zookeeper.log".to_string(),
            log_max_file_bytes: 256 * 1024 * 1024,
            log_max_backups: 20,
            digest_enabled: true,
            enforce_quota: false,
            container_check_interval_ms: DEFAULT_CONTAINER_CHECK_INTERVAL_MS,
            container_max_never_used_interval_ms: 0,
            cnx_timeout_ms: DEFAULT_CNX_TIMEOUT_MS,
            request_throttle_max_requests: 0,
            request_throttle_stall_time_ms: 100,
            request_throttle_drop_stale: true,
            throttled_op_wait_time_ms: 0,
            connection_throttle: ConnectionThrottle::default(),
            leader_serves: true,
            observer_reconnect_delay_ms: 0,
            observer_election_delay_ms: 200,
            observer_master_size_limit: 32 * 1024 * 1024,
            leader_connect_delay_during_retry_ms: 100,
            large_request_threshold: -1,
            large_request_max_bytes: 100 * 1024 * 1024,
            metrics_provider_class_name: None,
            metrics_provider_configuration: BTreeMap::new(),
            config_file: None,
            config_path: None,
            system_properties: BTreeMap::new(),
            key_lines: BTreeMap::new(),
            ignored: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// ZooKeeperServerMain's other form, `port datadir [ticktime] [maxcnxns]`.
    pub fn from_command_line_args<S: AsRef<str>>(args: &[S]) -> Result<Self, ConfigError> {
        let arg_err = |key: &str, m: String| ConfigError::Invalid { file: "command line".to_string(), key: key.to_string(), message: m };
        if args.len() < 2 || args.len() > 4 {
            return Err(arg_err("arguments", format!("expected port datadir [ticktime] [maxcnxns], got {} arguments", args.len())));
        }
        let mut c = Self::default_standalone();
        c.client_port = Some(port(args[0].as_ref()).map_err(|m| arg_err("clientPort", m))?);
        c.data_dir = PathBuf::from(non_empty(args[1].as_ref(), "a directory").map_err(|m| arg_err("dataDir", m))?);
        if let Some(t) = args.get(2) {
            c.tick_time = positive_int(t.as_ref()).map_err(|m| arg_err("tickTime", m))?;
        }
        if let Some(m) = args.get(3) {
            c.max_client_cnxns = non_negative_int(m.as_ref()).map_err(|e| arg_err("maxClientCnxns", e))?;
        }
        Ok(c)
    }

    /// Parses the text of a `zoo.cfg` (errors name it `zoo.cfg`).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_with(text, &ParseOptions::default())
    }

    /// Parses the text of a configuration file with options: its name for
    /// errors, system properties already set, the dynamic config file.
    pub fn parse_with(text: &str, opts: &ParseOptions) -> Result<Self, ConfigError> {
        let file = opts.file_name.as_str();
        let mut cfg = Self::default_standalone();
        cfg.client_port = None;
        cfg.config_file = Some(opts.file_name.clone());
        cfg.system_properties = opts.system_properties.clone();
        let raw = properties::parse(text).map_err(|e| syntax(file, e))?;
        let entries = effective_entries(raw, &mut cfg.warnings);
        for e in &entries {
            cfg.key_lines.insert(e.key.clone(), e.line);
        }
        let has_dynamic = cfg.key_lines.contains_key("dynamicConfigFile");
        let mut p =
            Parser { opts, cfg, data_dir: None, origins: BTreeMap::new(), quorum_entries: Vec::new(), multi_address_from_file: false };
        for e in &entries {
            p.entry(&e.key, &e.value, e.line, has_dynamic)?;
        }

        // dataDir is required in a file.
        match p.data_dir.take() {
            Some(d) => p.cfg.data_dir = d,
            None => {
                return Err(p.invalid(
                    "dataDir",
                    "dataDir is not set; ZooKeeper requires it in a configuration file (e.g. dataDir=/var/lib/zookeeper)",
                ))
            }
        }
        if p.cfg.client_port.is_none() {
            if let Some(l) = p.cfg.key_lines.get("clientPortAddress").copied() {
                if p.cfg.client_port_address.is_some() {
                    return Err(p.value_err("clientPortAddress", l, "clientPortAddress is set but clientPort is not set"));
                }
            }
        }
        if p.cfg.secure_client_port.is_none() {
            if let Some(l) = p.cfg.key_lines.get("secureClientPortAddress").copied() {
                if p.cfg.secure_client_port_address.is_some() {
                    return Err(p.value_err(
                        "secureClientPortAddress",
                        l,
                        "secureClientPortAddress is set but secureClientPort is not set",
                    ));
                }
            }
        }
        let (min, max) = (p.cfg.min_session_timeout_ms(), p.cfg.max_session_timeout_ms());
        if min > max {
            let key = if p.cfg.min_session_timeout.is_some() { "minSessionTimeout" } else { "maxSessionTimeout" };
            let line = p.cfg.key_lines.get(key).copied().unwrap_or(0);
            return Err(p.value_err(
                key,
                line,
                format!("minSessionTimeout ({min} ms) must not be larger than maxSessionTimeout ({max} ms)"),
            ));
        }

        p.read_system_properties()?;
        p.read_component_properties()?;

        // The ensemble: from the dynamic config file, or from this one.
        if let Some(dyn_name) = p.cfg.dynamic_config_file.clone() {
            let Some(d) = &opts.dynamic_config else {
                let line = p.cfg.key_lines.get("dynamicConfigFile").copied().unwrap_or(0);
                return Err(p.value_err(
                    "dynamicConfigFile",
                    line,
                    format!("the content of {dyn_name} was not supplied (use load(), or ParseOptions::dynamic_config)"),
                ));
            };
            let dfile = if d.file_name.is_empty() { dyn_name.clone() } else { d.file_name.clone() };
            let raw = properties::parse(&d.text).map_err(|e| syntax(&dfile, e))?;
            let mut dyn_warnings = Vec::new();
            let dentries = effective_entries(raw, &mut dyn_warnings);
            p.cfg.warnings.extend(dyn_warnings);
            for e in dentries {
                let bad =
                    |m: &str| ConfigError::InvalidValue { file: dfile.clone(), line: e.line, key: e.key.clone(), message: m.to_string() };
                if e.key == "version" {
                    return Err(bad("a dynamic config file must not contain version (it comes from the file name)"));
                }
                if !(e.key.starts_with("server.") || e.key.starts_with("group") || e.key.starts_with("weight")) {
                    return Err(bad("unrecognised parameter in a dynamic config file (only server.N, group.N and weight.N)"));
                }
                p.quorum_entries.push((e.key, e.value, e.line, dfile.clone()));
            }
            if let Some(v) = version_from_filename(&dfile) {
                p.cfg.config_version = v;
            }
        }
        p.ensemble()?;
        Ok(p.cfg)
    }

    /// The effective `dataLogDir`: as configured, else `dataDir`.
    pub fn data_log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// The effective `minSessionTimeout`, ms: as configured, else 2 ticks.
    pub fn min_session_timeout_ms(&self) -> u32 {
        self.min_session_timeout.unwrap_or(self.tick_time.saturating_mul(2))
    }

    /// The effective `maxSessionTimeout`, ms: as configured, else 20 ticks.
    pub fn max_session_timeout_ms(&self) -> u32 {
        self.max_session_timeout.unwrap_or(self.tick_time.saturating_mul(20))
    }

    /// `preAllocSize` in bytes.
    pub fn pre_alloc_size_bytes(&self) -> u64 {
        self.pre_alloc_size_kb.saturating_mul(1024)
    }

    /// `connectToLearnerMasterLimit`, defaulting to `initLimit`.
    pub fn connect_to_learner_master_limit(&self) -> u32 {
        self.connect_to_learner_master_limit.unwrap_or(self.init_limit)
    }

    /// Participants (voting members) of the ensemble.
    pub fn participants(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers.values().filter(|s| !s.is_observer())
    }

    /// Observers of the ensemble.
    pub fn observers(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers.values().filter(|s| s.is_observer())
    }

    /// Whether the server runs standalone: no `server.N` lines, or exactly
    /// one participant with `standaloneEnabled` (as ZooKeeper does; it logs
    /// "Invalid configuration, only one server specified (ignoring)").
    pub fn is_standalone(&self) -> bool {
        !self.is_distributed()
    }

    /// Whether the server runs as a member of a quorum (ZooKeeper's
    /// `isDistributed`): more than one participant, or `standaloneEnabled=false`.
    pub fn is_distributed(&self) -> bool {
        !self.standalone_enabled || self.participants().count() > 1
    }

    /// Whether the hierarchical quorum verifier applies (`group.`/`weight.`).
    pub fn is_hierarchical(&self) -> bool {
        !self.groups.is_empty() || !self.weights.is_empty()
    }

    /// Voting weight of a server in a hierarchical quorum (1 unless set).
    pub fn weight_of(&self, sid: u64) -> u64 {
        self.weights.get(&sid).copied().unwrap_or(1)
    }

    /// Whether the four-letter word `w` may run (`4lw.commands.whitelist`).
    pub fn four_letter_word_allowed(&self, w: &str) -> bool {
        self.four_letter_word_whitelist.allows(w)
    }

    /// Checks, in quorum mode, that `myid` names a `server.N` line (ZooKeeper
    /// fails to start otherwise). Always fine when standalone.
    pub fn check_myid(&self, myid: u64) -> Result<(), ConfigError> {
        if self.is_distributed() && !self.servers.contains_key(&myid) {
            let ids: Vec<String> = self.servers.keys().map(|i| format!("server.{i}")).collect();
            return Err(ConfigError::InvalidMyid { message: format!("{myid} is not in the server list ({})", ids.join(", ")) });
        }
        Ok(())
    }

    /// The peer type of server `myid`: its `server.N` line wins over
    /// `peerType`, as in ZooKeeper (which warns when they differ).
    pub fn peer_type_for(&self, myid: u64) -> PeerType {
        self.servers.get(&myid).map(|s| s.peer_type).unwrap_or(self.peer_type)
    }

    /// Where this server's client listener binds, as ZooKeeper works it out
    /// (`setupClientPort`): the client address of its `server.N` line if it
    /// has one, else `clientPortAddress` (default 0.0.0.0) and `clientPort`.
    /// `None` when there is no client port at all. The two must agree when
    /// both are given.
    pub fn client_listen_address(&self, myid: Option<u64>) -> Result<Option<HostPort>, ConfigError> {
        let from_static =
            self.client_port.map(|port| HostPort { host: self.client_port_address.clone().unwrap_or_else(|| "0.0.0.0".to_string()), port });
        let from_server = myid.and_then(|id| self.servers.get(&id)).and_then(|s| s.client_address.clone());
        match (from_static, from_server) {
            (Some(st), Some(sv)) => {
                let wildcard = st.host == "0.0.0.0" || st.host == "::" || st.host == "[::]";
                let conflict = if wildcard { st.port != sv.port } else { st != sv };
                if conflict {
                    let key = if self.client_port_address.is_some() { "clientPortAddress" } else { "clientPort" };
                    return Err(ConfigError::InvalidValue {
                        file: self.config_file.clone().unwrap_or_else(|| "zoo.cfg".to_string()),
                        line: self.key_lines.get(key).copied().unwrap_or(0),
                        key: key.to_string(),
                        message: format!(
                            "client address {}:{} differs from the one of server.{}: {}:{}",
                            st.host,
                            st.port,
                            myid.unwrap_or_default(),
                            sv.host,
                            sv.port
                        ),
                    });
                }
                Ok(Some(sv))
            }
            (None, Some(sv)) => Ok(Some(sv)),
            (st, None) => Ok(st),
        }
    }

    /// The ensemble as ZooKeeper prints it after `membership: ` in `conf`
    /// and writes it in dynamic config files: `server.N=...` lines (then
    /// `group.`/`weight.` ones for hierarchical quorums) and `version=<hex>`,
    /// without a final newline.
    pub fn membership_string(&self) -> String {
        let mut s = String::new();
        for spec in self.servers.values() {
            s.push_str(&format!("server.{}={}\n", spec.id, spec.to_zk_string()));
        }
        if self.is_hierarchical() {
            for (gid, members) in &self.groups {
                let m: Vec<String> = members.iter().map(u64::to_string).collect();
                s.push_str(&format!("group.{gid}={}\n", m.join(":")));
            }
            let mut weights = self.weights.clone();
            for p in self.participants() {
                weights.entry(p.id).or_insert(1);
            }
            for (sid, w) in weights {
                s.push_str(&format!("weight.{sid}={w}\n"));
            }
        }
        s.push_str(&format!("version={:x}", self.config_version));
        s
    }

    /// The body of the `conf` four-letter word, byte for byte as ZooKeeper
    /// 3.8 prints it (`ZooKeeperServer.dumpConf`, plus
    /// `QuorumZooKeeperServer.dumpConf` in quorum mode when `rt.my_id` names
    /// a `server.N`).
    ///
    /// Standalone, for example:
    ///
    /// ```text
    /// clientPort=2181
    /// secureClientPort=-1
    /// dataDir=/var/lib/zookeeper/version-2
    /// dataDirSize=457
    /// dataLogDir=/var/lib/zookeeper/version-2
    /// dataLogSize=457
    /// tickTime=2000
    /// maxClientCnxns=60
    /// minSessionTimeout=4000
    /// maxSessionTimeout=40000
    /// clientPortListenBacklog=-1
    /// serverId=0
    /// ```
    pub fn to_conf_4lw(&self, rt: &ConfRuntime) -> String {
        let abs = |p: &Path| -> String {
            let p = match &rt.cwd {
                Some(cwd) if p.is_relative() => cwd.join(p),
                _ => p.to_path_buf(),
            };
            p.join("version-2").display().to_string()
        };
        let listen = self.client_listen_address(rt.my_id).ok().flatten();
        let client_port = rt.client_port.or(listen.as_ref().map(|h| h.port));
        let secure_port = rt.secure_client_port.or(self.secure_client_port);
        let fmt_port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_else(|| "-1".to_string());
        let max_client_cnxns =
            if client_port.is_some() || secure_port.is_some() { self.max_client_cnxns.to_string() } else { "-1".to_string() };
        let quorum_self = if self.is_distributed() { rt.my_id.and_then(|id| self.servers.get(&id)) } else { None };
        let mut s = String::new();
        s.push_str(&format!("clientPort={}\n", fmt_port(client_port)));
        s.push_str(&format!("secureClientPort={}\n", fmt_port(secure_port)));
        s.push_str(&format!("dataDir={}\n", abs(&self.data_dir)));
        s.push_str(&format!("dataDirSize={}\n", rt.data_dir_size));
        s.push_str(&format!("dataLogDir={}\n", abs(self.data_log_dir())));
        s.push_str(&format!("dataLogSize={}\n", rt.data_log_size));
        s.push_str(&format!("tickTime={}\n", self.tick_time));
        s.push_str(&format!("maxClientCnxns={max_client_cnxns}\n"));
        s.push_str(&format!("minSessionTimeout={}\n", self.min_session_timeout_ms()));
        s.push_str(&format!("maxSessionTimeout={}\n", self.max_session_timeout_ms()));
        s.push_str(&format!("clientPortListenBacklog={}\n", self.client_port_listen_backlog));
        s.push_str(&format!("serverId={}\n", quorum_self.map(|q| q.id).unwrap_or(0)));
        if let Some(me) = quorum_self {
            let ports = |f: fn(&QuorumAddress) -> u16| me.addresses.iter().map(|a| f(a).to_string()).collect::<Vec<_>>().join("|");
            s.push_str(&format!("initLimit={}\n", self.init_limit));
            s.push_str(&format!("syncLimit={}\n", self.sync_limit));
            s.push_str(&format!("electionAlg={}\n", self.election_alg));
            s.push_str(&format!("electionPort={}\n", ports(|a| a.election_port)));
            s.push_str(&format!("quorumPort={}\n", ports(|a| a.quorum_port)));
            s.push_str(&format!("peerType={}\n", me.peer_type.ordinal()));
            s.push_str("membership: \n");
            s.push_str(&self.membership_string());
        }
        if self.console.configured {
            s.push_str(&format!("rzk.console.enabled={}\n", self.console.enabled));
            s.push_str(&format!("rzk.console.allowRemote={}\n", self.console.allow_remote));
        }
        s
    }
}

/// Parses the content of a `dataDir/myid` file: its first line is the
/// server id (surrounding whitespace is tolerated).
pub fn parse_myid(text: &str) -> Result<u64, ConfigError> {
    let first = text.split(['\n', '\r']).next().unwrap_or("");
    let s = properties::java_trim(first);
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = digits.parse::<u64>() {
            if v <= i64::MAX as u64 {
                return Ok(v);
            }
        }
    }
    Err(ConfigError::InvalidMyid {
        message: format!("serverid \"{s}\" is not a number (the file must hold this server's id, as in server.N)"),
    })
}

/// Decodes file bytes: UTF-8 when valid, else ISO-8859-1 (what
/// `Properties.load(InputStream)` always uses).
pub fn decode_file_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// The `dynamicConfigFile` a configuration text names, if any (so a caller
/// can read that file before [`ServerConfig::parse_with`]).
pub fn dynamic_config_file_of(text: &str) -> Result<Option<String>, ConfigError> {
    let entries = properties::parse(text).map_err(|e| syntax("zoo.cfg", e))?;
    Ok(entries.into_iter().rev().find(|e| e.key == "dynamicConfigFile").map(|e| e.value).filter(|v| !v.is_empty()))
}

/// Reads and parses a configuration file (and the dynamic config file it
/// names, opened as given, like ZooKeeper). The only I/O of this crate.
pub fn load(path: impl AsRef<Path>) -> Result<ServerConfig, ConfigError> {
    load_with(path, BTreeMap::new())
}

/// [`load`] with JVM-style system properties already set.
pub fn load_with(path: impl AsRef<Path>, system_properties: BTreeMap<String, String>) -> Result<ServerConfig, ConfigError> {
    let path = path.as_ref();
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| decode_file_bytes(&b))
            .map_err(|e| ConfigError::Io { path: p.display().to_string(), message: e.to_string() })
    };
    let text = read(path)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let mut opts = ParseOptions { file_name: file_name.clone(), system_properties, dynamic_config: None };
    if let Some(dyn_file) = dynamic_config_file_of(&text).map_err(|e| match e {
        ConfigError::Syntax { line, message, .. } => ConfigError::Syntax { file: file_name.clone(), line, message },
        other => other,
    })? {
        match read(Path::new(&dyn_file)) {
            Ok(text) => opts.dynamic_config = Some(DynamicConfigText { file_name: dyn_file, text }),
            Err(io) => {
                // An error in the main file comes first, as in ZooKeeper.
                return match ServerConfig::parse_with(&text, &opts) {
                    Err(e) if e.key() != Some("dynamicConfigFile") => Err(e),
                    _ => Err(io),
                };
            }
        }
    }
    let mut cfg = ServerConfig::parse_with(&text, &opts)?;
    cfg.config_path = Some(path.to_path_buf());
    load_jaas(&mut cfg)?;
    Ok(cfg)
}

/// Reads the JAAS file of `java.security.auth.login.config`, if set, and takes the DIGEST-MD5
/// users of the server's section into [`SaslConfig::credentials`], as ZooKeeper's
/// `ServerCnxnFactory.configureSaslLogin` does: an unreadable or malformed file stops
/// start-up; a file without the section means no SASL login (logged, as ZooKeeper goes on).
pub fn load_jaas(cfg: &mut ServerConfig) -> Result<(), ConfigError> {
    load_quorum_jaas(cfg)?;
    let Some(path) = cfg.sasl.jaas_file.clone() else {
        return Ok(());
    };
    let section = cfg.sasl.server_section.clone();
    let err = |message: String| ConfigError::Invalid {
        file: path.display().to_string(),
        key: "java.security.auth.login.config".to_string(),
        message,
    };
    let bytes = std::fs::read(&path)
        .map_err(|e| err(format!("cannot read the JAAS file ({e}), so no JAAS configuration section named '{section}' was found")))?;
    let text = String::from_utf8(bytes).map_err(|_| err("the JAAS file is not UTF-8".to_string()))?;
    let jaas = sasl::parse_jaas(&text).map_err(err)?;
    let Some(modules) = jaas.get(&section) else {
        let set = if cfg.sasl.server_section_set { " (zookeeper.sasl.serverconfig)" } else { "" };
        cfg.warnings.push((
            "java.security.auth.login.config".to_string(),
            0,
            format!(
                "{}: no JAAS section named '{section}'{set}: the server has no SASL login, so clients cannot authenticate with SASL (ZooKeeper goes on the same way)",
                path.display()
            ),
        ));
        return Ok(());
    };
    let (login, notes) = sasl::server_credentials(&section, modules).map_err(err)?;
    for n in notes {
        cfg.warnings.push(("java.security.auth.login.config".to_string(), 0, format!("{}: {n}", path.display())));
    }
    cfg.sasl.credentials = Some(login.users);
    cfg.sasl.kerberos = login.kerberos;
    Ok(())
}

/// With `quorum.auth.enableSasl=true`, the JAAS sections of SASL between servers, as
/// `SaslQuorumAuthServer` and `SaslQuorumAuthLearner` need them at start-up: the users of
/// `quorum.auth.server.saslLoginContext` (`QuorumServer`) and the login of
/// `quorum.auth.learner.saslLoginContext` (`QuorumLearner`). A missing file or section
/// stops start-up, as it stops ZooKeeper's.
pub fn load_quorum_jaas(cfg: &mut ServerConfig) -> Result<(), ConfigError> {
    if !cfg.quorum_sasl.enabled {
        return Ok(());
    }
    let file = cfg.config_file.clone().unwrap_or_default();
    let Some(path) = cfg.sasl.jaas_file.clone() else {
        return Err(ConfigError::Invalid {
            file,
            key: "quorum.auth.enableSasl".to_string(),
            message:
                "SASL between servers needs a JAAS file with the QuorumServer and QuorumLearner sections (java.security.auth.login.config)"
                    .to_string(),
        });
    };
    let err = |key: &str, message: String| ConfigError::Invalid { file: path.display().to_string(), key: key.to_string(), message };
    let text =
        std::fs::read_to_string(&path).map_err(|e| err("java.security.auth.login.config", format!("cannot read the JAAS file: {e}")))?;
    let jaas = sasl::parse_jaas(&text).map_err(|e| err("java.security.auth.login.config", e))?;
    let q = &mut cfg.quorum_sasl;
    let section = |key: &str, name: &str| {
        jaas.get(name).ok_or_else(|| {
            err(key, format!("SASL-authentication failed because the specified JAAS configuration section '{name}' could not be found"))
        })
    };
    let modules = section("quorum.auth.server.saslLoginContext", &q.server_login_context)?;
    let (login, mut notes) =
        sasl::server_credentials(&q.server_login_context, modules).map_err(|e| err("quorum.auth.server.saslLoginContext", e))?;
    q.server_users = Some(login.users);
    q.server_kerberos = login.kerberos;
    let modules = section("quorum.auth.learner.saslLoginContext", &q.learner_login_context)?;
    match sasl::learner_login(&q.learner_login_context, modules, &mut notes).map_err(|e| err("quorum.auth.learner.saslLoginContext", e))? {
        sasl::LearnerLogin::DigestMd5(user, password) => q.learner_credentials = Some((user, password)),
        sasl::LearnerLogin::Kerberos(k) => q.learner_kerberos = Some(k),
    }
    if q.learner_kerberos.is_none() && q.kerberos_service_principal.is_some() {
        notes.push(format!(
            "quorum.auth.kerberos.servicePrincipal: section {} logs in with DIGEST-MD5, which names no service principal; the key is not used (as in ZooKeeper)",
            q.learner_login_context
        ));
    }
    for n in notes {
        cfg.warnings.push(("java.security.auth.login.config".to_string(), 0, format!("{}: {n}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// The ensemble of a configuration text as a reconfig txn, NEWLEADER or `/zookeeper/config`
/// carries it (`QuorumVerifier.toString()`: `server.N`, `group.N`, `weight.N` and `version`
/// lines), parsed as a dynamic config file is: its `servers`, `groups`, `weights` and
/// `config_version`.
pub fn membership_of(text: &str) -> Result<ServerConfig, ConfigError> {
    let mut version = 0u64;
    let mut lines = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match l.strip_prefix("version=") {
            Some(v) => {
                version = u64::from_str_radix(v.trim(), 16).map_err(|_| ConfigError::InvalidValue {
                    file: "the configuration".to_string(),
                    line: 0,
                    key: "version".to_string(),
                    message: format!("{v:?} is not a hexadecimal version"),
                })?
            }
            None => lines.push(l),
        }
    }
    let name = format!("zoo.cfg.dynamic.{version:x}");
    let opts = ParseOptions {
        file_name: "zoo.cfg".to_string(),
        system_properties: BTreeMap::new(),
        dynamic_config: Some(DynamicConfigText { file_name: name.clone(), text: lines.join("\n") }),
    };
    let mut cfg = ServerConfig::parse_with(&format!("dataDir=/\ninitLimit=10\nsyncLimit=5\ndynamicConfigFile={name}\n"), &opts)?;
    cfg.config_version = version;
    Ok(cfg)
}

/// The text of `zoo.cfg.dynamic.<version>` for a configuration (ZooKeeper's
/// `writeDynamicConfig`): its `key=value` lines without `version`, sorted, joined by
/// newlines with no final one.
pub fn dynamic_config_text(membership: &str) -> String {
    sorted_config_lines(membership, false)
}

/// The text of `zoo.cfg.dynamic.next` for a configuration seen proposed (ZooKeeper's
/// `writeDynamicConfig` with `needKeepVersion`): as [`dynamic_config_text`], `version=` kept.
pub fn next_config_text(membership: &str) -> String {
    sorted_config_lines(membership, true)
}

fn sorted_config_lines(membership: &str, keep_version: bool) -> String {
    let mut lines: Vec<String> = membership
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty() && (keep_version || !k.starts_with("version")))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The static configuration file rewritten to point at a dynamic one (ZooKeeper's
/// `editStaticConfig`): every key but `server.*`, `group*`, `weight*`, `dynamicConfigFile`,
/// `peerType` (and `clientPort` / `clientPortAddress` when `erase_client_address`: the
/// server's line names its client address), as `key=value` lines, then
/// `dynamicConfigFile=<dynamic_path>`. Comments and blank lines go, as in ZooKeeper; the
/// keys come in the order ZooKeeper writes them: its `java.util.Properties`' iteration
/// order ([`java_properties_order`]), the last value of a key winning.
pub fn edit_static_config(text: &str, dynamic_path: &str, erase_client_address: bool) -> Result<String, ConfigError> {
    let entries = properties::parse(text).map_err(|e| syntax("zoo.cfg", e))?;
    let mut out = String::new();
    // Properties.load: each key once, at its first place; the last value wins.
    let last: BTreeMap<&str, &str> = entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
    let mut keys: Vec<&str> = Vec::new();
    for e in &entries {
        if !keys.contains(&e.key.as_str()) {
            keys.push(e.key.as_str());
        }
    }
    for i in java_properties_order(&keys) {
        let k = keys[i].trim();
        let dropped = k.starts_with("server.")
            || k.starts_with("group")
            || k.starts_with("weight")
            || k.starts_with("dynamicConfigFile")
            || k.starts_with("peerType")
            || (erase_client_address && (k.starts_with("clientPort") || k.starts_with("clientPortAddress")));
        if !dropped {
            out.push_str(&format!("{k}={}\n", last[keys[i]].trim()));
        }
    }
    out.push_str(&format!("dynamicConfigFile={dynamic_path}\n"));
    Ok(out)
}

/// The order in which a `java.util.Properties` loaded with `keys` (distinct, in load order)
/// iterates them on Java 9+ (ZooKeeper 3.8 on Debian's OpenJDK 17), as indices into `keys`:
/// Properties keeps its entries in a `ConcurrentHashMap` of 16 bins at first, so entries
/// come by bin (`String.hashCode`, spread as the map does), in insertion order within a
/// bin; at 12 entries, and each time three quarters of the bins are used, the table
/// doubles, and the resize (`ConcurrentHashMap.transfer`) keeps the tail of each bin that
/// moves as a whole and puts the nodes before it in reverse. (A bin of 8 or more entries,
/// which would make the map grow early, does not happen with the few keys of a zoo.cfg.)
pub fn java_properties_order(keys: &[&str]) -> Vec<usize> {
    fn spread(k: &str) -> u32 {
        let h = k.encode_utf16().fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(c as u32));
        (h ^ (h >> 16)) & 0x7fff_ffff
    }
    let mut n = 16usize;
    let mut table: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n];
    let mut count = 0usize;
    for (i, k) in keys.iter().enumerate() {
        let h = spread(k);
        table[h as usize & (n - 1)].push((h, i));
        count += 1;
        while count >= n - (n >> 2) {
            let mut next: Vec<Vec<(u32, usize)>> = vec![Vec::new(); 2 * n];
            for (b, bin) in table.iter().enumerate() {
                let Some(first) = bin.first() else { continue };
                // lastRun: where the run of nodes going to the same new bin begins.
                let mut run_bit = first.0 as usize & n;
                let mut last_run = 0;
                for (j, node) in bin.iter().enumerate().skip(1) {
                    if node.0 as usize & n != run_bit {
                        run_bit = node.0 as usize & n;
                        last_run = j;
                    }
                }
                let (mut lo, mut hi) =
                    if run_bit == 0 { (bin[last_run..].to_vec(), Vec::new()) } else { (Vec::new(), bin[last_run..].to_vec()) };
                for node in &bin[..last_run] {
                    if node.0 as usize & n == 0 {
                        lo.insert(0, *node);
                    } else {
                        hi.insert(0, *node);
                    }
                }
                next[b] = lo;
                next[b + n] = hi;
            }
            table = next;
            n *= 2;
        }
    }
    table.into_iter().flatten().map(|(_, i)| i).collect()
}

/// Why a reconfig's new configuration cannot be built (the client gets BadArguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReconfigError(pub String);

/// The configuration a reconfig asks for, as ZooKeeper's PrepRequestProcessor builds it from
/// the current one (`current`, a `QuorumVerifier.toString()`): non-incremental with
/// `new_members` (`server.N` / `group.N` / `weight.N` lines, separated by commas or
/// newlines), else incremental (`leaving`: sids separated by commas; `joining`: `server.N=...`
/// lines separated by commas, each with its client address; a majority configuration
/// only). The result is the new `QuorumVerifier.toString()` with `version=<version hex>`;
/// it has at least two voters with `standalone_enabled`, else at least one (a one-voter
/// quorum), as PrepRequestProcessor checks with `QuorumPeerConfig.isStandaloneEnabled()`.
pub fn reconfigured(
    current: &str,
    joining: Option<&str>,
    leaving: Option<&str>,
    new_members: Option<&str>,
    version: u64,
    standalone_enabled: bool,
) -> Result<String, ReconfigError> {
    let bad = |m: String| ReconfigError(m);
    let mut next = match new_members {
        Some(members) => membership_of(&members.replace(',', "\n")).map_err(|e| bad(e.to_string()))?,
        None => {
            let cur = membership_of(current).map_err(|e| bad(e.to_string()))?;
            if cur.is_hierarchical() {
                return Err(bad(
                    "Incremental reconfiguration requested but last configuration seen has a non-majority quorum system".to_string()
                ));
            }
            let mut servers = cur.servers.clone();
            for l in leaving.into_iter().flat_map(|l| l.split(',')).map(str::trim).filter(|l| !l.is_empty()) {
                let sid: u64 = l.parse().map_err(|_| bad(format!("For input string: \"{l}\"")))?;
                servers.remove(&sid);
            }
            let mut text: Vec<String> = Vec::new();
            for j in joining.into_iter().flat_map(|j| j.split(',')).map(str::trim).filter(|j| !j.is_empty()) {
                let Some((k, v)) = j.split_once('=') else { return Err(bad("Wrong format of server string".to_string())) };
                if !k.trim().starts_with("server.") {
                    return Err(bad("Wrong format of server string".to_string()));
                }
                // One line on its own (an observer's too: the whole is checked below).
                let spec = servers::parse_server_line(k.trim(), v.trim()).map_err(bad)?;
                let sid = spec.id;
                if spec.client_address.is_none() {
                    return Err(bad("Wrong format of server string - each server should have 3 ports specified".to_string()));
                }
                servers.insert(sid, spec);
            }
            for (sid, spec) in &servers {
                text.push(format!("server.{sid}={}", spec.to_zk_string()));
            }
            // Parsed again as a whole: duplicate addresses and the like are refused there.
            membership_of(&text.join("\n")).map_err(|e| bad(e.to_string()))?
        }
    };
    let voters = next.participants().count();
    if standalone_enabled && voters < 2 {
        return Err(bad("Reconfig failed - new configuration must include at least 2 followers".to_string()));
    } else if voters < 1 {
        return Err(bad("Reconfig failed - new configuration must include at least 1 follower".to_string()));
    }
    next.config_version = version;
    Ok(next.membership_string())
}
