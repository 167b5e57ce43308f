//! Network partitions as sets of blocked directed links, planned from the node ids, the current
//! leader and the run's RNG: isolate the leader, split into a minority and a majority, a bridge
//! (two halves that only reach each other's through one node), a slow node (delay, no cut), and
//! a flaky node (its connections are cut at random chunks).

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::proxy::{LinkTable, NodeId};

/// Delay on every link of the slow node.
pub const SLOW_DELAY: Duration = Duration::from_millis(300);

/// The partition kinds, in the order the scheduler rotates through them (leader isolation
/// first, so even a short run exercises it).
pub const KINDS: [&str; 5] = ["isolate-leader", "halves", "bridge", "slow", "flaky"];
/// Probability, per forwarded chunk, that a connection of the flaky node is cut.
pub const FLAKY_DROP: f64 = 0.02;

/// A planned partition: links to block (both directions are listed), links to delay, and a
/// description for the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub blocked: Vec<(NodeId, NodeId)>,
    pub delayed: Vec<(NodeId, NodeId)>,
    /// Links whose connections are cut with [`FLAKY_DROP`] per chunk.
    pub dropping: Vec<(NodeId, NodeId)>,
    pub targets: Vec<NodeId>,
    pub describe: Value,
}

/// Every directed link between `a` and `b` sides.
fn cut(a: &[NodeId], b: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let mut links = Vec::new();
    for x in a {
        for y in b {
            links.push((*x, *y));
            links.push((*y, *x));
        }
    }
    links
}

/// Plans `kind` over `ids`; `None` when it cannot be done now (no leader, too few nodes).
pub fn plan(kind: &str, ids: &[NodeId], leader: Option<NodeId>, rng: &mut impl Rng) -> Option<Plan> {
    let mut shuffled = ids.to_vec();
    shuffled.shuffle(rng);
    match kind {
        "isolate-leader" => {
            let leader = leader.filter(|l| ids.contains(l))?;
            let rest: Vec<NodeId> = ids.iter().copied().filter(|i| *i != leader).collect();
            if rest.is_empty() {
                return None;
            }
            Some(Plan {
                blocked: cut(&[leader], &rest),
                delayed: Vec::new(),
                dropping: Vec::new(),
                targets: vec![leader],
                describe: json!({ "groups": [[leader], rest] }),
            })
        }
        "halves" => {
            if ids.len() < 2 {
                return None;
            }
            let (minority, majority) = shuffled.split_at(ids.len() / 2);
            Some(Plan {
                blocked: cut(minority, majority),
                delayed: Vec::new(),
                dropping: Vec::new(),
                targets: minority.to_vec(),
                describe: json!({ "groups": [minority, majority] }),
            })
        }
        "bridge" => {
            if ids.len() < 3 {
                return None;
            }
            let bridge = shuffled[0];
            let rest = &shuffled[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            Some(Plan {
                blocked: cut(a, b),
                delayed: Vec::new(),
                dropping: Vec::new(),
                targets: vec![bridge],
                describe: json!({ "bridge": bridge, "groups": [a, b] }),
            })
        }
        "slow" => {
            let slow = *shuffled.first()?;
            let rest: Vec<NodeId> = ids.iter().copied().filter(|i| *i != slow).collect();
            Some(Plan {
                blocked: Vec::new(),
                delayed: cut(&[slow], &rest),
                dropping: Vec::new(),
                targets: vec![slow],
                describe: json!({ "slow": slow, "delay_ms": SLOW_DELAY.as_millis() as u64 }),
            })
        }
        "flaky" => {
            let flaky = *shuffled.first()?;
            let rest: Vec<NodeId> = ids.iter().copied().filter(|i| *i != flaky).collect();
            Some(Plan {
                blocked: Vec::new(),
                delayed: Vec::new(),
                dropping: cut(&[flaky], &rest),
                targets: vec![flaky],
                describe: json!({ "flaky": flaky, "drop_per_chunk": FLAKY_DROP }),
            })
        }
        _ => None,
    }
}

/// Puts `plan` into the link table.
pub fn apply(links: &LinkTable, plan: &Plan) {
    for (s, d) in &plan.blocked {
        links.block(*s, *d);
    }
    for (s, d) in &plan.delayed {
        links.set_delay(*s, *d, SLOW_DELAY);
    }
    for (s, d) in &plan.dropping {
        links.set_drop(*s, *d, FLAKY_DROP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn connected(blocked: &[(NodeId, NodeId)], a: NodeId, b: NodeId) -> bool {
        !blocked.contains(&(a, b)) && !blocked.contains(&(b, a))
    }

    #[test]
    fn isolating_the_leader_cuts_it_from_everyone_else_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let p = plan("isolate-leader", &[1, 2, 3], Some(2), &mut rng).unwrap();
        assert!(!connected(&p.blocked, 2, 1) && !connected(&p.blocked, 2, 3));
        assert!(connected(&p.blocked, 1, 3));
        assert_eq!(p.targets, vec![2]);
        assert!(plan("isolate-leader", &[1, 2, 3], None, &mut rng).is_none());
    }

    #[test]
    fn halves_leave_a_majority_connected() {
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let ids = [1, 2, 3, 4, 5];
            let p = plan("halves", &ids, None, &mut rng).unwrap();
            assert_eq!(p.targets.len(), 2, "the minority");
            let majority: Vec<NodeId> = ids.iter().copied().filter(|i| !p.targets.contains(i)).collect();
            assert_eq!(majority.len(), 3);
            for m in &majority {
                for t in &p.targets {
                    assert!(!connected(&p.blocked, *m, *t));
                }
                for m2 in &majority {
                    assert!(connected(&p.blocked, *m, *m2));
                }
            }
        }
    }

    #[test]
    fn a_bridge_reaches_both_sides_which_do_not_reach_each_other() {
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let ids = [1, 2, 3, 4, 5];
            let p = plan("bridge", &ids, None, &mut rng).unwrap();
            let bridge = p.targets[0];
            for i in ids {
                assert!(connected(&p.blocked, bridge, i));
            }
            let groups = p.describe["groups"].as_array().unwrap();
            let a: Vec<u64> = groups[0].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            let b: Vec<u64> = groups[1].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(a.len() + b.len(), 4);
            for x in &a {
                for y in &b {
                    assert!(!connected(&p.blocked, *x, *y));
                }
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert!(plan("bridge", &[1, 2], None, &mut rng).is_none());
    }

    #[test]
    fn slow_delays_without_cutting() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let p = plan("slow", &[1, 2, 3], None, &mut rng).unwrap();
        assert!(p.blocked.is_empty());
        assert_eq!(p.delayed.len(), 4);
        let links = LinkTable::new();
        apply(&links, &p);
        let slow = p.targets[0];
        let other = [1, 2, 3].into_iter().find(|i| *i != slow).unwrap();
        assert_eq!(links.fault(slow, other).delay, SLOW_DELAY);
        assert!(!links.blocked(slow, other));
    }
}
