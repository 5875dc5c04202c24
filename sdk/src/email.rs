//! Send email through the host, as a sender your plugin version was granted.
//!
//! ```
//! use agenthost_sdk::{email::{self, Message}, testing::{self, TestHost}};
//! let _host = TestHost::new().install();
//! let message = Message::new("bot@acme.com", "ada@example.com", "Your report")
//!     .text("It is attached in spirit.");
//! let id = email::send(&message).unwrap();
//! assert!(id.starts_with('<'));
//! assert_eq!(testing::sent_emails()[0].subject, "Your report");
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;

/// One message; see the WIT `email.message` for the rules the host applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// Sender: must match a granted sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    pub cc: Vec<String>,
    /// Blind copy recipients.
    pub bcc: Vec<String>,
    /// Reply address.
    pub reply_to: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
}

impl Message {
    /// A message with one recipient and no body yet.
    pub fn new(from: &str, to: &str, subject: &str) -> Self {
        Message {
            from: from.to_string(),
            to: vec![to.to_string()],
            subject: subject.to_string(),
            ..Message::default()
        }
    }

    /// Set the plain-text body.
    pub fn text(mut self, text: &str) -> Self {
        self.text = Some(text.to_string());
        self
    }

    /// Set the HTML body.
    pub fn html(mut self, html: &str) -> Self {
        self.html = Some(html.to_string());
        self
    }
}

/// Send a message; returns its Message-ID.
pub fn send(message: &Message) -> Result<String, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::email as raw;
        let raw_message = raw::Message {
            from: message.from.clone(),
            to: message.to.clone(),
            cc: message.cc.clone(),
            bcc: message.bcc.clone(),
            reply_to: message.reply_to.clone(),
            subject: message.subject.clone(),
            text: message.text.clone(),
            html: message.html.clone(),
        };
        raw::send(&raw_message).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::record_email(message)
    }
}
