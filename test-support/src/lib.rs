//! What Tideline's test suites share (the root package's black-box tests, the API's in-process
//! cluster, the sync-worker tests): waiting for an observable condition by bounded polling —
//! never a sleep before an assertion — free loopback ports for members that must know each
//! other's address up front, and (feature `node`) one in-process node ([`node::Node`]).

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "node")]
pub mod node;
pub mod tree;

/// How often a wait re-checks its condition.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` every [`POLL`] until it returns `Ok`, or panics after `timeout` naming `what`
/// and the last reason `check` gave.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until(what, timeout, || {
        let next = check();
        async move { next.await.ok_or_else(|| "(the condition did not hold)".to_string()) }
    })
    .await
}

/// `n` distinct free loopback ports (held open together while choosing, so none repeats).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0")).collect();
    listeners.iter().map(|l| l.local_addr().expect("a bound address").port()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_condition_holds_and_returns_its_value() {
        let mut calls = 0;
        let v = wait_for("the third call", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n >= 3).then_some(n) }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never; last seen:\nstill 'no'")]
    async fn gives_up_after_the_timeout_with_the_last_reason() {
        wait_until("never", Duration::from_millis(50), || async { Err::<(), _>("still 'no'".to_string()) }).await;
    }

    #[test]
    fn ports_are_distinct() {
        let ports = free_ports(4);
        let mut sorted = ports.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "{ports:?}");
    }
}
