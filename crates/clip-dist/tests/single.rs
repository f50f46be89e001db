use std::net::TcpListener;
use std::time::{Duration, Instant};

use clip_dist::{Backend, Dist, DistConfig, Error, ReduceOp};
use tch::{Device, Kind, Tensor};

#[test]
fn single_process_collectives_are_the_identity() {
    let dist = Dist::single();
    assert!(!dist.is_distributed());
    let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
    dist.all_reduce_(&mut t, ReduceOp::Avg).unwrap();
    assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
    let g = dist.all_gather_with_grad(&Tensor::ones([3, 2], (Kind::Float, Device::Cpu))).unwrap();
    assert_eq!(g.size(), vec![3, 2]);
    dist.barrier().unwrap();
}

fn config(rank: usize, world_size: usize, port: u16, timeout: Duration) -> DistConfig {
    DistConfig {
        rank,
        world_size,
        local_rank: rank,
        master_addr: "127.0.0.1".into(),
        master_port: port,
        agent_store: false,
        restart_count: 0,
        timeout,
    }
}

#[test]
fn a_port_in_use_is_a_clear_error_before_any_work() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Dist::init(&config(0, 2, port, Duration::from_secs(5)), Backend::Gloo).err().expect("must fail");
    assert!(matches!(err, Error::Rendezvous { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[test]
fn an_unreachable_master_fails_within_the_timeout() {
    // A port nobody listens on: rank 1 keeps retrying until its deadline.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = Instant::now();
    let err = Dist::init(&config(1, 2, port, Duration::from_secs(3)), Backend::Gloo).err().expect("must fail");
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::Rendezvous { .. }), "{err}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}
