//! `agenthost schedule list|show|create|pause|resume|run|runs|delete`: scheduled tasks
//! and workflows' schedule triggers (`/api/schedules`, docs/automation.md).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use reqwest13::Method;
use serde_json::{Map, Value, json};

use super::automation::{cell, items, read_json, with_query};
use super::client::{Client, Credentials, print_json};
use super::commands::{Connection, Output};
use super::out::outln;
use super::plugin::segment;

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// The workspace's schedules: scheduled tasks and workflows' schedule triggers.
    List {
        /// Only this workflow's schedule triggers (its id or slug).
        #[arg(long)]
        workflow: Option<String>,
    },
    /// One schedule with its counts and next run.
    Show { id: String },
    /// A scheduled task: the whole task as JSON (`--file task.json`, `--file -` for
    /// standard input), or a task that runs a workflow, from flags:
    /// `--name Digest --cron '0 8 * * *' --timezone Europe/Berlin --workflow digest`.
    Create(Box<CreateArgs>),
    /// Stop ticking until resumed.
    Pause { id: String },
    /// Tick again from now (ticks that passed while paused are not caught up).
    Resume { id: String },
    /// Run once now, outside the schedule.
    Run { id: String },
    /// The schedule's ticks, newest first, with their executions' status.
    Runs {
        id: String,
        /// How many (1-500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
    },
    /// Delete a scheduled task (a workflow's trigger is removed from its definition).
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The task as JSON (`{"name", "schedule", "action", ...}`); `-` reads standard input.
    #[arg(long, short = 'f', conflicts_with_all = [
        "name", "description", "cron", "timezone", "every", "at", "workflow", "input",
        "catch_up", "catch_up_window", "overlap",
    ])]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Five fields (minute hour day month weekday) or six (seconds first).
    #[arg(long)]
    pub cron: Option<String>,
    /// The IANA time zone of --cron (default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// A fixed interval instead of --cron: `30s`, `15m`, `6h`, `1d`.
    #[arg(long)]
    pub every: Option<String>,
    /// Once, at this RFC 3339 instant, instead of --cron.
    #[arg(long)]
    pub at: Option<String>,
    /// The workflow each tick runs (its slug or id).
    #[arg(long)]
    pub workflow: Option<String>,
    /// The workflow's input: JSON, or `@FILE`.
    #[arg(long)]
    pub input: Option<String>,
    /// Ticks missed while no host was up.
    #[arg(long, value_enum)]
    pub catch_up: Option<CatchUp>,
    /// How far back `latest` and `all` reach (`1d`).
    #[arg(long)]
    pub catch_up_window: Option<String>,
    /// A tick due while the previous run still goes.
    #[arg(long, value_enum)]
    pub overlap: Option<Overlap>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CatchUp {
    Skip,
    Latest,
    All,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Overlap {
    Skip,
    BufferOne,
    Allow,
}

pub async fn run(args: ScheduleArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection, Credentials::Workspace)?;
    let one = |id: &str| format!("/api/schedules/{}", segment(id));
    match args.command {
        ScheduleCommand::List { workflow } => {
            let path = with_query("/api/schedules", &[("workflow", workflow)]);
            let answer = client.call(Method::GET, &path).await?;
            if client.output == Output::Json {
                return print_json(&answer);
            }
            let schedules = items(&answer, "schedules");
            if schedules.is_empty() {
                outln!("no schedules in this workspace")?;
            }
            for schedule in schedules {
                outln!("{}", schedule_line(schedule))?;
            }
            Ok(())
        }
        ScheduleCommand::Show { id } => {
            let schedule = client.call(Method::GET, &one(&id)).await?;
            print_schedule(&client, &schedule)
        }
        ScheduleCommand::Create(create) => {
            let body = match &create.file {
                Some(file) => read_json(file)?,
                None => from_flags(&create)?,
            };
            let request = client.request(Method::POST, "/api/schedules").json(&body);
            let schedule = client.send(request).await?;
            print_schedule(&client, &schedule)
        }
        ScheduleCommand::Pause { id } => {
            let path = format!("{}/pause", one(&id));
            let schedule = client.call(Method::POST, &path).await?;
            print_schedule(&client, &schedule)
        }
        ScheduleCommand::Resume { id } => {
            let path = format!("{}/resume", one(&id));
            let schedule = client.call(Method::POST, &path).await?;
            print_schedule(&client, &schedule)
        }
        ScheduleCommand::Run { id } => {
            let run = client
                .call(Method::POST, &format!("{}/run", one(&id)))
                .await?;
            match client.output {
                Output::Json => print_json(&run),
                Output::Text => outln!("{}", run_line(&run)),
            }
        }
        ScheduleCommand::Runs { id, limit } => {
            let path = with_query(
                &format!("{}/runs", one(&id)),
                &[("limit", Some(limit.to_string()))],
            );
            let answer = client.call(Method::GET, &path).await?;
            if client.output == Output::Json {
                return print_json(&answer);
            }
            let runs = items(&answer, "runs");
            if runs.is_empty() {
                outln!("no runs of schedule {id} yet")?;
            }
            for run in runs {
                outln!("{}", run_line(run))?;
            }
            Ok(())
        }
        ScheduleCommand::Delete { id } => {
            client.call(Method::DELETE, &one(&id)).await?;
            match client.output {
                Output::Json => print_json(&json!({ "deleted": id })),
                Output::Text => outln!("deleted schedule {id}"),
            }
        }
    }
}

/// A task that runs a workflow, from `create`'s flags. The server checks the schedule
/// itself (one of cron, every, at; the zone; the window) and names the field.
fn from_flags(create: &CreateArgs) -> anyhow::Result<Value> {
    let (Some(name), Some(workflow)) = (&create.name, &create.workflow) else {
        bail!(
            "schedule create needs --name and --workflow (and --cron, --every or --at), \
             or the whole task as JSON with --file"
        );
    };
    let mut schedule = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            schedule.insert(key.to_string(), value);
        }
    };
    put("cron", create.cron.clone().map(Value::String));
    put("timezone", create.timezone.clone().map(Value::String));
    put("every", create.every.clone().map(Value::String));
    put("at", create.at.clone().map(Value::String));
    put(
        "catch_up",
        create
            .catch_up
            .map(|c| json!(value_name(c.to_possible_value()))),
    );
    put(
        "catch_up_window",
        create.catch_up_window.clone().map(Value::String),
    );
    put(
        "overlap",
        create
            .overlap
            .map(|o| json!(value_name(o.to_possible_value()))),
    );
    let mut action = json!({"type": "run_workflow", "workflow": workflow});
    if let Some(input) = &create.input {
        action["input"] = read_input(input)?;
    }
    let mut task = json!({"name": name, "schedule": schedule, "action": action});
    if let Some(description) = &create.description {
        task["description"] = json!(description);
    }
    Ok(task)
}

/// The wire name of a value (`buffer_one`; clap spells it `buffer-one`).
fn value_name(value: Option<clap::builder::PossibleValue>) -> String {
    value
        .map(|v| v.get_name().replace('-', "_"))
        .unwrap_or_default()
}

/// `--input '{"n": 5}'` or `--input @input.json`.
fn read_input(text: &str) -> anyhow::Result<Value> {
    let (json, from) = match text.strip_prefix('@') {
        Some(file) => (
            std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
            file.to_string(),
        ),
        None => (text.to_string(), "--input".to_string()),
    };
    serde_json::from_str(&json).with_context(|| format!("{from} is not JSON"))
}

fn print_schedule(client: &Client, schedule: &Value) -> anyhow::Result<()> {
    match client.output {
        Output::Json => print_json(schedule),
        Output::Text => outln!("{}", schedule_line(schedule)),
    }
}

/// When a schedule fires, as the user wrote it.
fn timing(spec: &Value) -> String {
    if let Some(cron) = spec["cron"].as_str() {
        format!(
            "cron '{cron}' {}",
            spec["timezone"].as_str().unwrap_or("UTC")
        )
    } else if let Some(every) = spec["every"].as_str() {
        format!("every {every}")
    } else if let Some(at) = spec["at"].as_str() {
        format!("at {at}")
    } else {
        "?".into()
    }
}

fn schedule_line(s: &Value) -> String {
    let what = match s["kind"].as_str() {
        Some("trigger") => format!("trigger of {}", cell(&s["workflow"])),
        _ => "task".into(),
    };
    format!(
        "{}  {}  {what}  {}  {}  next {}  last {}  runs {} ({} succeeded, {} failed, {} skipped)",
        cell(&s["id"]),
        cell(&s["name"]),
        cell(&s["status"]),
        timing(&s["schedule"]),
        cell(&s["next_run_at"]),
        cell(&s["last_status"]),
        s["runs"],
        s["successes"],
        s["failures"],
        s["skipped"],
    )
}

fn run_line(run: &Value) -> String {
    let mut line = format!(
        "{}  {}  {}",
        cell(&run["at"]),
        cell(&run["kind"]),
        cell(&run["outcome"])
    );
    if let Some(execution) = run["execution_id"].as_str() {
        line.push_str(&format!("  execution {execution} {}", cell(&run["status"])));
    }
    if let Some(note) = run["note"].as_str() {
        line.push_str(&format!("  ({note})"));
    }
    line
}
