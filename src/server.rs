//! `dagr serve`: open the engine on the data directory, seed the demo into an empty one,
//! bind the listeners and serve until SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use dagr_admin_api::{AppState, Governance, MetaStore};
use dagr_engine::{Engine, EngineConfig, Pools, PoolsConfig, QueryConfig};
use tokio::net::TcpListener;
use tracing::info;

use crate::cli::ServeArgs;

/// The sizes of the bulk runtime and the load pool for `args` (this machine's defaults
/// where a flag is not given).
pub fn pools_config(args: &ServeArgs) -> PoolsConfig {
    let defaults = PoolsConfig::for_this_machine();
    PoolsConfig {
        bulk_threads: args
            .bulk_threads
            .map_or(defaults.bulk_threads, |n| n as usize),
        load_threads: args
            .load_threads
            .map_or(defaults.load_threads, |n| n as usize),
        nice: args.bulk_nice as i32,
        stack_bytes: crate::cli::WORKER_STACK_BYTES,
    }
}

/// Open the engine for `args`, seeding the demo if the data directory holds no dataset.
/// DataFusion, bulk streams and loads run on the bulk runtime it starts ([`pools_config`]).
/// With `ledger` (replicas sharing a PostgreSQL database), versions are committed there.
pub async fn open_engine(
    args: &ServeArgs,
    ledger: Option<Arc<dyn dagr_engine::ledger::Ledger>>,
) -> anyhow::Result<Arc<Engine>> {
    let pools = Pools::start(pools_config(args)).context("starting the bulk runtime")?;
    let config = EngineConfig {
        pools,
        keep_versions: args.keep_versions as usize,
        query: QueryConfig {
            memory_limit: (args.query_memory_mb as usize) << 20,
            max_result_rows: (args.max_result_rows > 0).then_some(args.max_result_rows as usize),
            max_operators: args.max_sql_operators as usize,
            max_query_time: (args.query_timeout_secs > 0)
                .then(|| std::time::Duration::from_secs(args.query_timeout_secs)),
            ..QueryConfig::default()
        },
        ledger,
    };
    let started = std::time::Instant::now();
    let engine = match &args.store {
        Some(location) => Engine::open_location(location, config)
            .await
            .context("opening the snapshot store")?,
        None => Engine::open_dir(&args.data_dir.join("snapshots"), config)
            .await
            .with_context(|| format!("opening the data directory {}", args.data_dir.display()))?,
    };
    info!(
        store = args.store.as_deref().unwrap_or("data directory"),
        datasets = engine.dataset_names().len(),
        ms = started.elapsed().as_millis() as u64,
        "snapshots restored"
    );
    if !args.no_demo && crate::demo::should_seed(&engine, &args.data_dir) {
        crate::demo::seed(&engine, &args.data_dir, args.demo_rows as usize).await?;
    }
    Ok(Arc::new(engine))
}

/// Open the metadata store: `database_url` if given, else `meta.db` in the data directory.
pub async fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> anyhow::Result<MetaStore> {
    match database_url {
        Some(url) => MetaStore::connect(url).await.with_context(|| {
            format!(
                "opening the metadata database {}",
                dagr_admin_api::store::redact(url)
            )
        }),
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let path = data_dir.join("meta.db");
            MetaStore::open_sqlite(&path)
                .await
                .with_context(|| format!("opening the metadata database {}", path.display()))
        }
    }
}

/// Open the engine, the metadata store and the governance service for `args`, seeding the
/// demo (registers, then governance) into an empty data directory.
pub async fn open_services(args: &ServeArgs) -> anyhow::Result<AppState> {
    let store = open_store(&args.data_dir, args.database_url.as_deref()).await?;
    // Replicas: on PostgreSQL the ledger in it is the commit point of every dataset.
    let uploads = dagr_admin_api::LoadsConfig::under(&args.data_dir).upload_dir;
    tokio::fs::create_dir_all(&uploads)
        .await
        .with_context(|| format!("creating {}", uploads.display()))?;
    let node = dagr_admin_api::loads::node_id(&uploads)
        .await
        .context("reading the node id")?;
    let ledger = dagr_admin_api::store::SqlLedger::new(&store, &node)
        .map(|l| Arc::new(l) as Arc<dyn dagr_engine::ledger::Ledger>);
    let engine = open_engine(args, ledger).await?;
    let gov = Governance::open(store, Arc::clone(&engine))
        .await
        .context("loading the governance policy")?;
    gov.policy()
        .quotas()
        .set_defaults(dagr_engine::quota::QuotaValues {
            requests_per_second: args.quota_rps,
            streams: args.quota_streams,
            sql_queries: args.quota_sql,
        });
    if crate::demo::pending(&args.data_dir) {
        crate::demo_governance::seed_governance(&gov, &args.data_dir)
            .await
            .context("seeding the demo organisations, systems and agreements")?;
        crate::demo::finish(&args.data_dir)?;
    }
    let audit = crate::audit::open_audit(
        &args.data_dir,
        args.database_url.as_deref(),
        dagr_admin_api::audit::AuditConfig::default(),
    )
    .await?;
    let state = AppState {
        engine,
        gov: Arc::new(gov),
        audit,
        identity: Arc::new(dagr_admin_api::audit::TokenIdentity),
        public_url: Default::default(),
    };
    if let Some(u) = &args.public_url {
        let _ = state.public_url.set(u.clone());
    }
    dagr_admin_api::map::publication::publish_if_missing(&state).await;
    Ok(state)
}

/// The HTTP application: REST API (with snapshot uploads through `loads`) and portal.
pub fn http_app(
    state: AppState,
    loads: Arc<dagr_admin_api::Loads>,
    portal: dagr_portal::PortalConfig,
) -> dagr_admin_api::axum::Router {
    dagr_portal::with_api(
        dagr_admin_api::router_with(state.clone(), loads),
        state,
        portal,
    )
}

/// Serve HTTP on an already-bound listener until `shutdown` resolves.
pub async fn serve_http(
    state: AppState,
    loads: Arc<dagr_admin_api::Loads>,
    portal: dagr_portal::PortalConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    dagr_admin_api::serve::serve(listener, http_app(state, loads, portal), shutdown)
        .await
        .context("HTTP server failed")
}

/// `dagr serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(endpoint) = &args.otlp_endpoint {
        info!(endpoint = %dagr_admin_api::store::redact(endpoint), "exporting tracing spans over OTLP");
    }
    let state = open_services(&args).await?;
    let loads = dagr_admin_api::Loads::open(
        &state,
        dagr_admin_api::LoadsConfig {
            max_upload_bytes: args.max_upload_mb << 20,
            ..dagr_admin_api::LoadsConfig::under(&args.data_dir)
        },
    )
    .await
    .context("opening the upload directory")?;
    let engine = Arc::clone(&state.engine);
    let _refresher = dagr_admin_api::spawn_refresher(Arc::clone(&state.gov));
    let _reminders = dagr_admin_api::map::deadlines::spawn_reminders(
        dagr_admin_api::map::MapStore::new(state.gov.store()),
    );
    let _tapis_reminders = dagr_admin_api::tapis::spawn_reminders(
        dagr_admin_api::tapis::TapisStore::new(state.gov.store()),
    );
    let _tapis_scheduler = dagr_admin_api::tapis::spawn_scheduler(
        dagr_admin_api::tapis::TapisStore::new(state.gov.store()),
    );
    let _tapis_owners = dagr_admin_api::tapis::spawn_owner_notices(state.clone());
    let _retention = (args.audit_retention_days > 0).then(|| {
        dagr_admin_api::audit::store::spawn_retention(
            state.audit.clone(),
            std::time::Duration::from_secs(args.audit_retention_days * 86_400),
        )
    });
    // Replicas: apply what other nodes commit, and collect the files no version references.
    let (_replica, _gc) = match (&args.database_url, engine.is_replicated()) {
        (Some(url), true) => {
            let status = Arc::new(dagr_admin_api::replication::ReplicaStatus::default());
            dagr_admin_api::replication::catch_up_once(&engine, &status).await;
            dagr_admin_api::replication::install(Arc::clone(&status));
            let grace = std::time::Duration::from_secs(args.gc_grace_secs);
            info!(
                grace_secs = args.gc_grace_secs,
                "replica: committing through the ledger in the metadata database"
            );
            (
                Some(dagr_admin_api::replication::spawn(
                    url.clone(),
                    Arc::clone(&engine),
                    status,
                )),
                Some(dagr_admin_api::replication::spawn_gc(
                    Arc::clone(&engine),
                    grace,
                    (grace / 4).min(std::time::Duration::from_secs(600)),
                )),
            )
        }
        _ => (None, None),
    };
    let _mail = match &args.smtp_relay {
        Some(relay) => {
            let relay = dagr_admin_api::outbox::smtp::Relay::new(
                relay,
                &args.mail_from,
                std::time::Duration::from_secs(30),
            )
            .map_err(anyhow::Error::msg)?;
            tracing::info!(?relay, "e-mail outbox drained through the SMTP relay");
            Some(dagr_admin_api::outbox::spawn_drain(
                state.gov.store().pool().clone(),
                relay,
                std::time::Duration::from_secs(args.mail_interval_secs),
            ))
        }
        None => None,
    };
    let listener = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot bind the HTTP address {}", args.http_addr))?;
    let addr = listener.local_addr()?;
    // Without --public-url, links name the address bound (set once: a given URL wins).
    let _ = state.public_url.set(format!("http://{addr}"));
    let flight_listener = TcpListener::bind(args.flight_addr)
        .await
        .with_context(|| format!("cannot bind the Flight address {}", args.flight_addr))?;
    let flight_addr = flight_listener.local_addr()?;
    let mut flight_config = flight_config(&args)?;
    // One quota state for both servers: a token's requests count whichever protocol it uses.
    flight_config.quotas = Arc::clone(state.gov.policy().quotas());
    if let Some(node) = loads.node() {
        flight_config.journal = Some(Arc::new(FlightLoadLog {
            store: state.gov.store().clone(),
            node: node.to_owned(),
        }));
    }
    info!(
        http = %addr,
        flight = %flight_addr,
        tls = flight_config.tls.is_some(),
        data_dir = %args.data_dir.display(),
        datasets = engine.dataset_names().len(),
        "DAGR listening"
    );
    // One signal stops both servers; either failing stops the process.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let policy: Arc<dyn dagr_engine::AccessPolicy> = Arc::clone(state.gov.policy()) as _;
    let audit: Arc<dyn dagr_engine::AuditSink> = Arc::new(state.audit.clone());
    let audit_store = state.audit.clone();
    let http = serve_http(
        state,
        Arc::clone(&loads),
        dagr_portal::PortalConfig {
            secure_cookies: args.secure_cookies,
        },
        listener,
        until_stopped(stopped.clone()),
    );
    let flight = async {
        dagr_flight_server::serve(
            flight_listener,
            engine,
            policy,
            audit,
            flight_config,
            until_stopped(stopped),
        )
        .await
        .context("Flight server failed")
    };
    let servers = async { tokio::try_join!(http, flight).map(|_| ()) };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => result?,
        () = shutdown_signal() => {
            // A load balancer polling /api/v1/ready stops sending new requests while the
            // node still serves (--drain-secs); then the listeners close.
            dagr_admin_api::ops::set_draining();
            let drained = match args.drain_secs {
                0 => None,
                secs => {
                    info!(seconds = secs, "draining: /api/v1/ready answers 503 until the listeners close");
                    let drain = std::time::Duration::from_secs(secs);
                    // A second signal ends the drain at once.
                    tokio::select! {
                        result = tokio::time::timeout(drain, &mut servers) => result.ok(),
                        () = shutdown_signal() => None,
                    }
                }
            };
            match drained {
                // A server stopped by itself during the drain.
                Some(result) => result?,
                None => {
                    let _ = stop.send(());
                    // In-flight calls get a grace period; a stalled client cannot keep DAGR up.
                    match tokio::time::timeout(SHUTDOWN_GRACE, &mut servers).await {
                        Ok(result) => result?,
                        Err(_) => tracing::warn!(
                            seconds = SHUTDOWN_GRACE.as_secs(),
                            "calls still open after the grace period were cut"
                        ),
                    }
                }
            }
        }
    }
    // HTTP uploads being validated or committed finish (or the grace period ends) before the
    // process exits, so that their records say what became of them.
    if tokio::time::timeout(SHUTDOWN_GRACE, loads.settled())
        .await
        .is_err()
    {
        tracing::warn!("uploads still running after the grace period were cut");
    }
    audit_store.close().await;
    info!("DAGR stopped");
    // What is buffered goes to the collector (bounded by the export timeout).
    let _ = tokio::task::spawn_blocking(crate::telemetry::shutdown).await;
    Ok(())
}

/// The load history of Flight uploads, in the metadata store beside the HTTP uploads (same
/// node id, so a restart closes this server's interrupted Flight loads too).
#[derive(Debug)]
struct FlightLoadLog {
    store: MetaStore,
    node: String,
}

impl dagr_flight_server::put::LoadJournal for FlightLoadLog {
    fn started<'a>(
        &'a self,
        principal: &'a dagr_engine::Principal,
        dataset: &'a str,
        mode: dagr_flight_server::put::LoadMode,
    ) -> futures::future::BoxFuture<'a, Option<i64>> {
        Box::pin(async move {
            use dagr_admin_api::model::{LoadChannel, LoadMode, LoadStatus};
            let new = dagr_admin_api::store::NewLoad {
                dataset: dataset.to_owned(),
                channel: LoadChannel::Flight,
                mode: match mode {
                    dagr_flight_server::put::LoadMode::Snapshot => LoadMode::Snapshot,
                    dagr_flight_server::put::LoadMode::Changes => LoadMode::Changes,
                },
                status: LoadStatus::Receiving,
                node: self.node.clone(),
                created_by: principal.describe(),
            };
            match self.store.create_load(&new).await {
                Ok(load) => Some(load.id),
                Err(e) => {
                    tracing::error!(dataset, error = %e, "cannot record a Flight upload in the load history");
                    None
                }
            }
        })
    }

    fn finished(
        &self,
        id: i64,
        bytes: u64,
        outcome: Result<(u64, usize), String>,
    ) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            use dagr_admin_api::model::LoadOutcome;
            let outcome = match outcome {
                Ok((version, rows)) => LoadOutcome::Committed {
                    version: version as i64,
                    rows: rows as i64,
                },
                Err(reason) => LoadOutcome::refused(reason),
            };
            if let Err(e) = self.store.finish_load(id, bytes as i64, &outcome).await {
                tracing::error!(load = id, error = %e, "cannot record the end of a Flight upload");
            }
        })
    }
}

/// How long in-flight calls may run after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// The Flight settings of `dagr serve`.
fn flight_config(args: &ServeArgs) -> anyhow::Result<dagr_flight_server::FlightConfig> {
    let tls = match (&args.flight_tls_cert, &args.flight_tls_key) {
        (Some(cert), Some(key)) => Some(dagr_flight_server::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => None,
        _ => anyhow::bail!("--flight-tls-cert and --flight-tls-key go together"),
    };
    Ok(dagr_flight_server::FlightConfig {
        batch_rows: args.flight_batch_rows as usize,
        max_upload_bytes: usize::try_from(args.max_upload_mb << 20).unwrap_or(usize::MAX),
        cache_bytes: usize::try_from(args.flight_cache_mb << 20).unwrap_or(usize::MAX),
        zero_copy: !args.flight_no_zero_copy,
        tls,
        ..Default::default()
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received, shutting down"),
        () = term => info!("SIGTERM received, shutting down"),
    }
}
