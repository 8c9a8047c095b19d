//! `vcc-key --id <id> --scopes "<scope> ..." [--expires <UTC time>] [--json]`
//! (`make key ID=… SCOPES=…`): mints a gateway key from the OS's CSPRNG and prints it
//! once, with the `GATEWAY_KEYS` entry that holds only its SHA-256. Every rule it checks
//! is the gateway's own (`vcc_auth::core::gateway`), so what it prints is accepted.

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;
use vcc_auth::core::gateway::{digest_hex, mint, parse_utc, valid_key_id, valid_key_scopes, well_formed};

#[derive(Parser)]
#[command(about = "Mint a vcc-auth gateway key (printed once) and its GATEWAY_KEYS entry")]
struct Args {
    /// A short name for logs and /healthz: 1 to 64 letters, digits, . _ or -.
    #[arg(long)]
    id: String,
    /// The scopes the key may use, space- or comma-separated; "*" for all.
    #[arg(long)]
    scopes: String,
    /// When the key stops working, UTC: 2027-01-31T00:00:00Z or 2027-01-31.
    #[arg(long)]
    expires: Option<String>,
    /// Print one JSON object {"key", "entry"} (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let fail = |m: &str| {
        eprintln!("make key: {m}");
        ExitCode::from(2)
    };
    if !valid_key_id(&args.id) {
        return fail("ID must be 1 to 64 letters, digits, . _ or -");
    }
    let scopes: Vec<String> = args.scopes.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if !valid_key_scopes(&scopes) {
        return fail("SCOPES must be one or more VCC scopes (such as stats users:read), or \"*\" for all");
    }
    if let Some(e) = &args.expires {
        if parse_utc(e).is_none() {
            return fail("EXPIRES must be a UTC time like 2027-01-31T00:00:00Z or a date like 2027-01-31");
        }
    }
    let mut random = [0u8; 32];
    if getrandom::fill(&mut random).is_err() {
        return fail("the operating system gave no random bytes");
    }
    let key = mint(&random);
    debug_assert!(well_formed(&key));
    let mut entry = json!({ "id": args.id, "sha256": digest_hex(&key), "scopes": scopes });
    if let Some(e) = args.expires {
        entry["expires"] = json!(e);
    }
    if args.json {
        println!("{}", json!({ "key": key, "entry": entry }));
    } else {
        println!("Gateway key \"{}\" (shown once: store it now, it cannot be shown again):\n", args.id);
        println!("  {key}\n");
        println!("Its GATEWAY_KEYS entry (only the key's SHA-256; add it to the JSON array):\n");
        println!("  {entry}\n");
        println!("Then: cd worker && npx wrangler secret put GATEWAY_KEYS   (locally: worker/.dev.vars)");
    }
    ExitCode::SUCCESS
}
