//! `agenthost:plugin/email`: send mail as one of the granted senders, within the
//! granted hourly limit, over SMTP (`--smtp-url`) or into a file outbox.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use wasmtime::component::{HasSelf, Linker};

use crate::registry::manifest::EmailCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::email::{self as wit, Message};

/// Messages per hour when a grant names no limit.
pub const DEFAULT_HOURLY_LIMIT: u32 = 100;
const HOUR: Duration = Duration::from_secs(3600);
const MAX_RECIPIENTS: usize = 100;

/// Where mail goes, shared by every plugin.
pub struct Mailer {
    transport: Transport,
    /// Send times in the last hour, per plugin (per host).
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message (Bcc kept, as the envelope isn't stored otherwise).
    Outbox(PathBuf),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Smtp(_) => f.write_str("Mailer(smtp)"),
            Transport::Outbox(dir) => write!(f, "Mailer(outbox {})", dir.display()),
        }
    }
}

impl Mailer {
    /// SMTP when `smtp_url` is set (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465`), otherwise the outbox directory.
    pub fn new(smtp_url: Option<&str>, outbox: PathBuf) -> anyhow::Result<Self> {
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("invalid --smtp-url: {e}"))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
            None => Transport::Outbox(outbox),
        };
        Ok(Mailer {
            transport,
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// Count one message against `plugin`'s hourly limit; false when it is reached.
    fn take(&self, plugin: &str, limit: u32) -> bool {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let times = sent.entry(plugin.to_string()).or_default();
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|at| now.duration_since(*at) >= HOUR)
        {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            return false;
        }
        times.push_back(now);
        true
    }

    async fn deliver(&self, message: lettre::Message, id: &str) -> Result<(), String> {
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("the SMTP server refused the message: {e}")),
            Transport::Outbox(dir) => {
                let name: String = id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                let path = dir.join(format!(
                    "{}-{name}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
                ));
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
                    std::fs::write(&path, bytes)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("could not write to the outbox: {e}"))
            }
        }
    }
}

/// The email state of one call: the plugin, its grant, the shared mailer.
#[derive(Debug, Clone, Default)]
pub struct EmailCtx {
    pub plugin: String,
    pub grant: Option<EmailCapability>,
    pub mailer: Option<Arc<Mailer>>,
}

pub trait EmailView {
    fn email(&mut self) -> &mut EmailCtx;
}

pub fn add_to_linker<T: EmailView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<EmailCtx>>(linker, |state| state.email())?;
    Ok(())
}

impl wit::Host for EmailCtx {
    async fn send(&mut self, message: Message) -> Result<String, Error> {
        let (Some(grant), Some(mailer)) = (&self.grant, &self.mailer) else {
            return Err(Error::Denied(
                "email is not granted to this plugin version".into(),
            ));
        };
        let from = mailbox(&message.from, "from")?;
        if !sender_allowed(&from, &grant.senders) {
            return Err(Error::Denied(format!(
                "{} is not a granted sender (granted: {})",
                from.email,
                grant.senders.join(", ")
            )));
        }
        let (built, id) = build(&message, from)?;
        let limit = grant.hourly_limit.unwrap_or(DEFAULT_HOURLY_LIMIT);
        if !mailer.take(&self.plugin, limit) {
            return Err(Error::Unavailable(format!(
                "the hourly email limit of {limit} messages is reached; try again later"
            )));
        }
        mailer
            .deliver(built, &id)
            .await
            .map_err(Error::Unavailable)?;
        Ok(id)
    }
}

fn mailbox(text: &str, field: &str) -> Result<Mailbox, Error> {
    text.parse::<Mailbox>()
        .map_err(|e| Error::Invalid(format!("{field}: {text:?} is not an email address ({e})")))
}

/// Exact addresses, or `*@domain` for a whole domain; case-insensitive.
fn sender_allowed(from: &Mailbox, senders: &[String]) -> bool {
    let address = from.email.to_string().to_lowercase();
    let domain = from.email.domain().to_lowercase();
    senders.iter().any(|sender| {
        let sender = sender.to_lowercase();
        match sender.strip_prefix("*@") {
            Some(allowed_domain) => allowed_domain == domain,
            None => sender == address,
        }
    })
}

fn build(message: &Message, from: Mailbox) -> Result<(lettre::Message, String), Error> {
    let recipients = message.to.len() + message.cc.len() + message.bcc.len();
    if recipients == 0 {
        return Err(Error::Invalid(
            "the message has no recipients (to, cc or bcc)".into(),
        ));
    }
    if recipients > MAX_RECIPIENTS {
        return Err(Error::Invalid(format!(
            "at most {MAX_RECIPIENTS} recipients per message"
        )));
    }
    if message.subject.len() > 998 || message.subject.contains(['\r', '\n']) {
        return Err(Error::Invalid(
            "the subject must be one line of at most 998 bytes".into(),
        ));
    }
    let id = format!("<{}@agenthost>", uuid::Uuid::new_v4());
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(message.subject.clone())
        .message_id(Some(id.clone()));
    for to in &message.to {
        builder = builder.to(mailbox(to, "to")?);
    }
    for cc in &message.cc {
        builder = builder.cc(mailbox(cc, "cc")?);
    }
    for bcc in &message.bcc {
        builder = builder.bcc(mailbox(bcc, "bcc")?);
    }
    if let Some(reply_to) = &message.reply_to {
        builder = builder.reply_to(mailbox(reply_to, "reply-to")?);
    }
    let built = match (&message.text, &message.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        )),
        (Some(text), None) => builder.header(ContentType::TEXT_PLAIN).body(text.clone()),
        (None, Some(html)) => builder.header(ContentType::TEXT_HTML).body(html.clone()),
        (None, None) => {
            return Err(Error::Invalid(
                "the message needs a text or html body".into(),
            ));
        }
    }
    .map_err(|e| Error::Invalid(format!("cannot build the message: {e}")))?;
    Ok((built, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_match_exactly_or_by_domain() {
        let from: Mailbox = "Bot <Bot@Acme.com>".parse().unwrap();
        assert!(sender_allowed(&from, &["bot@acme.com".into()]));
        assert!(sender_allowed(&from, &["*@acme.com".into()]));
        assert!(!sender_allowed(
            &from,
            &["other@acme.com".into(), "*@evil.com".into()]
        ));
        // A look-alike domain is not the granted one.
        let sneaky: Mailbox = "bot@acme.com.evil.com".parse().unwrap();
        assert!(!sender_allowed(&sneaky, &["*@acme.com".into()]));
    }

    #[test]
    fn the_hourly_limit_counts_per_plugin() {
        let mailer = Mailer::new(None, std::env::temp_dir()).unwrap();
        assert!(mailer.take("a", 2));
        assert!(mailer.take("a", 2));
        assert!(!mailer.take("a", 2));
        assert!(mailer.take("b", 2));
    }
}
