//! Tickets through the REST API.
