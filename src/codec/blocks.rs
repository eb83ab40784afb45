//! Fixed-size blocks compressed independently on worker threads and handed back in input
//! order: the xz and zstd encoders are built on it.
//!
//! A block's compressed form depends only on its bytes and the codec's fixed settings, never
//! on which thread compressed it, so the thread count cannot change a byte. At most
//! `2 * threads` blocks are in flight (each holds its input and its output), so memory is
//! bounded by threads × block size whatever the length of the stream.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// At most this many threads, whatever the host has or the caller asks for: it bounds the
/// memory of a stream.
pub const MAX_THREADS: usize = 16;

/// The threads to compress with by default: the CPUs this process may run on, at most
/// [`MAX_THREADS`]. The output is the same for every value.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(NonZeroUsize::get)
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// A compressor of one whole block, with every setting fixed by the codec.
pub trait BlockCodec: Send + Sync + 'static {
    /// What one block becomes (its compressed bytes and what the container records of it).
    type Out: Send + 'static;
    /// Compresses one block; the same bytes give the same result on every host.
    fn compress(&self, block: &[u8]) -> io::Result<Self::Out>;
}

/// Blocks handed in by [`BlockPipeline::push`], compressed results handed back in order.
pub struct BlockPipeline<C: BlockCodec> {
    codec: Arc<C>,
    threads: usize,
    pool: Option<Pool<C>>,
    submitted: usize,
    returned: usize,
}

impl<C: BlockCodec> BlockPipeline<C> {
    /// A pipeline on up to `threads` threads (clamped to 1..=[`MAX_THREADS`]); threads start
    /// when a second block arrives, so a stream of one block starts none.
    pub fn new(codec: C, threads: usize) -> Self {
        BlockPipeline {
            codec: Arc::new(codec),
            threads: threads.clamp(1, MAX_THREADS),
            pool: None,
            submitted: 0,
            returned: 0,
        }
    }

    fn max_in_flight(&self) -> usize {
        2 * self.threads
    }

    /// Queues one block; returns the results that are ready and next in order (waiting for
    /// the oldest while too many are in flight).
    pub fn push(&mut self, block: Vec<u8>) -> io::Result<Vec<C::Out>> {
        if self.pool.is_none() && self.threads > 1 && self.submitted > 0 {
            self.pool = Pool::start(self.threads, self.codec.clone());
        }
        let Some(pool) = &self.pool else {
            self.submitted += 1;
            self.returned += 1;
            return Ok(vec![self.codec.compress(&block)?]);
        };
        let mut out = Vec::new();
        while self.submitted - self.returned >= self.max_in_flight() {
            let done = pool.take_done(self.returned, true)?;
            self.returned += done.len();
            out.extend(done);
        }
        pool.push(self.submitted, block);
        self.submitted += 1;
        let done = pool.take_done(self.returned, false)?;
        self.returned += done.len();
        out.extend(done);
        Ok(out)
    }

    /// Waits for every block still in flight; returns their results in order and stops the
    /// threads.
    pub fn finish(&mut self) -> io::Result<Vec<C::Out>> {
        let mut out = Vec::new();
        if let Some(pool) = &self.pool {
            while self.returned < self.submitted {
                let done = pool.take_done(self.returned, true)?;
                self.returned += done.len();
                out.extend(done);
            }
        }
        self.pool = None;
        Ok(out)
    }

    /// Blocks pushed so far.
    pub fn blocks(&self) -> usize {
        self.submitted
    }
}

/// Worker threads that compress blocks in any order and keep the results by index.
struct Pool<C: BlockCodec> {
    shared: Arc<Shared<C::Out>>,
    workers: Vec<JoinHandle<()>>,
}

struct Shared<T> {
    state: Mutex<PoolState<T>>,
    /// Signalled when a block is queued or the pool stops.
    queued: Condvar,
    /// Signalled when a block is done (or failed).
    done: Condvar,
}

struct PoolState<T> {
    queue: VecDeque<(usize, Vec<u8>)>,
    done: BTreeMap<usize, T>,
    stop: bool,
    failed: Option<io::Error>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, PoolState<T>> {
        // Nothing panics while holding the lock; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: BlockCodec> Pool<C> {
    fn start(threads: usize, codec: Arc<C>) -> Option<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                done: BTreeMap::new(),
                stop: false,
                failed: None,
            }),
            queued: Condvar::new(),
            done: Condvar::new(),
        });
        let workers: Vec<JoinHandle<()>> = (0..threads)
            .filter_map(|_| {
                let (shared, codec) = (shared.clone(), codec.clone());
                std::thread::Builder::new()
                    .name("pimg-compress".into())
                    .spawn(move || work(&shared, &*codec))
                    .ok()
            })
            .collect();
        if workers.is_empty() {
            return None;
        }
        Some(Pool { shared, workers })
    }

    fn push(&self, index: usize, block: Vec<u8>) {
        self.shared.lock().queue.push_back((index, block));
        self.shared.queued.notify_one();
    }

    /// The done results from `next` on, in order, up to the first not yet done; with
    /// `wait`, waits until `next` is done.
    fn take_done(&self, mut next: usize, wait: bool) -> io::Result<Vec<C::Out>> {
        let mut st = self.shared.lock();
        while wait && !st.done.contains_key(&next) {
            if let Some(e) = &st.failed {
                return Err(io::Error::new(e.kind(), e.to_string()));
            }
            st = self
                .shared
                .done
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let mut out = Vec::new();
        while let Some(r) = st.done.remove(&next) {
            out.push(r);
            next += 1;
        }
        Ok(out)
    }
}

impl<C: BlockCodec> Drop for Pool<C> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.queued.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn work<C: BlockCodec>(shared: &Shared<C::Out>, codec: &C) {
    loop {
        let (index, block) = {
            let mut st = shared.lock();
            loop {
                if st.stop {
                    return;
                }
                if let Some(job) = st.queue.pop_front() {
                    break job;
                }
                st = shared
                    .queued
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| codec.compress(&block)));
        drop(block);
        let mut st = shared.lock();
        match result {
            Ok(Ok(out)) => {
                st.done.insert(index, out);
            }
            Ok(Err(e)) => st.failed = Some(e),
            Err(_) => st.failed = Some(io::Error::other("a compressing thread panicked")),
        }
        drop(st);
        shared.done.notify_all();
    }
}
