//! Fixed-size blocks compressed independently on worker threads and handed back in input
//! order: the gzip, xz and zstd encoders are built on it.
//!
//! A block's compressed form depends only on its bytes and the codec's fixed settings, never
//! on which thread compressed it, so the thread count cannot change a byte. At most
//! `max(MIN_IN_FLIGHT, 2 * threads)` blocks are in flight (each holds its input and its
//! output), so memory is bounded by threads × block size whatever the length of the stream.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
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
    /// Uncompressed bytes per block: part of the codec's output format.
    const BLOCK_SIZE: usize;
    /// Blocks in flight at the least, whatever the thread count: small blocks want more so
    /// that a slow one does not leave the threads idle.
    const MIN_IN_FLIGHT: usize = 0;
    /// Compresses one block that is not the last; the same bytes give the same result on
    /// every host.
    fn compress(&self, block: &[u8]) -> io::Result<Self::Out>;
    /// Compresses the last block of the stream, which is empty only when the whole stream
    /// is; by default like any other block.
    fn compress_last(&self, block: &[u8]) -> io::Result<Option<Self::Out>> {
        self.compress(block).map(Some)
    }
}

/// Bytes handed in by [`BlockPipeline::write`], cut into blocks, compressed results handed
/// back in order.
pub struct BlockPipeline<C: BlockCodec> {
    codec: Arc<C>,
    threads: usize,
    pool: Option<Pool<C>>,
    /// The block being filled; a full one is handed on only once more input follows, so the
    /// last block is known when `finish` comes.
    current: Vec<u8>,
    submitted: usize,
    returned: usize,
}

impl<C: BlockCodec> BlockPipeline<C> {
    /// A pipeline on up to `threads` threads (clamped to 1..=[`MAX_THREADS`]); threads start
    /// when a second block begins, so a stream of one block starts none.
    pub fn new(codec: C, threads: usize) -> Self {
        BlockPipeline {
            codec: Arc::new(codec),
            threads: threads.clamp(1, MAX_THREADS),
            pool: None,
            current: Vec::new(),
            submitted: 0,
            returned: 0,
        }
    }

    /// Blocks handed to the threads and not yet returned, at most.
    pub fn max_in_flight(&self) -> usize {
        C::MIN_IN_FLIGHT.max(2 * self.threads)
    }

    /// Takes bytes from `buf` into the current block, as many as fit (at least one of a
    /// non-empty `buf`); returns how many, and the results that are ready and next in order.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<(usize, Vec<C::Out>)> {
        if buf.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut out = Vec::new();
        if self.current.len() == C::BLOCK_SIZE {
            // More input follows this full block, so it is not the last one.
            let block = std::mem::take(&mut self.current);
            out = self.push(block)?;
        }
        if self.current.capacity() == 0 {
            self.current
                .reserve_exact(C::BLOCK_SIZE.min(buf.len().next_power_of_two()));
        }
        let n = buf.len().min(C::BLOCK_SIZE - self.current.len());
        self.current.extend_from_slice(&buf[..n]);
        Ok((n, out))
    }

    /// Queues one block; returns the results that are ready and next in order (waiting for
    /// the oldest while too many are in flight).
    fn push(&mut self, block: Vec<u8>) -> io::Result<Vec<C::Out>> {
        if self.pool.is_none() && self.threads > 1 {
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

    /// Compresses the last block (on the calling thread, while the workers finish theirs),
    /// waits for every block still in flight, returns all their results in order and stops
    /// the threads.
    pub fn finish(&mut self) -> io::Result<Vec<C::Out>> {
        let last = self
            .codec
            .compress_last(&std::mem::take(&mut self.current))?;
        let mut out = Vec::new();
        if let Some(pool) = &self.pool {
            while self.returned < self.submitted {
                let done = pool.take_done(self.returned, true)?;
                self.returned += done.len();
                out.extend(done);
            }
        }
        self.pool = None;
        out.extend(last);
        Ok(out)
    }
}

/// A stream format around a codec's blocks: what it writes of each compressed block, in
/// order, and after the last.
pub trait Framing {
    /// The codec of the blocks.
    type Codec: BlockCodec;
    /// Writes one compressed block, the next in order.
    fn block<W: Write>(
        &mut self,
        w: &mut W,
        out: <Self::Codec as BlockCodec>::Out,
    ) -> io::Result<()>;
    /// Writes what follows the last block.
    fn end<W: Write>(&mut self, w: &mut W) -> io::Result<()>;
}

/// An encoder writing a framed stream of blocks compressed on a [`BlockPipeline`]; the
/// caller must call [`BlockEncoder::finish`].
pub struct BlockEncoder<F: Framing, W: Write> {
    inner: W,
    framing: F,
    pipeline: BlockPipeline<F::Codec>,
}

impl<F: Framing, W: Write> BlockEncoder<F, W> {
    /// An encoder of `codec`'s blocks in `framing` onto `inner` (which holds whatever the
    /// format writes before the first block), on up to `threads` threads.
    pub fn start(inner: W, framing: F, codec: F::Codec, threads: usize) -> Self {
        BlockEncoder {
            inner,
            framing,
            pipeline: BlockPipeline::new(codec, threads),
        }
    }

    /// Blocks handed to the threads and not yet written, at most.
    pub fn max_in_flight(&self) -> usize {
        self.pipeline.max_in_flight()
    }

    fn emit(&mut self, done: Vec<<F::Codec as BlockCodec>::Out>) -> io::Result<()> {
        for out in done {
            self.framing.block(&mut self.inner, out)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the end of the stream and returns the writer (not
    /// flushed); the threads are stopped before it is handed back.
    pub fn finish(mut self) -> io::Result<W> {
        let done = self.pipeline.finish()?;
        self.emit(done)?;
        self.framing.end(&mut self.inner)?;
        Ok(self.inner)
    }
}

impl<F: Framing> BlockEncoder<F, Vec<u8>> {
    /// The whole stream of `data`, in memory.
    pub fn encode_all(mut self, data: &[u8]) -> Vec<u8> {
        // Writing into a Vec cannot fail.
        self.write_all(data).expect("writing to a Vec");
        self.finish().expect("writing to a Vec")
    }
}

impl<F: Framing, W: Write> Write for BlockEncoder<F, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (n, done) = self.pipeline.write(buf)?;
        self.emit(done)?;
        Ok(n)
    }

    /// Does nothing: where a block ends is fixed by the input, and a flush point would change
    /// the bytes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
