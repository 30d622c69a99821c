//! FreeSWITCH's event socket (mod_event_socket, inbound mode), the part `watch --events`
//! speaks: authenticate, run `api` commands, subscribe to events in `plain` format, read
//! them. A small parser of our own: messages are header blocks ending in an empty line,
//! followed by `Content-Length` bytes of body; an event's body is itself a header block
//! (values URL-encoded), optionally with a body of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

// Every read from a PBX is bounded while it is read, not after: the PBX's `freeswitch` user
// decides what its event socket says. A peer that breaks a bound gets [`EslError::Limit`]
// and the caller drops the connection (the stream is then mid-message, unusable).

/// The longest header line. FreeSWITCH's own (`Content-Type`, `Content-Length`,
/// `Reply-Text`, `Job-UUID`) are under 200 bytes; an event's long headers travel in its
/// body, not here.
pub const MAX_LINE: usize = 8 * 1024;
/// The read buffer of a connection: a header line or an event is a few hundred bytes, and
/// `watch --events` holds one connection per PBX for days (tokio's default, 8 KiB, was
/// 16 MB at 2,000 PBXes). Longer lines and bodies are read through it in pieces.
const READ_BUFFER: usize = 2 * 1024;
/// A message's header block, all lines together.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// The largest body accepted (an `api` answer, an event): a `sofia xmlstatus` of a whole
/// profile with hundreds of gateways is well under 1 MiB; larger is a broken peer.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Events kept while waiting for a command's reply, in messages and in bytes: a PBX that
/// sends more before it answers is flooding, and is disconnected rather than buffered.
pub const MAX_QUEUED: usize = 10_000;
pub const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// A message, from its first byte to its last: mod_event_socket writes each in one go, so
/// a message that trickles for this long is a peer holding the controller's memory.
pub const MESSAGE_TIME: Duration = Duration::from_secs(10);
/// A command's reply (`reloadxml` on a large tree takes a few seconds).
pub const REPLY_TIME: Duration = Duration::from_secs(30);

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
    /// The peer broke one of the bounds above (bytes or time).
    #[error("event socket broke a limit: {0}")]
    Limit(String),
}

/// One message: its headers and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// What a queued message holds in memory, headers included: an event with no body can still
/// carry a 64 KiB header block, and 10,000 of them must not pass for nothing.
fn queued_size(m: &Message) -> usize {
    m.body.len()
        + m.headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
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

/// What [`Esl::incoming`] read.
#[derive(Debug)]
pub enum Incoming {
    /// An event, its headers decoded.
    Event(Message),
    /// A log line: `Log-Level` and the others as headers, the text as body.
    Log(Message),
}

pub struct Esl<S> {
    reader: BufReader<tokio::io::ReadHalf<S>>,
    writer: tokio::io::WriteHalf<S>,
    /// Events that arrived while a command waited for its reply, oldest first.
    queued: std::collections::VecDeque<Message>,
    /// Their bodies' bytes.
    queued_bytes: usize,
}

impl<S: AsyncRead + AsyncWrite> Esl<S> {
    /// Read the greeting and authenticate.
    pub async fn connect(stream: S, password: &str) -> Result<Esl<S>, EslError> {
        let (r, w) = tokio::io::split(stream);
        let mut esl = Esl {
            reader: BufReader::with_capacity(READ_BUFFER, r),
            writer: w,
            queued: Default::default(),
            queued_bytes: 0,
        };
        // A peer that never greets is a limit too: the caller's other PBXes wait on nothing.
        let hello = tokio::time::timeout(REPLY_TIME, esl.read())
            .await
            .unwrap_or_else(|_| Err(EslError::Limit("no greeting".into())))?;
        if hello.header("Content-Type") != Some("auth/request") {
            return Err(EslError::Protocol(format!("{:?}", hello.headers)));
        }
        let reply = esl.send(&format!("auth {password}")).await?;
        match reply.header("Reply-Text") {
            Some(t) if t.starts_with("+OK") => Ok(esl),
            _ => Err(EslError::Auth),
        }
    }

    /// Read one message. Waiting for its first byte has no limit (events come when
    /// something changes); from there, the whole message within [`MESSAGE_TIME`].
    pub async fn read(&mut self) -> Result<Message, EslError> {
        if self.reader.fill_buf().await?.is_empty() {
            return Err(EslError::Closed);
        }
        tokio::time::timeout(MESSAGE_TIME, self.read_message())
            .await
            .unwrap_or_else(|_| {
                Err(EslError::Limit(format!(
                    "no complete message within {} s",
                    MESSAGE_TIME.as_secs()
                )))
            })
    }

    /// One line, at most [`MAX_LINE`] bytes, ending in `\n`.
    async fn line(&mut self) -> Result<Vec<u8>, EslError> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if line.ends_with(b"\n") {
            Ok(line)
        } else if n == MAX_LINE {
            Err(EslError::Limit(format!(
                "a header line longer than {} KiB",
                MAX_LINE / 1024
            )))
        } else {
            Err(EslError::Closed)
        }
    }

    async fn read_message(&mut self) -> Result<Message, EslError> {
        let mut block = String::new();
        loop {
            let line = self.line().await?;
            if line == b"\n" || line == b"\r\n" {
                if block.is_empty() {
                    continue;
                }
                break;
            }
            block.push_str(&String::from_utf8_lossy(&line));
            if block.len() > MAX_HEADER_BLOCK {
                return Err(EslError::Limit(format!(
                    "a header block larger than {} KiB",
                    MAX_HEADER_BLOCK / 1024
                )));
            }
        }
        let headers = parse_headers(&block, false);
        let body = match headers
            .get("Content-Length")
            .and_then(|l| l.trim().parse::<usize>().ok())
        {
            Some(n) if n > MAX_BODY => {
                return Err(EslError::Limit(format!(
                    "a body of {n} bytes (at most {} MiB)",
                    MAX_BODY / 1024 / 1024
                )))
            }
            Some(n) => {
                // Grown as the bytes arrive, not allocated at the size the peer announced.
                let mut buf = Vec::new();
                (&mut self.reader)
                    .take(n as u64)
                    .read_to_end(&mut buf)
                    .await?;
                if buf.len() < n {
                    return Err(EslError::Closed);
                }
                String::from_utf8_lossy(&buf).into_owned()
            }
            None => String::new(),
        };
        if headers.get("Content-Type").map(String::as_str) == Some("text/disconnect-notice") {
            return Err(EslError::Closed);
        }
        Ok(Message { headers, body })
    }

    /// Send a command and read its reply, within [`REPLY_TIME`]. Events arriving meanwhile
    /// are kept for [`Esl::event`] (an `api` call between two events loses neither), up to
    /// [`MAX_QUEUED`] messages and [`MAX_QUEUED_BYTES`]: more is a flood, and an error.
    pub async fn send(&mut self, cmd: &str) -> Result<Message, EslError> {
        if cmd.contains('\n') {
            return Err(EslError::Protocol("a command with a line break".into()));
        }
        tokio::time::timeout(REPLY_TIME, self.exchange(cmd))
            .await
            .unwrap_or_else(|_| {
                Err(EslError::Limit(format!(
                    "no reply within {} s",
                    REPLY_TIME.as_secs()
                )))
            })
    }

    async fn exchange(&mut self, cmd: &str) -> Result<Message, EslError> {
        self.writer
            .write_all(format!("{cmd}\n\n").as_bytes())
            .await?;
        self.writer.flush().await?;
        loop {
            let m = self.read().await?;
            match m.header("Content-Type") {
                Some("command/reply") | Some("api/response") => return Ok(m),
                // A log line is kept like an event: a connection that asked for the log
                // (`log N`) reads both, in order ([`Esl::incoming`]).
                Some("text/event-plain") | Some("log/data") => {
                    // Headers count too: an event with no body can carry a 64 KiB block.
                    let size = queued_size(&m);
                    if self.queued.len() >= MAX_QUEUED
                        || self.queued_bytes + size > MAX_QUEUED_BYTES
                    {
                        // The command is not named: `auth` carries the password.
                        return Err(EslError::Limit(format!(
                            "more than {} MiB or {MAX_QUEUED} events before a command's reply",
                            MAX_QUEUED_BYTES / 1024 / 1024
                        )));
                    }
                    self.queued_bytes += size;
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

    /// Wait until an event is queued or bytes have arrived, consuming nothing: safe to race
    /// against a timer (an [`Esl::event`] cut off mid-message would leave the stream
    /// unusable), then read with [`Esl::event`].
    pub async fn readable(&mut self) -> Result<(), EslError> {
        if self.queued.is_empty() && self.reader.fill_buf().await?.is_empty() {
            return Err(EslError::Closed);
        }
        Ok(())
    }

    /// The next event, as its (decoded) headers and body.
    pub async fn event(&mut self) -> Result<Message, EslError> {
        loop {
            if let Incoming::Event(e) = self.incoming().await? {
                return Ok(e);
            }
        }
    }

    /// The next event or log line (`log/data`: only on a connection that asked for the
    /// log with `log N`), in the order FreeSWITCH sent them.
    pub async fn incoming(&mut self) -> Result<Incoming, EslError> {
        loop {
            let m = match self.queued.pop_front() {
                Some(m) => {
                    self.queued_bytes -= queued_size(&m);
                    m
                }
                None => self.read().await?,
            };
            match m.header("Content-Type") {
                Some("log/data") => return Ok(Incoming::Log(m)),
                Some("text/event-plain") => {}
                _ => continue,
            }
            let (head, body) = match m.body.split_once("\n\n") {
                Some((h, b)) => (h.to_string(), b.to_string()),
                None => (m.body.clone(), String::new()),
            };
            return Ok(Incoming::Event(Message {
                headers: parse_headers(&head, true),
                body,
            }));
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

    /// On a connection that asked for the log, a log line sent before a command's reply is
    /// kept, in order with the events, for [`Esl::incoming`]; [`Esl::event`] skips it.
    #[tokio::test]
    async fn log_lines_are_kept_in_order_with_events() {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let mut buf = vec![0u8; 1024];
            server
                .write_all(b"Content-Type: auth/request\n\n")
                .await
                .unwrap();
            let _ = server.read(&mut buf).await.unwrap();
            server
                .write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
                .await
                .unwrap();
            let _ = server.read(&mut buf).await.unwrap();
            let log = "recv 3 bytes from udp/[127.0.0.9]:5060 at 10:00:00.000000:\n";
            let event = "Event-Name: CHANNEL_CREATE\nUnique-ID: u1\n\n";
            let text = format!(
                "Content-Type: log/data\nContent-Length: {}\nLog-Level: 0\n\n{log}Content-Length: {}\nContent-Type: text/event-plain\n\n{event}Content-Type: api/response\nContent-Length: 3\n\n+OK",
                log.len(),
                event.len()
            );
            server.write_all(text.as_bytes()).await.unwrap();
            server
                .write_all(format!("Content-Type: log/data\nContent-Length: {}\n\n{log}Content-Length: {}\nContent-Type: text/event-plain\n\n{event}", log.len(), event.len()).as_bytes())
                .await
                .unwrap();
        });
        let mut esl = Esl::connect(client, "ClueCon").await.unwrap();
        assert_eq!(
            esl.api("sofia profile external siptrace on").await.unwrap(),
            "+OK"
        );
        assert!(
            matches!(esl.incoming().await.unwrap(), Incoming::Log(m) if m.body.starts_with("recv 3 bytes"))
        );
        assert!(
            matches!(esl.incoming().await.unwrap(), Incoming::Event(e) if e.header("Unique-ID") == Some("u1"))
        );
        // `event` (what `watch --events` reads) passes over the log line.
        assert_eq!(esl.event().await.unwrap().header("Unique-ID"), Some("u1"));
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
                    queued_bytes: 0,
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

    fn over(server_side: tokio::io::DuplexStream) -> Esl<tokio::io::DuplexStream> {
        let (r, w) = tokio::io::split(server_side);
        Esl {
            reader: BufReader::new(r),
            writer: w,
            queued: Default::default(),
            queued_bytes: 0,
        }
    }

    /// A header line that never ends: refused after [`MAX_LINE`] bytes, while the peer is
    /// still sending (the old reader grew a `String` to whatever came, 1.5 GiB in the report).
    #[tokio::test]
    async fn a_header_line_that_never_ends_is_refused_at_the_line_limit() {
        let (client, mut server) = tokio::io::duplex(16 * 1024);
        let sent = tokio::spawn(async move {
            let chunk = vec![b'X'; 4096];
            let mut sent = 0usize;
            while server.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
                if sent > 64 * 1024 * 1024 {
                    break;
                }
            }
            sent
        });
        let mut esl = over(client);
        let e = esl.read().await.unwrap_err();
        assert!(
            matches!(&e, EslError::Limit(m) if m.contains("header line longer than 8 KiB")),
            "{e}"
        );
        drop(esl);
        // The peer was cut off near the limit, not read to its end.
        assert!(sent.await.unwrap() < 64 * 1024, "the reader kept reading");
    }

    /// Events queued before a command's reply are bounded in bytes: 3 events of 2 MiB (each
    /// under the body limit) before the answer to `event plain` are a flood.
    #[tokio::test]
    async fn events_flooding_before_a_reply_are_bounded_in_bytes() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let body =
                "Event-Name: CUSTOM\nX: ".to_string() + &"y".repeat(2 * 1024 * 1024) + "\n\n";
            for _ in 0..3 {
                let m = format!(
                    "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
                    body.len()
                );
                if server.write_all(m.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = server
                .write_all(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
                .await;
            let mut sink = vec![0u8; 1024];
            while server.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        let mut esl = over(client);
        let e = esl
            .send("event plain CUSTOM sofia::gateway_state")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, EslError::Limit(m) if m.contains("4 MiB")),
            "{e}"
        );
    }

    /// Bounded in time: a message that starts and never ends, a command never answered, a
    /// peer that never greets (virtual time: the test does not wait).
    #[tokio::test(start_paused = true)]
    async fn a_message_that_never_ends_or_a_reply_that_never_comes_is_a_limit() {
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"Content-Type: api/resp").await.unwrap();
        let e = over(client).read().await.unwrap_err();
        assert!(
            matches!(&e, EslError::Limit(m) if m.contains("within 10 s")),
            "{e}"
        );
        drop(server);

        let (client, mut server) = tokio::io::duplex(1024);
        let mut esl = over(client);
        let e = esl.send("api status").await.unwrap_err();
        assert!(
            matches!(&e, EslError::Limit(m) if m.contains("no reply within 30 s")),
            "{e}"
        );
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"api status\n\n");

        let (client, _server) = tokio::io::duplex(1024);
        let e = Esl::connect(client, "ClueCon").await.err().unwrap();
        assert!(
            matches!(&e, EslError::Limit(m) if m == "no greeting"),
            "{e}"
        );
    }

    /// An announced body is not allocated up front, and a short one is a closed peer.
    #[tokio::test]
    async fn a_body_larger_than_the_limit_is_refused_before_reading_it() {
        let (client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"Content-Type: api/response\nContent-Length: 999999999999\n\n")
            .await
            .unwrap();
        let e = over(client).read().await.unwrap_err();
        assert!(
            matches!(&e, EslError::Limit(m) if m.contains("at most 4 MiB")),
            "{e}"
        );
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
