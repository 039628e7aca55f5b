//! A stand-alone MI server for trying clients such as `opensips-cli` by hand.
//!
//! `cargo run -p sipox-mi --example mi_server -- [PORT] [FIFO_PATH]`
//! (defaults: 8888 and /tmp/opensips_fifo), then for example
//! `opensips-cli -o communication_type=http -o url=http://127.0.0.1:8888/mi -x mi uptime`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use sipox_mi::fifo::{FifoConfig, FifoServer};
use sipox_mi::http::{self, HttpConfig};
use sipox_mi::{Mi, MiConfig};
use sipox_stats::{CoreStats, PromConfig, Stats};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map_or(Ok(8888), |p| p.parse())?;
    let fifo: PathBuf = args
        .next()
        .map_or_else(|| "/tmp/opensips_fifo".into(), PathBuf::from);

    let stats = Arc::new(Stats::new());
    let core = CoreStats::register(&stats)?;
    core.rcv_requests.add(3);
    stats.register_fn("shmem", "used_size", || 1 << 20)?;
    #[allow(clippy::disallowed_methods)] // an example driver: it owns the clock
    let started = SystemTime::now();
    let mi = Arc::new(Mi::new(MiConfig {
        stats,
        started,
        ..MiConfig::default()
    }));

    let fifo_srv = FifoServer::start(
        Arc::clone(&mi),
        FifoConfig {
            fifo_name: fifo,
            ..FifoConfig::default()
        },
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let cfg = HttpConfig {
            ip: "127.0.0.1".parse()?,
            port,
            prometheus: Some(PromConfig {
                statistics: vec!["all".into()],
                ..PromConfig::default()
            }),
            ..HttpConfig::default()
        };
        let l = http::bind(&cfg).await?;
        println!(
            "MI on http://{}/mi and {}",
            l.local_addr()?,
            fifo_srv.path().display()
        );
        http::serve(l, mi, cfg).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    fifo_srv.stop();
    Ok(())
}
