//! An answer a store gives later, once the write it waits for has committed: [`Queued`].
//!
//! A store that writes on a thread of its own (SQLite's group commit) hands the answer back
//! through a one-shot channel. An async caller awaits it: its reactor thread never blocks and no
//! blocking-pool thread sits waiting for the commit. A blocking caller waits for it with
//! [`Queued::wait`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// The answer of a queued store write: a future that resolves once the write has committed (or
/// failed). Executor-agnostic.
#[must_use = "the answer says whether the write committed"]
#[derive(Debug)]
pub struct Queued<T> {
    answer: oneshot::Receiver<Result<T>>,
}

/// Where the writer sends a [`Queued`] answer.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) type Answer<T> = oneshot::Sender<Result<T>>;

// Only a store with a writer thread of its own (SQLite) makes answers.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
impl<T> Queued<T> {
    pub(crate) fn channel() -> (Answer<T>, Queued<T>) {
        let (answer_to, answer) = oneshot::channel();
        (answer_to, Queued { answer })
    }

    /// An answer known at once (e.g. the writer could not take the job).
    pub(crate) fn ready(answer: Result<T>) -> Self {
        let (answer_to, queued) = Self::channel();
        let _ = answer_to.send(answer);
        queued
    }

    /// Blocks the calling thread until the answer arrives: for callers on a thread that may
    /// block. Unlike a runtime's `block_on`, safe on any thread.
    pub fn wait(mut self) -> Result<T> {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut context = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(answer) = Pin::new(&mut self).poll(&mut context) {
                return answer;
            }
            // Spurious wake-ups only cost another poll.
            std::thread::park();
        }
    }
}

impl<T> Future for Queued<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.answer).poll(context).map(|answer| {
            answer.unwrap_or_else(|_| Err(Error::storage("the store's writer stopped")))
        })
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_wait_gets_an_answer_sent_from_another_thread() {
        let (answer_to, queued) = Queued::<u32>::channel();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            answer_to.send(Ok(7)).unwrap();
        });
        assert_eq!(queued.wait().unwrap(), 7);
        sender.join().unwrap();
    }

    #[test]
    fn a_dropped_writer_answers_with_an_error() {
        let (answer_to, queued) = Queued::<u32>::channel();
        drop(answer_to);
        assert!(queued.wait().is_err());
    }
}
