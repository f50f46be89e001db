//! Where a rank stands, from the environment `torchrun`, `clip launch` and SLURM set.

use std::time::Duration;

use crate::{Error, Result};

/// A rank's place in a job and how to reach the rendezvous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistConfig {
    /// This process's rank, 0..world_size.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Rank on this machine (picks the GPU).
    pub local_rank: usize,
    /// Rendezvous host (`MASTER_ADDR`).
    pub master_addr: String,
    /// Rendezvous port (`MASTER_PORT`).
    pub master_port: u16,
    /// The store is hosted by a launcher agent (torchrun's `TORCHELASTIC_USE_AGENT_STORE`, or
    /// `clip launch`), so rank 0 connects to it instead of hosting one.
    pub agent_store: bool,
    /// torchrun's restart count: namespaces the store, as torch's own `env://` rendezvous does.
    pub restart_count: u32,
    /// Deadline for rendezvous and for every collective.
    pub timeout: Duration,
}

/// Default deadline for rendezvous and collectives; `CLIP_DIST_TIMEOUT` (seconds) overrides it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl DistConfig {
    /// From the process environment; `None` for a single-process run (no `WORLD_SIZE`, or 1).
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any variable source (tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let first = |names: &[&str]| names.iter().find_map(|&n| get(n).map(|v| (n.to_owned(), v)));
        let parse = |name: String, value: String| -> Result<usize> {
            value.trim().parse().map_err(|_| Error::Env { var: name, message: format!("{value:?} is not a non-negative integer") })
        };
        let Some((ws_var, ws)) = first(&["WORLD_SIZE", "SLURM_NTASKS"]) else { return Ok(None) };
        let world_size = parse(ws_var.clone(), ws)?;
        if world_size == 0 {
            return Err(Error::Env { var: ws_var, message: "must be at least 1".into() });
        }
        if world_size == 1 {
            return Ok(None);
        }
        let (rank_var, rank) = first(&["RANK", "SLURM_PROCID"])
            .ok_or_else(|| Error::Env { var: "RANK".into(), message: format!("not set, but WORLD_SIZE is {world_size}") })?;
        let rank = parse(rank_var.clone(), rank)?;
        if rank >= world_size {
            return Err(Error::Env { var: rank_var, message: format!("{rank} is not below WORLD_SIZE {world_size}") });
        }
        let local_rank = match first(&["LOCAL_RANK", "SLURM_LOCALID"]) {
            Some((var, value)) => parse(var, value)?,
            None => 0,
        };
        let master_addr = get("MASTER_ADDR")
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| Error::Env { var: "MASTER_ADDR".into(), message: "not set; it names the rendezvous host".into() })?;
        let port = get("MASTER_PORT")
            .ok_or_else(|| Error::Env { var: "MASTER_PORT".into(), message: "not set; it names the rendezvous port".into() })?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| Error::Env { var: "MASTER_PORT".into(), message: format!("{port:?} is not a port number") })?;
        let agent_store = get("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let restart_count = match get("TORCHELASTIC_RESTART_COUNT") {
            Some(v) => parse("TORCHELASTIC_RESTART_COUNT".into(), v)? as u32,
            None => 0,
        };
        let timeout = match get("CLIP_DIST_TIMEOUT") {
            Some(v) => Duration::from_secs_f64(v.trim().parse::<f64>().ok().filter(|s| *s > 0.0).ok_or_else(|| {
                Error::Env { var: "CLIP_DIST_TIMEOUT".into(), message: format!("{v:?} is not a positive number of seconds") }
            })?),
            None => DEFAULT_TIMEOUT,
        };
        Ok(Some(Self { rank, world_size, local_rank, master_addr, master_port, agent_store, restart_count, timeout }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<DistConfig>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        DistConfig::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn single_process_without_world_size() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[("WORLD_SIZE", "1"), ("RANK", "0")]).unwrap(), None);
    }

    #[test]
    fn torchrun_variables() {
        let c = config(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.rank, c.world_size, c.local_rank, c.master_port), (3, 4, 1, 29500));
        assert!(c.agent_store);
        assert_eq!(c.restart_count, 2);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn slurm_variables() {
        let c = config(&[("SLURM_NTASKS", "8"), ("SLURM_PROCID", "5"), ("SLURM_LOCALID", "1"), ("MASTER_ADDR", "node1"), ("MASTER_PORT", "1234")])
            .unwrap()
            .unwrap();
        assert_eq!((c.rank, c.world_size, c.local_rank), (5, 8, 1));
    }

    #[test]
    fn inconsistent_environments_are_clear_errors() {
        let base = [("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")];
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("WORLD_SIZE", "2"), ("RANK", "2")], "not below WORLD_SIZE 2"),
            (&[("WORLD_SIZE", "2")], "RANK"),
            (&[("WORLD_SIZE", "two"), ("RANK", "0")], "not a non-negative integer"),
            (&[("WORLD_SIZE", "0")], "at least 1"),
            (&[("WORLD_SIZE", "2"), ("RANK", "0"), ("CLIP_DIST_TIMEOUT", "-1")], "positive number"),
        ];
        for (vars, needle) in cases {
            let all: Vec<(&str, &str)> = vars.iter().chain(base.iter()).copied().collect();
            let err = config(&all).unwrap_err().to_string();
            assert!(err.contains(needle), "{vars:?}: {err}");
        }
        let err = config(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "1")]).unwrap_err().to_string();
        assert!(err.contains("MASTER_ADDR"), "{err}");
        let err = config(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "70000")]).unwrap_err().to_string();
        assert!(err.contains("not a port number"), "{err}");
    }
}
