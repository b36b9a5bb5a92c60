//! Benchmark of `ListAuditEvents` at scale (docs/benchmarks.md).
//!
//! Fills a dedicated database with synthetic audit events (default
//! 1 000 000, generated in SQL with `generate_series`), then runs every
//! filter shape a few hundred times through the real query function
//! (`PgStore::list_audit_events`, page size 50) and, with `--grpc`, through
//! the real server over gRPC (validation, policy, query and the call's own
//! audit append). Prints p50/p95/p99 per shape and the `EXPLAIN` of each.
//!
//! ```sh
//! cargo run --release --example audit_query_bench -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/account_link_bench --grpc
//! ```
//!
//! It is not a test: nothing here asserts a time. The filled database is
//! reused by later runs (`--refill` starts over).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use account_link_service::config::ServeArgs;
use account_link_service::proto::pb;
use account_link_service::proto::pb::audit_service_client::AuditServiceClient;
use account_link_service::startup::Application;
use account_link_service::store::postgres::explain_list_audit_events;
use account_link_service::store::{AuditQuery, IdempotencyOutcome, PgStore, Store};
use anyhow::Context;
use clap::Parser;
use sqlx::Postgres;
use sqlx::migrate::MigrateDatabase;
use time::OffsetDateTime;
use time::macros::datetime;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// The benchmark database (created, migrated and filled when needed).
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/account_link_bench"
    )]
    database_url: String,
    /// Synthetic events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
    /// Timed runs per shape (after the warm-up).
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Untimed runs per shape first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Drop and refill the database.
    #[arg(long)]
    refill: bool,
    /// Also time every shape end to end over gRPC.
    #[arg(long)]
    grpc: bool,
    /// Also time this many audit appends (the write every RPC makes) on the
    /// filled table.
    #[arg(long, default_value_t = 0)]
    appends: usize,
    /// Print the full EXPLAIN (ANALYZE, BUFFERS) of every shape.
    #[arg(long)]
    explain: bool,
}

/// The synthetic trail spans 30 days from here.
const START: OffsetDateTime = datetime!(2026-10-01 00:00:00 UTC);
const SPAN_SECS: f64 = 30.0 * 86_400.0;
const PAGE: i64 = 50;

/// Fills `audit_event` with `rows` events whose value distributions look
/// like a busy deployment: 7 methods (40 % GetAccountLink … 4 %
/// ListAuditEvents), 50 principals with a skewed load (`svc-00` ≈ 27 %,
/// `svc-10` ≈ 1.9 %, `svc-49` ≈ 0.7 %), 200 acting accounts (3 % none),
/// 100 000 links, 90 % OK and 0.1 % INTERNAL, client-token outcomes on
/// mutations (85 % new, 2 % mismatch), times 2.6 s apart with ±0.5 s jitter.
/// Hashes are SHA-256 of the seq (the chain is not verified here).
const FILL: &str = r#"
with r as (
    select g, random() as rm, random() as rp, random() as ra, random() as rl,
           random() as rc, random() as ro, random() as rj, random() as rn, random() as rt
    from generate_series($1::bigint, $2::bigint) as g
)
insert into audit_event (
    event_id, chain_id, seq, event_time, method, read_only, principal, source_ip,
    user_agent, request_id, account_id, request_parameters, response_elements,
    grpc_code, error_reason, error_message, upstream_request_id, upstream_attempts,
    idempotency_outcome, client_token_sha256, duration_us, prev_hash, row_hash
)
select
    gen_random_uuid(), 'default', g,
    $3::timestamptz + make_interval(secs => g * $4::float8 + rj - 0.5),
    v.method,
    v.method in ('GetAccountLink', 'ListAccountLinks', 'ListAuditEvents'),
    'svc-' || lpad(floor(power(rp, 3) * 50)::int::text, 2, '0'),
    '10.0.' || floor(rp * 256)::int || '.' || (g % 256),
    'grpc-go/1.66.0',
    gen_random_uuid()::text,
    v.acct,
    case v.method
        when 'GetAccountLink' then jsonb_build_object(
            'account_id', coalesce(v.acct, ''), 'link_id', v.link, 'linked_account_id', '')
        when 'ListAccountLinks' then jsonb_build_object(
            'account_id', coalesce(v.acct, ''), 'link_status_filter', '[]'::jsonb,
            'page_size', 0, 'page_token', '')
        when 'CreateAccountLinkInvitation' then jsonb_build_object(
            'account_id', coalesce(v.acct, ''), 'target_account_id', v.other)
        when 'ListAuditEvents' then jsonb_build_object(
            'start_time', null, 'end_time', null, 'method', '', 'principal', '',
            'account_id', '', 'link_id', '', 'grpc_code', '', 'idempotency_outcome', '',
            'page_size', 50, 'page_token', '')
        else jsonb_build_object('account_id', coalesce(v.acct, ''), 'link_id', v.link)
    end,
    case when v.mutation and v.code = 'OK' then jsonb_build_object('AccountLink', jsonb_build_object(
        'AccountLinkId', v.link, 'AccountLinkStatus', 'LINKED',
        'SourceAccountId', v.acct, 'TargetAccountId', v.other)) end,
    v.code,
    case when v.code <> 'OK' then 'SYNTHETIC_' || v.code end,
    case when v.code <> 'OK' then 'synthetic ' || lower(v.code) end,
    case when v.code = 'OK' and v.method <> 'ListAuditEvents' then gen_random_uuid()::text end,
    case when v.method = 'ListAuditEvents' then 0 else 1 end,
    case when not v.mutation then 'none'
         when ro < 0.85 then 'new' when ro < 0.95 then 'replayed'
         when ro < 0.98 then 'in_progress' else 'mismatch' end,
    case when v.mutation then encode(sha256(('token-' || g)::bytea), 'hex') end,
    floor(rt * 50000)::bigint,
    sha256((g - 1)::text::bytea),
    sha256(g::text::bytea)
from r
cross join lateral (
    select m.method,
           m.method in ('CreateAccountLinkInvitation', 'AcceptAccountLinkInvitation',
                        'RejectAccountLinkInvitation', 'DeleteAccountLinkInvitation') as mutation,
           case when rc < 0.90 then 'OK' when rc < 0.94 then 'NOT_FOUND'
                when rc < 0.97 then 'INVALID_ARGUMENT' when rc < 0.98 then 'PERMISSION_DENIED'
                when rc < 0.99 then 'UNAVAILABLE' when rc < 0.995 then 'ALREADY_EXISTS'
                when rc < 0.999 then 'FAILED_PRECONDITION' else 'INTERNAL' end as code,
           case when m.method = 'ListAuditEvents' or rn < 0.03 then null
                else (100000000000 + floor(ra * 200)::bigint)::text end as acct,
           'link-' || lpad(to_hex(floor(rl * 100000)::int), 8, '0') as link,
           (100000000000 + floor(rn * 200)::bigint)::text as other
    from (select case when rm < 0.40 then 'GetAccountLink'
                      when rm < 0.70 then 'ListAccountLinks'
                      when rm < 0.80 then 'CreateAccountLinkInvitation'
                      when rm < 0.88 then 'AcceptAccountLinkInvitation'
                      when rm < 0.92 then 'RejectAccountLinkInvitation'
                      when rm < 0.96 then 'DeleteAccountLinkInvitation'
                      else 'ListAuditEvents' end as method) as m
) as v
"#;

async fn fill(store: &PgStore, rows: i64) -> anyhow::Result<()> {
    let mut conn = store.pool().acquire().await?;
    sqlx::query("select setseed(0.42)")
        .execute(&mut *conn)
        .await?;
    let step = SPAN_SECS / rows as f64;
    let chunk = 100_000;
    let started = Instant::now();
    let mut lo = 1;
    while lo <= rows {
        let hi = (lo + chunk - 1).min(rows);
        sqlx::query(FILL)
            .bind(lo)
            .bind(hi)
            .bind(START)
            .bind(step)
            .execute(&mut *conn)
            .await
            .context("fill")?;
        eprintln!("  inserted {hi} rows ({:.0?})", started.elapsed());
        lo = hi + 1;
    }
    // Appends (the --grpc run audits its calls) continue after the fill.
    sqlx::query(
        "update audit_chain set last_seq = $1, last_hash = sha256($1::text::bytea) \
         where chain_id = 'default'",
    )
    .bind(rows)
    .execute(&mut *conn)
    .await?;
    sqlx::query("vacuum (analyze) audit_event, audit_event_hour")
        .execute(&mut *conn)
        .await?;
    eprintln!("  filled and analyzed in {:.1?}", started.elapsed());
    Ok(())
}

/// xorshift64*: reproducible parameter choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn principal(rng: &mut Rng) -> String {
    // svc-05..svc-19: 1.4–2.5 % of the trail each.
    format!("svc-{:02}", 5 + rng.below(15))
}

fn account(rng: &mut Rng) -> String {
    (100_000_000_000 + rng.below(200)).to_string()
}

fn link(rng: &mut Rng) -> String {
    format!("link-{:08x}", rng.below(100_000))
}

fn hour_window(rng: &mut Rng) -> (OffsetDateTime, OffsetDateTime) {
    let start = START + Duration::from_secs(rng.below(29 * 24) * 3600);
    (start, start + Duration::from_secs(3600))
}

/// One filter shape: a name and a query generator (page size 50; the
/// generator may set `before_seq` for a later page).
struct Shape {
    name: &'static str,
    make: Box<dyn Fn(&mut Rng) -> AuditQuery>,
    /// Whether the timed query is page 2 (page 1 is fetched untimed first).
    page_two: bool,
}

fn shapes(last: OffsetDateTime) -> Vec<Shape> {
    let base = || AuditQuery {
        limit: PAGE + 1,
        ..Default::default()
    };
    vec![
        Shape {
            name: "no filter (first page)",
            make: Box::new(move |_: &mut Rng| base()),
            page_two: false,
        },
        Shape {
            name: "principal",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                principal: Some(principal(r)),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "account_id",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                account_id: Some(account(r)),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "method (DeleteAccountLinkInvitation, 4 %)",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                method: Some("DeleteAccountLinkInvitation".into()),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "link_id",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                link_id: Some(link(r)),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "grpc_code NOT_FOUND (4 %)",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                grpc_code: Some("NOT_FOUND".into()),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "grpc_code OK (90 %)",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                grpc_code: Some("OK".into()),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "grpc_code INTERNAL (0.1 %)",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                grpc_code: Some("INTERNAL".into()),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "idempotency_outcome mismatch (0.5 %)",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                idempotency_outcome: Some(IdempotencyOutcome::Mismatch),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "time range: last 24 h",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                start_time: Some(last - Duration::from_secs(86_400)),
                end_time: Some(last),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "time range: random 1 h window",
            make: Box::new(move |r: &mut Rng| {
                let (start, end) = hour_window(r);
                AuditQuery {
                    start_time: Some(start),
                    end_time: Some(end),
                    ..base()
                }
            }),
            page_two: false,
        },
        Shape {
            name: "time range: random 1 min window",
            make: Box::new(move |r: &mut Rng| {
                let (start, _) = hour_window(r);
                let start = start + Duration::from_secs(60 * r.below(59));
                AuditQuery {
                    start_time: Some(start),
                    end_time: Some(start + Duration::from_secs(60)),
                    ..base()
                }
            }),
            page_two: false,
        },
        Shape {
            name: "time range: first half, no other filter",
            make: Box::new(move |_: &mut Rng| AuditQuery {
                start_time: Some(START),
                end_time: Some(START + Duration::from_secs(15 * 86_400)),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "principal + first half",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                principal: Some(principal(r)),
                start_time: Some(START),
                end_time: Some(START + Duration::from_secs(15 * 86_400)),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "principal + method + grpc_code OK",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                principal: Some(principal(r)),
                method: Some("CreateAccountLinkInvitation".into()),
                grpc_code: Some("OK".into()),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "account_id + 24 h window",
            make: Box::new(move |r: &mut Rng| {
                let (start, _) = hour_window(r);
                AuditQuery {
                    account_id: Some(account(r)),
                    start_time: Some(start),
                    end_time: Some(start + Duration::from_secs(86_400)),
                    ..base()
                }
            }),
            page_two: false,
        },
        Shape {
            name: "principal + grpc_code INTERNAL",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                principal: Some(principal(r)),
                grpc_code: Some("INTERNAL".into()),
                ..base()
            }),
            page_two: false,
        },
        Shape {
            name: "principal, page 2 (cursor)",
            make: Box::new(move |r: &mut Rng| AuditQuery {
                principal: Some(principal(r)),
                ..base()
            }),
            page_two: true,
        },
    ]
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    rows: f64,
}

fn stats(mut ms: Vec<f64>, rows: usize) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    Stats {
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: ms[ms.len() - 1],
        rows: rows as f64 / ms.len() as f64,
    }
}

async fn time_store(
    store: &PgStore,
    shape: &Shape,
    args: &Args,
    rng: &mut Rng,
) -> anyhow::Result<Stats> {
    let mut ms = Vec::with_capacity(args.iterations);
    let mut rows = 0;
    for i in 0..args.warmup + args.iterations {
        let mut query = (shape.make)(rng);
        if shape.page_two {
            let first = store.list_audit_events(&query).await?;
            query.before_seq = first.get(PAGE as usize - 1).map(|e| e.seq);
        }
        let started = Instant::now();
        let page = store.list_audit_events(&query).await?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if i >= args.warmup {
            ms.push(elapsed);
            rows += page.len().min(PAGE as usize);
        }
    }
    Ok(stats(ms, rows))
}

fn to_pb(q: &AuditQuery) -> pb::ListAuditEventsRequest {
    let ts = |t: Option<OffsetDateTime>| {
        t.map(|t| prost_types::Timestamp {
            seconds: t.unix_timestamp(),
            nanos: t.nanosecond() as i32,
        })
    };
    pb::ListAuditEventsRequest {
        start_time: ts(q.start_time),
        end_time: ts(q.end_time),
        method: q.method.clone().unwrap_or_default(),
        principal: q.principal.clone().unwrap_or_default(),
        account_id: q.account_id.clone().unwrap_or_default(),
        link_id: q.link_id.clone().unwrap_or_default(),
        grpc_code: q.grpc_code.clone().unwrap_or_default(),
        idempotency_outcome: q
            .idempotency_outcome
            .map(|o| o.as_str().to_owned())
            .unwrap_or_default(),
        page_size: PAGE as i32,
        page_token: String::new(),
        invitation_id: q.invitation_id.clone().unwrap_or_default(),
        ..Default::default()
    }
}

async fn time_grpc(
    client: &mut AuditServiceClient<tonic::transport::Channel>,
    shape: &Shape,
    args: &Args,
    rng: &mut Rng,
) -> anyhow::Result<Stats> {
    let mut ms = Vec::with_capacity(args.iterations);
    let mut rows = 0;
    for i in 0..args.warmup + args.iterations {
        let mut request = to_pb(&(shape.make)(rng));
        if shape.page_two {
            let first = client
                .list_audit_events(request.clone())
                .await?
                .into_inner();
            request.page_token = first.next_page_token;
        }
        let started = Instant::now();
        let page = client.list_audit_events(request).await?.into_inner();
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if i >= args.warmup {
            ms.push(elapsed);
            rows += page.audit_events.len();
        }
    }
    Ok(stats(ms, rows))
}

/// The plan's node lines (no timing detail), to show which index is used.
fn plan_summary(plan: &[String]) -> String {
    plan.iter()
        .filter(|l| l.contains("->") || !l.starts_with(' '))
        .filter(|l| !l.starts_with("Planning") && !l.starts_with("Execution"))
        .map(|l| {
            let l = l.trim().trim_start_matches("-> ");
            l.split("  (").next().unwrap_or(l).to_owned()
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.refill && Postgres::database_exists(&args.database_url).await? {
        Postgres::drop_database(&args.database_url).await?;
    }
    let store = PgStore::connect(&args.database_url, 4).await?;
    let (count,): (i64,) = sqlx::query_as("select count(*) from audit_event")
        .fetch_one(store.pool())
        .await?;
    if count < args.rows {
        anyhow::ensure!(
            count == 0,
            "{count} events present but {} wanted: rerun with --refill",
            args.rows
        );
        eprintln!("filling {} events…", args.rows);
        fill(&store, args.rows).await?;
    }
    // The end of the synthetic trail (appends of earlier runs come later).
    let (count, last, size): (i64, OffsetDateTime, String) = sqlx::query_as(
        "select count(*), max(event_time) filter (where seq <= $1), \
         pg_size_pretty(pg_total_relation_size('audit_event')) from audit_event",
    )
    .bind(args.rows)
    .fetch_one(store.pool())
    .await?;
    let (version,): (String,) = sqlx::query_as("select version()")
        .fetch_one(store.pool())
        .await?;
    println!("events: {count}, table + indexes: {size}");
    println!("{version}");
    println!(
        "iterations per shape: {} (after {} warm-up), page size {PAGE}\n",
        args.iterations, args.warmup
    );

    let shapes = shapes(last);
    println!("| shape | rows/page | p50 ms | p95 ms | p99 ms | max ms | plan |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (i, shape) in shapes.iter().enumerate() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
        let s = time_store(&store, shape, &args, &mut rng).await?;
        let mut query = (shape.make)(&mut Rng(7));
        let mut conn = store.pool().acquire().await?;
        if shape.page_two {
            let first = store.list_audit_events(&query).await?;
            query.before_seq = first.get(PAGE as usize - 1).map(|e| e.seq);
        }
        let plan = explain_list_audit_events(&mut conn, &query).await?;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            shape.name,
            s.rows,
            s.p50,
            s.p95,
            s.p99,
            s.max,
            plan_summary(&plan)
        );
        if args.explain {
            eprintln!("\n{}:\n{}", shape.name, plan.join("\n"));
        }
    }

    if args.appends > 0 {
        let mut ms = Vec::with_capacity(args.appends);
        for i in 0..args.appends {
            let event = common::read_event(i, "audit_query_bench");
            let started = Instant::now();
            store.append_audit_event(&event).await?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let s = stats(ms, 0);
        println!(
            "\naudit append (one transaction: chain lock, insert, head update, commit): \
             p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {}",
            s.p50, s.p95, s.p99, s.max, args.appends
        );
    }

    if args.grpc {
        let mut serve = ServeArgs::with_database_url(&args.database_url);
        serve.listen = "127.0.0.1:0".parse()?;
        serve.metrics_listen = "127.0.0.1:0".parse()?;
        serve.dev = true;
        let app = Application::build(serve).await?;
        let addr = app.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let mut client = AuditServiceClient::connect(format!("http://{addr}"))
            .await?
            .max_decoding_message_size(64 * 1024 * 1024);
        println!(
            "\nover gRPC (loopback, dev mode; includes validation, policy and the audit append)\n"
        );
        println!("| shape | rows/page | p50 ms | p95 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (i, shape) in shapes.iter().enumerate() {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            let s = time_grpc(&mut client, shape, &args, &mut rng).await?;
            println!(
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                shape.name, s.rows, s.p50, s.p95, s.p99, s.max
            );
        }
        let _ = stop.send(());
        server.await??;
    }
    Ok(())
}
