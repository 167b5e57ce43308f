//! A volume's files: `/sandboxvolumes/{id}/files[/stat|/list|/move|/watch]`.
//!
//! Reads come back whole ([`Client::read_file`], bounded by the 100 MiB file limit) or as a
//! [`ByteStream`]; writes take an [`Upload`], streamed from its source when it is one.

use bytes::Bytes;
use reqwest::Method;
use tideline_types::limits::FILE_BYTES_MAX;
use tideline_types::wire::{
    ChmodRequest, Created, Deleted, FileContent, FileInfo, FileList, ModeChanged, MoveRequest, Moved, Written,
};

use crate::call::{Call, Deadline};
use crate::client::Client;
use crate::error::ClientError;
use crate::stream::ByteStream;
use crate::upload::Upload;

/// Where a `files/watch` WebSocket connects, and the `Authorization` header value it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEndpoint {
    /// `ws://…` or `wss://…`.
    pub url: String,
    pub authorization: String,
}

fn files<'a>(volume: &'a str, tail: &[&'a str]) -> Vec<&'a str> {
    let mut segments = vec!["sandboxvolumes", volume, "files"];
    segments.extend_from_slice(tail);
    segments
}

impl Client {
    /// A file's bytes, whole (at most the 100 MiB a file may hold).
    pub async fn read_file(&self, volume: &str, path: &str) -> Result<Bytes, ClientError> {
        let call = Call::api(Method::GET, files(volume, &[])).query("path", path).deadline(Deadline::Transfer);
        self.bytes(call, FILE_BYTES_MAX).await
    }

    /// A file's bytes as they arrive.
    pub async fn read_file_stream(&self, volume: &str, path: &str) -> Result<ByteStream, ClientError> {
        let call = Call::api(Method::GET, files(volume, &[])).query("path", path).deadline(Deadline::Transfer);
        self.stream(call).await
    }

    /// A file's bytes as the API's JSON document (`{"content":<base64>,"encoding":"base64"}`).
    pub async fn read_file_json(&self, volume: &str, path: &str) -> Result<FileContent, ClientError> {
        let call =
            Call::api(Method::GET, files(volume, &[])).query("path", path).accept_json().deadline(Deadline::Transfer);
        self.json(call).await
    }

    /// Writes a file (parents created). Not retried: a write is not idempotent.
    pub async fn write_file(&self, volume: &str, path: &str, content: Upload) -> Result<Written, ClientError> {
        let call = Call::api(Method::POST, files(volume, &[]))
            .query("path", path)
            .upload(content)
            .deadline(Deadline::Transfer);
        self.json(call).await
    }

    /// Writes a file with the [ext] options a mount needs: `exclusive` is refused with 409
    /// `path_already_exists` if anything is at `path`; `mode` (non-zero) sets a new file's bits.
    pub async fn write_file_with(
        &self,
        volume: &str,
        path: &str,
        content: Upload,
        exclusive: bool,
        mode: u32,
    ) -> Result<Written, ClientError> {
        let mut call = Call::api(Method::POST, files(volume, &[])).query("path", path);
        if exclusive {
            call = call.query("exclusive", "true");
        }
        if mode != 0 {
            call = call.query("mode", format!("{mode:04o}"));
        }
        self.json(call.upload(content).deadline(Deadline::Transfer)).await
    }

    /// Creates one directory (its parent must exist) with permission bits `mode` (0: 0755).
    pub async fn mkdir_mode(&self, volume: &str, path: &str, mode: u32) -> Result<Created, ClientError> {
        let mut call = Call::api(Method::POST, files(volume, &[])).query("path", path).query("mkdir", "true");
        if mode != 0 {
            call = call.query("mode", format!("{mode:04o}"));
        }
        self.json(call).await
    }

    /// [ext] Sets the permission bits of a file or directory.
    pub async fn chmod(&self, volume: &str, path: &str, mode: u32) -> Result<ModeChanged, ClientError> {
        let req = ChmodRequest { path: path.to_string(), mode: format!("{mode:04o}") };
        self.json(Call::api(Method::POST, files(volume, &["chmod"])).json(&req)?).await
    }

    /// Creates a directory; `recursive` also creates parents and accepts an existing one.
    pub async fn mkdir(&self, volume: &str, path: &str, recursive: bool) -> Result<Created, ClientError> {
        let call = Call::api(Method::POST, files(volume, &[])).query("path", path).query("mkdir", "true");
        self.json(if recursive { call.query("recursive", "true") } else { call }).await
    }

    /// Removes a file or a directory tree (idempotent on the server).
    pub async fn delete_path(&self, volume: &str, path: &str) -> Result<Deleted, ClientError> {
        self.json(Call::api(Method::DELETE, files(volume, &[])).query("path", path)).await
    }

    pub async fn stat(&self, volume: &str, path: &str) -> Result<FileInfo, ClientError> {
        self.json(Call::api(Method::GET, files(volume, &["stat"])).query("path", path)).await
    }

    /// A directory's direct children.
    pub async fn list_dir(&self, volume: &str, path: &str) -> Result<FileList, ClientError> {
        self.json(Call::api(Method::GET, files(volume, &["list"])).query("path", path)).await
    }

    pub async fn move_path(&self, volume: &str, req: &MoveRequest) -> Result<Moved, ClientError> {
        self.json(Call::api(Method::POST, files(volume, &["move"])).json(req)?).await
    }

    /// The `files/watch` WebSocket of `volume` (the client speaks HTTP; the caller brings a
    /// WebSocket library).
    pub fn watch_endpoint(&self, volume: &str) -> Result<WatchEndpoint, ClientError> {
        let call = Call::api(Method::GET, files(volume, &["watch"]));
        let mut url = self.url(&self.inner.base, &call)?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme).map_err(|_| {
            ClientError::new(crate::error::ErrorKind::Request, format!("no WebSocket URL for {}", self.server()))
        })?;
        Ok(WatchEndpoint { url: url.to_string(), authorization: format!("Bearer {}", self.inner.token) })
    }
}
