//! The fault-injecting proxy of the SCIM tests as a program, for
//! `bench/scim.sh` (cargo example `scim-fault-proxy`).
//!
//!   scim-fault-proxy --upstream 127.0.0.1:8099 [--latency-ms 20] [--p503 0.1]
//!       [--p429 0.05] [--retry-after 1] [--drop 0.02] [--stalls 3]
//!       [--stall-every 400] [--stall-ms 5000] [--seed 1]
//!       [--burst-after-ms 1500 --burst-ms 2000 --burst-p 0.5]
//!       [--log FILE] [--record FILE]
//!
//! Prints `PORT` (on 127.0.0.1) on its first line, then serves until killed.

// The tests use all of the proxy; this binary only part of it.
#[allow(dead_code)]
#[path = "../proxy.rs"]
mod proxy;

use std::time::Duration;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut upstream = None;
    let mut faults = proxy::Faults::default();
    let (mut log, mut record) = (None, None);
    let mut burst = proxy::Burst {
        after: Duration::ZERO,
        length: Duration::ZERO,
        p: 0.5,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--upstream" => upstream = Some(value()?),
            "--latency-ms" => faults.latency = Duration::from_secs_f64(number(value()?)? / 1000.0),
            "--p503" => faults.p503 = number(value()?)?,
            "--p429" => faults.p429 = number(value()?)?,
            "--retry-after" => faults.retry_after_secs = number(value()?)? as u64,
            "--drop" => faults.p_drop = number(value()?)?,
            "--stalls" => faults.stalls = number(value()?)? as usize,
            "--stall-every" => faults.stall_every = number(value()?)? as usize,
            "--stall-ms" => faults.stall = Duration::from_secs_f64(number(value()?)? / 1000.0),
            "--seed" => faults.seed = number(value()?)? as u64,
            "--burst-after-ms" => burst.after = Duration::from_secs_f64(number(value()?)? / 1000.0),
            "--burst-ms" => burst.length = Duration::from_secs_f64(number(value()?)? / 1000.0),
            "--burst-p" => burst.p = number(value()?)?,
            "--log" => log = Some(value()?),
            "--record" => record = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !burst.length.is_zero() {
        faults.burst = Some(burst);
    }
    let upstream = upstream
        .ok_or("--upstream HOST:PORT is required")?
        .parse()
        .map_err(|e| format!("--upstream: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let proxy = proxy::Proxy::on(listener, upstream, faults).map_err(|e| e.to_string())?;
        let create =
            |path: String| std::fs::File::create(&path).map_err(|e| format!("{path}: {e}"));
        if let Some(path) = log {
            proxy.log_to(create(path)?);
        }
        if let Some(path) = record {
            proxy.record_to(create(path)?);
        }
        println!("{}", proxy.addr.port());
        std::future::pending::<()>().await;
        Ok::<(), String>(())
    })
}
