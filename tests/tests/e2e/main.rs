//! End-to-end tests. One binary, so the whole run shares one embedded PostgreSQL.
#![allow(clippy::unwrap_used)]

mod api_errors;
mod auth;
mod business_data;
mod cassie;
mod chat;
mod cli;
mod database;
mod db_capability;
mod db_hardening;
mod dexter;
mod email;
mod health;
mod http_capability;
mod knowledge_base;
mod lifecycle;
mod llm;
mod metrics;
mod nul_input;
mod openai_compat;
mod plugin_limits;
mod plugins;
mod runtime;
mod support_durability;
mod tickets;
mod vector;
mod workflow_agent;
mod workflow_durability;
mod workflow_limits;
mod workflow_nodes;
mod workflow_waits;
mod workflows;
