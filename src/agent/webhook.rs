//! The trunk-alert webhook client (`watch --events --webhook URL`): one JSON POST per alert,
//! over `https://` (Slack, PagerDuty, Opsgenie and every hosted receiver) or plain `http://`
//! (a local relay).
//!
//! HTTP is hyper's (the same crate serves `/metrics`), TLS is rustls (through tokio-rustls,
//! on the `ring` provider russh already compiles). Certificates are checked against the
//! system's roots, or only against the CAs of `--webhook-ca` / `webhook_ca` (a private CA);
//! there is no way to accept any certificate: an alert channel that anyone on the path can
//! answer is one an attacker silences.
//!
//! Bounds, because a webhook is a remote party that may be dead, slow or hostile: the whole
//! POST (name lookup, connect, TLS handshake, request, answer's head) within
//! [`POST_TIME`]; the answer's head at most hyper's smallest buffer (8 KiB), its body never
//! read; one connection per POST, closed after it. How many POSTs run at once is the
//! caller's bound (`live::WEBHOOK_POSTS`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls::{self, pki_types};

/// A POST's whole life: lookup, connect, handshake, request and the answer's status.
pub const POST_TIME: Duration = Duration::from_secs(5);
/// Bytes of an answer's head read at most (hyper's smallest read buffer).
const MAX_HEAD: usize = 8192;
/// A CA file larger than this is not a CA bundle (Debian's whole bundle is ~220 KiB).
const MAX_CA_BYTES: u64 = 4 * 1024 * 1024;

/// Why a webhook was refused at start, or why one POST failed (the agent logs it and goes
/// on: an alert lost is reported, never retried into a queue that grows).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("--webhook `{url}`: not a URL: {source}")]
    NotAUrl {
        url: String,
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    #[error("--webhook `{url}`: only https:// and http:// URLs")]
    Scheme { url: String },
    #[error("--webhook `{url}`: no host")]
    NoHost { url: String },
    /// Credentials in the authority would be logged with the URL.
    #[error("--webhook `{url}`: no user or password in the URL (put a token in the path)")]
    Credentials { url: String },
    #[error("--webhook `{url}`: {source}")]
    ServerName {
        url: String,
        #[source]
        source: pki_types::InvalidDnsNameError,
    },
    #[error("--webhook-ca is for https:// webhooks; `{url}` is plain http://")]
    CaForHttp { url: String },
    /// The CA file is missing, not a regular file, or too large.
    #[error("webhook CA file {}: {source}", path.display())]
    CaRead {
        path: std::path::PathBuf,
        #[source]
        source: crate::inputs::source::FileRefusal,
    },
    #[error("webhook CA file {}: {source}", path.display())]
    CaPem {
        path: std::path::PathBuf,
        #[source]
        source: pki_types::pem::Error,
    },
    #[error("webhook CA file {}: not a CA certificate: {source}", path.display())]
    NotCa {
        path: std::path::PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("webhook CA file {}: no PEM certificate in it", path.display())]
    NoCertificate { path: std::path::PathBuf },
    #[error(
        "an https:// webhook needs root certificates: none found on this system \
         (install ca-certificates), or give the receiver's CA with --webhook-ca"
    )]
    NoRoots,
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The handshake failed (a certificate that does not chain to the roots, a wrong name).
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] hyper::http::Error),
    #[error("no answer within {secs} s")]
    Timeout { secs: u64 },
    /// The receiver answered, but not with a 2xx.
    #[error("answered `{0}`")]
    Status(hyper::StatusCode),
}

/// Where alerts go: parsed once, when the agent starts.
#[derive(Clone)]
pub struct Webhook {
    url: String,
    /// `host[:port]` as the URL wrote it: the `Host` header.
    authority: String,
    host: String,
    port: u16,
    path: String,
    /// `Some` for `https://`.
    tls: Option<(tokio_rustls::TlsConnector, pki_types::ServerName<'static>)>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// The URL's parts.
#[derive(Debug, PartialEq)]
struct Parts {
    https: bool,
    authority: String,
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Parts, WebhookError> {
    let url_ = || url.to_string();
    let uri: hyper::Uri = url.parse().map_err(|source| WebhookError::NotAUrl {
        url: url_(),
        source,
    })?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(WebhookError::Scheme { url: url_() }),
    };
    let Some(auth) = uri.authority() else {
        return Err(WebhookError::NoHost { url: url_() });
    };
    if auth.as_str().contains('@') {
        return Err(WebhookError::Credentials { url: url_() });
    }
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(WebhookError::NoHost { url: url_() });
    }
    let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    Ok(Parts {
        https,
        authority: auth.as_str().to_string(),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// Check a webhook URL without building anything (the command line's up-front check).
pub fn check_url(url: &str) -> Result<(), WebhookError> {
    parse(url).map(|_| ())
}

/// The roots an `https://` webhook's certificate must chain to: every certificate of the
/// PEM file `ca`, else the system's roots.
fn roots(ca: Option<&Path>) -> Result<rustls::RootCertStore, WebhookError> {
    use pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let path_ = || path.to_path_buf();
            let bytes =
                crate::inputs::source::read_regular(path, MAX_CA_BYTES).map_err(|source| {
                    WebhookError::CaRead {
                        path: path_(),
                        source,
                    }
                })?;
            for cert in pki_types::CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|source| WebhookError::CaPem {
                    path: path_(),
                    source,
                })?;
                store.add(cert).map_err(|source| WebhookError::NotCa {
                    path: path_(),
                    source,
                })?;
            }
            if store.is_empty() {
                return Err(WebhookError::NoCertificate { path: path_() });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(WebhookError::NoRoots);
            }
        }
    }
    Ok(store)
}

impl Webhook {
    /// Parse `url`; for `https://`, load the roots (from `ca`, else the system's) now, so a
    /// bad CA file stops the agent at start rather than silencing every alert later.
    pub fn new(url: &str, ca: Option<&Path>) -> Result<Webhook, WebhookError> {
        let Parts {
            https,
            authority,
            host,
            port,
            path,
        } = parse(url)?;
        if !https && ca.is_some() {
            return Err(WebhookError::CaForHttp {
                url: url.to_string(),
            });
        }
        let tls = if https {
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots(ca)?)
                .with_no_client_auth();
            let name = pki_types::ServerName::try_from(host.clone()).map_err(|source| {
                WebhookError::ServerName {
                    url: url.to_string(),
                    source,
                }
            })?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Webhook {
            url: url.to_string(),
            authority,
            host,
            port,
            path,
            tls,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// POST `body` as JSON; succeeds on a 2xx answer, within [`POST_TIME`].
    pub async fn post(&self, body: String) -> Result<(), WebhookError> {
        tokio::time::timeout(POST_TIME, self.exchange(body))
            .await
            .map_err(|_| WebhookError::Timeout {
                secs: POST_TIME.as_secs(),
            })?
    }

    async fn exchange(&self, body: String) -> Result<(), WebhookError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(WebhookError::Connect)?;
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(WebhookError::Tls)?;
                self.send(tls, body).await
            }
            None => self.send(tcp, body).await,
        }
    }

    /// One request on its own connection, driven here (no task outlives the POST).
    async fn send<S>(&self, io: S, body: String) -> Result<(), WebhookError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_HEAD)
            // `Content-Length:` as receivers written by hand expect it.
            .title_case_headers(true)
            .handshake::<_, Full<Bytes>>(TokioIo::new(io))
            .await?;
        let req = hyper::Request::post(self.path.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::CONNECTION, "close")
            .header(
                hyper::header::USER_AGENT,
                concat!("switchyard/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))?;
        let answer = async {
            let resp = sender.send_request(req).await?;
            // Only the status matters; the body is never read.
            let status = resp.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(WebhookError::Status(status))
            }
        };
        let mut answer = std::pin::pin!(answer);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            biased;
            r = &mut answer => r,
            // The connection ended (closed or broke): the answer, if any, is already in.
            _ = &mut conn => answer.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        let p = |u| {
            let p = parse(u).unwrap();
            (p.https, p.authority, p.host, p.port, p.path)
        };
        assert_eq!(
            p("http://127.0.0.1:9000/hook?x=1"),
            (
                false,
                "127.0.0.1:9000".into(),
                "127.0.0.1".into(),
                9000,
                "/hook?x=1".into()
            )
        );
        assert_eq!(
            p("https://alerts.example"),
            (
                true,
                "alerts.example".into(),
                "alerts.example".into(),
                443,
                "/".into()
            )
        );
        assert_eq!(
            p("http://[::1]:81/h"),
            (false, "[::1]:81".into(), "::1".into(), 81, "/h".into())
        );
        for bad in [
            "ftp://x/",
            "alerts.example/hook",
            "https://u:p@x/",
            "https:///x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("sy-webhook-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ca.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = Webhook::new("https://127.0.0.1:1/", Some(&f)).unwrap_err();
        assert!(matches!(e, WebhookError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = Webhook::new("http://127.0.0.1:1/", Some(&f)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--webhook-ca is for https:// webhooks; `http://127.0.0.1:1/` is plain http://"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
