//! SQLite's write path: one thread owns the write connection and commits in groups.
//!
//! Every write is a job sent to that thread. The thread takes whatever jobs are queued (up to
//! [`MAX_GROUP`]), runs them one after another inside one `BEGIN IMMEDIATE` transaction, each in
//! its own savepoint (a failing job rolls back alone), commits once, and only then answers each
//! caller. Under load one commit serves many requests; alone, a request is committed at once.
//!
//! Jobs run strictly one at a time on one connection inside a write transaction, so a job that
//! reads then writes (session admission: count, then insert) is atomic against every other job
//! and, through the database lock, against other processes.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::Queued;
use crate::error::{Error, Result};

/// Most jobs committed together.
pub const MAX_GROUP: usize = 256;

/// Prepared statements the writer keeps (rusqlite's default is 16).
const WRITER_STATEMENTS: usize = 128;

/// Runs a job's work inside the group's transaction (`None` if the transaction could not be
/// started); returns whether the work failed (its savepoint is then rolled back) and what to do
/// once the group's commit is known.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;
type Finish = Box<dyn FnOnce(&Result<()>) + Send>;

pub struct GroupCommit {
    jobs: Option<Sender<(Priority, Job)>>,
    thread: Option<JoinHandle<()>>,
}

/// Requests wait for urgent jobs (admissions, management writes); background jobs (access log
/// chunks, lease extension flushes) only need to happen soon. Each group takes every urgent job
/// queued but at most [`BACKGROUND_PER_GROUP`] background ones, and background jobs are kept
/// small, so an admission never waits behind a long backlog of bulk writes. With no urgent job
/// waiting, a group takes up to [`BACKGROUND_PER_IDLE_GROUP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Urgent,
    Background,
}

/// Background jobs joined to a group that has urgent ones.
const BACKGROUND_PER_GROUP: usize = 1;
/// Background jobs joined to a group that has none: catching up while nothing waits.
const BACKGROUND_PER_IDLE_GROUP: usize = 8;

impl GroupCommit {
    pub fn spawn(conn: Connection) -> std::io::Result<Self> {
        // Every write statement of the store runs on this connection: room for all of them, so
        // that an admission's statements stay parsed whatever else was written in between.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let (jobs, queue) = mpsc::channel::<(Priority, Job)>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, queue))?;
        Ok(GroupCommit {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` on the writer thread within a transaction and returns its result once that
    /// transaction has committed. Blocks the calling thread.
    pub fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.run_then(work, |_| {})
    }

    /// As [`GroupCommit::run`], and once the transaction has committed (and only then) calls
    /// `on_commit` with the result, on the writer thread, before the next group starts: state
    /// kept beside the database changes in the same order as the database.
    pub fn run_then<T, F, C>(&self, work: F, on_commit: C) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        self.queue_then(work, on_commit).wait()
    }

    /// As [`GroupCommit::run_then`] without blocking: the answer is awaited instead, so an async
    /// caller needs no blocking thread while the group commits.
    pub fn queue_then<T, F, C>(&self, work: F, on_commit: C) -> Queued<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        self.queue(Priority::Urgent, work, on_commit)
    }

    /// Queues `work` with `priority`; its answer arrives once its group has committed
    /// (`on_commit` has run by then).
    pub fn queue<T, F, C>(&self, priority: Priority, work: F, on_commit: C) -> Queued<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        let (reply, answer) = Queued::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = match conn {
                Some(conn) => work(conn),
                None => Err(Error::storage("could not begin a write transaction")),
            };
            let failed = outcome.is_err();
            let finish: Finish = Box::new(move |committed: &Result<()>| {
                let answer = match committed {
                    Ok(()) => outcome,
                    Err(err) => Err(Error::storage(err)),
                };
                if let Ok(value) = &answer {
                    on_commit(value);
                }
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(answer);
            });
            (failed, finish)
        });
        match self.jobs.as_ref().map(|jobs| jobs.send((priority, job))) {
            Some(Ok(())) => answer,
            _ => Queued::ready(Err(gone())),
        }
    }
}

impl GroupCommit {
    /// Queues `work` for the next group without waiting for it. Failures are logged.
    pub fn submit<F>(&self, what: &'static str, work: F)
    where
        F: FnOnce(&Connection) -> Result<()> + Send + 'static,
    {
        // Nobody waits for the answer: report a failure here (a failed commit is logged by
        // the writer).
        let logged = move |conn: &Connection| {
            work(conn).inspect_err(|err| log::error!("{what} failed: {err}"))
        };
        // Nobody waits for the answer; a job the writer could not take is lost, and said so.
        if self.jobs.is_none() {
            log::error!("{what} lost: {}", gone());
        }
        drop(self.queue(Priority::Background, logged, |_| {}));
    }
}

fn gone() -> Error {
    Error::storage("the SQLite writer thread has stopped")
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and stop.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the SQLite writer thread panicked");
            }
        }
    }
}

fn write_loop(conn: Connection, queue: Receiver<(Priority, Job)>) {
    let mut urgent: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut background: VecDeque<Job> = VecDeque::new();
    loop {
        // Block only when nothing is deferred.
        if background.is_empty() {
            match queue.recv() {
                Ok((Priority::Urgent, job)) => urgent.push(job),
                Ok((Priority::Background, job)) => background.push_back(job),
                Err(_) => break,
            }
        }
        while urgent.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok((Priority::Urgent, job)) => urgent.push(job),
                Ok((Priority::Background, job)) => background.push_back(job),
                Err(_) => break,
            }
        }
        let limit = if urgent.is_empty() {
            BACKGROUND_PER_IDLE_GROUP
        } else {
            BACKGROUND_PER_GROUP
        };
        let take = limit.min(background.len());
        let group: Vec<Job> = urgent.drain(..).chain(background.drain(..take)).collect();
        if !group.is_empty() {
            commit_group(&conn, group.into_iter());
        }
    }
}

/// Runs one statement the writer runs for every job, from the statement cache: parsing
/// `SAVEPOINT`/`RELEASE` anew for each admission cost more than the admission's own queries.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn commit_group(conn: &Connection, group: impl Iterator<Item = Job>) {
    if let Err(err) = control(conn, "BEGIN IMMEDIATE") {
        log::warn!("could not begin a write transaction: {err}");
        for job in group {
            let (_, finish) = job(None);
            finish(&Err(Error::storage(format!(
                "could not begin a write transaction: {err}"
            ))));
        }
        return;
    }
    let mut finishes: Vec<Finish> = Vec::new();
    for job in group {
        if let Err(err) = control(conn, "SAVEPOINT job") {
            let (_, finish) = job(None);
            finish(&Err(Error::storage(format!(
                "could not open a savepoint: {err}"
            ))));
            continue;
        }
        let (failed, finish) = job(Some(conn));
        // A failed job's partial writes leave the group; the others still commit.
        let rolled_back = if failed {
            control(conn, "ROLLBACK TO job")
        } else {
            Ok(())
        };
        if let Err(err) = rolled_back.and_then(|()| control(conn, "RELEASE job")) {
            log::error!("closing a savepoint failed: {err}");
        }
        finishes.push(finish);
    }
    let committed = control(conn, "COMMIT").map_err(|err| {
        let _ = conn.execute_batch("ROLLBACK");
        log::error!("a write group failed to commit: {err}");
        Error::storage(format!("commit failed: {err}"))
    });
    for finish in finishes {
        finish(&committed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn writer() -> (tempfile::TempDir, Arc<GroupCommit>, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER NOT NULL)")
            .unwrap();
        (dir, Arc::new(GroupCommit::spawn(conn).unwrap()), path)
    }

    fn count(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_failed_job_rolls_back_alone() {
        let (_dir, writer, path) = writer();
        let failed: Result<()> = writer.run(|conn| {
            conn.execute("INSERT INTO t (n) VALUES (1)", [])?;
            Err(Error::invalid("n", "refused after writing"))
        });
        assert_eq!(
            failed.unwrap_err().field(),
            Some("n"),
            "the job's own error comes back"
        );
        writer
            .run(|conn| {
                conn.execute("INSERT INTO t (n) VALUES (2)", [])
                    .map_err(Error::from)
            })
            .unwrap();
        assert_eq!(count(&path), 1, "only the successful job's row is there");
    }

    #[test]
    fn urgent_jobs_overtake_a_background_backlog() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (_dir, writer, _path) = writer();
        let done = Arc::new(AtomicUsize::new(0));
        // Hold the writer (with an urgent job, so that its group takes at most one background
        // job) while everything below queues up behind it.
        let (release, hold) = mpsc::channel::<()>();
        let held = writer.queue(
            Priority::Urgent,
            move |_| {
                let _ = hold.recv();
                Ok(())
            },
            |_| {},
        );
        for _ in 0..20 {
            let done = Arc::clone(&done);
            writer.submit("background", move |conn| {
                conn.execute("INSERT INTO t (n) VALUES (0)", [])?;
                done.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        // Queued (not run) before the writer is freed.
        let done_then = Arc::clone(&done);
        let urgent = writer.queue(
            Priority::Urgent,
            move |_| Ok(done_then.load(Ordering::SeqCst)),
            |_| {},
        );
        release.send(()).unwrap();
        held.wait().unwrap();
        let background_before_urgent = urgent.wait().unwrap();
        // At most one background job shares the holding group, and one the urgent job's group.
        assert!(
            background_before_urgent <= 2 * BACKGROUND_PER_GROUP,
            "{background_before_urgent} of 20 background jobs ran first"
        );
    }

    #[test]
    fn concurrent_jobs_all_commit_before_answering() {
        let (_dir, writer, path) = writer();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let writer = Arc::clone(&writer);
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let n = t * 1000 + i;
                        writer
                            .run(move |conn| {
                                conn.execute("INSERT INTO t (n) VALUES (?1)", [n])
                                    .map_err(Error::from)
                            })
                            .unwrap();
                        // Answered means committed: visible to another connection at once.
                        let seen: i64 = Connection::open(&path)
                            .unwrap()
                            .query_row("SELECT COUNT(*) FROM t WHERE n = ?1", [n], |r| r.get(0))
                            .unwrap();
                        assert_eq!(seen, 1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(count(&path), 400);
    }
}
