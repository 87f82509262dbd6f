//! Event-ticket commands: `user create` to bootstrap accounts from the shell, and
//! `ticket issue|verify|revoke` for staff without the HTTP API. They act on the store directly,
//! as an administrator (whoever can run them can read the database anyway), and print JSON.
//!
//! Passwords are read from standard input, never from the command line (where `ps` and shell
//! history would show them).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use auth_core::account::{Role, UserSpec};
use auth_core::event::RosterRole;
use auth_core::ticket::{self, qr, Verdict};
use auth_core::{Clock, SystemClock};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::{print, usage, with_setup, Failure};
use crate::ticketing::{Ticketing, TICKET_ISSUER};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is the first line of standard input.
    Create(UserArgs),
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[arg(long)]
    pub username: String,
    /// user, agent or admin.
    #[arg(long, default_value = "user")]
    pub role: String,
    /// Defaults to USERNAME@users.invalid (a reserved domain: nothing is ever sent there).
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long, default_value = "")]
    pub first_name: String,
    #[arg(long, default_value = "")]
    pub last_name: String,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Issue a ticket to an account on the event's users roster; prints the secret (this once)
    /// and its otpauth:// URI.
    Issue {
        #[arg(long)]
        event: i64,
        /// The holder: an account id or username.
        #[arg(long)]
        user: String,
        /// Also add the account to the event's users roster first.
        #[arg(long)]
        register: bool,
        /// Write the QR code as a PNG to this file.
        #[arg(long)]
        qr_png: Option<PathBuf>,
    },
    /// Check a code at the door; exits 0 when valid, 3 when refused (the reason is printed).
    Verify {
        #[arg(long)]
        ticket: i64,
        #[arg(long)]
        code: String,
    },
    /// Revoke a ticket: its codes are refused from now on.
    Revoke {
        #[arg(long)]
        ticket: i64,
    },
}

pub fn user(database_url: Option<String>, command: UserCommand) -> Result<(), Failure> {
    let UserCommand::Create(args) = command;
    let role: Role = args.role.parse()?;
    let password = read_password()?;
    with_setup(database_url, |config, store, hasher| {
        let ticketing = Ticketing::new(config, hasher)?;
        let email = args
            .email
            .unwrap_or_else(|| format!("{}@users.invalid", args.username.trim()));
        let spec = UserSpec {
            username: args.username,
            password,
            first_name: args.first_name,
            last_name: args.last_name,
            email,
        };
        let new = spec.validate(role, &ticketing.passwords)?;
        let account = store.create_account(new, SystemClock.now())?;
        print(&serde_json::to_value(&account).unwrap_or_default());
        Ok(())
    })
}

fn read_password() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // No echo control without a terminal library: say so rather than surprise.
        eprint!("password (shown as typed; pipe it in to hide it): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| usage(format!("cannot read the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(usage(
            "send the password on standard input, e.g. `printf '%s\\n' \"$PASSWORD\" | auth-server user create ...`",
        ));
    }
    Ok(password)
}

pub fn ticket(database_url: Option<String>, command: TicketCommand) -> Result<(), Failure> {
    with_setup(database_url, |config, store, hasher| {
        let ticketing = Ticketing::new(config, hasher)?;
        let now = SystemClock.now();
        match command {
            TicketCommand::Issue {
                event,
                user,
                register,
                qr_png,
            } => {
                let holder = match user.parse::<i64>() {
                    Ok(id) => store.account(id)?,
                    Err(_) => store.account_by_username(&user.trim().to_ascii_lowercase())?,
                }
                .ok_or(auth_core::Error::NotFound { what: "account" })?;
                if register {
                    store.add_to_roster(event, holder.id, RosterRole::Users, now)?;
                }
                let issued = ticket::issue(
                    store,
                    &ticketing.ticket_key,
                    event,
                    holder.id,
                    TICKET_ISSUER,
                    now,
                )?;
                if let Some(path) = &qr_png {
                    let png = qr::png(&issued.otpauth_uri, 8)?;
                    write_private(path, &png)?;
                }
                print(&json!({
                    "ticket_id": issued.ticket.id,
                    "event_id": event,
                    "user_id": holder.id,
                    "secret": issued.secret,
                    "otpauth_uri": issued.otpauth_uri,
                    "qr_png": qr_png,
                }));
                Ok(())
            }
            TicketCommand::Verify { ticket, code } => {
                let verdict =
                    ticket::verify(store, &ticketing.ticket_key, ticket, &code, None, now)?.verdict;
                match verdict {
                    Verdict::Valid(check_in) => {
                        print(&json!({
                            "valid": true,
                            "ticket_id": ticket,
                            "holder": check_in.holder,
                            "event": check_in.event,
                            "first_entry": check_in.first_entry,
                        }));
                        Ok(())
                    }
                    Verdict::Invalid(reason) => {
                        print(&json!({ "valid": false, "ticket_id": ticket, "reason": reason }));
                        Err(Failure {
                            message: format!("ticket {ticket} refused: {}", reason.as_str()),
                            code: 3,
                        })
                    }
                }
            }
            TicketCommand::Revoke { ticket } => {
                // As the API does. There is no server here to push the drops from: each cut
                // session is refused at its next re-check, and every node picks the revoked
                // tokens up within a second.
                let until = crate::signing::revocation_until(config.signed_token_leeway, now);
                let revoked = ticket::revoke(store, store, store, ticket, until, now)?
                    .ok_or(auth_core::Error::NotFound { what: "ticket" })?;
                let cut = revoked.cut.len();
                print(&json!({ "revoked": ticket, "sessions_cut": cut }));
                Ok(())
            }
        }
    })
}

/// The QR code holds the ticket's secret: the file is readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|e| Failure {
            message: format!("cannot write {}: {e}", path.display()),
            code: 1,
        })
}
