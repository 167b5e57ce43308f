//! [`Gate`]: a loopback TCP relay between a worker and the node that can be closed and opened
//! again — what `SIGSTOP` and `SIGCONT` of a worker process were to the black-box tests, for a
//! worker in this process: while closed, no byte passes either way on any connection (requests
//! and long polls in flight wait, as they would in a stopped process); nothing is dropped.
//!
//! ```text
//!  worker ─▶ 127.0.0.1:port (Gate) ─[open?]─▶ node        and back the same way
//! ```

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Gate {
    /// What the worker is to use as its server.
    pub url: String,
    open: watch::Sender<bool>,
}

impl Gate {
    /// An open gate in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Gate {
        let to = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (open, rx) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(&to).await else { continue };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(relay(dr, uw, rx.clone()));
                tokio::spawn(relay(ur, dw, rx.clone()));
            }
        });
        Gate { url, open }
    }

    /// Holds every byte from now on (`SIGSTOP`).
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Lets the held bytes through (`SIGCONT`).
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

async fn relay(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut open: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Bytes that arrived as the gate closed wait with the rest.
        if open.wait_for(|o| *o).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
