//! The nemesis: one fault at a time, every `interval`, chosen from the enabled nemeses by a
//! seeded schedule, each recorded as one [`Op`] with `process = -1`.
//!
//! A fault is only attempted on a healthy cluster (else it is recorded `skipped`). Its op's
//! `invoke_ns`..`complete_ns` is the window it was in effect (installed → healed); `value`
//! holds the kind, the targets and the health looks before and after. A fault whose install
//! may or may not have taken effect (an admin call without an answer) is `indeterminate`.

pub mod membership;
pub mod object_store;
pub mod partition;

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex};

use crate::client::Answer;
use crate::cluster::Cluster;
use crate::history::{Op, Outcome, Recorder};
use crate::proxy::NodeId;

/// Every nemesis name the CLI accepts.
pub const NAMES: [&str; 5] = ["kill", "pause", "partition", "membership", "object-store"];
/// How long the cluster may take to look healthy before a fault (else the fault is skipped).
const HEALTH_BEFORE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the cluster may take to recover after a fault is healed.
const HEALTH_AFTER_TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of each nemesis, in rotation order (leader-targeted first).
fn kinds(name: &str) -> &'static [&'static str] {
    match name {
        "kill" => &["leader", "random"],
        "pause" => &["leader", "random"],
        "partition" => &partition::KINDS,
        "membership" => &["remove-readd"],
        "object-store" => &["outage"],
        _ => &[],
    }
}

/// The `f` of a nemesis's ops.
fn op_name(name: &str) -> &'static str {
    match name {
        "kill" => "kill",
        "pause" => "pause",
        "partition" => "partition",
        "membership" => "membership",
        _ => "object_store",
    }
}

/// The deterministic order of faults: the enabled nemeses in a seeded order, round-robin, each
/// rotating through its kinds.
pub struct Schedule {
    order: Vec<String>,
    next: usize,
    turns: std::collections::HashMap<String, usize>,
}

impl Schedule {
    pub fn new(names: &[String], seed: u64) -> Schedule {
        let mut order: Vec<String> = names.to_vec();
        order.dedup();
        order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321));
        Schedule { order, next: 0, turns: Default::default() }
    }

    pub fn next_fault(&mut self) -> Option<(String, &'static str)> {
        if self.order.is_empty() {
            return None;
        }
        let name = self.order[self.next % self.order.len()].clone();
        self.next += 1;
        let turn = self.turns.entry(name.clone()).or_default();
        let ks = kinds(&name);
        let kind = ks[*turn % ks.len()];
        *turn += 1;
        Some((name, kind))
    }
}

pub struct NemesisConfig {
    pub names: Vec<String>,
    pub interval: Duration,
    /// How long each fault stays in effect.
    pub hold: Duration,
    pub seed: u64,
}

/// What was installed, so it can be healed.
enum Active {
    Killed(Vec<NodeId>),
    Paused(Vec<NodeId>),
    Links,
    Removed(NodeId),
}

/// Runs faults until `stop` turns true; the fault in effect then is healed before returning.
pub async fn run(
    cluster: Arc<Mutex<Cluster>>,
    rec: Arc<Recorder>,
    cfg: NemesisConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut schedule = Schedule::new(&cfg.names, cfg.seed);
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x6661_756c_7473);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if *stop.borrow() {
            return;
        }
        let Some((name, kind)) = schedule.next_fault() else { return };
        let mut c = cluster.lock().await;
        for (id, status) in c.reap_exited() {
            tracing::error!(node = id, %status, "node exited on its own; restarting it");
            if let Err(e) = c.restart(id).await {
                tracing::error!(node = id, error = %format!("{e:#}"), "restart after a crash failed");
            }
        }
        let op = one_fault(&mut c, &rec, &name, kind, cfg.hold, &mut rng, &mut stop).await;
        tracing::info!(f = %op.f, kind, outcome = ?op.outcome, targets = %op.value["targets"], "fault");
        if let Err(e) = rec.record(op) {
            tracing::error!(error = %e, "record a fault");
        }
    }
}

fn fault_op(name: &str, invoke_ns: u64, complete_ns: u64, outcome: Outcome, value: Value, error: Option<String>) -> Op {
    Op {
        id: 0,
        process: -1,
        f: op_name(name).into(),
        node: None,
        invoke_ns,
        complete_ns,
        outcome,
        value,
        result: Value::Null,
        error,
    }
}

/// Checks health, installs one fault, holds it (cut short by `stop`), heals it and waits for the
/// cluster to recover.
async fn one_fault(
    c: &mut Cluster,
    rec: &Recorder,
    name: &str,
    kind: &'static str,
    hold: Duration,
    rng: &mut StdRng,
    stop: &mut watch::Receiver<bool>,
) -> Op {
    let (before, _) = c.wait_healthy(false, HEALTH_BEFORE_TIMEOUT).await;
    let mut value = json!({ "kind": kind, "health_before": before });
    if !before.healthy {
        let now = rec.now_ns();
        value["reason"] = json!(format!("cluster unhealthy: {}", before.detail));
        return fault_op(name, now, now, Outcome::Skipped, value, None);
    }
    let installed = install(c, name, kind, before.leader, rng, &mut value).await;
    let invoke_ns = rec.now_ns();
    let (active, mut outcome, mut error) = match installed {
        Ok((active, outcome)) => (active, outcome, None),
        Err(Skip(reason)) => {
            value["reason"] = json!(reason);
            return fault_op(name, invoke_ns, invoke_ns, Outcome::Skipped, value, None);
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    if let Err(e) = heal(c, active).await {
        outcome = Outcome::Indeterminate;
        error = Some(format!("heal: {e:#}"));
    }
    let complete_ns = rec.now_ns();
    let (after, waited) = c.wait_healthy(false, HEALTH_AFTER_TIMEOUT).await;
    value["health_after"] = json!(after);
    value["recovery_ms"] = json!(waited.as_millis() as u64);
    if !after.healthy {
        tracing::warn!(name, kind, detail = %after.detail, "cluster not healthy {HEALTH_AFTER_TIMEOUT:?} after healing");
    }
    fault_op(name, invoke_ns, complete_ns, outcome, value, error)
}

/// Why a fault was not attempted.
struct Skip(String);

async fn install(
    c: &mut Cluster,
    name: &str,
    kind: &str,
    leader: Option<NodeId>,
    rng: &mut StdRng,
    value: &mut Value,
) -> Result<(Active, Outcome), Skip> {
    let ids = c.ids();
    let pick = |rng: &mut StdRng| -> Result<NodeId, Skip> {
        match kind {
            "leader" => leader.ok_or_else(|| Skip("no leader".into())),
            _ => ids.choose(rng).copied().ok_or_else(|| Skip("no nodes".into())),
        }
    };
    match name {
        "kill" => {
            let id = pick(rng)?;
            value["targets"] = json!([id]);
            c.kill(id).await.map_err(|e| Skip(format!("{e:#}")))?;
            Ok((Active::Killed(vec![id]), Outcome::Installed))
        }
        "pause" => {
            let id = pick(rng)?;
            value["targets"] = json!([id]);
            c.signal_pause(id, true).map_err(|e| Skip(format!("{e:#}")))?;
            Ok((Active::Paused(vec![id]), Outcome::Installed))
        }
        "partition" => {
            let plan = partition::plan(kind, &ids, leader, rng)
                .ok_or_else(|| Skip(format!("partition {kind} cannot be planned now")))?;
            value["targets"] = json!(plan.targets);
            value["plan"] = plan.describe.clone();
            partition::apply(&c.links, &plan);
            Ok((Active::Links, Outcome::Installed))
        }
        "membership" => {
            let candidates: Vec<NodeId> = ids.iter().copied().filter(|i| Some(*i) != leader).collect();
            let id = *candidates.choose(rng).ok_or_else(|| Skip("no follower to remove".into()))?;
            value["targets"] = json!([id]);
            let answer = membership::remove(c, id).await;
            value["remove_answer"] = json!(answer.error_text().unwrap_or_else(|| "ok".into()));
            let outcome = match answer {
                Answer::Ok(_) => Outcome::Installed,
                ref a if a.outcome() == crate::history::Outcome::Fail => {
                    return Err(Skip(format!("remove refused: {}", a.error_text().unwrap_or_default())))
                }
                _ => Outcome::Indeterminate,
            };
            // The removed node is stopped (as an operator would); it comes back fresh.
            let removed = membership::voters(c).await.is_some_and(|v| !v.contains(&id));
            if removed || outcome == Outcome::Installed {
                let _ = c.kill(id).await;
            }
            Ok((Active::Removed(id), outcome))
        }
        "object-store" => {
            value["targets"] = json!([]);
            object_store::outage(&c.links);
            Ok((Active::Links, Outcome::Installed))
        }
        other => Err(Skip(format!("unknown nemesis {other}"))),
    }
}

async fn heal(c: &mut Cluster, active: Active) -> anyhow::Result<()> {
    match active {
        Active::Killed(ids) => {
            for id in ids {
                c.restart(id).await?;
            }
        }
        Active::Paused(ids) => {
            for id in ids {
                c.signal_pause(id, false)?;
            }
        }
        Active::Links => c.links.heal_all(),
        Active::Removed(id) => {
            // Back only if it really left; otherwise it may still run as a voter.
            if !c.node(id).is_running() {
                let still_voter = membership::voters(c).await.is_some_and(|v| v.contains(&id));
                if still_voter {
                    c.restart(id).await?;
                }
            }
            membership::restore(c).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_rotates_nemeses_and_kinds_leader_first() {
        let names: Vec<String> = ["kill", "partition"].iter().map(|s| s.to_string()).collect();
        let mut s = Schedule::new(&names, 7);
        let faults: Vec<(String, &str)> = (0..8).map(|_| s.next_fault().unwrap()).collect();
        let partitions: Vec<&str> = faults.iter().filter(|f| f.0 == "partition").map(|f| f.1).collect();
        assert_eq!(partitions, vec!["isolate-leader", "halves", "bridge", "slow"]);
        let more = [s.next_fault().unwrap(), s.next_fault().unwrap()];
        assert!(more.contains(&("partition".to_string(), "flaky")) && more.contains(&("kill".to_string(), "leader")));
        let kills: Vec<&str> = faults.iter().filter(|f| f.0 == "kill").map(|f| f.1).collect();
        assert_eq!(kills, vec!["leader", "random", "leader", "random"]);
        assert!(Schedule::new(&[], 1).next_fault().is_none());
    }

    #[test]
    fn the_order_depends_on_the_seed_only() {
        let names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
        let run = |seed| {
            let mut s = Schedule::new(&names, seed);
            (0..10).map(|_| s.next_fault().unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert!((0..20).any(|seed| run(seed) != run(3)), "different seeds give different orders");
    }
}
