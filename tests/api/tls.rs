//! TLS to Redis (`rediss://`): a real redis-server with a TLS port, certificates made by
//! the test (a CA, the server's certificate, a client certificate), and the app trusting
//! that CA and presenting the client certificate, as Redis requires by default
//! (`tls-auth-clients yes`).

use std::path::{Path, PathBuf};

use crate::helpers::*;
use leasehold::auth::Auth;
use leasehold::store::{ClientTlsConfig, ConnectionMode, TlsCertificates};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
pub struct Certificates {
    pub dir: PathBuf,
}

impl Certificates {
    pub fn make() -> Certificates {
        let dir = std::env::temp_dir().join(format!("leasehold-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca = authority("Leasehold test CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        for (name, san) in [("server", "127.0.0.1"), ("client", "leasehold")] {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(vec![san.to_owned()]).expect("params");
            params.distinguished_name.push(DnType::CommonName, san);
            let cert = params.signed_by(&key, &ca).expect("signed");
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
        }
        Certificates { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).expect("read")
    }

    /// What the app is given: this CA, and the client certificate if `client`.
    pub fn for_app(&self, client: bool) -> TlsCertificates {
        TlsCertificates {
            client_tls: client.then(|| ClientTlsConfig {
                client_cert: self.read("client.pem"),
                client_key: self.read("client.key"),
            }),
            root_cert: Some(self.read("ca.pem")),
        }
    }

    /// The redis-server flags for a TLS port with the server certificate, accepting
    /// clients with a certificate of this CA.
    pub fn redis_flags(&self, tls_port: u16) -> Vec<String> {
        let path = |file: &str| self.path(file).to_str().expect("utf-8").to_owned();
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path("server.pem"),
            "--tls-key-file".into(),
            path("server.key"),
            "--tls-ca-cert-file".into(),
            path("ca.pem"),
        ]
    }
}

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A redis-server with ACL users on and a TLS port beside its plain one (the tests' own
/// looks inside use the plain one), and the `rediss://` URL of the leasehold user.
pub fn tls_redis(certificates: &Certificates) -> (RedisProcess, String) {
    let tls_port = free_port();
    let flags = certificates.redis_flags(tls_port);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let redis = RedisProcess::start_locked(&flags);
    let url = redis.app_url_on("rediss", tls_port);
    (redis, url)
}

/// How many clients are connected to `port` (a server's TLS or plain port).
fn clients_on(redis: &RedisProcess, port: u16) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.connection())
        .expect("CLIENT LIST");
    list.lines()
        .filter(|line| line.contains(&format!(" laddr=127.0.0.1:{port} ")))
        .count()
}

#[tokio::test]
async fn the_app_works_over_tls_with_its_ca_and_client_certificate() {
    let certificates = Certificates::make();
    let (redis, url) = tls_redis(&certificates);
    let tls_port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    for connections in [ConnectionMode::Shared, ConnectionMode::Pooled] {
        let app = spawn_app_with(Options {
            redis_url: Some(url.clone()),
            tls: Some(certificates.for_app(true)),
            connections: Some(connections),
            ..Options::default()
        })
        .await;
        crate::acl::every_kind_of_call(&app).await;
    }
    assert!(
        clients_on(&redis, tls_port) > 0,
        "the app is connected to the TLS port"
    );
}

/// Builds an app against `url` with `tls`, expecting it to refuse to start.
async fn refused(url: &str, tls: Option<TlsCertificates>) -> String {
    let (settings, _) = settings_for(
        Options {
            redis_url: Some(url.to_owned()),
            redis_timeout_ms: Some(2000),
            tls,
            ..Options::default()
        },
        Auth::anonymous(),
    );
    match leasehold::app::build(&settings).await {
        Ok(_) => panic!("the app started against {url}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn tls_refuses_an_unknown_server_and_redis_refuses_a_client_without_a_certificate() {
    let certificates = Certificates::make();
    let (_redis, url) = tls_redis(&certificates);

    // The system's roots do not know the test CA, nor does another CA.
    let untrusted = refused(&url, None).await;
    assert!(untrusted.contains("cannot use Redis"), "{untrusted}");
    let strangers = Certificates::make();
    let other_ca = refused(&url, Some(strangers.for_app(true))).await;
    assert!(other_ca.contains("cannot use Redis"), "{other_ca}");
    // The right CA, but no client certificate: Redis hangs up.
    let anonymous = refused(&url, Some(certificates.for_app(false))).await;
    assert!(anonymous.contains("cannot use Redis"), "{anonymous}");
    // No message carries the password of the URL.
    let password = url
        .split("leasehold:")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .expect("password in the URL");
    for message in [untrusted, other_ca, anonymous] {
        assert!(!message.contains(password), "{message}");
    }
}

/// For `processes`: `serve`'s TLS flags with these files.
pub fn serve_flags(certificates: &Certificates) -> Vec<String> {
    let path = |file: &str| -> String {
        let path: &Path = &certificates.path(file);
        path.to_str().expect("utf-8").to_owned()
    };
    vec![
        "--redis-ca-cert".into(),
        path("ca.pem"),
        "--redis-client-cert".into(),
        path("client.pem"),
        "--redis-client-key".into(),
        path("client.key"),
    ]
}
