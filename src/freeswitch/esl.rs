//! FreeSWITCH's event socket (mod_event_socket, inbound mode), the part `watch --events`
//! speaks: authenticate, run `api` commands, subscribe to events in `plain` format, read
//! them. A small parser of our own: messages are header blocks ending in an empty line,
//! followed by `Content-Length` bytes of body; an event's body is itself a header block
//! (values URL-encoded), optionally with a body of its own.

use std::collections::BTreeMap;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The largest body accepted (an `api` answer, an event): larger is a broken peer.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Events kept while waiting for a command's reply; beyond, a flooding peer's are dropped.
const MAX_QUEUED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum EslError {
    #[error("event socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("event socket closed the connection")]
    Closed,
    #[error("event socket refused the password")]
    Auth,
    #[error("event socket: unexpected answer: {0}")]
    Protocol(String),
}

/// One message: its headers and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// `%3A%3A` → `::` (event values are URL-encoded).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Hex digits read as bytes: slicing the text could split a multi-byte character
        // (`%a` then an accented letter panicked before the fuzz test below found it).
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        // `+` stays `+` (FreeSWITCH encodes a space as %20; a number keeps its `+`).
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A header block (`Name: value` lines).
pub fn parse_headers(block: &str, decode: bool) -> BTreeMap<String, String> {
    block
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| {
            (
                k.to_string(),
                if decode { url_decode(v) } else { v.to_string() },
            )
        })
        .collect()
}

pub struct Esl<S> {
    reader: BufReader<tokio::io::ReadHalf<S>>,
    writer: tokio::io::WriteHalf<S>,
    /// Events that arrived while a command waited for its reply, oldest first.
    queued: std::collections::VecDeque<Message>,
}

impl<S: AsyncRead + AsyncWrite> Esl<S> {
    /// Read the greeting and authenticate.
    pub async fn connect(stream: S, password: &str) -> Result<Esl<S>, EslError> {
        let (r, w) = tokio::io::split(stream);
        let mut esl = Esl {
            reader: BufReader::new(r),
            writer: w,
            queued: Default::default(),
        };
        let hello = esl.read().await?;
        if hello.header("Content-Type") != Some("auth/request") {
            return Err(EslError::Protocol(format!("{:?}", hello.headers)));
        }
        let reply = esl.send(&format!("auth {password}")).await?;
        match reply.header("Reply-Text") {
            Some(t) if t.starts_with("+OK") => Ok(esl),
            _ => Err(EslError::Auth),
        }
    }

    /// Read one message.
    pub async fn read(&mut self) -> Result<Message, EslError> {
        let mut block = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await?;
            if n == 0 {
                return Err(EslError::Closed);
            }
            if line == "\n" || line == "\r\n" {
                if block.is_empty() {
                    continue;
                }
                break;
            }
            block.push_str(&line);
            if block.len() > MAX_BODY {
                return Err(EslError::Protocol("header block too large".into()));
            }
        }
        let headers = parse_headers(&block, false);
        let body = match headers
            .get("Content-Length")
            .and_then(|l| l.trim().parse::<usize>().ok())
        {
            Some(n) if n > MAX_BODY => {
                return Err(EslError::Protocol(format!("a body of {n} bytes")))
            }
            Some(n) => {
                let mut buf = vec![0u8; n];
                self.reader.read_exact(&mut buf).await?;
                String::from_utf8_lossy(&buf).into_owned()
            }
            None => String::new(),
        };
        if headers.get("Content-Type").map(String::as_str) == Some("text/disconnect-notice") {
            return Err(EslError::Closed);
        }
        Ok(Message { headers, body })
    }

    /// Send a command and read its reply. Events arriving meanwhile are kept for
    /// [`Esl::event`]: an `api` call between two events loses neither.
    pub async fn send(&mut self, cmd: &str) -> Result<Message, EslError> {
        if cmd.contains('\n') {
            return Err(EslError::Protocol("a command with a line break".into()));
        }
        self.writer
            .write_all(format!("{cmd}\n\n").as_bytes())
            .await?;
        self.writer.flush().await?;
        loop {
            let m = self.read().await?;
            match m.header("Content-Type") {
                Some("command/reply") | Some("api/response") => return Ok(m),
                Some("text/event-plain") if self.queued.len() < MAX_QUEUED => {
                    self.queued.push_back(m)
                }
                _ => continue,
            }
        }
    }

    /// `api CMD`: the answer's text.
    pub async fn api(&mut self, cmd: &str) -> Result<String, EslError> {
        Ok(self.send(&format!("api {cmd}")).await?.body)
    }

    /// The next event, as its (decoded) headers and body.
    pub async fn event(&mut self) -> Result<Message, EslError> {
        loop {
            let m = match self.queued.pop_front() {
                Some(m) => m,
                None => self.read().await?,
            };
            if m.header("Content-Type") != Some("text/event-plain") {
                continue;
            }
            let (head, body) = match m.body.split_once("\n\n") {
                Some((h, b)) => (h.to_string(), b.to_string()),
                None => (m.body.clone(), String::new()),
            };
            return Ok(Message {
                headers: parse_headers(&head, true),
                body,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A conversation as mod_event_socket has it (recorded shapes), through an in-memory pipe.
    #[tokio::test]
    async fn authenticates_answers_and_reads_gateway_events() {
        let (client, mut server) = tokio::io::duplex(4096);
        let peer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let mut buf = vec![0u8; 1024];
            server
                .write_all(b"Content-Type: auth/request\n\n")
                .await
                .unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"auth ClueCon\n\n");
            server
                .write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
                .await
                .unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"api status\n\n");
            server
                .write_all(b"Content-Type: api/response\nContent-Length: 6\n\nUP 0d\n")
                .await
                .unwrap();
            let body = "Event-Name: CUSTOM\nEvent-Subclass: sofia%3A%3Agateway_state\nGateway: wavix\nState: FAIL_WAIT\nPing-Status: DOWN\n\n";
            server
                .write_all(
                    format!(
                        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
            server
                .write_all(b"Content-Type: text/disconnect-notice\nContent-Length: 3\n\nbye")
                .await
                .unwrap();
        });
        let mut esl = Esl::connect(client, "ClueCon").await.unwrap();
        assert_eq!(esl.api("status").await.unwrap(), "UP 0d\n");
        let e = esl.event().await.unwrap();
        assert_eq!(e.header("Event-Subclass"), Some("sofia::gateway_state"));
        assert_eq!(e.header("Gateway"), Some("wavix"));
        assert_eq!(e.header("State"), Some("FAIL_WAIT"));
        assert!(matches!(esl.event().await, Err(EslError::Closed)));
        peer.await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_password_is_an_error() {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            server
                .write_all(b"Content-Type: auth/request\n\n")
                .await
                .unwrap();
            let mut buf = [0u8; 64];
            let _ = server.read(&mut buf).await;
            server
                .write_all(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
                .await
                .unwrap();
        });
        assert!(matches!(
            Esl::connect(client, "x").await,
            Err(EslError::Auth)
        ));
    }

    /// A small fuzzer (no nightly toolchain here for cargo-fuzz): random bytes and mutated
    /// valid conversations, fed to the parser as a peer would send them. Nothing may panic,
    /// hang or grow without bound; every stream ends in an error or a clean close.
    #[test]
    fn fuzzed_peers_never_panic_or_hang() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let valid: &[u8] = b"Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\nContent-Type: api/response\nContent-Length: 5\n\nUP 0d\nContent-Length: 95\nContent-Type: text/event-plain\n\nEvent-Name: CUSTOM\nEvent-Subclass: sofia%3A%3Agateway_state\nGateway: wavix\nState: FAIL_WAIT\n\n";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..3000 {
            let mut data: Vec<u8> = if case % 3 == 0 {
                (0..next() % 300).map(|_| next() as u8).collect()
            } else {
                valid.to_vec()
            };
            if case % 3 != 0 {
                for _ in 0..1 + next() % 6 {
                    let at = (next() as usize) % data.len();
                    match next() % 4 {
                        0 => data[at] = next() as u8,
                        1 => {
                            data.remove(at);
                        }
                        2 => data.insert(at, [b'\n', b':', b'%', 0xC3][next() as usize % 4]),
                        _ => data.truncate(at),
                    }
                    if data.is_empty() {
                        break;
                    }
                }
            }
            let _ = url_decode(&String::from_utf8_lossy(&data));
            rt.block_on(async {
                let (client, mut server) = tokio::io::duplex(64 * 1024);
                server.write_all(&data).await.unwrap();
                drop(server);
                let (r, w) = tokio::io::split(client);
                let mut esl = Esl {
                    reader: BufReader::new(r),
                    writer: w,
                    queued: Default::default(),
                };
                let run = async {
                    for _ in 0..100 {
                        if esl.event().await.is_err() {
                            return;
                        }
                    }
                    panic!("case {case}: more events than bytes");
                };
                tokio::time::timeout(std::time::Duration::from_secs(5), run)
                    .await
                    .unwrap_or_else(|_| panic!("case {case} hangs: {data:?}"));
            });
        }
    }

    #[test]
    fn decodes_values() {
        assert_eq!(
            url_decode("sofia%3A%3Agateway_state"),
            "sofia::gateway_state"
        );
        assert_eq!(url_decode("a%2"), "a%2");
        assert_eq!(url_decode("%zz"), "%zz");
        assert_eq!(url_decode("%2B1646 x"), "+1646 x");
        assert_eq!(url_decode("+1646"), "+1646");
        assert_eq!(url_decode("%a\u{e9}"), "%a\u{e9}");
    }
}
