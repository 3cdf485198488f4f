//! TLS: the URL's `sslmode` and certificate files checked before connecting, and a failed
//! handshake told apart from an unreachable server. A certificate the client does not trust,
//! or a server without TLS under `sslmode=require`, fails the same way on every retry: it is
//! a configuration error ([`StoreError::Config`]), reported at once, never retried as an
//! outage.

use std::path::Path;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::store::StoreError;

/// libpq's modes, as sqlx accepts them (`allow` connects without TLS, as sqlx implements it).
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// URL parameters (sqlx's spellings) naming a certificate or key file.
const FILE_PARAMS: [(&str, &str); 7] = [
    ("sslrootcert", "sslrootcert"),
    ("ssl-root-cert", "sslrootcert"),
    ("ssl-ca", "sslrootcert"),
    ("sslcert", "sslcert"),
    ("ssl-cert", "sslcert"),
    ("sslkey", "sslkey"),
    ("ssl-key", "sslkey"),
];

/// Checks the URL's `sslmode` and that the certificate files it names can be read, so that
/// a typo is named here rather than reported as a failed connection.
pub(super) fn check_url(url: &str) -> Result<(), StoreError> {
    // sqlx parses the URL right after this; a URL it rejects gets its message there.
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    for (key, value) in parsed.query_pairs() {
        let key = key.to_ascii_lowercase();
        if key == "sslmode" || key == "ssl-mode" {
            if !SSL_MODES.contains(&value.to_ascii_lowercase().as_str()) {
                return Err(StoreError::Config(format!(
                    "sslmode '{value}' in the PostgreSQL URL is not a TLS mode: use disable, allow, prefer, require, verify-ca or verify-full"
                )));
            }
        } else if let Some((_, name)) = FILE_PARAMS.iter().find(|(k, _)| *k == key) {
            check_file(name, &value)?;
        }
    }
    Ok(())
}

fn check_file(param: &str, value: &str) -> Result<(), StoreError> {
    // sqlx takes a value that is PEM text itself as the certificate.
    let text = value.trim();
    if text.starts_with("-----BEGIN") && text.ends_with("-----") {
        return Ok(());
    }
    match std::fs::metadata(Path::new(value)) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(StoreError::Config(format!(
            "{param} '{value}' in the PostgreSQL URL is not a file"
        ))),
        Err(e) => Err(StoreError::Config(format!(
            "{param} file '{value}' in the PostgreSQL URL cannot be read: {e}"
        ))),
    }
}

/// The mode as written in a URL.
pub(super) fn mode_name(options: &PgConnectOptions) -> &'static str {
    match options.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// The error of a failed first connection: a TLS failure as [`StoreError::Config`] naming
/// the mode and what to change; anything else as an unreachable server.
pub(super) fn connect_failure(
    target: &str,
    options: &PgConnectOptions,
    e: sqlx::Error,
) -> StoreError {
    let Some((failure, detail)) = tls_failure(&e) else {
        return super::config::connect_error(target, e);
    };
    let hint = match (failure, options.get_ssl_mode()) {
        (Failure::WrongName, _) => {
            "; connect with a host name the certificate names, or use sslmode=verify-ca"
        }
        (Failure::Untrusted, _) => {
            "; give the CA that signed the server's certificate with sslrootcert=<file>, or use sslmode=require to encrypt without verifying the certificate"
        }
        (Failure::NoServerTls, _) => {
            "; enable ssl on the server, or use sslmode=prefer or disable"
        }
        (Failure::Other, _) => "",
    };
    // rustls before 0.23.24 names the name error without the name.
    let detail = match failure {
        Failure::WrongName => format!(
            "the server's certificate is not valid for name \"{}\" ({detail})",
            options.get_host()
        ),
        _ => detail,
    };
    StoreError::Config(format!(
        "TLS/certificate failure connecting to PostgreSQL at {target} with sslmode={}: {detail}{hint}",
        mode_name(options)
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The certificate does not chain to a trusted root (or is expired, revoked, ...).
    Untrusted,
    /// The certificate is valid but for other names.
    WrongName,
    /// The server answered the TLS request with no.
    NoServerTls,
    Other,
}

/// What went wrong, when `e` is a TLS failure: sqlx reports the handshake's certificate
/// errors as I/O errors wrapping rustls's, and its own TLS errors as `Error::Tls`.
fn tls_failure(e: &sqlx::Error) -> Option<(Failure, String)> {
    match e {
        sqlx::Error::Tls(inner) => {
            let detail = inner.to_string();
            // sqlx's own wording under require/verify-*: the only way to recognise it.
            let failure = if detail.contains("does not support TLS") {
                Failure::NoServerTls
            } else {
                Failure::Other
            };
            Some((failure, detail))
        }
        sqlx::Error::Io(io) => {
            let tls = io.get_ref()?.downcast_ref::<rustls::Error>()?;
            let failure = match tls {
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName) => {
                    Failure::WrongName
                }
                rustls::Error::InvalidCertificate(_) => Failure::Untrusted,
                _ => Failure::Other,
            };
            Some((failure, tls.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_sslmode_is_named() {
        let e = check_url("postgres://u@h/db?sslmode=verify").unwrap_err();
        assert!(
            matches!(&e, StoreError::Config(m) if m.contains("sslmode 'verify'")),
            "{e}"
        );
        assert!(check_url("postgres://u@h/db?sslmode=Verify-Full").is_ok());
        assert!(check_url("postgres://u@h/db?ssl-mode=require").is_ok());
    }

    #[test]
    fn a_missing_certificate_file_is_named() {
        let e = check_url("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nowhere/ca.pem")
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Config(m) if m.contains("sslrootcert file '/nowhere/ca.pem'")),
            "{e}"
        );
        let e = check_url("postgres://u@h/db?sslkey=%2Fnowhere%2Fk").unwrap_err();
        assert!(
            matches!(&e, StoreError::Config(m) if m.contains("sslkey file '/nowhere/k'")),
            "{e}"
        );
        let e = check_url("postgres://u@h/db?sslrootcert=/tmp").unwrap_err();
        assert!(
            matches!(&e, StoreError::Config(m) if m.contains("is not a file")),
            "{e}"
        );
    }

    #[test]
    fn tls_errors_are_told_from_io_errors() {
        let cert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(
            tls_failure(&sqlx::Error::Io(cert)).map(|(f, _)| f),
            Some(Failure::Untrusted)
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(tls_failure(&sqlx::Error::Io(refused)).is_none());
        let options: PgConnectOptions = "postgres://u@h/db?sslmode=verify-full".parse().unwrap();
        let e = connect_failure(
            "h:5432/db as u",
            &options,
            sqlx::Error::Tls("server does not support TLS".into()),
        );
        assert!(
            matches!(&e, StoreError::Config(m) if m.contains("sslmode=verify-full") && m.contains("enable ssl on the server")),
            "{e}"
        );
    }
}
