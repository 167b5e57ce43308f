//! What a failed call to the server means to a POSIX caller: one `errno` per refusal.
//!
//! Decided by the refusal's status and `details.reason`, never by its message. Anything the
//! server did not clearly refuse (a timeout, a lost connection, a 5xx) is `EIO`: the caller
//! cannot know whether it happened, and the mount keeps what it staged.

use fuser::Errno;
use tideline_client::{ClientError, ErrorKind};
use tideline_types::Reason;

pub fn errno_of(e: &ClientError) -> Errno {
    if e.kind != ErrorKind::Refused {
        return Errno::EIO;
    }
    match e.reason {
        Some(Reason::PathAlreadyExists | Reason::DestinationAlreadyExists) => return Errno::EEXIST,
        Some(Reason::PathIsDirectory) => return Errno::EISDIR,
        Some(Reason::PathNotDirectory) => return Errno::ENOTDIR,
        Some(Reason::VolumeReadOnly) => return Errno::EROFS,
        Some(Reason::FileNotFound | Reason::DirectoryNotFound) => return Errno::ENOENT,
        _ => {}
    }
    match e.status.map(|s| s.as_u16()) {
        Some(400) => Errno::EINVAL,
        Some(401 | 403) => Errno::EACCES,
        Some(404) => Errno::ENOENT,
        Some(409) => Errno::EBUSY,
        Some(413) => Errno::EFBIG,
        _ => Errno::EIO,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tideline_client::StatusCode;

    use super::*;

    fn refused(status: u16, reason: Option<&str>) -> ClientError {
        let details = reason.map(|r| json!({ "reason": r })).unwrap_or(serde_json::Value::Null);
        let body = json!({ "success": false, "error": { "code": "conflict", "message": "m", "details": details } });
        ClientError::refused(StatusCode::from_u16(status).unwrap(), body.to_string().as_bytes())
    }

    #[test]
    fn refusals_map_to_the_errno_posix_names() {
        assert_eq!(errno_of(&refused(409, Some("path_already_exists"))), Errno::EEXIST);
        assert_eq!(errno_of(&refused(409, Some("path_is_directory"))), Errno::EISDIR);
        assert_eq!(errno_of(&refused(409, Some("path_not_directory"))), Errno::ENOTDIR);
        assert_eq!(errno_of(&refused(409, Some("volume_read_only"))), Errno::EROFS);
        assert_eq!(errno_of(&refused(404, None)), Errno::ENOENT);
        assert_eq!(errno_of(&refused(413, None)), Errno::EFBIG);
        assert_eq!(errno_of(&refused(403, None)), Errno::EACCES);
        assert_eq!(errno_of(&refused(503, None)), Errno::EIO);
    }
}
