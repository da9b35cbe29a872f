//! Tests of the configuration as a whole.

use super::*;

fn parse(text: &str) -> ServerConfig {
    ServerConfig::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ConfigError {
    match ServerConfig::parse(text) {
        Ok(c) => panic!("expected an error, got {c:#?}"),
        Err(e) => e,
    }
}

/// A minimal valid file plus `extra`.
fn with(extra: &str) -> ServerConfig {
    parse(&format!("dataDir=/var/lib/zk\n{extra}"))
}

fn err_with(extra: &str) -> ConfigError {
    err(&format!("dataDir=/var/lib/zk\n{extra}"))
}

fn has_ignored(c: &ServerConfig, key: &str) -> bool {
    c.ignored.iter().any(|(k, _, _)| k == key)
}

fn has_warning(c: &ServerConfig, key: &str, needle: &str) -> bool {
    c.warnings.iter().any(|(k, _, m)| k == key && m.contains(needle))
}

const DEBIAN_EXAMPLE: &str = include_str!("../testdata/debian_conf_example_zoo.cfg");

// ---------------------------------------------------------------- defaults

#[test]
fn default_standalone() {
    let c = ServerConfig::default_standalone();
    assert_eq!(c.client_port, Some(2181));
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.data_log_dir(), Path::new("./data"));
    assert_eq!(c.tick_time, 3000);
    assert_eq!(c.min_session_timeout_ms(), 6000);
    assert_eq!(c.max_session_timeout_ms(), 60000);
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(c.max_cnxns, 0);
    assert_eq!(c.global_outstanding_limit, 1000);
    assert_eq!(c.jute_maxbuffer, 1048575);
    assert_eq!(c.init_limit, 10);
    assert_eq!(c.sync_limit, 5);
    assert_eq!(c.election_alg, 3);
    assert_eq!(c.snap_count, 100000);
    assert_eq!(c.pre_alloc_size_kb, 65536);
    assert_eq!(c.pre_alloc_size_bytes(), 64 * 1024 * 1024);
    assert_eq!(c.snap_retain_count, 3);
    assert_eq!(c.purge_interval, 1);
    assert!(c.force_sync);
    assert!(c.sync_enabled);
    assert!(c.standalone_enabled);
    assert!(!c.reconfig_enabled);
    assert!(!c.extended_types_enabled);
    assert!(!c.readonly_mode_enabled);
    assert!(!c.skip_acl);
    assert!(!c.local_sessions_enabled);
    assert!(c.admin_enable_server);
    assert_eq!(c.admin_server_port, 8080);
    assert_eq!(c.admin_server_address, "0.0.0.0");
    assert_eq!(c.admin_command_url, "/commands");
    assert_eq!(c.client_port_listen_backlog, -1);
    assert_eq!(c.peer_type, PeerType::Participant);
    assert_eq!(c.snapshot_compression_method, SnapshotCompression::Checked);
    assert!(c.is_standalone());
    assert!(c.four_letter_word_allowed("srvr"));
    assert!(!c.four_letter_word_allowed("ruok"));
    assert_eq!(c.four_letter_word_whitelist, FourLetterWordWhitelist::Only(["srvr".to_string()].into()));
    assert_eq!(ServerConfig::default(), c);
}

#[test]
fn minimal_file_defaults() {
    let c = with("");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/zk"));
    assert_eq!(c.data_log_dir(), Path::new("/var/lib/zk"));
    // A file without clientPort has no client port (as in ZooKeeper).
    assert_eq!(c.client_port, None);
    assert_eq!(c.tick_time, 3000);
    assert!(c.is_standalone());
    assert!(c.ignored.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.key_lines.get("dataDir"), Some(&1));
}

#[test]
fn data_dir_is_required_in_a_file() {
    let e = err("tickTime=2000\nclientPort=2181\n");
    assert_eq!(e.key(), Some("dataDir"));
    assert!(e.to_string().starts_with("zoo.cfg: dataDir: dataDir is not set"), "{e}");
    let e = err("dataDir=\n");
    assert_eq!(e.to_string(), "zoo.cfg line 1: dataDir: expected a directory, got an empty value");
}

// ---------------------------------------------------------------- each key

#[test]
fn directories_and_ports() {
    let c = with(
        "dataLogDir=/ssd/zk-log\nclientPort=2182\nclientPortAddress=127.0.0.1\n\
         secureClientPort=2281\nsecureClientPortAddress=10.0.0.1\nclientPortListenBacklog=128\n\
         observerMasterPort=0\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\n",
    );
    assert_eq!(c.data_log_dir(), Path::new("/ssd/zk-log"));
    assert_eq!(c.client_port, Some(2182));
    assert_eq!(c.client_port_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.secure_client_port, Some(2281));
    assert_eq!(c.secure_client_port_address.as_deref(), Some("10.0.0.1"));
    assert_eq!(c.client_port_listen_backlog, 128);
    assert_eq!(c.observer_master_port, None);
    // An ensemble's key only (see observer_master_port)
    assert!(err_with("observerMasterPort=2191\n").to_string().contains("observerMasterPort"));
    assert_eq!(with("clientPort=0\n").client_port, None);
    assert_eq!(with("observerMasterPort=0\n").observer_master_port, None);
    assert_eq!(with("secureClientPort=0\n").secure_client_port, None);
}

#[test]
fn port_errors() {
    let e = err_with("clientPort=-1\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: clientPort: expected a port number (1-65535), got \"-1\"");
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.key(), Some("clientPort"));
    let e = err_with("\n\nclientPort=65536\n");
    assert_eq!(e.line(), Some(4));
    assert!(err_with("clientPort=http\n").to_string().contains("got \"http\""));
    assert_eq!(err_with("secureClientPort=99999\n").key(), Some("secureClientPort"));
    let e = err_with("clientPortAddress=127.0.0.1\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: clientPortAddress: clientPortAddress is set but clientPort is not set");
    assert_eq!(err_with("secureClientPortAddress=::1\n").key(), Some("secureClientPortAddress"));
}

#[test]
fn tick_time() {
    assert_eq!(with("tickTime=2000\n").tick_time, 2000);
    let e = err("dataDir=/d\n# x\ntickTime=abc\n");
    assert_eq!(e.to_string(), "zoo.cfg line 3: tickTime: expected a positive integer, got \"abc\"");
    assert!(err_with("tickTime=0\n").to_string().contains("positive integer"));
    assert!(err_with("tickTime=-5\n").to_string().contains("positive integer"));
    assert!(err_with("tickTime=2147483648\n").to_string().contains("positive integer"));
    assert!(err_with("tickTime=\n").to_string().contains("got \"\""));
}

#[test]
fn session_timeouts() {
    let c = with("tickTime=2000\n");
    assert_eq!(c.min_session_timeout_ms(), 4000);
    assert_eq!(c.max_session_timeout_ms(), 40000);
    let c = with("tickTime=2000\nminSessionTimeout=1000\nmaxSessionTimeout=90000\n");
    assert_eq!(c.min_session_timeout, Some(1000));
    assert_eq!(c.min_session_timeout_ms(), 1000);
    assert_eq!(c.max_session_timeout_ms(), 90000);
    // -1 is ZooKeeper's "unset".
    let c = with("minSessionTimeout=-1\n");
    assert_eq!(c.min_session_timeout, None);
    assert_eq!(c.min_session_timeout_ms(), 6000);
    // min > max
    let e = err_with("tickTime=2000\nminSessionTimeout=30000\nmaxSessionTimeout=10000\n");
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.key(), Some("minSessionTimeout"));
    assert!(e.to_string().contains("must not be larger than maxSessionTimeout"), "{e}");
    // Only max set, below the default min (2 ticks).
    let e = err_with("tickTime=2000\nmaxSessionTimeout=3000\n");
    assert_eq!(e.key(), Some("maxSessionTimeout"));
    assert_eq!(e.line(), Some(3));
    assert!(err_with("minSessionTimeout=-7\n").to_string().contains("non-negative"));
    assert!(err_with("maxSessionTimeout=1h\n").to_string().contains("expected an integer"));
}

#[test]
fn connection_limits() {
    let c = with("maxClientCnxns=0\nmaxCnxns=500\nglobalOutstandingLimit=2000\n");
    assert_eq!(c.max_client_cnxns, 0);
    assert_eq!(c.max_cnxns, 500);
    assert_eq!(c.global_outstanding_limit, 2000);
    assert_eq!(c.system_properties.get("zookeeper.maxCnxns").map(String::as_str), Some("500"));
    // Negative: no limit, as in ZooKeeper.
    let c = with("maxClientCnxns=-1\n");
    assert_eq!(c.max_client_cnxns, 0);
    assert!(has_warning(&c, "maxClientCnxns", "no limit"));
    assert!(err_with("maxClientCnxns=many\n").to_string().contains("maxClientCnxns"));
    let e = err_with("\nmaxCnxns=lots\n");
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.key(), Some("maxCnxns"));
    assert!(err_with("globalOutstandingLimit=0\n").to_string().contains("positive"));
}

#[test]
fn quorum_settings() {
    let c = with(
        "initLimit=20\nsyncLimit=7\nconnectToLearnerMasterLimit=30\nelectionAlg=3\npeerType=OBSERVER\n\
         quorumListenOnAllIPs=true\nsyncEnabled=true\nstandaloneEnabled=true\nreconfigEnabled=true\n",
    );
    assert_eq!(c.init_limit, 20);
    assert_eq!(c.sync_limit, 7);
    assert_eq!(c.connect_to_learner_master_limit(), 30);
    assert_eq!(c.election_alg, 3);
    assert_eq!(c.peer_type, PeerType::Observer);
    assert!(c.quorum_listen_on_all_ips);
    assert!(c.sync_enabled);
    // An observer that keeps no log; the system property wins over the key, either way.
    assert!(!with("syncEnabled=false\n").sync_enabled);
    assert!(!with("syncEnabled=FALSE\n").sync_enabled);
    assert!(with("syncEnabled=false\nobserver.syncEnabled=true\n").sync_enabled);
    assert!(!with("observer.syncEnabled=false\nsyncEnabled=true\n").sync_enabled);
    assert!(err_with("observer.syncEnabled=no\n").to_string().contains("observer.syncEnabled"));
    assert!(!with("leaderServes=no\n").leader_serves && with("leaderServes=NO\n").leader_serves);
    assert!(c.reconfig_enabled);
    // A standalone server honours it (reconfig answers Unimplemented, as ZooKeeper's); so
    // does an ensemble member (it activates committed reconfigurations).
    assert!(with("initLimit=5\nsyncLimit=2\nreconfigEnabled=true\nserver.1=h1:2888:3888\nserver.2=h2:2888:3888\n").reconfig_enabled);
    assert!(with("reconfigEnabled=true\nserver.1=h1:2888:3888\n").reconfig_enabled);
    assert!(!with("initLimit=5\nsyncLimit=2\nreconfigEnabled=false\nserver.1=h1:2888:3888\nserver.2=h2:2888:3888\n").reconfig_enabled);
    assert_eq!(with("initLimit=4\n").connect_to_learner_master_limit(), 4);
    assert_eq!(with("peerType=participant\n").peer_type, PeerType::Participant);

    let e = err_with("electionAlg=0\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: electionAlg: only 3 (fast leader election) is supported, got \"0\"");
    assert!(err_with("electionAlg=x\n").to_string().contains("electionAlg"));
    let e = err_with("peerType=leader\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: peerType: expected participant or observer, got \"leader\"");
    assert!(err_with("initLimit=-1\n").to_string().contains("initLimit"));
}

#[test]
fn booleans() {
    let c = with("localSessionsEnabled=TRUE\nlocalSessionsUpgradingEnabled=true\n");
    assert!(c.local_sessions_enabled);
    assert!(c.local_sessions_upgrading_enabled);
    let e = err_with("standaloneEnabled=yes\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: standaloneEnabled: expected true or false, got \"yes\"");
    for key in [
        "quorumListenOnAllIPs",
        "syncEnabled",
        "reconfigEnabled",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "extendedTypesEnabled",
        "admin.enableServer",
        "multiAddress.enabled",
        "sslQuorum",
    ] {
        let e = err_with(&format!("{key}=1\n"));
        assert_eq!(e.key(), Some(key), "{e}");
        assert!(e.to_string().contains("expected true or false"), "{e}");
    }
}

#[test]
fn autopurge() {
    let c = with("autopurge.snapRetainCount=10\nautopurge.purgeInterval=24\n");
    assert_eq!(c.snap_retain_count, 10);
    assert_eq!(c.purge_interval, 24);
    let c = with("autopurge.snapRetainCount=1\nautopurge.purgeInterval=0\n");
    assert_eq!(c.snap_retain_count, 3);
    assert_eq!(c.purge_interval, 0);
    assert!(has_warning(&c, "autopurge.snapRetainCount", "using 3"));
    let c = with("autopurge.purgeInterval=-1\n");
    assert_eq!(c.purge_interval, 0);
    assert!(err_with("autopurge.purgeInterval=1h\n").to_string().contains("autopurge.purgeInterval"));
    assert!(err_with("autopurge.snapRetainCount=x\n").to_string().contains("autopurge.snapRetainCount"));
}

#[test]
fn persistence_system_properties() {
    let c = with("snapCount=50000\npreAllocSize=131072\nforceSync=no\nsnapshot.compression.method=snappy\n");
    assert_eq!(c.snap_count, 50000);
    assert_eq!(c.pre_alloc_size_kb, 131072);
    assert!(!c.force_sync);
    assert_eq!(c.snapshot_compression_method, SnapshotCompression::Snappy);
    assert_eq!(c.system_properties.get("zookeeper.snapshot.compression.method").map(String::as_str), Some("snappy"));
    assert!(with("forceSync=yes\n").force_sync);
    assert_eq!(with("snapshot.compression.method=GZ\n").snapshot_compression_method, SnapshotCompression::Gzip);
    assert_eq!(with("snapshot.compression.method=\n").snapshot_compression_method, SnapshotCompression::Checked);
    let c = with("snapCount=1\n");
    assert_eq!(c.snap_count, 2);
    assert!(has_warning(&c, "snapCount", "using 2"));
    let e = err_with("forceSync=false\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: forceSync: expected yes or no, got \"false\"");
    assert!(err_with("snapshot.compression.method=lz4\n").to_string().contains("snapshot.compression.method"));
    assert!(err_with("preAllocSize=-1\n").to_string().contains("preAllocSize"));
    assert!(err_with("snapCount=many\n").to_string().contains("snapCount"));
}

#[test]
fn security_settings() {
    let c = with(
        "skipACL=yes\nDigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
         extendedTypesEnabled=true\n",
    );
    assert!(c.skip_acl);
    assert_eq!(c.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    assert!(c.extended_types_enabled);
    assert_eq!(
        c.system_properties.get("zookeeper.DigestAuthenticationProvider.superDigest").map(String::as_str),
        Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
    );
    assert_eq!(c.system_properties.get("zookeeper.skipACL").map(String::as_str), Some("yes"));
    assert!(!with("skipACL=no\n").skip_acl);
    // "YES" is not yes to ZooKeeper: refuse rather than guess.
    assert!(err_with("skipACL=YES\n").to_string().contains("expected yes or no"));
    assert!(err_with("DigestAuthenticationProvider.superDigest=nocolon\n").to_string().contains("super:<base64 digest>"));
}

#[test]
fn jute_maxbuffer_and_readonly() {
    let c = with("jute.maxbuffer=4194304\nreadonlymode.enabled=true\n");
    assert_eq!(c.jute_maxbuffer, 4194304);
    assert!(c.readonly_mode_enabled);
    assert!(has_warning(&c, "jute.maxbuffer", "ignores it in zoo.cfg"));
    assert!(has_warning(&c, "readonlymode.enabled", "ignores it in zoo.cfg"));
    // Read-only mode lets isro through, as in ZooKeeper.
    assert!(c.four_letter_word_allowed("isro"));
    // Integer.getInteger takes hex.
    assert_eq!(with("jute.maxbuffer=0x200000\n").jute_maxbuffer, 0x200000);
    let e = err_with("jute.maxbuffer=big\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: jute.maxbuffer: expected a positive number of bytes, got \"big\"");
}

#[test]
fn admin_server() {
    let c = with(
        "admin.enableServer=false\nadmin.serverPort=9090\nadmin.serverAddress=127.0.0.1\n\
         admin.commandURL=/cmd\nadmin.idleTimeout=5000\n",
    );
    assert!(!c.admin_enable_server);
    assert_eq!(c.admin_server_port, 9090);
    assert_eq!(c.admin_server_address, "127.0.0.1");
    assert_eq!(c.admin_command_url, "/cmd");
    assert_eq!(c.admin_idle_timeout, 5000);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(err_with("admin.serverPort=70000\n").to_string().contains("admin.serverPort"));
}

#[test]
fn admin_server_tls_takes_the_quorum_stores() {
    let c = with(
        "admin.forceHttps=true\nadmin.needClientAuth=TRUE\nssl.quorum.keyStore.location=/k.p12\n\
         ssl.quorum.keyStore.password=pw\nssl.quorum.trustStore.location=/ca.pem\n",
    );
    let t = &c.admin_tls;
    assert!(t.force_https && t.need_client_auth && !t.port_unification && t.enabled());
    let ks = t.key_store.as_ref().expect("key store");
    assert_eq!(ks.location, PathBuf::from("/k.p12"));
    assert_eq!(ks.store_type, StoreType::Pkcs12);
    assert_eq!(ks.password.as_deref(), Some("pw"));
    assert_eq!(t.trust_store.as_ref().expect("trust store").store_type, StoreType::Pem);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The client port's stores are not the admin server's.
    let e = err_with("admin.portUnification=true\nssl.keyStore.location=/k.p12\nssl.trustStore.location=/ca.pem\n");
    assert_eq!(e.key(), Some("ssl.quorum.keyStore.location"), "{e}");
    let e = err_with("admin.forceHttps=true\nssl.quorum.keyStore.location=/k.p12\n");
    assert_eq!(e.key(), Some("ssl.quorum.trustStore.location"), "{e}");
    // Without admin TLS (or with it, for what the admin server does not read) the quorum
    // settings are unused until sslQuorum / portUnification: said so.
    let c = with("admin.forceHttps=false\nssl.quorum.keyStore.location=/k.p12\n");
    assert!(has_warning(&c, "ssl.quorum.keyStore.location", "no effect"), "{:?}", c.warnings);
    let c = with(
        "admin.forceHttps=true\nssl.quorum.keyStore.location=/k.p12\nssl.quorum.trustStore.location=/ca.pem\nssl.quorum.protocol=TLSv1.3\n",
    );
    assert!(has_warning(&c, "ssl.quorum.protocol", "no effect"), "{:?}", c.warnings);
    assert!(!has_warning(&c, "ssl.quorum.keyStore.location", "no effect"), "{:?}", c.warnings);
    let c = with("admin.needClientAuth=true\n");
    assert!(has_warning(&c, "admin.needClientAuth", "no effect"), "{:?}", c.warnings);
    assert_eq!(with("admin.forceHttps=yes\n").admin_tls, AdminTls::default());
}

#[test]
fn admin_snapshot_settings() {
    let c = with("");
    assert!(c.admin_snapshot_enabled);
    assert_eq!(c.admin_rate_limiter_interval, 300_000);
    let c = with("admin.snapshot.enabled=no\nadmin.rateLimiterIntervalInMS=5\n");
    assert!(!c.admin_snapshot_enabled);
    assert_eq!(c.admin_rate_limiter_interval, 5);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(err_with("admin.rateLimiterIntervalInMS=-1\n").key(), Some("admin.rateLimiterIntervalInMS"));
    // restore: on by default, as in 3.9; Boolean.parseBoolean of the value.
    assert!(with("").admin_restore_enabled);
    assert!(!with("admin.restore.enabled=false\n").admin_restore_enabled);
    assert!(with("admin.restore.enabled=TRUE\n").admin_restore_enabled);
}

#[test]
fn console_settings() {
    let c = with("");
    assert_eq!(c.console, ConsoleConfig { enabled: true, allow_remote: false, configured: false });
    assert!(!c.to_conf_4lw(&ConfRuntime::default()).contains("rzk.console"));
    let c = with("rzk.console.enabled=false\nrzk.console.allowRemote=true\n");
    assert_eq!(c.console, ConsoleConfig { enabled: false, allow_remote: true, configured: true });
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let conf = c.to_conf_4lw(&ConfRuntime::default());
    assert!(conf.ends_with("rzk.console.enabled=false\nrzk.console.allowRemote=true\n"), "{conf}");
    assert_eq!(err_with("rzk.console.enabled=maybe\n").key(), Some("rzk.console.enabled"));
    // An rzk key rzk does not read stops the start-up, naming it.
    let e = err_with("rzk.console.port=9\n");
    assert_eq!(e.key(), Some("rzk.console.port"), "{e}");
}

#[test]
fn metrics_provider() {
    let c = with(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpPort=7000\nmetricsProvider.exportJvmInfo=true\n",
    );
    assert_eq!(c.metrics_provider_class_name.as_deref(), Some("org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"));
    assert_eq!(c.metrics_provider_configuration.get("httpPort").map(String::as_str), Some("7000"));
    assert_eq!(c.metrics_provider_configuration.get("exportJvmInfo").map(String::as_str), Some("true"));
    assert!(!has_ignored(&c, "metricsProvider.className"));
    assert!(!c.system_properties.contains_key("zookeeper.metricsProvider.httpPort"));
}

// ---------------------------------------------------------------- 4lw

#[test]
fn four_letter_word_whitelist() {
    let c = with("4lw.commands.whitelist=stat, ruok ,conf,,isro\n");
    for w in ["stat", "ruok", "conf", "isro", "srvr"] {
        assert!(c.four_letter_word_allowed(w), "{w}");
    }
    assert!(!c.four_letter_word_allowed("dump"));
    assert_eq!(c.system_properties.get("zookeeper.4lw.commands.whitelist").map(String::as_str), Some("stat, ruok ,conf,,isro"));
    let c = with("4lw.commands.whitelist=*\n");
    assert_eq!(c.four_letter_word_whitelist, FourLetterWordWhitelist::All);
    for w in FOUR_LETTER_WORDS {
        assert!(c.four_letter_word_allowed(w), "{w}");
    }
    assert!(!c.four_letter_word_allowed("nope"));
    assert_eq!(with("4lw.commands.whitelist=ruok, *\n").four_letter_word_whitelist, FourLetterWordWhitelist::All);
    // Empty: srvr only, like unset.
    let c = with("4lw.commands.whitelist=\n");
    assert!(c.four_letter_word_allowed("srvr"));
    assert!(!c.four_letter_word_allowed("ruok"));
    let c = with("4lw.commands.whitelist=ruok,bogus\n");
    assert!(has_warning(&c, "4lw.commands.whitelist", "bogus"));
}

// ---------------------------------------------------------------- system properties

#[test]
fn unknown_key_becomes_system_property() {
    let c = with("fsync.warningthresholdms=500\nsomethingNew=42\n");
    assert_eq!(c.system_properties.get("zookeeper.fsync.warningthresholdms").map(String::as_str), Some("500"));
    assert_eq!(c.system_properties.get("zookeeper.somethingNew").map(String::as_str), Some("42"));
    assert!(has_warning(&c, "somethingNew", "kept as system property zookeeper.somethingNew"));
    assert!(c.ignored.is_empty());
}

#[test]
fn zookeeper_prefixed_keys() {
    let c = with("zookeeper.skipACL=yes\nzookeeper.snapCount=1000\n");
    assert!(c.skip_acl);
    assert_eq!(c.snap_count, 1000);
    assert!(c.system_properties.contains_key("zookeeper.skipACL"));
    assert!(!c.system_properties.contains_key("zookeeper.zookeeper.skipACL"));
    assert!(has_warning(&c, "zookeeper.skipACL", "zookeeper.zookeeper.skipACL"));
    let e = err_with("zookeeper.snapCount=x\n");
    assert_eq!(e.key(), Some("zookeeper.snapCount"));
    assert_eq!(e.line(), Some(2));
}

#[test]
fn system_properties_from_caller() {
    let mut opts = ParseOptions::default();
    opts.system_properties.insert("jute.maxbuffer".into(), "2097152".into());
    opts.system_properties.insert("zookeeper.snapCount".into(), "7".into());
    opts.system_properties.insert("zookeeper.skipACL".into(), "yes".into());
    let c = ServerConfig::parse_with("dataDir=/d\nskipACL=no\n", &opts).unwrap();
    assert_eq!(c.jute_maxbuffer, 2097152);
    assert_eq!(c.snap_count, 7);
    // The file overrides, as System.setProperty does.
    assert!(!c.skip_acl);
    assert_eq!(c.system_properties.get("zookeeper.skipACL").map(String::as_str), Some("no"));
    // The bare jute.maxbuffer (what ZooKeeper reads) beats the zoo.cfg one.
    let c = ServerConfig::parse_with("dataDir=/d\njute.maxbuffer=100\n", &opts).unwrap();
    assert_eq!(c.jute_maxbuffer, 2097152);

    let mut opts = ParseOptions::default();
    opts.system_properties.insert("zookeeper.forceSync".into(), "maybe".into());
    let e = ServerConfig::parse_with("dataDir=/d\n", &opts).unwrap_err();
    assert_eq!(e.to_string(), "system property zookeeper.forceSync: expected yes or no, got \"maybe\"");
}

#[test]
fn ignored_keys() {
    let c = with(
        "authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         client.secure=true\njaasLoginRenew=3600000\nsslQuorum=false\nquorum.auth.enableSasl=false\n\
         jvm.pause.monitor=false\nquorum.cnxn.threads.size=20\nmultiAddress.reachabilityCheckEnabled=true\n",
    );
    for key in [
        "authProvider.1",
        "serverCnxnFactory",
        "client.secure",
        "jaasLoginRenew",
        "jvm.pause.monitor",
        "quorum.cnxn.threads.size",
        "multiAddress.reachabilityCheckEnabled",
    ] {
        assert!(has_ignored(&c, key), "{key} not ignored: {:?}", c.ignored);
    }
    let (_, line, reason) = c.ignored.iter().find(|(k, _, _)| k == "serverCnxnFactory").unwrap();
    assert_eq!(*line, 3);
    assert!(reason.contains("Java class"));
    // Ignored system-property keys are still system properties, as in ZooKeeper.
    assert!(c.system_properties.contains_key("zookeeper.authProvider.1"));
    // QuorumPeerConfig's own keys are not.
    assert!(!c.system_properties.contains_key("zookeeper.sslQuorum"));
    // Ignored keys give no "unknown key" warning.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn unimplemented_security_keys_stop_start_up() {
    for (text, key) in [
        ("ssl.quorum.authProvider=x509\n", "ssl.quorum.authProvider"),
        (
            "sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\nssl.quorum.trustStore.location=/t.pem\nssl.quorum.ocsp=true\n",
            "ssl.quorum.ocsp",
        ),
        ("authProvider.2=com.example.MyProvider\n", "authProvider.2"),
        ("kerberos.principalToLocal=x\n", "kerberos.principalToLocal"),
        ("security.auth_to_local=RULE:[1:$1]\n", "security.auth_to_local"),
        ("sasl.mechanism=GSSAPI\n", "sasl.mechanism"),
        ("requireClientAuthScheme=sasl\n", "requireClientAuthScheme"),
        ("ssl.ocsp=true\n", "ssl.ocsp"),
        ("ssl.context.supplier.class=a.B\n", "ssl.context.supplier.class"),
        ("X509AuthenticationProvider.clientCertIdType=SAN\n", "X509AuthenticationProvider.clientCertIdType"),
        ("DigestAuthenticationProvider.enabled=false\n", "DigestAuthenticationProvider.enabled"),
        ("DigestAuthenticationProvider.digestAlg=SHA-256\n", "DigestAuthenticationProvider.digestAlg"),
    ] {
        let e = err_with(text);
        assert_eq!(e.key(), Some(key), "{text}: {e}");
        assert!(e.line() >= Some(2), "{text}: {e}");
        assert!(e.to_string().contains("rzk refuses to start"), "{e}");
    }
    // The same as a system property given on the command line.
    let opts = ParseOptions {
        system_properties: [("zookeeper.sessionRequireClientSASLAuth".to_string(), "true".to_string())].into(),
        ..Default::default()
    };
    let e = ServerConfig::parse_with("dataDir=/d\n", &opts).unwrap_err();
    assert!(matches!(e, ConfigError::InvalidSystemProperty { ref key, .. } if key == "zookeeper.sessionRequireClientSASLAuth"), "{e}");
    assert!(e.to_string().contains("authentication scheme sasl is not available"), "{e}");
    // Booleans still have to be booleans.
    assert!(err_with("sslQuorum=1\n").to_string().contains("expected true or false"));
}

#[test]
fn quorum_tls_and_sasl_settings() {
    let c = with(
        "sslQuorum=true\nportUnification=true\nsslQuorumReloadCertFiles=true\nssl.quorum.keyStore.location=/q/k.p12\n\
         ssl.quorum.keyStore.password=pw\nssl.quorum.trustStore.location=/q/t.pem\nssl.quorum.hostnameVerification=false\n\
         ssl.quorum.enabledProtocols=TLSv1.3,TLSv1.2\nssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256\n\
         ssl.quorum.clientAuth=need\nssl.quorum.allowReverseDnsLookup=false\n",
    );
    let q = &c.quorum_tls;
    assert!(q.ssl_quorum && q.port_unification && q.tls.cert_reload && !q.allow_reverse_dns_lookup);
    assert_eq!(q.tls.key_store.as_ref().unwrap().store_type, StoreType::Pkcs12);
    assert_eq!(q.tls.key_store.as_ref().unwrap().location_key, "zookeeper.ssl.quorum.keyStore.location");
    assert!(!q.tls.hostname_verification);
    assert_eq!(q.tls.enabled_protocols, vec!["TLSv1.3".to_string(), "TLSv1.2".to_string()]);
    assert_eq!(q.tls.key("ciphersuites"), "ssl.quorum.ciphersuites");
    // The client port's settings are apart.
    assert!(c.client_tls.key_store.is_none());
    // Defaults: off, reverse lookup allowed (QuorumX509Util), hostnames verified.
    let d = with("");
    assert!(!d.quorum_tls.enabled() && d.quorum_tls.allow_reverse_dns_lookup && d.quorum_tls.tls.hostname_verification);
    // Turned off: accepted.
    let off = with("sslQuorum=false\nportUnification=false\nquorum.auth.enableSasl=false\nssl.quorum.keyStore.location=/q.jks\n");
    assert!(!off.quorum_tls.enabled() && !off.quorum_sasl.enabled);
    // Stores in place before a rolling move to TLS: unused, and said so.
    assert!(has_warning(&off, "ssl.quorum.keyStore.location", "speak plaintext"), "{:?}", off.warnings);
    // TLS without its stores, and ZooKeeper's checks of the SASL booleans.
    assert_eq!(err_with("sslQuorum=true\n").key(), Some("ssl.quorum.keyStore.location"));
    assert_eq!(err_with("portUnification=true\nssl.quorum.keyStore.location=/k.pem\n").key(), Some("ssl.quorum.trustStore.location"));
    assert_eq!(err_with("quorum.auth.serverRequireSasl=true\n").key(), Some("quorum.auth.serverRequireSasl"));
    assert_eq!(err_with("quorum.auth.learnerRequireSasl=true\n").key(), Some("quorum.auth.learnerRequireSasl"));
    // ZooKeeper's learner appends the realm itself.
    assert_eq!(err_with("quorum.auth.kerberos.servicePrincipal=zk/h@R\n").key(), Some("quorum.auth.kerberos.servicePrincipal"));
    assert_eq!(err_with("quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n").key(), Some("quorum.auth.serverRequireSasl"));
    assert!(err_with("sslQuorum=1\n").to_string().contains("expected true or false"));
    let s = with(
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
         quorum.auth.learner.saslLoginContext=L\nquorum.auth.server.saslLoginContext=S\n",
    );
    let q = &s.quorum_sasl;
    assert!(q.enabled && q.learner_require && q.server_require);
    assert_eq!((q.learner_login_context.as_str(), q.server_login_context.as_str()), ("L", "S"));
}

#[test]
fn quorum_sasl_jaas_sections() {
    let dir = std::env::temp_dir().join(format!("rzk-qjaas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_zk=\"pw\"; };\n\
         QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"zk\" password=\"pw\"; };\n",
    )
    .unwrap();
    let text =
        |extra: &str| format!("dataDir=/d\nquorum.auth.enableSasl=true\njava.security.auth.login.config={}\n{extra}", jaas.display());
    let mut c = ServerConfig::parse(&text("")).unwrap();
    load_jaas(&mut c).unwrap();
    assert_eq!(c.quorum_sasl.learner_credentials, Some(("zk".into(), "pw".into())));
    assert_eq!(c.quorum_sasl.server_users.as_ref().unwrap()["zk"], "pw");
    let mut c = ServerConfig::parse(&text("quorum.auth.learner.saslLoginContext=Nope\n")).unwrap();
    let e = load_jaas(&mut c).unwrap_err();
    assert_eq!(e.key(), Some("quorum.auth.learner.saslLoginContext"), "{e}");
    assert!(e.to_string().contains("'Nope' could not be found"), "{e}");
    let mut c = ServerConfig::parse("dataDir=/d\nquorum.auth.enableSasl=true\n").unwrap();
    assert_eq!(load_jaas(&mut c).unwrap_err().key(), Some("quorum.auth.enableSasl"));
    // Kerberos: the QuorumServer section's service principal, the QuorumLearner's principal.
    let krb = dir.join("krb.conf");
    std::fs::write(
        &krb,
        "QuorumServer { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/s.kt\" storeKey=true          principal=\"zkquorum/localhost@R\"; };\n\
         QuorumLearner { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/l.kt\" storeKey=true          principal=\"learner/localhost@R\"; };\n",
    )
    .unwrap();
    let text = format!(
        "dataDir=/d\nquorum.auth.enableSasl=true\nquorum.auth.kerberos.servicePrincipal=zkquorum/_HOST\njava.security.auth.login.config={}\n",
        krb.display()
    );
    let mut c = ServerConfig::parse(&text).unwrap();
    load_jaas(&mut c).unwrap();
    let q = &c.quorum_sasl;
    assert_eq!(q.server_kerberos.as_ref().unwrap().principal, "zkquorum/localhost@R");
    assert_eq!(q.learner_kerberos.as_ref().unwrap().principal, "learner/localhost@R");
    assert_eq!(q.learner_credentials, None);
    assert_eq!(q.service_principal(), "zkquorum/_HOST");
    assert_eq!(QuorumSasl::default().service_principal(), "zkquorum/localhost");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn client_tls_defaults_as_zookeeper_3_8() {
    let c = with(
        "secureClientPort=2281\nssl.keyStore.location=/etc/zk/server.jks\nssl.keyStore.password=pw\n\
                  ssl.trustStore.location=/etc/zk/ca.pem\n",
    );
    let t = &c.client_tls;
    let ks = t.key_store.as_ref().unwrap();
    assert_eq!(ks.store_type, StoreType::Jks);
    assert_eq!(ks.password.as_deref(), Some("pw"));
    assert_eq!(ks.location_key, "zookeeper.ssl.keyStore.location");
    assert_eq!(t.trust_store.as_ref().unwrap().store_type, StoreType::Pem);
    assert_eq!(t.client_auth, ClientAuth::Need);
    assert_eq!(t.protocol, "TLSv1.2");
    assert_eq!(t.enabled_protocols, vec!["TLSv1.2".to_string()]);
    assert_eq!(t.ciphersuites, None);
    assert!(t.hostname_verification);
    assert_eq!(t.auth_provider, "x509");
    assert!(!t.port_unification && !t.cert_reload);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
}

#[test]
fn client_tls_settings() {
    let c = with(
        "clientPort=2181\nclient.portUnification=true\nclient.certReload=TRUE\nssl.keyStore.location=/k.p12\n\
         ssl.keyStore.type=pkcs12\nssl.trustStore.location=/t.store\nssl.trustStore.type=JKS\n\
         ssl.trustStore.passwordPath=/pw\nssl.clientAuth=WANT\nssl.protocol=TLSv1.3\n\
         ssl.enabledProtocols=TLSv1.3, TLSv1.2\nssl.ciphersuites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n\
         ssl.hostnameVerification=false\nX509AuthenticationProvider.superUser=CN=admin\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
    );
    let t = &c.client_tls;
    assert!(t.port_unification && t.cert_reload);
    assert_eq!(t.key_store.as_ref().unwrap().store_type, StoreType::Pkcs12);
    let ts = t.trust_store.as_ref().unwrap();
    assert_eq!((ts.store_type, ts.password_path.as_deref()), (StoreType::Jks, Some(Path::new("/pw"))));
    assert_eq!(t.client_auth, ClientAuth::Want);
    assert_eq!(t.enabled_protocols, vec!["TLSv1.3".to_string(), "TLSv1.2".to_string()]);
    assert_eq!(t.ciphersuites.as_ref().unwrap().len(), 2);
    assert!(!t.hostname_verification);
    assert_eq!(t.x509_super_user.as_deref(), Some("CN=admin"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The same settings as zookeeper.-prefixed system properties.
    let opts = ParseOptions {
        system_properties: [
            ("zookeeper.ssl.keyStore.location".to_string(), "/k.pem".to_string()),
            ("zookeeper.ssl.clientAuth".to_string(), "none".to_string()),
        ]
        .into(),
        ..Default::default()
    };
    let c = ServerConfig::parse_with("dataDir=/d\nsecureClientPort=2281\n", &opts).unwrap();
    assert_eq!(c.client_tls.key_store.unwrap().store_type, StoreType::Pem);
    assert_eq!(c.client_tls.client_auth, ClientAuth::None);
}

#[test]
fn client_tls_errors() {
    let e = err_with("secureClientPort=2281\n");
    assert_eq!(e.key(), Some("ssl.keyStore.location"), "{e}");
    let e = err_with("secureClientPort=2281\nssl.keyStore.location=/k.pem\n");
    assert_eq!(e.key(), Some("ssl.trustStore.location"), "{e}");
    let e = err_with("secureClientPort=2281\nssl.keyStore.location=/k.keystore\nssl.clientAuth=none\n");
    assert!(e.to_string().contains("auto-detect"), "{e}");
    let e = err_with("ssl.keyStore.location=/k.pem\nssl.keyStore.type=BCFKS\n");
    assert_eq!(e.key(), Some("ssl.keyStore.type"), "{e}");
    let e = err_with("ssl.clientAuth=maybe\n");
    assert_eq!((e.key(), e.line()), (Some("ssl.clientAuth"), Some(2)), "{e}");
    let e = err_with("ssl.authProvider=custom\n");
    assert_eq!(e.key(), Some("ssl.authProvider"), "{e}");
    // Stores configured with nothing to use them: a warning.
    let c = with("ssl.keyStore.location=/k.pem\n");
    assert!(has_warning(&c, "ssl.keyStore.location", "no port speaks TLS"), "{:?}", c.warnings);
}

// ---------------------------------------------------------------- syntax

#[test]
fn properties_syntax() {
    let text = "  # comment\n\
                ! another comment\n\
                \n\
                dataDir : /var/lib/zoo\\\n\
                \x20\x20\x20\x20keeper\n\
                tickTime 2000\n\
                \tclientPort\t=\t2181   \n\
                maxClientCnxns=\\\n\
                \x20\x20100\n";
    let c = parse(text);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/zookeeper"));
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.client_port, Some(2181));
    assert_eq!(c.max_client_cnxns, 100);
    assert_eq!(c.key_lines["dataDir"], 4);
    assert_eq!(c.key_lines["tickTime"], 6);
    assert_eq!(c.key_lines["clientPort"], 7);
    assert_eq!(c.key_lines["maxClientCnxns"], 8);
}

#[test]
fn errors_after_continuations_name_the_starting_line() {
    let e = err("dataDir=/d\nclientPort=\\\n  21\\\n  81x\n");
    assert_eq!(e.to_string(), "zoo.cfg line 2: clientPort: expected a port number (1-65535), got \"2181x\"");
}

#[test]
fn crlf_files() {
    let c = parse("dataDir=/d\r\ntickTime=2000\r\nclientPort=2181\r\n");
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.key_lines["clientPort"], 3);
}

#[test]
fn malformed_unicode_escape_is_a_syntax_error() {
    let e = err("dataDir=/d\nfoo=\\uZZZZ\n");
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().starts_with("zoo.cfg line 2: "), "{e}");
}

#[test]
fn repeated_key_last_wins() {
    let c = with("tickTime=1000\ntickTime=2000\n");
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.key_lines["tickTime"], 3);
    assert!(has_warning(&c, "tickTime", "last one wins"));
    // An invalid value overridden later is not an error (Java never sees it).
    assert_eq!(with("tickTime=abc\ntickTime=2000\n").tick_time, 2000);
}

#[test]
fn file_name_in_errors() {
    let opts = ParseOptions { file_name: "/etc/zk/zoo.cfg".into(), ..Default::default() };
    let e = ServerConfig::parse_with("dataDir=/d\ntickTime=x\n", &opts).unwrap_err();
    assert!(e.to_string().starts_with("/etc/zk/zoo.cfg line 2: tickTime:"), "{e}");
}

// ---------------------------------------------------------------- ensemble

const THREE: &str = "tickTime=2000\ndataDir=/var/lib/zk\nclientPort=2181\ninitLimit=5\nsyncLimit=2\n\
                     server.1=zk1:2888:3888\nserver.2=zk2:2888:3888\nserver.3=zk3:2888:3888\n";

#[test]
fn single_server_line_runs_standalone() {
    let c = with("clientPort=2181\nserver.1=localhost:2888:3888\n");
    assert!(c.is_standalone());
    assert!(!c.is_distributed());
    assert_eq!(c.servers.len(), 1);
    assert_eq!(c.servers[&1].host(), "localhost");
    assert!(has_warning(&c, "server.1", "running standalone"));
    // initLimit/syncLimit are not needed standalone.
    assert_eq!(c.init_limit, 10);
    // ... unless standaloneEnabled=false, then it is a one-server quorum.
    let c = with("initLimit=5\nsyncLimit=2\nstandaloneEnabled=false\nserver.1=localhost:2888:3888\n");
    assert!(c.is_distributed());
    assert!(!c.is_standalone());
}

#[test]
fn three_servers_are_a_quorum() {
    let c = parse(THREE);
    assert!(!c.is_standalone());
    assert_eq!(c.servers.len(), 3);
    assert_eq!(c.participants().count(), 3);
    let s2 = &c.servers[&2];
    assert_eq!(s2.id, 2);
    assert_eq!(s2.host(), "zk2");
    assert_eq!(s2.quorum_port(), 2888);
    assert_eq!(s2.election_port(), 3888);
    assert_eq!(s2.peer_type, PeerType::Participant);
    assert_eq!(c.init_limit, 5);
    assert_eq!(c.sync_limit, 2);
    assert!(c.check_myid(2).is_ok());
    let e = c.check_myid(7).unwrap_err();
    assert!(e.to_string().contains("7 is not in the server list (server.1, server.2, server.3)"), "{e}");
    // server.N lines are not system properties in rzk.
    assert!(!c.system_properties.keys().any(|k| k.contains("server.")));
}

#[test]
fn quorum_requires_init_and_sync_limit() {
    let base = "dataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n";
    let e = err(&format!("{base}syncLimit=2\n"));
    assert_eq!(e.key(), Some("initLimit"));
    assert!(e.to_string().contains("initLimit is not set"), "{e}");
    let e = err(&format!("{base}initLimit=2\n"));
    assert_eq!(e.key(), Some("syncLimit"));
    let e = err(&format!("{base}initLimit=0\nsyncLimit=2\n"));
    assert_eq!(e.key(), Some("initLimit"));
}

#[test]
fn observers() {
    let c = parse(&format!("{THREE}server.4=zk4:2888:3888:observer\nserver.5=zk5:2888:3888:observer;2181\n"));
    assert!(c.is_distributed());
    assert_eq!(c.participants().count(), 3);
    assert_eq!(c.observers().count(), 2);
    assert!(c.servers[&4].is_observer());
    assert_eq!(c.peer_type_for(4), PeerType::Observer);
    assert_eq!(c.peer_type_for(1), PeerType::Participant);
    assert_eq!(c.servers[&5].client_address, Some(HostPort { host: "0.0.0.0".into(), port: 2181 }));
    // Observers without a quorum.
    let e = err_with("server.1=a:1:2\nserver.2=b:1:2:observer\n");
    assert!(e.to_string().contains("observers without a quorum"), "{e}");
    let e = err_with("server.2=b:1:2:observer\n");
    assert!(e.to_string().contains("observers without participants"), "{e}");
}

#[test]
fn standalone_disabled_needs_servers() {
    let e = err_with("standaloneEnabled=false\n");
    assert_eq!(e.key(), Some("standaloneEnabled"));
}

#[test]
fn bad_server_lines() {
    let e = err_with("server.1=zk1:2888\n");
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.key(), Some("server.1"));
    assert!(e.to_string().starts_with("zoo.cfg line 2: server.1: expected host:quorumPort:electionPort"), "{e}");
    let e = err_with("server.1=zk1:2888:99999\n");
    assert_eq!(
        e.to_string(),
        "zoo.cfg line 2: server.1: election port: expected a port number (1-65535), got \"99999\" in \"zk1:2888:99999\""
    );
    assert!(err_with("server.1=zk1:2888:2888\n").to_string().contains("must be different"));
    assert!(err_with("server.1=zk1:2888:3888:leader\n").to_string().contains("unrecognised peer type"));
    let e = err_with("server.x=zk1:2888:3888\n");
    assert_eq!(e.key(), Some("server.x"));
    assert!(err_with("server.-1=zk1:2888:3888\n").to_string().contains("non-negative"));
    // Duplicate id under two spellings.
    let e = err_with("initLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.01=b:1:2\n");
    assert_eq!(e.line(), Some(5));
    assert!(e.to_string().contains("server id 1 is already defined by server.1 on line 4"), "{e}");
}

#[test]
fn multi_address_servers() {
    let e = err_with("server.1=a:1:2|b:1:2\n");
    assert!(e.to_string().contains("multiAddress.enabled"), "{e}");
    // multiAddress.enabled applies whatever the order of the lines.
    let c = with("server.1=a:1:2|b:3:4\nmultiAddress.enabled=true\n");
    assert_eq!(c.servers[&1].addresses.len(), 2);
}

#[test]
fn hierarchical_quorums() {
    let c = parse(&format!(
        "{THREE}server.4=zk4:2888:3888\nserver.5=zk5:2888:3888\nserver.6=zk6:2888:3888\n\
         group.1=1:2:3\ngroup.2=4:5:6\nweight.1=1\nweight.2=1\nweight.3=2\n"
    ));
    assert!(c.is_hierarchical());
    assert_eq!(c.groups[&1], vec![1, 2, 3]);
    assert_eq!(c.groups[&2], vec![4, 5, 6]);
    assert_eq!(c.weight_of(3), 2);
    assert_eq!(c.weight_of(4), 1);
    let e = err(&format!("{THREE}group.1=1:2\n"));
    assert!(e.to_string().contains("server 3 is not in a group"), "{e}");
    let e = err(&format!("{THREE}group.1=1:2:3\ngroup.2=3\n"));
    assert!(e.to_string().contains("more than one group"), "{e}");
    let e = err(&format!("{THREE}group.1=1:x:3\n"));
    assert_eq!(e.key(), Some("group.1"));
    let e = err(&format!("{THREE}group.1=1:2:3\nweight.1=heavy\n"));
    assert_eq!(e.key(), Some("weight.1"));
}

#[test]
fn client_listen_address() {
    let c = parse(&format!("{THREE}server.4=zk4:2888:3888:observer;10.0.0.4:2182\n"));
    assert_eq!(c.client_listen_address(Some(1)).unwrap(), Some(HostPort { host: "0.0.0.0".into(), port: 2181 }));
    // Wildcard static address with a different port: conflict.
    assert!(c.client_listen_address(Some(4)).is_err());
    let c = parse(&THREE.replace("clientPort=2181\n", "").replace("zk1:2888:3888", "zk1:2888:3888;2182"));
    assert_eq!(c.client_listen_address(Some(1)).unwrap(), Some(HostPort { host: "0.0.0.0".into(), port: 2182 }));
    assert_eq!(c.client_listen_address(Some(2)).unwrap(), None);
    assert_eq!(
        ServerConfig::default_standalone().client_listen_address(None).unwrap(),
        Some(HostPort { host: "0.0.0.0".into(), port: 2181 })
    );
}

#[test]
fn dynamic_config_file() {
    let main = "dataDir=/d\nclientPort=2181\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile=/etc/zk/zoo.cfg.dynamic.100000000\n";
    let dynamic = "server.1=a:2888:3888;2181\nserver.2=b:2888:3888;2181\nserver.3=c:2888:3888;2181\n";
    let opts = ParseOptions {
        dynamic_config: Some(DynamicConfigText { file_name: "/etc/zk/zoo.cfg.dynamic.100000000".into(), text: dynamic.into() }),
        ..Default::default()
    };
    let c = ServerConfig::parse_with(main, &opts).unwrap();
    assert_eq!(c.servers.len(), 3);
    assert_eq!(c.config_version, 0x100000000);
    assert!(c.is_distributed());
    assert_eq!(dynamic_config_file_of(main).unwrap().as_deref(), Some("/etc/zk/zoo.cfg.dynamic.100000000"));
    // Without the content: a clear error.
    let e = ServerConfig::parse(main).unwrap_err();
    assert_eq!(e.key(), Some("dynamicConfigFile"));
    // A version key in the static file is then just a system property.
    let c = ServerConfig::parse_with(&format!("{main}version=5\n"), &opts).unwrap();
    assert_eq!(c.config_version, 0x100000000);
    // Server lines must not be in the static file then.
    let e = ServerConfig::parse_with(&format!("{main}server.4=d:1:2\n"), &opts).unwrap_err();
    assert_eq!(e.key(), Some("server.4"));
    // Only ensemble keys in the dynamic file.
    let bad = ParseOptions {
        dynamic_config: Some(DynamicConfigText { file_name: "zoo.cfg.dynamic".into(), text: "tickTime=2\n".into() }),
        ..Default::default()
    };
    let e = ServerConfig::parse_with(main, &bad).unwrap_err();
    assert!(e.to_string().starts_with("zoo.cfg.dynamic line 1: tickTime:"), "{e}");
    assert_eq!(version_from_filename("zoo.cfg.dynamic"), None);
    assert_eq!(version_from_filename("zoo.cfg.dynamic.1f"), Some(0x1f));
}

// ---------------------------------------------------------------- myid

#[test]
fn myid() {
    assert_eq!(parse_myid("1\n").unwrap(), 1);
    assert_eq!(parse_myid("42").unwrap(), 42);
    assert_eq!(parse_myid(" 7 \r\nignored\n").unwrap(), 7);
    let e = parse_myid("replace this text with the cluster-unique zookeeper's instance id (1-255)\n").unwrap_err();
    assert!(e.to_string().starts_with("myid: serverid \"replace this text"), "{e}");
    assert!(parse_myid("").is_err());
    assert!(parse_myid("-1").is_err());
    assert!(parse_myid("\n1").is_err());
}

// ---------------------------------------------------------------- examples

#[test]
fn debian_conf_example_parses() {
    let c = ServerConfig::parse(DEBIAN_EXAMPLE).unwrap();
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.init_limit, 10);
    assert_eq!(c.sync_limit, 5);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/zookeeper"));
    assert_eq!(c.client_port, Some(2181));
    assert_eq!(c.max_client_cnxns, 60);
    assert!(c.is_standalone());
    assert!(c.ignored.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.key_lines["dataDir"], 12);
}

#[test]
fn installed_debian_example_parses_if_present() {
    let path = Path::new("/etc/zookeeper/conf_example/zoo.cfg");
    if path.exists() {
        let c = load(path).unwrap();
        assert!(c.is_standalone());
    }
}

#[test]
fn load_reads_files() {
    let dir = std::env::temp_dir().join(format!("rzk-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dyn_path = dir.join("zoo.cfg.dynamic.a");
    std::fs::write(&dyn_path, "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n").unwrap();
    let cfg_path = dir.join("zoo.cfg");
    std::fs::write(&cfg_path, format!("dataDir=/d\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile={}\n", dyn_path.display())).unwrap();
    let c = load(&cfg_path).unwrap();
    assert_eq!(c.servers.len(), 3);
    assert_eq!(c.config_version, 0xa);
    // Latin-1 bytes (not UTF-8) decode as Java's Properties.load would.
    std::fs::write(&cfg_path, b"dataDir=/d\xe9\n").unwrap();
    assert_eq!(load(&cfg_path).unwrap().data_dir, PathBuf::from("/d\u{e9}"));
    std::fs::write(&cfg_path, "dataDir=/d\ntickTime=x\n").unwrap();
    assert_eq!(load(&cfg_path).unwrap_err().to_string(), "zoo.cfg line 2: tickTime: expected a positive integer, got \"x\"");
    let e = load(dir.join("missing.cfg")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn command_line_args() {
    let c = ServerConfig::from_command_line_args(&["2182", "/tmp/zk", "2000", "10"]).unwrap();
    assert_eq!(c.client_port, Some(2182));
    assert_eq!(c.data_dir, PathBuf::from("/tmp/zk"));
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.max_client_cnxns, 10);
    assert!(ServerConfig::from_command_line_args(&["2182"]).is_err());
    assert!(ServerConfig::from_command_line_args(&["x", "/tmp"]).is_err());
}

// ---------------------------------------------------------------- conf 4lw

#[test]
fn conf_standalone_matches_zookeeper() {
    // What ZooKeeper 3.8.0 printed for this configuration.
    let c =
        parse("tickTime=2000\ndataDir=/tmp/zkt/data\nclientPort=21810\n4lw.commands.whitelist=conf,srvr,envi\nadmin.enableServer=false\n");
    let rt = ConfRuntime { data_dir_size: 457, data_log_size: 457, ..Default::default() };
    assert_eq!(
        c.to_conf_4lw(&rt),
        "clientPort=21810\nsecureClientPort=-1\ndataDir=/tmp/zkt/data/version-2\ndataDirSize=457\n\
         dataLogDir=/tmp/zkt/data/version-2\ndataLogSize=457\ntickTime=2000\nmaxClientCnxns=60\n\
         minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n"
    );
}

#[test]
fn conf_relative_dirs_and_runtime_ports() {
    let c = ServerConfig::default_standalone();
    let rt =
        ConfRuntime { cwd: Some(PathBuf::from("/srv")), client_port: Some(40000), secure_client_port: Some(40001), ..Default::default() };
    let s = c.to_conf_4lw(&rt);
    assert!(s.starts_with("clientPort=40000\nsecureClientPort=40001\ndataDir=/srv/./data/version-2\n"), "{s}");
    let c = with("dataLogDir=/log\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.trustStore.location=/ca.pem\n");
    let s = c.to_conf_4lw(&ConfRuntime::default());
    assert!(s.contains("clientPort=-1\nsecureClientPort=2281\n"), "{s}");
    assert!(s.contains("dataLogDir=/log/version-2\n"), "{s}");
}

#[test]
fn conf_quorum_matches_zookeeper() {
    // What ZooKeeper 3.8.0 printed for this configuration with myid 1.
    let c = parse(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zkt/q/data\nclientPort=21811\n\
         standaloneEnabled=false\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
         server.1=127.0.0.1:22888:23888\nserver.2=127.0.0.2:22888:23888:observer;2182\n",
    );
    let rt = ConfRuntime { data_dir_size: 564, data_log_size: 564, my_id: Some(1), ..Default::default() };
    assert_eq!(
        c.to_conf_4lw(&rt),
        "clientPort=21811\nsecureClientPort=-1\ndataDir=/tmp/zkt/q/data/version-2\ndataDirSize=564\n\
         dataLogDir=/tmp/zkt/q/data/version-2\ndataLogSize=564\ntickTime=2000\nmaxClientCnxns=60\n\
         minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=1\n\
         initLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=23888\nquorumPort=22888\npeerType=0\n\
         membership: \nserver.1=127.0.0.1:22888:23888:participant\n\
         server.2=127.0.0.2:22888:23888:observer;0.0.0.0:2182\nversion=0"
    );
}

#[test]
fn config_file_name_is_kept() {
    assert_eq!(ServerConfig::default_standalone().config_file, None);
    assert_eq!(with("").config_file.as_deref(), Some("zoo.cfg"));
}

#[test]
fn load_reports_main_file_errors_before_a_missing_dynamic_file() {
    let dir = std::env::temp_dir().join(format!("rzk-config-test-dyn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("zoo.cfg");
    let missing = dir.join("missing.dynamic");
    std::fs::write(&cfg_path, format!("dataDir=/d\ndynamicConfigFile={}\nserver.1=a:1:2\n", missing.display())).unwrap();
    let e = load(&cfg_path).unwrap_err();
    assert_eq!(e.key(), Some("server.1"), "{e}");
    std::fs::write(&cfg_path, format!("dataDir=/d\ndynamicConfigFile={}\n", missing.display())).unwrap();
    assert!(matches!(load(&cfg_path).unwrap_err(), ConfigError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn container_manager_settings_are_used_not_warned_about() {
    let c = with("znode.container.checkIntervalMs=1000\nznode.container.maxNeverUsedIntervalMs=5000\n");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.system_properties.get("zookeeper.znode.container.checkIntervalMs").map(String::as_str), Some("1000"));
    assert_eq!(c.system_properties.get("zookeeper.znode.container.maxNeverUsedIntervalMs").map(String::as_str), Some("5000"));
}

#[test]
fn component_settings_are_typed_and_checked() {
    let c = with("");
    assert!(c.digest_enabled);
    assert_eq!(c.container_check_interval_ms, 60_000);
    assert_eq!(c.container_max_never_used_interval_ms, 0);
    assert_eq!(c.cnx_timeout_ms, 5000);
    let c =
        with("digest.enabled=false\nznode.container.checkIntervalMs=1000\nznode.container.maxNeverUsedIntervalMs=5000\ncnxTimeout=2500\n");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(!c.digest_enabled);
    assert_eq!(c.container_check_interval_ms, 1000);
    assert_eq!(c.container_max_never_used_interval_ms, 5000);
    assert_eq!(c.cnx_timeout_ms, 2500);
    // A system property under ZooKeeper's own name wins over the zoo.cfg key.
    let mut opts = ParseOptions::default();
    opts.system_properties.insert("znode.container.checkIntervalMs".into(), "0x10".into());
    let c = ServerConfig::parse_with("dataDir=/d\nznode.container.checkIntervalMs=1000\n", &opts).unwrap();
    assert_eq!(c.container_check_interval_ms, 16);
    for (line, key) in [
        ("digest.enabled=yes\n", "digest.enabled"),
        ("znode.container.checkIntervalMs=0\n", "znode.container.checkIntervalMs"),
        ("znode.container.checkIntervalMs=soon\n", "znode.container.checkIntervalMs"),
        ("znode.container.maxNeverUsedIntervalMs=-1\n", "znode.container.maxNeverUsedIntervalMs"),
        ("cnxTimeout=-5\n", "cnxTimeout"),
    ] {
        let e = err_with(line).to_string();
        assert!(e.contains(key) && e.contains("line 2"), "{line}: {e}");
    }
    let mut opts = ParseOptions::default();
    opts.system_properties.insert("zookeeper.cnxTimeout".into(), "x".into());
    let e = ServerConfig::parse_with("dataDir=/d\n", &opts).unwrap_err().to_string();
    assert!(e.contains("zookeeper.cnxTimeout"), "{e}");
}

#[test]
fn snapshot_size_factor_is_zkdatabases() {
    assert_eq!(with("").snapshot_size_factor, crate::SizeFactor(0.33));
    let c = with("snapshotSizeFactor=-1\n");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.snapshot_size_factor, crate::SizeFactor(-1.0));
    assert_eq!(with("snapshotSizeFactor= 0.5d\n").snapshot_size_factor, crate::SizeFactor(0.5));
    // Above 1: ZKDatabase's default instead, with a warning naming the key.
    let c = with("snapshotSizeFactor=1000\n");
    assert_eq!(c.snapshot_size_factor, crate::SizeFactor(0.33));
    assert!(has_warning(&c, "snapshotSizeFactor", "above 1"), "{:?}", c.warnings);
    let mut opts = ParseOptions::default();
    opts.system_properties.insert("zookeeper.snapshotSizeFactor".into(), "0".into());
    let c = ServerConfig::parse_with("dataDir=/d\n", &opts).unwrap();
    assert_eq!(c.snapshot_size_factor, crate::SizeFactor(0.0));
    // ZooKeeper logs a bad value and uses the default; rzk refuses to start, naming it.
    let e = err_with("snapshotSizeFactor=third\n").to_string();
    assert!(e.contains("snapshotSizeFactor") && e.contains("line 2"), "{e}");
}

#[test]
fn audit_log_settings() {
    let c = with("");
    assert!(!c.audit_enable);
    assert_eq!(c.audit_log_file, std::path::PathBuf::from("./zookeeper_audit.log"));
    let c = with("audit.enable=true\nlog.dir=/var/log/zk\nauditlog.file=audit.log\n");
    assert!(c.audit_enable);
    assert_eq!(c.audit_log_file, std::path::PathBuf::from("/var/log/zk/audit.log"));
    assert!(!c.warnings.iter().any(|(k, _, _)| k == "audit.enable"), "{:?}", c.warnings);
    let e = err_with("audit.enable=yes\n");
    assert!(e.to_string().contains("audit.enable: expected true or false"), "{e}");
    let e = err_with("audit.impl.class=com.example.MyAuditLogger\n");
    assert!(e.to_string().contains("com.example.MyAuditLogger"), "{e}");
    let c = with("audit.impl.class=org.apache.zookeeper.audit.Slf4jAuditLogger\n");
    assert!(!c.ignored.iter().any(|(k, _, _)| k == "audit.impl.class"));
}

#[test]
fn connection_and_large_request_throttling_settings() {
    let c = with(
        "connection_throttle_tokens=50\nconnection_throttle_fill_time=10\nconnection_throttle_freeze_time=100\n\
         connection_throttle_drop_increase=0.1\nconnection_throttle_weight_enabled=true\n\
         connection_throttle_global_session_weight=0\nconnection_throttle_renew_session_weight=-4\n\
         largeRequestThreshold=1048576\nlargeRequestMaxBytes=4194304\n",
    );
    let t = &c.connection_throttle;
    assert_eq!((t.tokens, t.fill_time_ms, t.fill_count, t.freeze_time_ms), (50, 10, 1, 100));
    assert!((t.drop_increase - 0.1).abs() < 1e-9 && t.weight_enabled);
    // weights of 0 or less are ZooKeeper's defaults
    assert_eq!((t.global_weight, t.local_weight, t.renew_weight), (3, 1, 2));
    assert_eq!((c.large_request_threshold, c.large_request_max_bytes), (1048576, 4194304));
    assert!(err_with("connection_throttle_tokens=lots\n").to_string().contains("connection_throttle_tokens"));
    assert!(err_with("largeRequestThreshold=-2\n").to_string().contains("largeRequestThreshold"));
}

#[test]
fn request_throttling_settings() {
    let c = with(
        "request_throttle_max_requests=100\nrequest_throttle_stall_time=50\nrequest_throttle_drop_stale=false\nthrottled_op_wait_time=20\n",
    );
    assert_eq!(c.request_throttle_max_requests, 100);
    assert_eq!(c.request_throttle_stall_time_ms, 50);
    assert!(!c.request_throttle_drop_stale);
    assert_eq!(c.throttled_op_wait_time_ms, 20);
    assert!(err_with("request_throttle_max_requests=-1\n").to_string().contains("request_throttle_max_requests"));
}

#[test]
fn sasl_settings() {
    let c = with(
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         sessionRequireClientSASLAuth=true\nsuperUser=admin\nsuperUser.2=root\n\
         SASLAuthenticationProvider.superPassword=pw\nsasl.serverconfig=ZkServer\n",
    );
    assert!(c.sasl.provider);
    assert_eq!(c.sasl.server_section, "ZkServer");
    assert_eq!(c.sasl.super_users, vec!["admin".to_string(), "root".to_string()]);
    assert_eq!(c.sasl.super_password.as_deref(), Some("pw"));
    assert_eq!(c.sasl.credentials, None);
    assert!(c.enforce_auth.enabled && c.enforce_auth.sasl_required());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(!has_ignored(&c, "authProvider.1"), "{:?}", c.ignored);

    let c = with("enforce.auth.enabled=true\nenforce.auth.schemes=digest, ip\n");
    assert_eq!(c.enforce_auth.schemes, vec!["digest".to_string(), "ip".to_string()]);
    assert!(!c.enforce_auth.sasl_required());
    // Enforcement without schemes, or with a scheme no provider serves, stops start-up.
    let e = err_with("enforce.auth.enabled=true\n");
    assert_eq!(e.key(), Some("enforce.auth.enabled"), "{e}");
    let e = err_with("enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n");
    assert_eq!(e.key(), Some("enforce.auth.schemes"), "{e}");
    assert!(e.to_string().contains("SASLAuthenticationProvider"), "{e}");
    let e = err_with("enforce.auth.enabled=true\nenforce.auth.schemes=kerberos\n");
    assert!(e.to_string().contains("kerberos is not available"), "{e}");
    // The JAAS file in zoo.cfg: ZooKeeper ignores it there; rzk honours it and says so.
    let c = with("java.security.auth.login.config=/etc/jaas.conf\n");
    assert_eq!(c.sasl.jaas_file.as_deref(), Some(std::path::Path::new("/etc/jaas.conf")));
    assert!(c.warnings.iter().any(|(_, _, m)| m.contains("JVM system property")), "{:?}", c.warnings);
}

#[test]
fn jaas_file_loaded() {
    let dir = std::env::temp_dir().join(format!("rzk-jaas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jaas = dir.join("jaas.conf");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, "dataDir=/d\nclientPort=2181\n").unwrap();
    let props = |extra: &[(&str, &str)]| {
        let mut m: BTreeMap<String, String> = [("java.security.auth.login.config".to_string(), jaas.display().to_string())].into();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    };
    std::fs::write(&jaas, "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"pw\"; };\n").unwrap();
    let c = load_with(&cfg, props(&[])).unwrap();
    assert_eq!(c.sasl.credentials.unwrap()["bob"], "pw");
    // Another section name: no login, logged.
    let c = load_with(&cfg, props(&[("zookeeper.sasl.serverconfig", "Other")])).unwrap();
    assert_eq!(c.sasl.credentials, None);
    assert!(c.warnings.iter().any(|(_, _, m)| m.contains("no JAAS section named 'Other'")), "{:?}", c.warnings);
    // A Kerberos login: its principal and keytab, and how ids are named.
    std::fs::write(
        &jaas,
        "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab=\"/k\" principal=\"zookeeper/h@R\"; };\n",
    )
    .unwrap();
    let c = load_with(
        &cfg,
        props(&[("zookeeper.kerberos.removeHostFromPrincipal", "true"), ("zookeeper.kerberos.removeRealmFromPrincipal", "True")]),
    )
    .unwrap();
    assert_eq!(c.sasl.kerberos.as_ref().unwrap().principal, "zookeeper/h@R");
    assert!(c.sasl.kerberos_naming.remove_host && !c.sasl.kerberos_naming.remove_realm, "exactly \"true\", as ZooKeeper compares");
    // A Kerberos option rzk cannot honour stops start-up, naming it.
    std::fs::write(&jaas, "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };\n").unwrap();
    let e = load_with(&cfg, props(&[])).unwrap_err();
    assert!(e.to_string().contains("Krb5LoginModule") && e.to_string().contains("storeKey=true"), "{e}");
    std::fs::remove_file(&jaas).unwrap();
    let e = load_with(&cfg, props(&[])).unwrap_err();
    assert!(e.to_string().contains("cannot read the JAAS file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_log_file_settings() {
    let c = with("zookeeper.log.dir=/var/log/zk\n");
    assert_eq!(c.log_dir.as_deref(), Some(Path::new("/var/log/zk")));
    assert_eq!((c.log_file.as_str(), c.log_max_file_bytes, c.log_max_backups), ("zookeeper.log", 256 << 20, 20));
    let c = with("log.dir=/l\nlog.file=zk.log\nlog.maxfilesize=10MB\nlog.maxbackupindex=3\n");
    assert_eq!(
        (c.log_dir.as_deref(), c.log_file.as_str(), c.log_max_file_bytes, c.log_max_backups),
        (Some(Path::new("/l")), "zk.log", 10 << 20, 3)
    );
    assert_eq!(with("log.maxfilesize=512kb\n").log_max_file_bytes, 512 << 10);
    assert!(err_with("log.maxfilesize=big\n").to_string().contains("log.maxfilesize"));
    assert_eq!(with("").log_dir, None);
}

#[test]
fn admin_http_version() {
    with("admin.httpVersion=11\n");
    assert!(err_with("admin.httpVersion=2\n").to_string().contains("admin.httpVersion"));
}

#[test]
fn reconfig_files() {
    let text = "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\nserver.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183\nversion=100000002";
    let m = crate::membership_of(text).unwrap();
    assert_eq!(m.config_version, 0x100000002);
    assert_eq!(m.servers.len(), 3);
    assert_eq!(m.participants().count(), 2);
    assert_eq!(m.servers[&2].client_address.as_ref().unwrap().port, 2182);
    assert_eq!(
        crate::dynamic_config_text(text),
        "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
         server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183"
    );
    let stat = "# a comment\ntickTime=500\ndataDir=/d\nclientPort=2181\nclientPortAddress=127.0.0.1\npeerType=participant\n\
                reconfigEnabled=true\nserver.1=127.0.0.1:2888:3888\ndynamicConfigFile=/old\ntickTime=600\n";
    assert_eq!(
        crate::edit_static_config(stat, "/x/zoo.cfg.dynamic.100000002", true).unwrap(),
        "dataDir=/d\ntickTime=600\nreconfigEnabled=true\ndynamicConfigFile=/x/zoo.cfg.dynamic.100000002\n"
    );
    assert_eq!(
        crate::edit_static_config(stat, "/y", false).unwrap(),
        "dataDir=/d\ntickTime=600\nclientPort=2181\nreconfigEnabled=true\nclientPortAddress=127.0.0.1\ndynamicConfigFile=/y\n"
    );
    // What ZooKeeper 3.8 (OpenJDK 17) wrote for a test ensemble's member, rewriting its
    // zoo.cfg twice (at its first activation, then at a reconfig).
    let zk = "tickTime=500\ninitLimit=10\nsyncLimit=10\ndataDir=/d\nclientPort=21723\nclientPortAddress=127.0.0.1\n\
              admin.enableServer=false\n4lw.commands.whitelist=*\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n\
              reconfigEnabled=true\nDigestAuthenticationProvider.superDigest=super:0bX78nEegDzJM3ju0iLBEJdWzjg=\n\
              server.1=127.0.0.1:27651:30183;127.0.0.1:21723\nserver.2=127.0.0.1:26328:11122;127.0.0.1:10310\n\
              server.3=127.0.0.1:15160:10899;127.0.0.1:32388\n";
    let once = crate::edit_static_config(zk, "/d/zoo.cfg.dynamic.100000000", true).unwrap();
    assert_eq!(
        crate::edit_static_config(&once, "/d/zoo.cfg.dynamic.100000019", true).unwrap(),
        "maxSessionTimeout=60000\nadmin.enableServer=false\ndataDir=/d\n4lw.commands.whitelist=*\ninitLimit=10\ntickTime=500\n\
         syncLimit=10\nminSessionTimeout=1000\nDigestAuthenticationProvider.superDigest=super:0bX78nEegDzJM3ju0iLBEJdWzjg=\n\
         reconfigEnabled=true\ndynamicConfigFile=/d/zoo.cfg.dynamic.100000019\n"
    );
    assert!(crate::membership_of("server.1=nonsense").is_err());
}

#[test]
fn reconfig_texts() {
    let cur = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
               server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183\nversion=100000000";
    let removed = crate::reconfigured(cur, None, Some("3"), None, 0x100000005, true).unwrap();
    assert_eq!(
        removed,
        "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\nversion=100000005"
    );
    let back = crate::reconfigured(&removed, Some("server.3=127.0.0.1:2890:3890;127.0.0.1:2183"), None, None, 0x100000007, true).unwrap();
    assert_eq!(back, cur.replace("version=100000000", "version=100000007"));
    // A joiner without a client address, a bad sid, too few voters: refused.
    assert!(crate::reconfigured(cur, Some("server.4=127.0.0.1:2891:3891"), None, None, 9, true).is_err());
    assert!(crate::reconfigured(cur, None, Some("x"), None, 9, true).is_err());
    let e = crate::reconfigured(cur, None, Some("2,3"), None, 9, true).unwrap_err();
    assert_eq!(e.to_string(), "Reconfig failed - new configuration must include at least 2 followers");
    // standaloneEnabled=false: one voter is a quorum; none is refused.
    let one = crate::reconfigured(cur, None, Some("2,3"), None, 9, false).unwrap();
    assert_eq!(one, "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=9");
    let e = crate::reconfigured(&one, None, Some("1"), None, 10, false).unwrap_err();
    assert_eq!(e.to_string(), "Reconfig failed - new configuration must include at least 1 follower");
    let nm = crate::reconfigured(
        cur,
        None,
        None,
        Some("server.1=127.0.0.1:2888:3888;127.0.0.1:2181,server.2=127.0.0.1:2889:3889;127.0.0.1:2182"),
        0x10,
        true,
    )
    .unwrap();
    assert!(nm.ends_with("version=10") && nm.lines().count() == 3, "{nm}");
}

#[test]
fn observer_master_port() {
    // An observer syncs from the voters' observer masters; a follower serves them there.
    let c = parse(&format!("{THREE}server.4=zk4:2888:3888:observer\nobserverMasterPort=2191\n"));
    assert_eq!(c.observer_master_port, Some(2191));
    assert!(c.check_myid(4).is_ok());
    assert!(c.check_myid(1).is_ok());
    // With reconfigEnabled too (the observer's list follows the voters); not standalone.
    let r = parse(&format!("{THREE}server.4=zk4:2888:3888:observer\nobserverMasterPort=2191\nreconfigEnabled=true\n"));
    assert_eq!(r.observer_master_port, Some(2191));
    assert_eq!(err_with("observerMasterPort=2191\n").key(), Some("observerMasterPort"));
    // ZooKeeper's conf does not print it.
    let rt = ConfRuntime { my_id: Some(4), ..ConfRuntime::default() };
    assert!(!c.to_conf_4lw(&rt).contains("observerMaster"));
}

#[test]
fn observer_and_learner_master_settings() {
    // ZooKeeper's defaults.
    let c = with("");
    assert_eq!(
        (c.observer_reconnect_delay_ms, c.observer_election_delay_ms, c.observer_master_size_limit, c.leader_connect_delay_during_retry_ms),
        (0, 200, 32 * 1024 * 1024, 100)
    );
    let c = with(
        "observer.reconnectDelayMs=1500\nobserver.election.DelayMs=0\nobserverMaster.sizeLimit=0x100000\n\
         leaderConnectDelayDuringRetryMs=250\nlearner.asyncSending=true\nlearner.closeSocketAsync=false\n\
         leader.closeSocketAsync=true\nforceSnapshotSync=false\n",
    );
    assert_eq!(
        (c.observer_reconnect_delay_ms, c.observer_election_delay_ms, c.observer_master_size_limit, c.leader_connect_delay_during_retry_ms),
        (1500, 0, 0x100000, 250)
    );
    // Read, so no "not a setting rzk uses" warning.
    for k in ["observer.reconnectDelayMs", "observerMaster.sizeLimit", "learner.asyncSending", "forceSnapshotSync"] {
        assert!(!c.warnings.iter().any(|(key, _, _)| key == k), "{k}: {:?}", c.warnings);
    }
    // Those that choose Java threads or bound a queue rzk does not have: validated, then one log line.
    for k in ["observerMaster.sizeLimit", "learner.asyncSending", "learner.closeSocketAsync", "leader.closeSocketAsync"] {
        assert!(has_ignored(&c, k), "{k}: {:?}", c.ignored);
    }
    for k in ["observer.reconnectDelayMs", "observer.election.DelayMs", "leaderConnectDelayDuringRetryMs", "forceSnapshotSync"] {
        assert!(!has_ignored(&c, k), "{k}");
    }
    // Negative delays are no delay, as Observer's `delayValueMs > 0`.
    assert_eq!(with("observer.reconnectDelayMs=-5\n").observer_reconnect_delay_ms, 0);
    // A value Java would replace by its default is refused, naming the key.
    for bad in ["observer.reconnectDelayMs=soon\n", "observerMaster.sizeLimit=big\n", "learner.asyncSending=yes\n"] {
        let k = bad.split('=').next().unwrap();
        assert!(err_with(bad).to_string().contains(k), "{bad}");
    }
    // No switch forcing SNAP syncs in rzk.
    assert!(err_with("forceSnapshotSync=true\n").to_string().contains("forceSnapshotSync"));
    // Nor a quorum oracle: a quorum rule is refused, never dropped with a warning.
    assert!(err_with("oraclePath=/var/zk/oracle\n").to_string().contains("oraclePath"));
}
