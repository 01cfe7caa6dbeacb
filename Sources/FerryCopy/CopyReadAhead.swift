import Dispatch
import Synchronization

/// Reads ahead of the copy workers, for a source whose reads mostly wait on a peer (`.remote`:
/// an NBD export). Without it each worker reads, then hashes and writes, so while the workers
/// (one per core) hash, nothing is asked of the server and its threads sit idle: `ferry copy
/// nbd://…` took about twice nbdcopy's time. Here `readers` threads take requests from the
/// planner in disk order and read each into a free buffer; the workers take the requests in
/// the order their reads finished (the digest and positional writes accept any order), hash
/// and write them, and hand the buffers back. What is hashed, and what is written, is exactly
/// what `CopyJob.work` does.
///
/// ```
///  planner ──▶ readers (readAhead threads) ──▶ ready ──▶ workers (one per core) ──▶ target
///                 ▲                                          │
///                 └──────────── free buffers ◀───────────────┘
/// ```
/// Memory: `readers + workers` buffers of the request size, allocated once: a reader that finds
/// no free buffer waits (the workers are behind), so reading never runs away from writing.
final class CopyReadAhead: Sendable {
    /// A request buffer passed between threads, owned by one of them at a time: the free list,
    /// a reader, the ready queue, a worker.
    struct Buffer: @unchecked Sendable {
        // @unchecked: handed over under `state`'s lock and then used by its one owner only.
        let bytes: UnsafeMutableRawBufferPointer
    }

    enum Item: Sendable {
        case data(CopyRequest, Buffer)
        case zero(CopyRequest)
        /// Every reader is done; left in the queue for each worker to see.
        case end
    }

    private struct State {
        var free: [Buffer]
        var ready: [Item] = []
        var readers: Int
    }

    private let job: CopyJob
    private let state: Mutex<State>
    private let all: [Buffer]
    private let freeCount: DispatchSemaphore
    private let readyCount = DispatchSemaphore(value: 0)

    init(job: CopyJob, readers: Int, workers: Int) {
        self.job = job
        let all = (0..<readers + workers).map { _ in
            Buffer(bytes: .allocate(byteCount: job.requestSize, alignment: 4096))
        }
        self.all = all
        state = Mutex(State(free: all, readers: readers))
        freeCount = DispatchSemaphore(value: all.count)
    }

    deinit { for buffer in all { buffer.bytes.deallocate() } }

    /// A reader thread: requests in disk order, each data request read into a free buffer.
    func read() {
        do {
            while !job.stopping, let request = try job.planner.next() {
                guard request.kind == .data else {
                    push(.zero(request))
                    continue
                }
                freeCount.wait()
                let buffer = state.withLock { $0.free.removeLast() }
                let data = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<Int(request.length)])
                do {
                    try job.read(request, into: data)
                } catch {
                    release(buffer)
                    throw error
                }
                push(.data(request, buffer))
            }
        } catch {
            job.fail(error)
        }
        let last = state.withLock { state in
            state.readers -= 1
            return state.readers == 0
        }
        if last { push(.end) }
    }

    /// A worker thread: hashes and writes what the readers read, until they are all done. After
    /// a failure or a cancellation it only hands buffers back, so no reader waits forever.
    func work() {
        while true {
            readyCount.wait()
            let item = state.withLock { state in
                let item = state.ready.removeFirst()
                if case .end = item { state.ready.insert(.end, at: 0) }
                return item
            }
            switch item {
            case .end:
                readyCount.signal()
                return
            case .zero(let request):
                guard !job.stopping else { continue }
                do { try job.zero(request) } catch { job.fail(error) }
            case .data(let request, let buffer):
                defer { release(buffer) }
                guard !job.stopping else { continue }
                let data = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<Int(request.length)])
                do { try job.store(request, data) } catch { job.fail(error) }
            }
        }
    }

    private func push(_ item: Item) {
        state.withLock { $0.ready.append(item) }
        readyCount.signal()
    }

    private func release(_ buffer: Buffer) {
        state.withLock { $0.free.append(buffer) }
        freeCount.signal()
    }
}
