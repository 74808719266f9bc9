//! `/ws` clients: connecting with or without credentials, reading the next message of either
//! stream, and noticing that the server ended a connection.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::app::{TOKEN, TestApp};
use super::{BriefMsg, ServerMsg};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The admin token as a header.
pub fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

/// The upgrade request for `/ws{query}` carrying exactly `headers`.
fn request(app: &TestApp, query: &str, headers: &[(&'static str, String)]) -> Request {
    let mut req = format!("ws://{}/ws{query}", app.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(*name, value.parse().unwrap());
    }
    req
}

/// Opens `/ws{query}` with `headers`: the server may refuse.
pub async fn open(
    app: &TestApp,
    query: &str,
    headers: &[(&'static str, String)],
) -> Result<Socket, tungstenite::Error> {
    let req = request(app, query, headers);
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

/// Opens `/ws{query}` with the admin token.
pub async fn connect(app: &TestApp, query: &str) -> Socket {
    open(app, query, &[bearer()]).await.unwrap()
}

/// Opens `/ws{query}` with the admin token over a socket whose receive buffer is small, so a
/// client that reads nothing fills up quickly.
pub async fn connect_small_buffer(
    app: &TestApp,
    query: &str,
) -> Result<Socket, tungstenite::Error> {
    let req = request(app, query, &[bearer()]);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
        .await
        .map(|(s, _)| s)
}

/// The next text message of a socket.
pub async fn next_text(socket: &mut Socket) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("valid frame");
        if let Message::Text(text) = msg {
            return text.to_string();
        }
    }
}

/// The next message of the full stream.
pub async fn next_msg(socket: &mut Socket) -> ServerMsg {
    serde_json::from_str(&next_text(socket).await).expect("a ServerMsg")
}

/// The next message of a brief stream (which never carries a payload).
pub async fn next_brief(socket: &mut Socket) -> BriefMsg {
    let text = next_text(socket).await;
    assert!(!text.contains("payload"), "{text}");
    serde_json::from_str(&text).expect("a BriefMsg")
}

/// True once the server has ended the connection (close frame, error or end of stream).
pub async fn ends_within(socket: &mut Socket, limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .is_ok()
}
