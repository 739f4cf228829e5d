//! A tiny registry on 127.0.0.1 for `docker login`: `GET /v2/` answers 401 with
//! `WWW-Authenticate: Basic realm="test"` unless the request carries the right Basic
//! credentials, then 200. That is all the docker CLI needs to log in client side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;

/// One request the registry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// An Authorization header was present.
    pub sent_auth: bool,
    /// It held exactly the expected Basic credentials.
    pub authorized: bool,
}

pub struct FakeRegistry {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    /// Listen on a free loopback port, accepting `username`/`password`.
    pub fn start(username: &str, password: &str) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (requests, expected) = (requests.clone(), expected.clone());
                    std::thread::spawn(move || serve(conn, &expected, &requests));
                }
            })
        };
        FakeRegistry {
            addr,
            requests,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// "127.0.0.1:PORT", the registry name docker uses.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Answer requests on one connection until the client closes it or asks to.
fn serve(conn: TcpStream, expected_auth: &str, requests: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            // Not HTTP (e.g. a TLS ClientHello when the client tries https first).
            let _ = writer.write_all(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        };
        if !version.starts_with("HTTP/1.") {
            let _ = writer.write_all(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        }
        let (method, path) = (method.to_string(), path.to_string());
        let mut auth = None;
        let mut content_length = 0usize;
        let mut close = version == "HTTP/1.0";
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(value.to_string()),
                "content-length" => content_length = value.parse().unwrap_or(0),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        // Discard any body so the next request on this connection parses.
        if content_length > 0
            && std::io::copy(
                &mut (&mut reader).take(content_length as u64),
                &mut std::io::sink(),
            )
            .is_err()
        {
            return;
        }
        let authorized = auth
            .as_deref()
            .is_some_and(|a| basic_matches(a, expected_auth));
        requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Request {
                method: method.clone(),
                path: path.clone(),
                sent_auth: auth.is_some(),
                authorized,
            });
        let response = respond(&method, &path, authorized, close);
        if writer.write_all(response.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Compare the scheme case-insensitively and the credentials exactly.
fn basic_matches(got: &str, expected: &str) -> bool {
    match (got.split_once(' '), expected.split_once(' ')) {
        (Some((gs, gc)), Some((es, ec))) => gs.eq_ignore_ascii_case(es) && gc.trim() == ec,
        _ => false,
    }
}

fn respond(method: &str, path: &str, authorized: bool, close: bool) -> String {
    let connection = if close { "close" } else { "keep-alive" };
    let is_base = matches!(path, "/v2/" | "/v2");
    let (status, extra, body) = match (method, is_base, authorized) {
        ("GET" | "HEAD", true, true) => ("200 OK", String::new(), "{}".to_string()),
        ("GET" | "HEAD", true, false) => (
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"test\"\r\n".to_string(),
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#
                .to_string(),
        ),
        _ => (
            "404 Not Found",
            String::new(),
            r#"{"errors":[{"code":"NOT_FOUND","message":"not found","detail":null}]}"#.to_string(),
        ),
    };
    let shown = if method == "HEAD" { "" } else { body.as_str() };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\n{extra}Content-Length: {}\r\nConnection: {connection}\r\n\r\n{shown}",
        body.len()
    )
}
