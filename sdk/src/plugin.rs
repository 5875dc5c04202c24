//! The plugin traits and the types they use.

use serde_json::Value;

/// Who a call is made for, as the host passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The calling workspace (a UUID).
    pub workspace_id: String,
    /// This plugin's name.
    pub plugin: String,
    /// The plugin version serving the call.
    pub version: String,
    /// The request id of the HTTP request or job behind the call.
    pub request_id: String,
}

impl CallContext {
    /// A context for unit tests of a plugin.
    pub fn for_tests(workspace_id: &str) -> Self {
        CallContext {
            workspace_id: workspace_id.to_string(),
            plugin: "test".to_string(),
            version: "0.0.0".to_string(),
            request_id: "test-request".to_string(),
        }
    }
}

/// Why a call failed; mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The plugin's grant does not allow this.
    Denied(String),
    /// The named thing does not exist.
    NotFound(String),
    /// The input is malformed or breaks a rule.
    Invalid(String),
    /// A dependency is down or not configured.
    Unavailable(String),
    /// A bug.
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Unavailable(m) => write!(f, "unavailable: {m}"),
            Error::Internal(m) => write!(f, "internal: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Run a tool with typed input and output: `input` is decoded into `I` (an
/// `Error::Invalid` naming the problem when it doesn't fit) and the result encoded.
///
/// ```
/// use agenthost_sdk::{Error, typed};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// struct Add { a: i64, b: i64 }
/// #[derive(Serialize)]
/// struct Sum { sum: i64 }
///
/// let out = typed(serde_json::json!({"a": 2, "b": 3}), |i: Add| Ok::<_, Error>(Sum { sum: i.a + i.b }));
/// assert_eq!(out.unwrap()["sum"], 5);
/// let err = typed(serde_json::json!({"a": "x"}), |i: Add| Ok::<_, Error>(Sum { sum: i.a }));
/// assert!(matches!(err, Err(Error::Invalid(_))));
/// ```
pub fn typed<I, O>(input: Value, run: impl FnOnce(I) -> Result<O, Error>) -> Result<Value, Error>
where
    I: serde::de::DeserializeOwned,
    O: serde::Serialize,
{
    let input: I = serde_json::from_value(input)
        .map_err(|e| Error::Invalid(format!("input does not fit: {e}")))?;
    let output = run(input)?;
    serde_json::to_value(output).map_err(|e| Error::Internal(format!("output not encodable: {e}")))
}

/// A tool's name, description and JSON Schemas.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Unique within the plugin: lowercase letters, digits and `_`.
    pub name: String,
    /// What the tool does, for a language model choosing tools.
    pub description: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
    /// JSON Schema of the output.
    pub output_schema: Value,
}

impl ToolSpec {
    /// Describe a tool.
    pub fn new(name: &str, description: &str, input_schema: Value, output_schema: Value) -> Self {
        ToolSpec {
            name: name.to_string(),
            description: description.to_string(),
            input_schema,
            output_schema,
        }
    }
}

/// A workflow node type's description and schemas.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Unique within the plugin.
    pub node_type: String,
    /// What the node does.
    pub description: String,
    /// JSON Schema of the node's configuration.
    pub config_schema: Value,
    /// JSON Schema of its input.
    pub input_schema: Value,
    /// JSON Schema of its output.
    pub output_schema: Value,
    /// Outgoing branch names; empty for a single unnamed branch.
    pub branches: Vec<String>,
}

/// What a node produced and which branches fire (empty: all).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOutput {
    /// The output value.
    pub output: Value,
    /// Branches to follow; empty follows every branch.
    pub branches: Vec<String>,
}

/// A plugin offering tools. Export it with [`crate::export_tool_plugin!`].
pub trait ToolPlugin {
    /// The tools offered; must not call host functions.
    fn tools() -> Vec<ToolSpec>;
    /// Run `tool` on `input` (already validated against its input schema by the host).
    fn invoke(ctx: &CallContext, tool: &str, input: Value) -> Result<Value, Error>;
}

/// A plugin offering workflow node types. Export it with [`crate::export_node_plugin!`].
pub trait NodePlugin {
    /// The node types offered; must not call host functions.
    fn nodes() -> Vec<NodeSpec>;
    /// Execute one node.
    fn execute(
        ctx: &CallContext,
        node_type: &str,
        config: Value,
        input: Value,
    ) -> Result<NodeOutput, Error>;
}

/// Export a [`ToolPlugin`] as the component's `tools` interface.
#[macro_export]
macro_rules! export_tool_plugin {
    ($plugin:ty) => {
        struct __AgenthostExports;
        impl $crate::__private::bindings::exports::agenthost::plugin::tools::Guest
            for __AgenthostExports
        {
            fn describe() -> ::std::vec::Vec<$crate::__private::glue::RawToolDescriptor> {
                $crate::__private::glue::describe_tools::<$plugin>()
            }
            fn invoke(
                context: $crate::__private::glue::RawCallContext,
                tool: ::std::string::String,
                input: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::__private::glue::RawError> {
                $crate::__private::glue::invoke_tool::<$plugin>(context, tool, input)
            }
        }
        impl $crate::__private::bindings::exports::agenthost::plugin::nodes::Guest
            for __AgenthostExports
        {
            fn describe() -> ::std::vec::Vec<$crate::__private::glue::RawNodeDescriptor> {
                ::std::vec::Vec::new()
            }
            fn execute(
                _: $crate::__private::glue::RawCallContext,
                node_type: ::std::string::String,
                _: ::std::string::String,
                _: ::std::string::String,
            ) -> ::std::result::Result<$crate::__private::glue::RawNodeOutput, $crate::__private::glue::RawError> {
                ::std::result::Result::Err($crate::__private::glue::no_such_node(node_type))
            }
        }
        $crate::__private::bindings::__export_host!(
            __AgenthostExports with_types_in $crate::__private::bindings
        );
    };
}

/// Export a [`NodePlugin`] as the component's `nodes` interface.
#[macro_export]
macro_rules! export_node_plugin {
    ($plugin:ty) => {
        struct __AgenthostExports;
        impl $crate::__private::bindings::exports::agenthost::plugin::nodes::Guest
            for __AgenthostExports
        {
            fn describe() -> ::std::vec::Vec<$crate::__private::glue::RawNodeDescriptor> {
                $crate::__private::glue::describe_nodes::<$plugin>()
            }
            fn execute(
                context: $crate::__private::glue::RawCallContext,
                node_type: ::std::string::String,
                config: ::std::string::String,
                input: ::std::string::String,
            ) -> ::std::result::Result<$crate::__private::glue::RawNodeOutput, $crate::__private::glue::RawError> {
                $crate::__private::glue::execute_node::<$plugin>(context, node_type, config, input)
            }
        }
        impl $crate::__private::bindings::exports::agenthost::plugin::tools::Guest
            for __AgenthostExports
        {
            fn describe() -> ::std::vec::Vec<$crate::__private::glue::RawToolDescriptor> {
                ::std::vec::Vec::new()
            }
            fn invoke(
                _: $crate::__private::glue::RawCallContext,
                tool: ::std::string::String,
                _: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::__private::glue::RawError> {
                ::std::result::Result::Err($crate::__private::glue::no_such_tool(tool))
            }
        }
        $crate::__private::bindings::__export_host!(
            __AgenthostExports with_types_in $crate::__private::bindings
        );
    };
}

/// Conversions between the raw bindings and the SDK's types, used by the macros.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod glue {
    use serde_json::Value;

    use super::{CallContext, Error, NodePlugin, ToolPlugin};
    use crate::__private::bindings::agenthost::plugin::types as raw;

    pub use raw::{
        CallContext as RawCallContext, Error as RawError, NodeDescriptor as RawNodeDescriptor,
        NodeOutput as RawNodeOutput, ToolDescriptor as RawToolDescriptor,
    };

    impl From<RawCallContext> for CallContext {
        fn from(raw: RawCallContext) -> Self {
            CallContext {
                workspace_id: raw.workspace_id,
                plugin: raw.plugin,
                version: raw.version,
                request_id: raw.request_id,
            }
        }
    }

    impl From<Error> for RawError {
        fn from(error: Error) -> Self {
            match error {
                Error::Denied(m) => RawError::Denied(m),
                Error::NotFound(m) => RawError::NotFound(m),
                Error::Invalid(m) => RawError::Invalid(m),
                Error::Unavailable(m) => RawError::Unavailable(m),
                Error::Internal(m) => RawError::Internal(m),
            }
        }
    }

    impl From<RawError> for Error {
        fn from(error: RawError) -> Self {
            match error {
                RawError::Denied(m) => Error::Denied(m),
                RawError::NotFound(m) => Error::NotFound(m),
                RawError::Invalid(m) => Error::Invalid(m),
                RawError::Unavailable(m) => Error::Unavailable(m),
                RawError::Internal(m) => Error::Internal(m),
            }
        }
    }

    fn parse(what: &str, json: &str) -> Result<Value, RawError> {
        serde_json::from_str(json)
            .map_err(|e| RawError::Invalid(format!("{what} is not JSON: {e}")))
    }

    pub fn describe_tools<P: ToolPlugin>() -> Vec<RawToolDescriptor> {
        P::tools()
            .into_iter()
            .map(|tool| RawToolDescriptor {
                name: tool.name,
                description: tool.description,
                input_schema: tool.input_schema.to_string(),
                output_schema: tool.output_schema.to_string(),
            })
            .collect()
    }

    pub fn invoke_tool<P: ToolPlugin>(
        context: RawCallContext,
        tool: String,
        input: String,
    ) -> Result<String, RawError> {
        let input = parse("the input", &input)?;
        P::invoke(&context.into(), &tool, input)
            .map(|output| output.to_string())
            .map_err(RawError::from)
    }

    pub fn describe_nodes<P: NodePlugin>() -> Vec<RawNodeDescriptor> {
        P::nodes()
            .into_iter()
            .map(|node| RawNodeDescriptor {
                node_type: node.node_type,
                description: node.description,
                config_schema: node.config_schema.to_string(),
                input_schema: node.input_schema.to_string(),
                output_schema: node.output_schema.to_string(),
                branches: node.branches,
            })
            .collect()
    }

    pub fn execute_node<P: NodePlugin>(
        context: RawCallContext,
        node_type: String,
        config: String,
        input: String,
    ) -> Result<RawNodeOutput, RawError> {
        let config = parse("the node configuration", &config)?;
        let input = parse("the input", &input)?;
        let output = P::execute(&context.into(), &node_type, config, input)?;
        Ok(RawNodeOutput {
            output: output.output.to_string(),
            branches: output.branches,
        })
    }

    pub fn no_such_tool(tool: String) -> RawError {
        RawError::NotFound(format!("this plugin offers no tools (asked for {tool})"))
    }

    pub fn no_such_node(node_type: String) -> RawError {
        RawError::NotFound(format!(
            "this plugin offers no node types (asked for {node_type})"
        ))
    }
}
