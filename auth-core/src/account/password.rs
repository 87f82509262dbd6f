//! Passwords: Argon2id hashes in PHC string form, and the rules a new password must meet.
//!
//! The clear text is only ever an argument here: never stored, logged or echoed in an error.
//! Hashing is deliberately slow (tens of milliseconds, 19 MiB): the calls block until done.
//!
//! Every hash runs on one of a few threads of [`Passwords`]' own ([`HASH_THREADS`]), never on
//! the caller's: the allocator keeps each thread's freed 19 MiB for that thread to reuse, so
//! hashing on whatever thread asks (an async runtime's blocking pool grows to hundreds) left
//! about a gigabyte resident after a burst of failed logins. On a fixed pool it is bounded by
//! the pool's size.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 256;

/// Threads that hash: the most hashes in memory at once.
pub const HASH_THREADS: usize = 2;

/// Argon2id with OWASP's recommended floor (19 MiB, 2 passes, 1 lane) unless told otherwise,
/// computed on a pool of [`HASH_THREADS`] threads.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against when a username is unknown so that a
    /// login for a missing account takes as long as one for a real account.
    dummy: String,
    pool: Arc<Pool>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, fed through one queue; they end when the last `Passwords` is dropped.
struct Pool {
    jobs: Mutex<Option<Sender<Job>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn spawn(size: usize) -> Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..size.max(1))
            .map(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("argon2-{i}"))
                    .spawn(move || work(&queue))
                    .map_err(|e| Error::storage(format!("cannot start a hashing thread: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Pool {
            jobs: Mutex::new(Some(jobs)),
            threads,
        })
    }

    /// Runs `job` on a pool thread and waits for its answer.
    fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (answer, answered) = mpsc::sync_channel::<T>(1);
        let reply = move || {
            let _ = SyncSender::send(&answer, job());
        };
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().map(|jobs| jobs.send(Box::new(reply))),
            Err(_) => None,
        };
        if !matches!(sent, Some(Ok(()))) {
            return Err(Error::storage("the password hashing threads are gone"));
        }
        answered
            .recv()
            .map_err(|_| Error::storage("a password hashing thread failed"))
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only to take one job, not while hashing.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Passwords {
    pub fn new() -> Result<Self> {
        Self::with_params(Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, 1)
    }

    /// Memory in KiB, passes, lanes.
    pub fn with_params(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self> {
        let params = Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| Error::invalid("argon2", e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut passwords = Passwords {
            argon,
            dummy: String::new(),
            pool: Arc::new(Pool::spawn(HASH_THREADS)?),
        };
        let mut random = [0u8; 24];
        fill(&mut random)?;
        passwords.dummy = passwords.hash(&hex_of(&random))?;
        Ok(passwords)
    }

    /// The PHC string (`$argon2id$v=19$m=...`) of `password` under a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        fill(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::storage(e.to_string()))?;
        let (argon, password) = (self.argon.clone(), password.to_owned());
        self.pool.run(move || {
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| Error::storage(format!("hashing a password failed: {e}")))
        })?
    }

    /// Whether `password` matches `stored` (constant-time inside Argon2). A stored hash that
    /// does not parse matches nothing; neither does any password when the hashing threads are
    /// gone.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        let (argon, password, stored) =
            (self.argon.clone(), password.to_owned(), stored.to_owned());
        self.pool
            .run(move || match PasswordHash::new(&stored) {
                Ok(hash) => argon.verify_password(password.as_bytes(), &hash).is_ok(),
                Err(_) => false,
            })
            .unwrap_or(false)
    }

    /// Spends the time of one verification and fails: for unknown usernames.
    pub fn verify_nothing(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.dummy);
        false
    }
}

/// The rules a new password must meet. Length is what makes a password strong; composition rules
/// ("one digit, one symbol") add little (NIST SP 800-63B), so there are none.
pub fn check_rules(password: &str, username: &str) -> Result<()> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&chars) {
        return Err(Error::invalid(
            "password",
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "password",
            "must not contain control characters",
        ));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err(Error::unprocessable(
            "password",
            "must use at least 4 different characters",
        ));
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err(Error::unprocessable(
            "password",
            "must not contain the username",
        ));
    }
    Ok(())
}

fn fill(bytes: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(bytes)
        .map_err(|_| Error::storage("the system random number generator failed"))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let p = Passwords::with_params(1024, 1, 1).unwrap();
        let a = p.hash("correct horse battery").unwrap();
        let b = p.hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains("correct"));
        assert!(p.verify("correct horse battery", &a));
        assert!(!p.verify("correct horse batterx", &a));
        assert!(!p.verify("anything", "not a hash"));
        assert!(!p.verify_nothing("correct horse battery"));
    }

    /// Many callers at once are served by the pool's threads, and only by them.
    #[test]
    fn hashes_run_on_the_pool_only() {
        let p = Passwords::with_params(1024, 1, 1).unwrap();
        let stored = p.hash("correct horse battery").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (p, stored) = (p.clone(), stored.clone());
                std::thread::spawn(move || {
                    let guess = if i % 2 == 0 {
                        "correct horse battery"
                    } else {
                        "wrong"
                    };
                    p.verify(guess, &stored) == (i % 2 == 0)
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
        let names = p
            .pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .unwrap();
        assert!(names.is_some_and(|n| n.starts_with("argon2-")));
    }

    #[test]
    fn rules_give_a_reason() {
        for (bad, why) in [
            ("short1", "characters long"),
            ("aaaaaaaaaaaaaa", "different"),
            ("xx-alice-yy-zz", "username"),
            ("tab\tinside-password", "control"),
        ] {
            let err = check_rules(bad, "alice").unwrap_err();
            assert_eq!(err.field(), Some("password"));
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        check_rules("a long enough passphrase", "alice").unwrap();
    }
}
