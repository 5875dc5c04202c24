//! Tickets: create, list, show, update, comment, import.
