//! vcc-emulator: a local stand-in for Vonage Contact Center, so the tests and the demo
//! run with no credentials and no network.
//!
//! It behaves like VCC as described in docs/vcc.md: the token endpoint (form or Basic
//! client auth, RFC 6749 error bodies), JWT-looking tokens with `exp`, the APIs of the
//! route table with VCC's three different 401 bodies and the versioned `Accept` check,
//! plus control endpoints under `/_emulator/` for fault injection, revocation and
//! statistics. Test isolation comes from per-client state: each test registers its own
//! client, and faults and counters are kept per client.

mod api;
mod control;
mod idp;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::routing::{any, get, post};
use axum::Router;
use clap::Parser;
use tower_http::cors::CorsLayer;

use state::{ClientConfig, DropSwitch, Emulator};

/// A local emulator of the Vonage Contact Center token endpoint and APIs.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to bind. Loopback by default: the control endpoints are unauthenticated.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Default token lifetime in seconds (VCC's docs say 15 min, 1 h or 2 h).
    #[arg(long, default_value_t = 7200)]
    token_lifetime: u64,
    /// A client as id:secret:scope,scope (`*` = every scope). Repeatable.
    /// Default: demo-client:demo-secret:*
    #[arg(long = "client")]
    clients: Vec<String>,
    /// Write the base URL to this file once listening (for scripts).
    #[arg(long)]
    url_file: Option<std::path::PathBuf>,
    /// Log every request to stderr.
    #[arg(long)]
    verbose: bool,
}

fn parse_client(spec: &str, lifetime: u64) -> Result<(String, ClientConfig), String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(id), Some(secret), Some(scopes)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("--client wants id:secret:scopes, got {} parts", spec.split(':').count()));
    };
    if id.is_empty() || secret.is_empty() {
        return Err("--client id and secret must not be empty".into());
    }
    let scopes = scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    Ok((id.to_owned(), ClientConfig { secret: secret.to_owned(), scopes, lifetime_s: lifetime }))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let specs =
        if args.clients.is_empty() { vec!["demo-client:demo-secret:*".to_owned()] } else { args.clients.clone() };
    let emulator = Emulator::new(args.token_lifetime, args.verbose);
    for spec in &specs {
        match parse_client(spec, args.token_lifetime) {
            Ok((id, c)) => emulator.add_client(id, c),
            Err(e) => {
                eprintln!("vcc-emulator: {e}");
                std::process::exit(2);
            }
        }
    }
    let emulator = Arc::new(emulator);
    let app = router(emulator.clone());
    let addr: SocketAddr = match format!("{}:{}", args.host, args.port).parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("vcc-emulator: --host must be an IP address");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vcc-emulator: cannot bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().expect("bound socket has an address");
    let url = format!("http://{local}");
    let _ = emulator.url.set(url.clone());
    if !local.ip().is_loopback() {
        eprintln!(
            "vcc-emulator: WARNING: listening beyond loopback; /_emulator/ control endpoints are unauthenticated"
        );
    }
    if let Some(path) = &args.url_file {
        if let Err(e) = std::fs::write(path, &url) {
            eprintln!("vcc-emulator: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    println!(
        "vcc-emulator listening on {url} (token lifetime {} s; clients: {})",
        args.token_lifetime,
        specs.iter().map(|s| s.split(':').next().unwrap_or("")).collect::<Vec<_>>().join(", ")
    );
    tokio::select! {
        _ = serve(listener, app) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// axum's `serve`, by hand, for one addition: every connection gets a [`DropSwitch`] as a
/// request extension, and a handler that notifies it has its connection dropped with no
/// answer (the "connection reset" faults).
async fn serve(listener: tokio::net::TcpListener, app: Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, as axum::serve does.
                eprintln!("vcc-emulator: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let switch = DropSwitch::default();
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(switch.clone())));
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = switch.0.notified() => {}
            }
        });
    }
}

fn router(emulator: Arc<Emulator>) -> Router {
    Router::new()
        .route("/Auth/connect/token", post(token::token_endpoint))
        .route("/_emulator/health", get(control::health))
        .route("/_emulator/clients", post(control::add_client))
        .route("/_emulator/faults", post(control::set_faults))
        .route("/_emulator/revoke", post(control::revoke))
        .route("/_emulator/stats", get(control::stats))
        .route("/_emulator/requests", get(control::requests))
        .route("/_emulator/reset", post(control::reset))
        .route("/_emulator/steal", any(control::steal))
        .route("/_emulator/steal/{*rest}", any(control::steal))
        .route("/_emulator/stolen", get(control::stolen))
        .route("/_emulator/routes", post(control::add_routes))
        .route("/cdn-cgi/access/certs", get(idp::certs))
        .route("/_emulator/idp/token", post(idp::token))
        .route("/_emulator/idp/rotate", post(idp::rotate))
        .route("/_emulator/idp/stats", get(idp::stats))
        .fallback(api::api)
        // Browsers hide non-safelisted response headers cross-origin; the client needs
        // Retry-After (429 backoff) and WWW-Authenticate (401 classification).
        .layer(CorsLayer::very_permissive().expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE]))
        .with_state(emulator)
}

#[cfg(test)]
mod tests {
    use super::parse_client;

    #[test]
    fn client_specs_parse_and_bad_ones_are_refused() {
        let (id, c) = parse_client("a:b:stats,users:read", 60).unwrap();
        assert_eq!((id.as_str(), c.secret.as_str(), c.lifetime_s), ("a", "b", 60));
        assert_eq!(c.scopes, vec!["stats", "users:read"]);
        // the secret may contain ':' only if scopes come last; three parts are required
        assert!(parse_client("a:b", 60).is_err());
        assert!(parse_client(":b:stats", 60).is_err());
        assert!(parse_client("a::stats", 60).is_err());
    }
}
