//! Command line and configuration: flags with environment fallbacks
//! (`clap` derive, `long, env`), plus a TOML file for the structured parts
//! (the acting accounts). Every setting is listed in the README.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::auth::{AuthConfig, PolicyEntry};
use crate::domain::AccountId;
use crate::telemetry::LogFormat;
use crate::upstream::{AccountCredentials, AccountSettings};

/// The SQLite file used when no `--database-url` is given, in `--data-dir`.
pub const DEFAULT_SQLITE_FILE: &str = "account-link.db";

/// Where the store lives (`--database-url`, `--data-dir`); shared by every
/// subcommand that opens it.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://USER@HOST:PORT/DB` (production; replicas share it) or
    /// `sqlite://PATH`; the database or file is created if missing and
    /// migrated. Default: the SQLite file `account-link.db` in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the default SQLite file (when no --database-url).
    #[arg(long, env = "ACCOUNT_LINK_DATA_DIR", default_value = ".")]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    /// The default SQLite file: `<data-dir>/account-link.db`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(DEFAULT_SQLITE_FILE)
    }

    /// Where the store is, for logs: `--database-url` reduced to its
    /// scheme (it may hold a password), or the default SQLite file's path.
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(url) => crate::store::display_url(url),
            None => self.sqlite_path().display().to_string(),
        }
    }
}

/// The default upstream-token HMAC key. Override it (same value on every
/// replica) to keep upstream ClientTokens unpredictable to outsiders.
pub const DEFAULT_UPSTREAM_TOKEN_KEY: &str = "account-link-service/upstream-client-token/v1";

/// `account-link-service`: gRPC front for the WorkSpaces account-link API.
#[derive(Debug, Parser)]
#[command(name = "account-link-service", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API.
    Serve(Box<ServeArgs>),
    /// Run the local WorkSpaces account-link emulator (AWS JSON 1.1 over HTTP).
    Emulator(EmulatorArgs),
    /// Apply the database migrations and exit.
    Migrate(MigrateArgs),
    /// Work with the audit trail: verify the hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Ask a running service's grpc.health.v1 whether it is SERVING
    /// (exit 0) or not (exit 1); for container health checks.
    HealthCheck(HealthCheckArgs),
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; print `ok: N events, head <hash>` (exit 0)
    /// or the first broken seq and what is wrong (exit 1). With
    /// --checkpoint, also prove the database still holds exactly the
    /// checkpointed prefix.
    Verify(AuditVerifyArgs),
    /// Verify the chain and write a signed checkpoint (JSON) of its head.
    Checkpoint(AuditCheckpointArgs),
    /// Generate an Ed25519 checkpoint signing key.
    Keygen(AuditKeygenArgs),
    /// Stream CloudTrail-shaped JSON lines of a time range to stdout.
    Export(AuditExportArgs),
    /// Delete the oldest verified prefix that ends at a stored checkpoint
    /// and is older than --older-than-days (recorded as an audit event).
    Retain(AuditRetainArgs),
}

/// `audit checkpoint` settings.
#[derive(Debug, Clone, Args)]
pub struct AuditCheckpointArgs {
    /// The store.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// File holding the Ed25519 secret seed (64 hex digits), from `audit keygen`.
    #[arg(long, env = "ACCOUNT_LINK_AUDIT_SIGNING_KEY")]
    pub signing_key: PathBuf,
    /// The previous checkpoint file, to chain to it.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Where to write the checkpoint (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `audit keygen` settings.
#[derive(Debug, Clone, Args)]
pub struct AuditKeygenArgs {
    /// Where to write the secret seed (created with mode 0600; must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// `audit export` settings.
#[derive(Debug, Clone, Args)]
pub struct AuditExportArgs {
    /// The store.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Start of the range (RFC 3339), inclusive.
    #[arg(long, value_parser = parse_rfc3339)]
    pub since: time::OffsetDateTime,
    /// End of the range (RFC 3339), exclusive.
    #[arg(long, value_parser = parse_rfc3339)]
    pub until: time::OffsetDateTime,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
}

/// `audit export` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One CloudTrail-shaped JSON record per line.
    Jsonl,
}

/// `audit retain` settings.
#[derive(Debug, Clone, Args)]
pub struct AuditRetainArgs {
    /// The store.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The checkpoint signer's public key (64 hex digits, or a file).
    #[arg(long, env = "ACCOUNT_LINK_AUDIT_PUBLIC_KEY")]
    pub public_key: String,
    /// Only events older than this many days may be deleted.
    #[arg(long)]
    pub older_than_days: u32,
}

fn parse_rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// `audit verify` settings.
#[derive(Debug, Clone, Args)]
pub struct AuditVerifyArgs {
    /// The store.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// First seq to check (default 1).
    #[arg(long)]
    pub from: Option<i64>,
    /// Last seq to check (default: the chain head).
    #[arg(long)]
    pub to: Option<i64>,
    /// A checkpoint file to check the database against (with --public-key).
    #[arg(long, requires = "public_key")]
    pub checkpoint: Option<PathBuf>,
    /// The checkpoint signer's public key (64 hex digits, or a file).
    #[arg(long, env = "ACCOUNT_LINK_AUDIT_PUBLIC_KEY")]
    pub public_key: Option<String>,
}

/// `health-check` settings.
#[derive(Debug, Clone, Args)]
pub struct HealthCheckArgs {
    /// The service's gRPC address (plaintext).
    #[arg(
        long,
        env = "ACCOUNT_LINK_HEALTH_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub addr: SocketAddr,
    /// The service name to check (`""` = the whole server).
    #[arg(long, default_value = "accountlink.v1.AccountLinkService")]
    pub service: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// `serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// gRPC listen address.
    #[arg(long, env = "ACCOUNT_LINK_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// The store.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Maximum connections in the pool (SQLite: read connections, beside
    /// its one writer; PostgreSQL: beside the group-commit writers' two).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// Development mode: runs the WorkSpaces emulator in-process (unless
    /// --aws-endpoint-url is given) and accepts any 12-digit acting account
    /// with emulator credentials. Never use against real AWS.
    #[arg(long, env = "ACCOUNT_LINK_DEV")]
    pub dev: bool,
    /// TOML file with the acting accounts (see README).
    #[arg(long, env = "ACCOUNT_LINK_CONFIG")]
    pub config: Option<PathBuf>,
    /// AWS endpoint override (e.g. a standalone emulator).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Huawei Cloud RAM endpoint (issue 12). Default
    /// [`HUAWEI_RAM_DEFAULT_ENDPOINT`]; in `--dev`, the endpoint of the
    /// emulator (the in-process one, or `--aws-endpoint-url`).
    #[arg(long, env = "HUAWEI_RAM_ENDPOINT")]
    pub huawei_ram_endpoint: Option<String>,
    /// AWS Region (default: the aws-config chain; us-east-1 in --dev).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// SDK retry: maximum attempts per AWS call.
    #[arg(long, env = "AWS_MAX_ATTEMPTS", default_value_t = 3)]
    pub aws_max_attempts: u32,
    /// SDK retry mode: `standard`, or `adaptive` (client-side rate limiting
    /// that backs off further when AWS throttles).
    #[arg(long, env = "AWS_RETRY_MODE", value_enum, default_value = "standard")]
    pub aws_retry_mode: RetryMode,
    /// Deadline of one AWS call including SDK retries, in seconds.
    #[arg(long, env = "ACCOUNT_LINK_UPSTREAM_TIMEOUT_SECS", default_value_t = 20)]
    pub upstream_timeout_secs: u64,
    /// Lease of an in-progress client-token record, in seconds; must exceed
    /// --upstream-timeout-secs.
    #[arg(
        long,
        env = "ACCOUNT_LINK_CLIENT_TOKEN_LEASE_SECS",
        default_value_t = 60
    )]
    pub client_token_lease_secs: u64,
    /// How long client-token records are kept, in hours.
    #[arg(
        long,
        env = "ACCOUNT_LINK_CLIENT_TOKEN_TTL_HOURS",
        default_value_t = 24
    )]
    pub client_token_ttl_hours: u64,
    /// Interval of the expired-record purge, in seconds.
    #[arg(long, env = "ACCOUNT_LINK_PURGE_INTERVAL_SECS", default_value_t = 300)]
    pub purge_interval_secs: u64,
    /// HMAC key deriving upstream ClientTokens; identical on every replica.
    #[arg(
        long,
        env = "ACCOUNT_LINK_UPSTREAM_TOKEN_KEY",
        default_value = DEFAULT_UPSTREAM_TOKEN_KEY,
        hide_env_values = true,
        hide_default_value = true
    )]
    pub upstream_token_key: String,
    /// PEM certificate chain for TLS on the gRPC listener (with --tls-key).
    #[arg(long, env = "ACCOUNT_LINK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "ACCOUNT_LINK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: verify client certificates against it (mTLS); the
    /// principal comes from the certificate (see README).
    #[arg(long, env = "ACCOUNT_LINK_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: also accept TLS clients without a certificate
    /// (they then need a bearer token, or anonymous access).
    #[arg(long, env = "ACCOUNT_LINK_TLS_CLIENT_AUTH_OPTIONAL")]
    pub tls_client_auth_optional: bool,
    /// Use the emulator's static credentials (access key id = account id)
    /// as the base credentials without the rest of --dev. For tests and
    /// embedding only; not a command-line flag.
    #[arg(skip)]
    pub emulator_credentials: bool,
    /// Prometheus metrics listener (`GET /metrics`).
    #[arg(
        long,
        env = "ACCOUNT_LINK_METRICS_LISTEN",
        default_value = "127.0.0.1:9184"
    )]
    pub metrics_listen: SocketAddr,
    /// Default deadline of an RPC, in milliseconds; a shorter `grpc-timeout`
    /// from the caller wins. The AWS call gets what is left.
    #[arg(long, env = "ACCOUNT_LINK_RPC_TIMEOUT_MS", default_value_t = 30_000)]
    pub rpc_timeout_ms: u64,
    /// In-flight RPC limit; past it RPCs are refused at once with
    /// RESOURCE_EXHAUSTED (load shedding).
    #[arg(long, env = "ACCOUNT_LINK_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// AWS calls per second allowed per acting account (token bucket).
    /// Default 5; in --dev with the in-process emulator, no local limit
    /// unless this (or --upstream-burst) is given.
    #[arg(long, env = "ACCOUNT_LINK_UPSTREAM_RATE_PER_SEC")]
    pub upstream_rate_per_sec: Option<u32>,
    /// Token-bucket burst per acting account. Default 10 (see
    /// --upstream-rate-per-sec for --dev).
    #[arg(long, env = "ACCOUNT_LINK_UPSTREAM_BURST")]
    pub upstream_burst: Option<u32>,
    /// Time between completer passes, in milliseconds (the completer
    /// re-drives client-token records whose driver went away); 0 turns it
    /// off.
    #[arg(
        long,
        env = "ACCOUNT_LINK_COMPLETER_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub completer_interval_ms: u64,
    /// Most records the completer takes over per pass.
    #[arg(long, env = "ACCOUNT_LINK_COMPLETER_BATCH", default_value_t = 16)]
    pub completer_batch: u32,
    /// Most completer re-drives started per second.
    #[arg(long, env = "ACCOUNT_LINK_COMPLETER_RATE_PER_SEC", default_value_t = 8)]
    pub completer_rate_per_sec: u32,
    /// How often the health probe checks the database, in milliseconds.
    #[arg(
        long,
        env = "ACCOUNT_LINK_HEALTH_PROBE_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub health_probe_interval_ms: u64,
    /// Delete audit events older than this many days, only as a whole
    /// verified prefix ending at a stored checkpoint (needs
    /// --audit-checkpoint-public-key). Default: keep forever.
    #[arg(
        long,
        env = "ACCOUNT_LINK_AUDIT_RETENTION_DAYS",
        requires = "audit_checkpoint_public_key"
    )]
    pub audit_retention_days: Option<u32>,
    /// Public key (64 hex digits, or a file) that retention trusts for checkpoints.
    #[arg(long, env = "ACCOUNT_LINK_AUDIT_PUBLIC_KEY")]
    pub audit_checkpoint_public_key: Option<String>,
    /// Grace period for in-flight RPCs at shutdown, in seconds.
    #[arg(long, env = "ACCOUNT_LINK_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// OTLP/gRPC collector to export traces to, e.g. `http://127.0.0.1:4317`
    /// (plaintext; the OpenTelemetry spec's `OTEL_EXPORTER_OTLP_ENDPOINT`).
    /// Default: no export. Needs a build with `--features otlp`; without
    /// it, a warning says traces are not exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Huawei Cloud RAM's global endpoint
/// (<https://developer.huaweicloud.com/intl/en-us/endpoint?RAM>).
pub const HUAWEI_RAM_DEFAULT_ENDPOINT: &str = "https://ram.myhuaweicloud.com";

impl ServeArgs {
    /// Settings with the defaults above and `database_url`, for tests and
    /// embedding (the environment is read, then what tests must control is
    /// reset).
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        let mut args = Cli::parse_from(["account-link-service", "serve"]);
        // `parse_from` reads env fallbacks; reset what tests must control.
        let Command::Serve(serve) = &mut args.command else {
            unreachable!("parsed the serve subcommand")
        };
        let mut serve = (**serve).clone();
        serve.database.database_url = Some(database_url.into());
        serve.aws_endpoint_url = None;
        serve.huawei_ram_endpoint = None;
        serve.config = None;
        serve.tls_cert = None;
        serve.tls_key = None;
        serve.tls_client_ca = None;
        serve
    }

    /// `--upstream-timeout-secs` as a duration.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }

    /// `--client-token-lease-secs` as a duration.
    pub fn client_token_lease(&self) -> Duration {
        Duration::from_secs(self.client_token_lease_secs)
    }

    /// The per-account upstream rate limit `(calls per second, burst)`:
    /// the flags, else 5/s with a burst of 10, except in `--dev` against
    /// the in-process emulator (no `--aws-endpoint-url`), where it is off
    /// (`None`) unless a flag is given: a walk-through or a test suite
    /// against `serve --dev` must not be throttled by a production limit.
    pub fn upstream_rate_limit(&self) -> Option<(u32, u32)> {
        const RATE: u32 = 5;
        const BURST: u32 = 10;
        let in_process = self.dev && self.aws_endpoint_url.is_none();
        match (self.upstream_rate_per_sec, self.upstream_burst) {
            (None, None) if in_process => None,
            (rate, burst) => Some((rate.unwrap_or(RATE), burst.unwrap_or(BURST))),
        }
    }

    /// `--client-token-ttl-hours` as a duration.
    pub fn client_token_ttl(&self) -> Duration {
        Duration::from_secs(self.client_token_ttl_hours.saturating_mul(3600))
    }
}

/// The SDK retry mode (AWS SDKs and Tools reference, "Retry behavior").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetryMode {
    /// Standard mode: exponential backoff with jitter and a retry quota.
    Standard,
    /// Adaptive mode: standard plus a client-side token bucket tuned by throttling.
    Adaptive,
}

/// `emulator` settings.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// HTTP listen address.
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:4566")]
    pub listen: SocketAddr,
}

/// `migrate` settings.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The store.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The TOML configuration file (README "Configuration" has a full example).
///
/// ```toml
/// [[accounts]]
/// account_id = "111111111111"        # 12 digits; ambient aws-config chain
/// [[accounts]]
/// account_id = "222222222222"
/// role_arn = "arn:aws:iam::222222222222:role/workspaces-linker"
/// external_id = "…"                  # optional
///
/// [auth]
/// allow_anonymous = false
/// [[auth.tokens]]
/// principal = "ci-bot"
/// sha256 = "<64 hex digits>"
///
/// [[policy]]
/// principal = "ci-bot"
/// methods = ["GetAccountLink", "ListAccountLinks"]
/// accounts = ["*"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The acting accounts.
    #[serde(default)]
    pub accounts: Vec<AccountEntry>,
    /// Authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Per-principal policy.
    #[serde(default)]
    pub policy: Vec<PolicyEntry>,
}

/// The cloud of an `[[accounts]]` entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountProvider {
    /// An AWS account (the default): WorkSpaces account links and AWS RAM,
    /// with the same aws-config credentials.
    #[default]
    Aws,
    /// A Huawei Cloud account: Huawei RAM, with an AK/SK.
    Huawei,
}

/// One `[[accounts]]` entry: the account and where its credentials come
/// from.
///
/// AWS (`provider = "aws"`, the default): at most one of `profile` and
/// `role_arn`; neither = the ambient aws-config chain.
///
/// Huawei (`provider = "huawei"`): the AK/SK come from the environment
/// (`access_key_id_env` and `secret_access_key_env` name the variables,
/// `security_token_env` the optional `X-Security-Token` of temporary
/// credentials) or from `credentials_file`, the `credentials.csv` Huawei's
/// console downloads (`User Name,Access Key Id,Secret Access Key`). Never
/// in the TOML itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// The cloud (default `aws`).
    #[serde(default)]
    pub provider: AccountProvider,
    /// The account id: 12 digits on AWS, the 32-hex account (domain) id on
    /// Huawei.
    pub account_id: String,
    /// Huawei: the environment variable holding the access key id.
    pub access_key_id_env: Option<String>,
    /// Huawei: the environment variable holding the secret access key.
    pub secret_access_key_env: Option<String>,
    /// Huawei: the environment variable holding the security token of
    /// temporary credentials (optional).
    pub security_token_env: Option<String>,
    /// Huawei: a `credentials.csv` as Huawei's console downloads it.
    pub credentials_file: Option<PathBuf>,
    /// A named profile of the shared AWS config files.
    pub profile: Option<String>,
    /// A role to assume (STS AssumeRole through aws-config, credentials
    /// cached and refreshed before they expire), with the ambient
    /// credentials as the source.
    pub role_arn: Option<String>,
    /// The `ExternalId` the role's trust policy requires.
    pub external_id: Option<String>,
    /// The role session name (default `account-link-service`).
    pub session_name: Option<String>,
}

/// A configuration file error.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// An entry is invalid.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl FileConfig {
    /// Reads and parses `path`.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The validated account settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a bad or duplicate account id.
    pub fn account_settings(&self) -> Result<Vec<AccountSettings>, ConfigError> {
        let mut out: Vec<AccountSettings> = Vec::with_capacity(self.accounts.len());
        for entry in &self.accounts {
            if entry.provider != AccountProvider::Aws {
                continue;
            }
            if entry.access_key_id_env.is_some()
                || entry.secret_access_key_env.is_some()
                || entry.security_token_env.is_some()
                || entry.credentials_file.is_some()
            {
                return Err(ConfigError::Invalid(format!(
                    "account {:?}: access_key_id_env, secret_access_key_env, security_token_env \
                     and credentials_file are for provider = \"huawei\"",
                    entry.account_id
                )));
            }
            let account_id = AccountId::parse(&entry.account_id).map_err(|e| {
                ConfigError::Invalid(format!("accounts.account_id {:?}: {e}", entry.account_id))
            })?;
            if out.iter().any(|a| a.account_id == account_id) {
                return Err(ConfigError::Invalid(format!(
                    "account {account_id} listed twice"
                )));
            }
            let credentials = match (&entry.profile, &entry.role_arn) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid(format!(
                        "account {account_id}: set at most one of profile and role_arn"
                    )));
                }
                (Some(p), None) => AccountCredentials::Profile(p.clone()),
                (None, Some(role_arn)) => AccountCredentials::AssumeRole {
                    role_arn: role_arn.clone(),
                    external_id: entry.external_id.clone(),
                    session_name: entry
                        .session_name
                        .clone()
                        .unwrap_or_else(|| "account-link-service".to_owned()),
                },
                (None, None) => AccountCredentials::Ambient,
            };
            if entry.external_id.is_some() && entry.role_arn.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "account {account_id}: external_id needs role_arn"
                )));
            }
            out.push(AccountSettings {
                account_id,
                credentials,
            });
        }
        Ok(out)
    }
}

/// Where a Huawei account's AK/SK come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HuaweiCredentialSource {
    /// Environment variables, read at startup.
    Env {
        /// Holds the access key id.
        access_key_id: String,
        /// Holds the secret access key.
        secret_access_key: String,
        /// Holds the security token, for temporary credentials.
        security_token: Option<String>,
    },
    /// Huawei's `credentials.csv`.
    File(PathBuf),
}

/// One configured Huawei account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuaweiAccountSettings {
    /// The account (domain) id, 32 lowercase hex characters.
    pub account_id: AccountId,
    /// Where its AK/SK come from.
    pub credentials: HuaweiCredentialSource,
}

/// A Huawei AK/SK as read from its source.
#[derive(Clone, PartialEq, Eq)]
pub struct HuaweiKeys {
    /// The access key id (AK).
    pub access_key_id: String,
    /// The secret access key (SK).
    pub secret_access_key: String,
    /// The `X-Security-Token` of temporary credentials.
    pub security_token: Option<String>,
}

impl std::fmt::Debug for HuaweiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HuaweiKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl HuaweiCredentialSource {
    /// Reads the keys: the environment variables, or the first data row of
    /// the CSV (columns found by their header names `Access Key Id` and
    /// `Secret Access Key`, case-insensitively).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable or file that is missing
    /// or malformed (never its value).
    pub fn read(&self) -> Result<HuaweiKeys, ConfigError> {
        match self {
            Self::Env {
                access_key_id,
                secret_access_key,
                security_token,
            } => {
                let var = |name: &str| {
                    std::env::var(name)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| {
                            ConfigError::Invalid(format!("environment variable {name} is not set"))
                        })
                };
                Ok(HuaweiKeys {
                    access_key_id: var(access_key_id)?,
                    secret_access_key: var(secret_access_key)?,
                    security_token: security_token.as_deref().map(var).transpose()?,
                })
            }
            Self::File(path) => {
                let bad = |why: &str| {
                    ConfigError::Invalid(format!("credentials_file {}: {why}", path.display()))
                };
                let text = std::fs::read_to_string(path).map_err(|_| bad("cannot be read"))?;
                let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                let header: Vec<String> = lines
                    .next()
                    .ok_or_else(|| bad("is empty"))?
                    .split(',')
                    .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
                    .collect();
                let column = |name: &str| {
                    header
                        .iter()
                        .position(|h| h == name)
                        .ok_or_else(|| bad(&format!("has no \"{name}\" column")))
                };
                let (ak, sk) = (column("access key id")?, column("secret access key")?);
                let row: Vec<&str> = lines
                    .next()
                    .ok_or_else(|| bad("has no data row"))?
                    .split(',')
                    .map(|v| v.trim().trim_matches('"'))
                    .collect();
                let value = |i: usize| {
                    row.get(i)
                        .filter(|v| !v.is_empty())
                        .map(|v| (*v).to_owned())
                        .ok_or_else(|| bad("has an empty key"))
                };
                Ok(HuaweiKeys {
                    access_key_id: value(ak)?,
                    secret_access_key: value(sk)?,
                    security_token: None,
                })
            }
        }
    }
}

impl FileConfig {
    /// The validated Huawei accounts (`provider = "huawei"`).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a bad or duplicate account id, AWS-only
    /// settings on a Huawei account, or not exactly one credential source.
    pub fn huawei_account_settings(&self) -> Result<Vec<HuaweiAccountSettings>, ConfigError> {
        let mut out: Vec<HuaweiAccountSettings> = Vec::new();
        for entry in self
            .accounts
            .iter()
            .filter(|e| e.provider == AccountProvider::Huawei)
        {
            let account_id = AccountId::parse_huawei(&entry.account_id).map_err(|e| {
                ConfigError::Invalid(format!("accounts.account_id {:?}: {e}", entry.account_id))
            })?;
            let invalid =
                |why: &str| ConfigError::Invalid(format!("huawei account {account_id}: {why}"));
            if out.iter().any(|a| a.account_id == account_id) {
                return Err(invalid("listed twice"));
            }
            if entry.profile.is_some()
                || entry.role_arn.is_some()
                || entry.external_id.is_some()
                || entry.session_name.is_some()
            {
                return Err(invalid(
                    "profile, role_arn, external_id and session_name are AWS settings",
                ));
            }
            let credentials = match (
                &entry.access_key_id_env,
                &entry.secret_access_key_env,
                &entry.credentials_file,
            ) {
                (Some(ak), Some(sk), None) => HuaweiCredentialSource::Env {
                    access_key_id: ak.clone(),
                    secret_access_key: sk.clone(),
                    security_token: entry.security_token_env.clone(),
                },
                (None, None, Some(path)) if entry.security_token_env.is_none() => {
                    HuaweiCredentialSource::File(path.clone())
                }
                _ => {
                    return Err(invalid(
                        "set access_key_id_env and secret_access_key_env (and optionally \
                         security_token_env), or credentials_file",
                    ));
                }
            };
            out.push(HuaweiAccountSettings {
                account_id,
                credentials,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huawei_accounts_take_keys_from_the_environment_or_a_csv_never_the_toml() {
        let domain = "0123456789abcdef0123456789abcdef";
        let toml_text = format!(
            "[[accounts]]\naccount_id = \"111111111111\"\n\
             [[accounts]]\nprovider = \"huawei\"\naccount_id = \"{domain}\"\n\
             access_key_id_env = \"ALS_TEST_HW_AK\"\nsecret_access_key_env = \"ALS_TEST_HW_SK\"\n"
        );
        let cfg: FileConfig = toml::from_str(&toml_text).unwrap();
        assert_eq!(cfg.account_settings().unwrap().len(), 1);
        let huawei = cfg.huawei_account_settings().unwrap();
        assert_eq!(huawei.len(), 1);
        assert_eq!(huawei[0].account_id.as_str(), domain);
        // The variables are not set in this process: the error names the variable.
        let err = huawei[0].credentials.read().unwrap_err().to_string();
        assert!(err.contains("ALS_TEST_HW_AK"), "{err}");

        let dir = std::env::temp_dir().join(format!("als-hw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("credentials.csv");
        std::fs::write(
            &csv,
            "User Name,Access Key Id,Secret Access Key\nops,AKEXAMPLE,SKEXAMPLE\n",
        )
        .unwrap();
        let keys = HuaweiCredentialSource::File(csv.clone()).read().unwrap();
        assert_eq!(
            (keys.access_key_id.as_str(), keys.secret_access_key.as_str()),
            ("AKEXAMPLE", "SKEXAMPLE")
        );
        assert!(!format!("{keys:?}").contains("SKEXAMPLE"));
        std::fs::write(&csv, "User Name,Access Key Id\nops,AK\n").unwrap();
        assert!(HuaweiCredentialSource::File(csv).read().is_err());

        // A clear-text key is not a setting; a Huawei id on an AWS entry is refused.
        assert!(toml::from_str::<FileConfig>(&format!(
            "[[accounts]]\nprovider = \"huawei\"\naccount_id = \"{domain}\"\nsecret_access_key = \"x\"\n"
        ))
        .is_err());
        let aws_with_huawei_keys: FileConfig = toml::from_str(
            "[[accounts]]\naccount_id = \"111111111111\"\ncredentials_file = \"/x\"\n",
        )
        .unwrap();
        assert!(aws_with_huawei_keys.account_settings().is_err());
        let no_source: FileConfig = toml::from_str(&format!(
            "[[accounts]]\nprovider = \"huawei\"\naccount_id = \"{domain}\"\n"
        ))
        .unwrap();
        assert!(no_source.huawei_account_settings().is_err());
    }

    #[test]
    fn file_config_parses_accounts_and_rejects_bad_ids() {
        let cfg: FileConfig = toml::from_str(
            "[[accounts]]\naccount_id = \"111111111111\"\n[[accounts]]\naccount_id = \"222222222222\"\nprofile = \"t\"\n",
        )
        .unwrap();
        let accounts = cfg.account_settings().unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(
            accounts[1].credentials,
            AccountCredentials::Profile("t".into())
        );
        let bad: FileConfig = toml::from_str("[[accounts]]\naccount_id = \"1\"\n").unwrap();
        assert!(bad.account_settings().is_err());
        assert!(
            toml::from_str::<FileConfig>("[[accounts]]\naccount_id = \"1\"\nbogus = 1\n").is_err()
        );
    }

    #[test]
    fn the_shipped_deploy_configs_are_valid() {
        for text in [
            include_str!("../deploy/local/accounts.toml"),
            include_str!("../deploy/aws/accounts.toml"),
        ] {
            let cfg: FileConfig = toml::from_str(text).expect("parses");
            assert!(!cfg.account_settings().expect("valid accounts").is_empty());
            crate::auth::Authenticator::new(&cfg.auth, false).expect("valid auth");
            crate::auth::Policy::new(&cfg.policy, false, &crate::grpc::METHODS)
                .expect("valid policy");
        }
    }

    #[test]
    fn cli_defaults() {
        let cli = Cli::try_parse_from(["account-link-service", "serve", "--dev"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        assert!(serve.dev);
        assert_eq!(serve.aws_max_attempts, 3);
    }

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(
            ["account-link-service", "serve"]
                .iter()
                .chain(args)
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        *serve
    }

    #[test]
    fn dev_with_the_in_process_emulator_has_no_local_rate_limit_unless_asked() {
        assert_eq!(serve(&["--dev"]).upstream_rate_limit(), None);
        assert_eq!(
            serve(&["--dev", "--upstream-rate-per-sec", "2"]).upstream_rate_limit(),
            Some((2, 10))
        );
        assert_eq!(
            serve(&["--dev", "--upstream-burst", "3"]).upstream_rate_limit(),
            Some((5, 3))
        );
        // Against another endpoint, and outside dev, the production default.
        assert_eq!(
            serve(&["--dev", "--aws-endpoint-url", "http://127.0.0.1:4566"]).upstream_rate_limit(),
            Some((5, 10))
        );
        assert_eq!(serve(&[]).upstream_rate_limit(), Some((5, 10)));
    }
}
