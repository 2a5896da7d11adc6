//! A throwaway private CA and a server certificate, for the brokers' TLS tests.

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
pub fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&server_key, &ca)
        .expect("server cert");
    let (ca_file, cert_file, key_file) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&ca_file, ca.pem()).expect("write ca");
    std::fs::write(&cert_file, server.pem()).expect("write cert");
    std::fs::write(&key_file, server_key.serialize_pem()).expect("write key");
    (ca_file, cert_file, key_file)
}
