//! The `arachne` command: a thin layer over the library (see `arachne::runtime`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use arachne::observe::dashboard::{client, Dashboard, DashboardOptions};
use arachne::observe::secrets;
use arachne::observe::{ControlAction, ControlRequest};
use arachne::runtime::{RunError, Runtime};
use arachne::sandbox::SandboxOptions;
use arachne::spec::{self, HumanDuration};
use arachne::supervise::Chaos;

/// An actor-based crawl runtime.
#[derive(Parser, Debug)]
#[command(name = "arachne", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the crawl a spec describes.
    Run {
        /// The crawl spec (YAML).
        spec: PathBuf,
        /// Write the run's summary as JSON here.
        #[arg(long, value_name = "PATH")]
        summary_json: Option<PathBuf>,
        /// Override a spec key, e.g. `--set fetch.concurrency=8` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Keep the frontier, seen-set and sink positions here; rerunning the same command
        /// resumes a stopped or killed crawl.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Inject faults: `parser-panic=0.05,fetcher-panic=0.02,seed=7` or `poison=REGEX`.
        #[arg(long, value_name = "SPEC")]
        chaos: Option<Chaos>,
        /// Stop gracefully after this long (e.g. `90s`).
        #[arg(long, value_name = "DURATION")]
        stop_after: Option<HumanDuration>,
        /// On a stop (Ctrl-C, SIGTERM, --stop-after), let requests in flight finish for at
        /// most this long (default 5s), then cancel them and flush.
        #[arg(long, value_name = "DURATION")]
        grace: Option<HumanDuration>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
        /// Serve the dashboard, JSON API and /metrics here (e.g. `127.0.0.1:9000`); the
        /// spec's `observe:` gives the token.
        #[arg(long, value_name = "ADDR")]
        dashboard: Option<String>,
        /// Consume only these queues of the spec's routing, comma-separated (like
        /// `celery worker -Q`), e.g. `--queues documents,default`; needs a shared frontier.
        #[arg(long, value_name = "QUEUES", value_delimiter = ',')]
        queues: Option<Vec<String>>,
    },
    /// Print a running crawl's status, from its dashboard.
    Inspect {
        /// The dashboard, e.g. http://127.0.0.1:9000
        url: String,
        /// Print JSON (status, actors, hosts, queues, errors, workers).
        #[arg(long)]
        json: bool,
        /// The dashboard's token (needed when it is not on loopback).
        #[arg(long, env = "ARACHNE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Steer a running crawl through its dashboard (needs its token).
    Control {
        /// The dashboard, e.g. http://127.0.0.1:9000
        url: String,
        /// The dashboard's token.
        #[arg(long, env = "ARACHNE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The worker to act on (an id from `arachne inspect`); `*` for every worker.
        #[arg(long, global = true)]
        worker: Option<String>,
        #[command(subcommand)]
        action: ControlCommand,
    },
    /// Check a spec: prints `ok`, or every error with file:line:column and a hint.
    Validate {
        /// The crawl spec (YAML).
        spec: PathBuf,
        /// Override a spec key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Print the spec's JSON Schema, for editors (docs/spec.md, "In an editor").
    Schema,
    /// Serve the built-in demo site on 127.0.0.1.
    Sandbox {
        /// Number of item pages (1 to 1,000,000, as `sandbox.pages` in a spec).
        #[arg(long, default_value_t = 500, value_parser = parse_pages)]
        pages: u32,
        /// Port (0 picks a free one).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Add the hard cases (redirects, errors, slow and huge pages, charsets, ...).
        #[arg(long)]
        traps: bool,
    },
}

/// What `arachne control` can do.
#[derive(Subcommand, Debug)]
enum ControlCommand {
    /// Stop handing out requests (what is in flight finishes).
    Pause,
    /// Hand out requests again.
    Resume,
    /// Stop gracefully: drain, flush the sinks, exit.
    Stop,
    /// Pause one host (`host[:port]`).
    PauseHost { host: String },
    /// Resume one host.
    ResumeHost { host: String },
    /// Set the request rate (per second, 0 = no limit) of one host, of the `requests`
    /// queue (the whole crawl), or of every host.
    Rate {
        /// Requests per second.
        rate: f64,
        /// Only this host.
        #[arg(long, conflicts_with = "queue")]
        host: Option<String>,
        /// The queue (`requests`): every request, whatever its host.
        #[arg(long)]
        queue: Option<String>,
    },
    /// Add start URLs.
    Seed {
        /// Absolute http(s) URLs.
        #[arg(required = true)]
        urls: Vec<String>,
    },
    /// Queue the dead-lettered requests again.
    Requeue,
    /// Restart an actor (`fetcher-0`, `parser-1`, ...).
    Restart { actor: String },
}

impl ControlCommand {
    fn action(self) -> ControlAction {
        match self {
            ControlCommand::Pause => ControlAction::Pause,
            ControlCommand::Resume => ControlAction::Resume,
            ControlCommand::Stop => ControlAction::Stop,
            ControlCommand::PauseHost { host } => ControlAction::PauseHost { host },
            ControlCommand::ResumeHost { host } => ControlAction::ResumeHost { host },
            ControlCommand::Rate { rate, host, queue } => ControlAction::SetRate { host, queue, rate },
            ControlCommand::Seed { urls } => ControlAction::AddSeeds { urls },
            ControlCommand::Requeue => ControlAction::RequeueDeadLetters,
            ControlCommand::Restart { actor } => ControlAction::RestartActor { actor },
        }
    }
}

/// `arachne schema`: the spec's JSON Schema on standard output.
fn print_schema() -> ExitCode {
    match serde_json::to_string_pretty(&spec::json_schema()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot print the schema: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,arachne=info"));
    // Colours only for a terminal: a log captured to a file holds no escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(secrets::MaskedStderr)
        .with_ansi(ansi)
        .init();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Schema => print_schema(),
        Command::Validate { spec, overrides } => {
            track_secrets(&spec, &overrides);
            match spec::load_file(&spec, &overrides) {
                Ok(_) => {
                    println!("ok");
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{}", secrets::mask(&errors.to_string()));
                    ExitCode::from(2)
                }
            }
        }
        Command::Run {
            spec,
            summary_json,
            overrides,
            state_dir,
            chaos,
            stop_after,
            grace,
            quiet,
            dashboard,
            queues,
        } => {
            let options = RunOptions {
                queues,
                summary_json,
                state_dir,
                chaos,
                stop_after: stop_after.map(|d| d.0),
                grace: grace.map(|d| d.0),
                quiet,
                dashboard,
            };
            run(&spec, &overrides, options)
        }
        Command::Inspect { url, json, token } => remote(&url, token, |client| async move {
            let all = client.inspect().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            } else {
                print!("{}", client::render_text(&all));
            }
            Ok(())
        }),
        Command::Control { url, token, worker, action } => remote(&url, token, |client| async move {
            let answer = client.control(&ControlRequest { action: action.action(), worker }).await?;
            println!("{}", answer["done"].as_str().unwrap_or("done"));
            Ok(())
        }),
        Command::Sandbox { pages, port, traps } => match sandbox(pages, port, traps) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// Runs `call` against the dashboard at `url`: exit 0, or 1 with the error (a missing or
/// wrong token included).
fn remote<F, Fut>(url: &str, token: Option<String>, call: F) -> ExitCode
where
    F: FnOnce(client::Client) -> Fut,
    Fut: std::future::Future<Output = Result<(), client::ClientError>>,
{
    let done = client::Client::new(url, token).map_err(anyhow::Error::from).and_then(|client| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(call(client)).map_err(anyhow::Error::from)
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The flags of `arachne run` besides the spec.
struct RunOptions {
    summary_json: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    chaos: Option<Chaos>,
    stop_after: Option<Duration>,
    grace: Option<Duration>,
    quiet: bool,
    dashboard: Option<String>,
    queues: Option<Vec<String>>,
}

fn run(path: &std::path::Path, overrides: &[String], options: RunOptions) -> ExitCode {
    let RunOptions { summary_json, state_dir, chaos, stop_after, grace, quiet, dashboard, queues } = options;
    track_secrets(path, overrides);
    let spec = match spec::load_file(path, overrides) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!("{}", secrets::mask(&errors.to_string()));
            return ExitCode::from(2);
        }
    };
    if let Some(summary) = &summary_json {
        if let Err(e) = check_writable(summary, path) {
            eprintln!("error: --summary-json {}: {e}", summary.display());
            return ExitCode::from(2);
        }
    }
    let mut builder = Runtime::builder(spec).progress(!quiet).handle_ctrl_c(true);
    if let Some(d) = stop_after {
        builder = builder.stop_after(d);
    }
    if let Some(d) = grace {
        builder = builder.grace(d);
    }
    if let Some(dir) = state_dir {
        builder = builder.state_dir(dir);
    }
    if let Some(chaos) = chaos {
        builder = builder.chaos(chaos);
    }
    if let Some(queues) = queues {
        builder = builder.queues(queues);
    }
    if let Some(listen) = dashboard {
        let bound = DashboardOptions::from_spec(builder.spec().observe.as_ref(), Some(&listen))
            .and_then(Dashboard::bind);
        match bound {
            Ok(d) => {
                eprintln!("dashboard: {}", d.browser_url());
                builder = builder.dashboard(d);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match builder.run() {
        Ok(summary) => {
            eprintln!(
                "done: {} pages fetched, {} failed, {} items in {:.1}s ({:.0} pages/s)",
                summary.pages_fetched,
                summary.pages_failed,
                summary.items,
                summary.elapsed_s,
                summary.pages_per_s
            );
            if summary.links_dropped > 0 {
                let pages: Vec<String> =
                    summary.links_dropped_pages.iter().map(|(page, n)| format!("{page} ({n})")).collect();
                eprintln!(
                    "links: {} not followed past the per-page cap of {} distinct links, on {}",
                    summary.links_dropped,
                    arachne::crawl::extract::MAX_LINKS,
                    pages.join(", ")
                );
            }
            if let Some(path) = summary_json {
                let written =
                    serde_json::to_vec_pretty(&summary).context("serialising the summary").and_then(|json| {
                        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))
                    });
                if let Err(e) = written {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", secrets::mask(&e.to_string()));
            match e {
                RunError::BadSeed { .. }
                | RunError::NoSandbox(_)
                | RunError::Scope(_)
                | RunError::Parse(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

/// Every `${ENV}` value the spec or its overrides use is a secret: masked in whatever the
/// run prints, logs or writes (`arachne::observe::secrets`).
fn track_secrets(path: &std::path::Path, overrides: &[String]) {
    if let Ok(text) = std::fs::read_to_string(path) {
        secrets::register_env_references(&text);
    }
    for o in overrides {
        secrets::register_env_references(o);
    }
}

/// `--pages`: a number that `sandbox.pages` would accept.
fn parse_pages(text: &str) -> Result<u32, String> {
    let pages = text.trim().parse::<u32>().map_err(|e| format!("'{text}' is not a whole number: {e}"))?;
    arachne::sandbox::check_pages(pages)
}

/// Whether the summary can be written to `path` (checked before the crawl, so that a long
/// run does not end without its summary); never the spec itself.
fn check_writable(path: &std::path::Path, spec: &std::path::Path) -> Result<(), String> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(path), std::fs::canonicalize(spec)) {
        if a == b {
            return Err("that is the spec's own path".into());
        }
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot be written: {e}"))?;
    if !existed {
        // Written whole at the end of the run; do not leave an empty file if it fails.
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn sandbox(pages: u32, port: u16, traps: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        eprintln!("sandbox: http://{addr}/ ({pages} item pages{})", if traps { ", traps" } else { "" });
        arachne::sandbox::serve(listener, SandboxOptions { pages, traps })
            .await
            .context("serving the sandbox")
    })
}
