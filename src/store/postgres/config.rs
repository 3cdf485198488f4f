//! Naming: URLs, schema names, and the identifiers derived from a schema (the NOTIFY
//! channel, `application_name`).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::store::{Result, StoreError};

/// PostgreSQL's identifier limit (NAMEDATALEN - 1), for schemas, channels and
/// `application_name`.
const MAX_IDENTIFIER: usize = 63;

/// Checks a schema name: 1 to 63 ASCII letters, digits or underscores, not `pg_*`.
pub fn validate_schema(schema: &str) -> Result<String> {
    if schema.is_empty()
        || schema.len() > MAX_IDENTIFIER
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StoreError::Config(format!(
            "schema name '{schema}' is invalid: use 1 to {MAX_IDENTIFIER} ASCII letters, digits or underscores"
        )));
    }
    if schema.to_ascii_lowercase().starts_with("pg_") {
        return Err(StoreError::Config(format!(
            "schema name '{schema}' is reserved: names starting with pg_ belong to PostgreSQL"
        )));
    }
    Ok(schema.to_owned())
}

/// The URL with its password masked, for messages: the one in `user:password@` and a
/// `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let masked = redact_userinfo(url);
    match masked.find('?') {
        Some(q) => {
            let (head, query) = masked.split_at(q + 1);
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{head}{}", params.join("&"))
        }
        None => masked,
    }
}

fn redact_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['/', '?'])
        .map(|i| start + i)
        .unwrap_or(url.len());
    let authority = &url[start..end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..start],
                &authority[..colon],
                &url[start + at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `postgres://` or `postgresql://` URLs only. TLS comes from the URL as in libpq
/// (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`; `prefer` when absent, or `PGSSLMODE`).
pub(super) fn parse_url(url: &str) -> Result<PgConnectOptions> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(StoreError::Config("the PostgreSQL URL is empty".into()));
    }
    if !(trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")) {
        return Err(StoreError::Config(format!(
            "'{}' is not a PostgreSQL URL (expected postgres://user:password@host:port/database)",
            redact_url(trimmed)
        )));
    }
    super::tls::check_url(trimmed)?;
    let options = PgConnectOptions::from_str(trimmed).map_err(|e| {
        StoreError::Config(format!(
            "invalid PostgreSQL URL '{}': {e}",
            redact_url(trimmed)
        ))
    })?;
    // An '@' outside the authority (`postgres:///user:password@host/db`) puts the password
    // into the database or user name, where no message would know to hide it.
    let misplaced = |name: Option<&str>| name.is_some_and(|n| n.contains('@'));
    if misplaced(options.get_database()) || misplaced(Some(options.get_username())) {
        return Err(StoreError::Config(
            "the PostgreSQL URL has an '@' outside its user:password@host part (a password there would be taken for a database or user name); write postgres://user:password@host:port/database".into(),
        ));
    }
    Ok(options)
}

pub(super) fn describe_target(o: &PgConnectOptions) -> String {
    let place = match o.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    };
    format!(
        "{place}/{} as {}",
        o.get_database().unwrap_or(o.get_username()),
        o.get_username()
    )
}

fn truncate(mut s: String, max: usize) -> String {
    // Identifiers here are ASCII: byte and char boundaries agree.
    s.truncate(max);
    s
}

/// `application_name` of every connection: lets operators (and tests) find a store's
/// backends in `pg_stat_activity`.
pub fn application_name(schema: &str) -> String {
    truncate(format!("reprise:{schema}"), MAX_IDENTIFIER)
}

/// The NOTIFY channel of a schema: `reprise_<schema>`, hashed when that is too long.
pub fn channel_name(schema: &str) -> String {
    let channel = format!("reprise_{schema}");
    if channel.len() <= MAX_IDENTIFIER {
        return channel;
    }
    let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, schema.as_bytes())
        .simple()
        .to_string();
    format!("reprise_{}_{}", &schema[..38], &hash[..16])
}

pub(super) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(super) fn connect_error(target: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot connect to PostgreSQL at {target}: {e}"))
}
