//! The S3 object-store path against a real S3-compatible server (s3s-fs) on loopback: large
//! content lands in the bucket; with the store down, writes fail with 503 and nothing is
//! half-applied; when it is back, writes succeed again.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_ports, wait_for, Client, Server};
use tideline_client::types::ErrorCode;

const AK: &str = "tideline-test-ak";
const SK: &str = "tideline-test-sk";

/// The s3s-fs binary: `S3S_FS_BIN`, or on PATH, or in ~/.cargo/bin (`.ci/run` installs it).
fn s3s_fs() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(PathBuf::from)
        .chain([PathBuf::from(home).join(".cargo/bin")])
        .collect::<Vec<_>>();
    candidates
        .into_iter()
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.exists())
        .expect("s3s-fs is not installed: run .ci/run, or `cargo install s3s-fs --version ~0.14 --features binary`")
}

struct S3 {
    child: Child,
}

impl S3 {
    async fn start(root: &std::path::Path, port: u16) -> S3 {
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", AK, "--secret-key", SK])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        wait_for("s3s-fs to listen", Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        S3 { child }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_object_store_round_trip_and_outage() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bucket")).unwrap();
    let port = free_ports(1)[0];
    let s3 = S3::start(root.path(), port).await;

    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = ["--listen", "127.0.0.1:0", "--object-store", "s3://bucket/tl", "--s3-endpoint"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("http://127.0.0.1:{port}")])
        .collect();
    let env = [("AWS_ACCESS_KEY_ID", AK), ("AWS_SECRET_ACCESS_KEY", SK), ("AWS_REGION", "us-east-1")];
    let server = Server::start_with_env(dir.path(), &args, &env);
    let client = Client::for_team(&server.url, "team-a").await;
    let vol = client.create_volume().await;

    tracing::info!("--- large content goes to the bucket and reads back");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert!(client.write(&vol, "/big.bin", big.clone()).await.unwrap().written);
    assert!(client.read(&vol, "/big.bin").await.unwrap() == big);
    let hex = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&big))
    };
    assert!(root.path().join(format!("bucket/tl/blobs/sha256/{hex}")).exists(), "the blob is in the S3 bucket");

    tracing::info!("--- the object store goes down: large writes are 503 and leave no trace");
    s3.kill();
    let before = client.journal(&vol).await.len();
    let e = client.write(&vol, "/down.bin", vec![1u8; 200_000]).await.unwrap_err();
    assert_eq!((e.status.map(|s| s.as_u16()), e.code), (Some(503), Some(ErrorCode::Unavailable)), "{e}");
    assert_eq!(client.journal(&vol).await.len(), before, "nothing was journaled");
    assert!(client.read(&vol, "/down.bin").await.unwrap_err().is_not_found());

    tracing::info!("--- back up: writes succeed again");
    let _s3 = S3::start(root.path(), port).await;
    assert!(client.write(&vol, "/after.bin", vec![2u8; 200_000]).await.unwrap().written);
}
