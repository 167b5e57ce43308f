//! The harness's userspace TCP fault proxy and its link table.
//!
//! Every node advertises the address of its own proxy, so all node-to-node traffic (Raft RPCs,
//! forwarded proposals, read-index calls) flows through the proxy of the destination node. Peer
//! requests carry `x-tideline-from: <node id>` and each node uses its own HTTP client, so a
//! connection only ever carries one source's requests: the proxy reads the first request's
//! headers to learn the source, then forwards the bytes it read and everything after.
//!
//! The [`LinkTable`] says, per directed link `(src, dst)`, whether it is blocked, how much delay
//! each forwarded chunk gets and the probability that a connection is cut at a chunk. Blocking a
//! link refuses new connections on it and cuts the live ones at once. A proxy started without
//! sniffing (the object store's) treats every connection as coming from [`ANY_SOURCE`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub type NodeId = u64;

/// The source of a connection whose first request names no node (or of a non-sniffing proxy).
pub const ANY_SOURCE: NodeId = 0;
/// The destination id of the object-store proxy in the link table.
pub const OBJECT_STORE: NodeId = u64::MAX;
/// The request head is read up to this size to find the source header.
pub const SNIFF_BYTES_MAX: usize = 64 * 1024;
/// A connection that sends no complete request head within this time is closed.
const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting to the real listener may take this long.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded chunk size.
const CHUNK_BYTES: usize = 32 * 1024;
const SOURCE_HEADER: &str = "x-tideline-from";

/// The fault state of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFault {
    pub blocked: bool,
    /// Added before each forwarded chunk.
    pub delay: Duration,
    /// Probability in [0, 1] that a connection is refused, and that it is cut at a chunk.
    pub drop: f64,
}

impl LinkFault {
    fn is_clear(&self) -> bool {
        *self == LinkFault::default()
    }
}

/// Faults per directed link `(src, dst)`, shared by every proxy of a run.
pub struct LinkTable {
    faults: Mutex<HashMap<(NodeId, NodeId), LinkFault>>,
    live: Mutex<HashMap<(NodeId, NodeId), usize>>,
    /// Bumped on every change, so live connections re-check their link.
    epoch: watch::Sender<u64>,
}

impl Default for LinkTable {
    fn default() -> Self {
        LinkTable { faults: Mutex::default(), live: Mutex::default(), epoch: watch::channel(0).0 }
    }
}

impl LinkTable {
    pub fn new() -> Arc<LinkTable> {
        Arc::new(LinkTable::default())
    }

    fn update(&self, src: NodeId, dst: NodeId, f: impl FnOnce(&mut LinkFault)) {
        {
            let mut faults = self.faults.lock().expect("link table lock");
            let entry = faults.entry((src, dst)).or_default();
            f(entry);
            if entry.is_clear() {
                faults.remove(&(src, dst));
            }
        }
        self.epoch.send_modify(|e| *e += 1);
    }

    pub fn block(&self, src: NodeId, dst: NodeId) {
        self.update(src, dst, |l| l.blocked = true);
    }

    /// Blocks both directions between `a` and `b`.
    pub fn block_both(&self, a: NodeId, b: NodeId) {
        self.block(a, b);
        self.block(b, a);
    }

    pub fn set_delay(&self, src: NodeId, dst: NodeId, delay: Duration) {
        self.update(src, dst, |l| l.delay = delay);
    }

    pub fn set_drop(&self, src: NodeId, dst: NodeId, probability: f64) {
        self.update(src, dst, |l| l.drop = probability.clamp(0.0, 1.0));
    }

    /// Clears every fault.
    pub fn heal_all(&self) {
        self.faults.lock().expect("link table lock").clear();
        self.epoch.send_modify(|e| *e += 1);
    }

    /// The link's faults. A link from [`ANY_SOURCE`] is also blocked when `(ANY_SOURCE, dst)`
    /// is; a named source is additionally subject to the `(ANY_SOURCE, dst)` entry, so one
    /// entry can cut every source off a destination.
    pub fn fault(&self, src: NodeId, dst: NodeId) -> LinkFault {
        let faults = self.faults.lock().expect("link table lock");
        let own = faults.get(&(src, dst)).copied().unwrap_or_default();
        let any = faults.get(&(ANY_SOURCE, dst)).copied().unwrap_or_default();
        LinkFault { blocked: own.blocked || any.blocked, delay: own.delay.max(any.delay), drop: own.drop.max(any.drop) }
    }

    pub fn blocked(&self, src: NodeId, dst: NodeId) -> bool {
        self.fault(src, dst).blocked
    }

    /// Every link with a fault, for the record.
    pub fn snapshot(&self) -> Vec<((NodeId, NodeId), LinkFault)> {
        let mut v: Vec<_> = self.faults.lock().expect("link table lock").iter().map(|(k, f)| (*k, *f)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Live proxied connections on a link.
    pub fn live(&self, src: NodeId, dst: NodeId) -> usize {
        self.live.lock().expect("link table lock").get(&(src, dst)).copied().unwrap_or(0)
    }

    fn track(self: &Arc<Self>, src: NodeId, dst: NodeId) -> LiveGuard {
        *self.live.lock().expect("link table lock").entry((src, dst)).or_default() += 1;
        LiveGuard { links: self.clone(), link: (src, dst) }
    }
}

/// Counts a connection as live on its link until dropped.
struct LiveGuard {
    links: Arc<LinkTable>,
    link: (NodeId, NodeId),
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut live = self.links.live.lock().expect("link table lock");
        if let Some(n) = live.get_mut(&self.link) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&self.link);
            }
        }
    }
}

/// Reads from `stream` into `buf` until the end of the first request head (`\r\n\r\n`), EOF,
/// or [`SNIFF_BYTES_MAX`] bytes, and returns the source node named by its headers.
pub async fn sniff_source<R: AsyncReadExt + Unpin>(stream: &mut R, buf: &mut Vec<u8>) -> std::io::Result<NodeId> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(source_from_head(&buf[..end]));
        }
        if buf.len() >= SNIFF_BYTES_MAX {
            return Ok(source_from_head(buf));
        }
        let want = chunk.len().min(SNIFF_BYTES_MAX - buf.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok(source_from_head(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The `x-tideline-from` node id in an HTTP/1 request head, or [`ANY_SOURCE`].
pub fn source_from_head(head: &[u8]) -> NodeId {
    let text = String::from_utf8_lossy(head);
    for line in text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case(SOURCE_HEADER) {
                return value.trim().parse().unwrap_or(ANY_SOURCE);
            }
        }
    }
    ANY_SOURCE
}

/// One proxy listener in front of one destination.
pub struct Proxy {
    pub dst: NodeId,
    /// Where peers (or nodes, for the object store) connect.
    pub listen: SocketAddr,
    upstream: Arc<RwLock<Option<SocketAddr>>>,
    shutdown: watch::Sender<bool>,
}

impl Proxy {
    /// Listens on a free loopback port. With `sniff`, the source of each connection is read
    /// from its first request's headers; without, every connection is from [`ANY_SOURCE`].
    pub async fn start(dst: NodeId, sniff: bool, links: Arc<LinkTable>) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let listen = listener.local_addr()?;
        let upstream: Arc<RwLock<Option<SocketAddr>>> = Arc::default();
        let (shutdown, _) = watch::channel(false);
        let ctx = Arc::new(ConnCtx { dst, sniff, links, upstream: upstream.clone(), shutdown: shutdown.subscribe() });
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((conn, _)) => {
                            let ctx = ctx.clone();
                            tokio::spawn(async move { ctx.handle(conn).await });
                        }
                        Err(e) => {
                            tracing::warn!(dst, error = %e, "proxy accept");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
        Ok(Proxy { dst, listen, upstream, shutdown })
    }

    /// Where connections are forwarded to (the destination's real listener).
    pub fn set_upstream(&self, addr: SocketAddr) {
        *self.upstream.write().expect("upstream lock") = Some(addr);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

struct ConnCtx {
    dst: NodeId,
    sniff: bool,
    links: Arc<LinkTable>,
    upstream: Arc<RwLock<Option<SocketAddr>>>,
    shutdown: watch::Receiver<bool>,
}

impl ConnCtx {
    async fn handle(&self, mut client: TcpStream) {
        let _ = client.set_nodelay(true);
        let mut head = Vec::new();
        let src = if self.sniff {
            match tokio::time::timeout(SNIFF_TIMEOUT, sniff_source(&mut client, &mut head)).await {
                Ok(Ok(src)) => src,
                _ => return,
            }
        } else {
            ANY_SOURCE
        };
        let fault = self.links.fault(src, self.dst);
        // A request/response link needs both directions.
        let reverse_blocked = src != ANY_SOURCE && self.links.blocked(self.dst, src);
        if fault.blocked || reverse_blocked || (fault.drop > 0.0 && rand::random::<f64>() < fault.drop) {
            return; // closes the connection: a refused link
        }
        let Some(addr) = *self.upstream.read().expect("upstream lock") else { return };
        let mut server = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => return,
        };
        let _ = server.set_nodelay(true);
        let _live = self.links.track(src, self.dst);
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if !head.is_empty() && server.write_all(&head).await.is_err() {
            return;
        }
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let (links, dst) = (&self.links, self.dst);
        let forward = pump(cr, sw, links, src, dst);
        let backward = pump(sr, cw, links, dst, src);
        let mut epoch = links.epoch.subscribe();
        let cut = async {
            loop {
                if epoch.changed().await.is_err() {
                    return std::future::pending::<()>().await;
                }
                if links.blocked(src, dst) || (src != ANY_SOURCE && links.blocked(dst, src)) {
                    return;
                }
            }
        };
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = async { tokio::join!(forward, backward) } => {}
            _ = cut => {}
            _ = shutdown.changed() => {}
        }
        // Dropping the halves closes both sockets.
    }
}

/// Copies `from` → `to` chunk by chunk, applying the `(src, dst)` link's delay and drop
/// probability as they are at each chunk; half-closes `to` at EOF.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    links: &LinkTable,
    src: NodeId,
    dst: NodeId,
) {
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fault = links.fault(src, dst);
        if fault.drop > 0.0 && rand::random::<f64>() < fault.drop {
            return;
        }
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_header_is_found_case_insensitively() {
        let head =
            b"POST /raft/append HTTP/1.1\r\nhost: 127.0.0.1:9\r\nX-Tideline-From: 3\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(source_from_head(head), 3);
        assert_eq!(source_from_head(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"), ANY_SOURCE);
        assert_eq!(source_from_head(b"GET / HTTP/1.1\r\nx-tideline-from: nope\r\n\r\n"), ANY_SOURCE);
        // The request line is never taken for a header.
        assert_eq!(source_from_head(b"x-tideline-from: 2\r\n\r\n"), ANY_SOURCE);
    }

    #[tokio::test]
    async fn sniffing_stops_at_the_end_of_the_head_and_keeps_what_it_read() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let req = b"POST /raft/vote HTTP/1.1\r\nx-tideline-from: 2\r\ncontent-length: 4\r\n\r\nbody";
        a.write_all(&req[..20]).await.unwrap();
        let sniffer = tokio::spawn(async move {
            let mut buf = Vec::new();
            let src = sniff_source(&mut b, &mut buf).await.unwrap();
            (src, buf)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.write_all(&req[20..]).await.unwrap();
        let (src, buf) = sniffer.await.unwrap();
        assert_eq!(src, 2);
        assert!(req.starts_with(&buf), "the sniffed bytes are a prefix of the stream, forwarded as they are");
        assert!(find_head_end(&buf).is_some());
    }

    #[tokio::test]
    async fn sniffing_is_bounded() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let junk = vec![b'a'; SNIFF_BYTES_MAX + 1000];
        tokio::spawn(async move {
            let _ = a.write_all(&junk).await;
        });
        let mut buf = Vec::new();
        assert_eq!(sniff_source(&mut b, &mut buf).await.unwrap(), ANY_SOURCE);
        assert_eq!(buf.len(), SNIFF_BYTES_MAX);
    }

    #[test]
    fn link_table_blocks_directed_links_and_heals() {
        let t = LinkTable::new();
        t.block(1, 2);
        assert!(t.blocked(1, 2));
        assert!(!t.blocked(2, 1));
        t.block_both(2, 3);
        assert!(t.blocked(2, 3) && t.blocked(3, 2));
        t.set_delay(1, 3, Duration::from_millis(50));
        assert_eq!(t.fault(1, 3).delay, Duration::from_millis(50));
        assert!(!t.blocked(1, 3));
        t.block(ANY_SOURCE, OBJECT_STORE);
        assert!(t.blocked(ANY_SOURCE, OBJECT_STORE) && t.blocked(5, OBJECT_STORE));
        t.heal_all();
        assert!(t.snapshot().is_empty());
        assert!(!t.blocked(1, 2) && !t.blocked(2, 3) && !t.blocked(ANY_SOURCE, OBJECT_STORE));
        t.set_delay(1, 3, Duration::from_millis(5));
        t.set_delay(1, 3, Duration::ZERO);
        assert!(t.snapshot().is_empty(), "a cleared link leaves no entry");
    }

    /// A tiny upstream that echoes everything back.
    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = c.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn proxy_forwards_and_cuts_live_connections_when_the_link_is_blocked() {
        let links = LinkTable::new();
        let proxy = Proxy::start(2, true, links.clone()).await.unwrap();
        proxy.set_upstream(echo_server().await);
        let head = b"POST /raft/append HTTP/1.1\r\nx-tideline-from: 1\r\n\r\n";
        let mut c = TcpStream::connect(proxy.listen).await.unwrap();
        c.write_all(head).await.unwrap();
        let mut back = vec![0u8; head.len()];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut back)).await.unwrap().unwrap();
        assert_eq!(&back, head);
        assert_eq!(links.live(1, 2), 1);

        links.block(2, 1); // either direction cuts a connection between the two
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut byte)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0, "the live connection was cut");

        // A new connection from node 1 is refused while blocked; one from node 3 is not.
        let mut c1 = TcpStream::connect(proxy.listen).await.unwrap();
        c1.write_all(head).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), c1.read(&mut byte)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0);
        links.heal_all();
        links.block(1, 2);
        let mut c3 = TcpStream::connect(proxy.listen).await.unwrap();
        let head3 = b"POST /raft/vote HTTP/1.1\r\nx-tideline-from: 3\r\n\r\n";
        c3.write_all(head3).await.unwrap();
        let mut back3 = vec![0u8; head3.len()];
        tokio::time::timeout(Duration::from_secs(5), c3.read_exact(&mut back3)).await.unwrap().unwrap();
        assert_eq!(&back3, head3);
    }

    #[tokio::test]
    async fn delay_is_applied_per_chunk() {
        let links = LinkTable::new();
        let proxy = Proxy::start(2, false, links.clone()).await.unwrap();
        proxy.set_upstream(echo_server().await);
        links.set_delay(ANY_SOURCE, 2, Duration::from_millis(150));
        let started = std::time::Instant::now();
        let mut c = TcpStream::connect(proxy.listen).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut back)).await.unwrap().unwrap();
        assert_eq!(&back, b"ping");
        assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    }
}
