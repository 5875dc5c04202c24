//! `agenthost:plugin/automation`: Aura's hands. Searching node types, drafting,
//! validating, test-running and publishing workflows, running them, reading executions,
//! and creating schedules and rules, in the calling workspace, by granted scope.
//!
//! Two checks guard every call: the plugin's grant (its scopes) and the person behind
//! the call (`OnBehalf`: the key whose chat or REST call made the tool call), whose role
//! must be the one the REST API asks for the same change. A viewer's chat can read but
//! never change anything; a member can draft and run; only an admin publishes. The work
//! itself is the host's own services (`crate::automation::builder`), reached through a
//! slot because the registry that owns this capability is owned by the engine.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::Value;
use uuid::Uuid;
use wasmtime::component::{HasSelf, Linker};

use crate::auth::Role;
use crate::registry::manifest::AutomationCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::automation as wit;

/// The largest JSON argument (a draft, a schedule, a rule, an input).
pub const MAX_ARGUMENT_BYTES: usize = 256 * 1024;
/// The longest a call waits for an execution to finish.
pub const MAX_WAIT_MS: u32 = 20_000;

/// What a grant may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Draft,
    Run,
    Publish,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "draft" => Some(Scope::Draft),
            "run" => Some(Scope::Run),
            "publish" => Some(Scope::Publish),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Draft => "draft",
            Scope::Run => "run",
            Scope::Publish => "publish",
        }
    }
}

/// The person a tool call acts for: the chatting (or calling) key and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBehalf {
    /// `key:<id>` or `admin` (the instance admin token).
    pub actor: String,
    pub key_id: Option<Uuid>,
    pub role: Role,
}

impl OnBehalf {
    pub fn key(key: &crate::auth::KeyPrincipal) -> OnBehalf {
        OnBehalf {
            actor: format!("key:{}", key.key_id),
            key_id: Some(key.key_id),
            role: key.role,
        }
    }

    pub fn of(principal: &crate::auth::Principal) -> Option<OnBehalf> {
        match principal {
            crate::auth::Principal::Key(key) => Some(OnBehalf {
                actor: principal.actor(),
                key_id: Some(key.key_id),
                role: key.role,
            }),
            crate::auth::Principal::InstanceAdmin => Some(OnBehalf {
                actor: principal.actor(),
                key_id: None,
                role: Role::Owner,
            }),
            crate::auth::Principal::System(_) => None,
        }
    }
}

/// Who is asking, as the service sees it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace: Uuid,
    /// The plugin's name.
    pub plugin: String,
    pub on_behalf: Option<OnBehalf>,
    /// The request id of the call (a chat turn's id), for the audit log.
    pub request_id: String,
    /// When the plugin call must end; waits stop short of it.
    pub deadline: Option<Instant>,
}

impl Caller {
    /// How records name the change: `plugin:aura` on behalf of `key:<id>`.
    pub fn actor(&self) -> String {
        match &self.on_behalf {
            Some(person) => format!("plugin:{} for {}", self.plugin, person.actor),
            None => format!("plugin:{}", self.plugin),
        }
    }
}

/// One call of the interface, arguments parsed.
#[derive(Debug)]
pub enum Request {
    SearchNodeTypes {
        query: String,
        limit: u32,
    },
    ListWorkflows,
    GetWorkflow {
        workflow: String,
    },
    ValidateDefinition {
        definition: Value,
    },
    SaveDraft {
        workflow: String,
        draft: Value,
    },
    TestDraft {
        workflow: String,
        input: Value,
        wait_ms: u32,
    },
    PublishDraft {
        workflow: String,
    },
    RunWorkflow {
        workflow: String,
        input: Value,
        wait_ms: u32,
    },
    GetExecution {
        execution: Uuid,
    },
    ListSchedules,
    CreateSchedule {
        schedule: Value,
    },
    SetSchedulePaused {
        schedule: Uuid,
        paused: bool,
    },
    ListRules,
    CreateRule {
        rule: Value,
    },
    ListApprovals,
}

impl Request {
    /// The scope the grant must hold, and the role the person must have (none: no
    /// person needed), as the REST API asks for the same thing.
    fn needs(&self) -> (Scope, Option<Role>) {
        use Request::*;
        match self {
            SearchNodeTypes { .. }
            | ListWorkflows
            | GetWorkflow { .. }
            | ValidateDefinition { .. } => (Scope::Read, None),
            GetExecution { .. } | ListSchedules | ListRules | ListApprovals => (Scope::Read, None),
            SaveDraft { .. } => (Scope::Draft, Some(Role::Member)),
            TestDraft { .. } | RunWorkflow { .. } => (Scope::Run, Some(Role::Member)),
            SetSchedulePaused { paused: true, .. } => (Scope::Run, Some(Role::Member)),
            SetSchedulePaused { paused: false, .. } => (Scope::Publish, Some(Role::Member)),
            PublishDraft { .. } | CreateSchedule { .. } | CreateRule { .. } => {
                (Scope::Publish, Some(Role::Admin))
            }
        }
    }

    fn what(&self) -> &'static str {
        use Request::*;
        match self {
            SearchNodeTypes { .. } => "searching node types",
            ListWorkflows => "listing workflows",
            GetWorkflow { .. } => "reading a workflow",
            ValidateDefinition { .. } => "validating a definition",
            SaveDraft { .. } => "saving a draft",
            TestDraft { .. } => "test-running a draft",
            PublishDraft { .. } => "publishing a workflow",
            RunWorkflow { .. } => "running a workflow",
            GetExecution { .. } => "reading an execution",
            ListSchedules => "listing schedules",
            CreateSchedule { .. } => "creating a schedule",
            SetSchedulePaused { paused: true, .. } => "pausing a schedule",
            SetSchedulePaused { paused: false, .. } => "resuming a schedule",
            ListRules => "listing rules",
            CreateRule { .. } => "creating a rule",
            ListApprovals => "listing approvals",
        }
    }
}

pub type ServiceFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, Error>> + Send + 'a>>;

/// Does the work of a checked request. The real one is `automation::builder::Builder`.
pub trait AutomationService: Send + Sync + std::fmt::Debug {
    fn handle<'a>(&'a self, caller: &'a Caller, request: Request) -> ServiceFuture<'a>;
}

/// Set once at start, after the engine exists (see `server`).
pub type ServiceSlot = Arc<OnceLock<Arc<dyn AutomationService>>>;

#[derive(Clone, Default)]
pub struct AutomationCtx {
    pub plugin: String,
    pub workspace: Option<Uuid>,
    pub grant: Option<AutomationCapability>,
    pub service: ServiceSlot,
    /// The person behind this call; set per call by whoever invoked the tool.
    pub on_behalf: Option<OnBehalf>,
    pub request_id: String,
    pub deadline: Option<Instant>,
}

impl std::fmt::Debug for AutomationCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutomationCtx")
            .field("plugin", &self.plugin)
            .field("grant", &self.grant)
            .field("on_behalf", &self.on_behalf)
            .finish()
    }
}

pub trait AutomationView {
    fn automation(&mut self) -> &mut AutomationCtx;
}

pub fn add_to_linker<T: AutomationView + Send + 'static>(
    linker: &mut Linker<T>,
) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<AutomationCtx>>(linker, |state| state.automation())?;
    Ok(())
}

/// Whether `grant` and `person` allow `request`; the refusal says what is missing.
fn allowed(
    grant: Option<&AutomationCapability>,
    person: Option<&OnBehalf>,
    request: &Request,
) -> Result<(), Error> {
    let grant = grant.ok_or_else(|| {
        Error::Denied("the automation capability is not granted to this plugin version".into())
    })?;
    let (scope, role) = request.needs();
    if !grant.scopes.iter().any(|s| s == scope.as_str()) {
        return Err(Error::Denied(format!(
            "{} needs the automation scope {:?}, which this plugin version is not granted \
             (granted: {})",
            request.what(),
            scope.as_str(),
            grant.scopes.join(", ")
        )));
    }
    let Some(role) = role else { return Ok(()) };
    match person {
        None => Err(Error::Denied(format!(
            "{} needs a person: this call was not made from a chat or request of a workspace key",
            request.what()
        ))),
        Some(person) if person.role < role => Err(Error::Denied(format!(
            "{} needs {} key; the person in this chat is {} (ask an {} to do it or to approve it \
             from their own chat)",
            request.what(),
            role.with_article(),
            person.role.with_article(),
            Role::Admin.as_str(),
        ))),
        Some(_) => Ok(()),
    }
}

fn json_argument(name: &str, text: &str) -> Result<Value, Error> {
    if text.len() > MAX_ARGUMENT_BYTES {
        return Err(Error::Invalid(format!(
            "{name} is {} bytes of JSON, more than the {MAX_ARGUMENT_BYTES} allowed",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("{name} is not JSON: {e}")))
}

fn name_argument(name: &str, text: &str) -> Result<String, Error> {
    if text.is_empty() || text.len() > 200 || text.contains('\0') {
        return Err(Error::Invalid(format!("{name} must be 1-200 characters")));
    }
    Ok(text.to_string())
}

fn uuid_argument(name: &str, text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text.trim())
        .map_err(|_| Error::Invalid(format!("{name} {text:?} is not an id (a UUID)")))
}

impl AutomationCtx {
    async fn serve(&mut self, request: Result<Request, Error>) -> Result<String, Error> {
        let request = request?;
        allowed(self.grant.as_ref(), self.on_behalf.as_ref(), &request)?;
        let workspace = self
            .workspace
            .ok_or_else(|| Error::Invalid("this call has no workspace to automate".into()))?;
        let service = self
            .service
            .get()
            .ok_or_else(|| Error::Unavailable("automation is not available on this host".into()))?
            .clone();
        let caller = Caller {
            workspace,
            plugin: self.plugin.clone(),
            on_behalf: self.on_behalf.clone(),
            request_id: self.request_id.clone(),
            deadline: self.deadline,
        };
        let value = service.handle(&caller, request).await?;
        Ok(value.to_string())
    }
}

impl wit::Host for AutomationCtx {
    async fn search_node_types(&mut self, query: String, limit: u32) -> Result<String, Error> {
        let request = if query.len() > 500 {
            Err(Error::Invalid(
                "query must be at most 500 characters".into(),
            ))
        } else {
            Ok(Request::SearchNodeTypes {
                query,
                limit: limit.clamp(1, 20),
            })
        };
        self.serve(request).await
    }

    async fn list_workflows(&mut self) -> Result<String, Error> {
        self.serve(Ok(Request::ListWorkflows)).await
    }

    async fn get_workflow(&mut self, workflow: String) -> Result<String, Error> {
        let request =
            name_argument("workflow", &workflow).map(|workflow| Request::GetWorkflow { workflow });
        self.serve(request).await
    }

    async fn validate_definition(&mut self, definition: String) -> Result<String, Error> {
        let request = json_argument("definition", &definition)
            .map(|definition| Request::ValidateDefinition { definition });
        self.serve(request).await
    }

    async fn save_draft(&mut self, workflow: String, draft: String) -> Result<String, Error> {
        let request = name_argument("workflow", &workflow).and_then(|workflow| {
            Ok(Request::SaveDraft {
                workflow,
                draft: json_argument("draft", &draft)?,
            })
        });
        self.serve(request).await
    }

    async fn test_draft(
        &mut self,
        workflow: String,
        input: String,
        wait_ms: u32,
    ) -> Result<String, Error> {
        let request = name_argument("workflow", &workflow).and_then(|workflow| {
            Ok(Request::TestDraft {
                workflow,
                input: json_argument("input", &input)?,
                wait_ms: wait_ms.min(MAX_WAIT_MS),
            })
        });
        self.serve(request).await
    }

    async fn publish_draft(&mut self, workflow: String) -> Result<String, Error> {
        let request =
            name_argument("workflow", &workflow).map(|workflow| Request::PublishDraft { workflow });
        self.serve(request).await
    }

    async fn run_workflow(
        &mut self,
        workflow: String,
        input: String,
        wait_ms: u32,
    ) -> Result<String, Error> {
        let request = name_argument("workflow", &workflow).and_then(|workflow| {
            Ok(Request::RunWorkflow {
                workflow,
                input: json_argument("input", &input)?,
                wait_ms: wait_ms.min(MAX_WAIT_MS),
            })
        });
        self.serve(request).await
    }

    async fn get_execution(&mut self, execution_id: String) -> Result<String, Error> {
        let request = uuid_argument("execution", &execution_id)
            .map(|execution| Request::GetExecution { execution });
        self.serve(request).await
    }

    async fn list_schedules(&mut self) -> Result<String, Error> {
        self.serve(Ok(Request::ListSchedules)).await
    }

    async fn create_schedule(&mut self, schedule: String) -> Result<String, Error> {
        let request = json_argument("schedule", &schedule)
            .map(|schedule| Request::CreateSchedule { schedule });
        self.serve(request).await
    }

    async fn set_schedule_paused(
        &mut self,
        schedule_id: String,
        paused: bool,
    ) -> Result<String, Error> {
        let request = uuid_argument("schedule", &schedule_id)
            .map(|schedule| Request::SetSchedulePaused { schedule, paused });
        self.serve(request).await
    }

    async fn list_rules(&mut self) -> Result<String, Error> {
        self.serve(Ok(Request::ListRules)).await
    }

    async fn create_rule(&mut self, rule: String) -> Result<String, Error> {
        let request = json_argument("rule", &rule).map(|rule| Request::CreateRule { rule });
        self.serve(request).await
    }

    async fn list_approvals(&mut self) -> Result<String, Error> {
        self.serve(Ok(Request::ListApprovals)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scopes: &[&str]) -> AutomationCapability {
        AutomationCapability {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn person(role: Role) -> OnBehalf {
        OnBehalf {
            actor: "key:k".into(),
            key_id: None,
            role,
        }
    }

    #[test]
    fn scopes_and_roles_both_decide() {
        let publish = Request::PublishDraft {
            workflow: "w".into(),
        };
        let every = grant(&["read", "draft", "run", "publish"]);
        assert!(allowed(Some(&every), Some(&person(Role::Admin)), &publish).is_ok());
        // A member's chat may not publish, whatever the plugin holds.
        let refused = allowed(Some(&every), Some(&person(Role::Member)), &publish).unwrap_err();
        assert!(
            matches!(&refused, Error::Denied(m) if m.contains("needs an admin key") && m.contains("a member")),
            "{refused:?}"
        );
        // Nobody behind the call: reading only.
        assert!(matches!(
            allowed(Some(&every), None, &publish),
            Err(Error::Denied(_))
        ));
        assert!(allowed(Some(&every), None, &Request::ListRules).is_ok());
        // The grant limits an admin too.
        let read_only = grant(&["read"]);
        let refused = allowed(Some(&read_only), Some(&person(Role::Owner)), &publish).unwrap_err();
        assert!(
            matches!(&refused, Error::Denied(m) if m.contains("\"publish\"")),
            "{refused:?}"
        );
        assert!(matches!(
            allowed(None, Some(&person(Role::Owner)), &Request::ListRules),
            Err(Error::Denied(_))
        ));
        // Pausing is a member's, resuming makes something live again.
        let pause = Request::SetSchedulePaused {
            schedule: Uuid::nil(),
            paused: true,
        };
        let resume = Request::SetSchedulePaused {
            schedule: Uuid::nil(),
            paused: false,
        };
        let runner = grant(&["read", "run"]);
        assert!(allowed(Some(&runner), Some(&person(Role::Member)), &pause).is_ok());
        assert!(allowed(Some(&runner), Some(&person(Role::Member)), &resume).is_err());
    }

    #[test]
    fn arguments_are_checked_before_anything_runs() {
        assert!(json_argument("draft", "{").is_err());
        let big = format!("\"{}\"", "x".repeat(MAX_ARGUMENT_BYTES));
        let error = json_argument("draft", &big).unwrap_err();
        assert!(
            matches!(&error, Error::Invalid(m) if m.contains("262144")),
            "{error:?}"
        );
        assert!(name_argument("workflow", "").is_err());
        assert!(uuid_argument("execution", "nope").is_err());
        assert!(Scope::parse("publish").is_some() && Scope::parse("write").is_none());
    }
}
