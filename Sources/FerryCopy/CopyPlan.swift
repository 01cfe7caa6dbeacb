public import FerryDisk
import Synchronization

/// One unit of work for the copy engine: a range aligned to digest blocks that is
/// either read (it holds data) or known to read as zeros (never read).
public struct CopyRequest: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case data, zero }
    public var offset: UInt64
    public var length: UInt64
    public var kind: Kind
}

/// Turns a source's extents into copy requests, lazily and in disk order.
///
/// Requests are aligned to the 64 KiB digest blocks so every worker hashes whole
/// blocks. A block that is partly data is read in full (holes inside it read as
/// zeros cheaply). Zero runs become one request however long they are; data runs
/// are cut into `requestSize` pieces. Extents are asked for one `window` at a time,
/// so a fragmented 2 TB disk never holds its whole extent list in memory.
public final class CopyPlanner: Sendable {
    public let size: UInt64
    public let requestSize: UInt64
    public let window: UInt64
    private let source: any BlockDevice
    private let useExtents: Bool
    /// Data requests it found all zero are handed out as zero requests, unread.
    public let scout: ZeroScout?

    private struct State {
        var cursor: UInt64 = 0
        /// Requests planned from the current window, not yet handed out.
        var queued: [CopyRequest] = []
        var queuedIndex = 0
    }
    private let state = Mutex(State())

    public init(
        source: any BlockDevice, requestSize: Int, window: UInt64 = 1 << 30, useExtents: Bool = true, scout: ZeroScout? = nil
    ) {
        self.source = source
        self.scout = scout
        size = source.size
        let block = UInt64(DiskDigest.blockSize)
        self.requestSize = max(block, UInt64(requestSize) / block * block)
        self.window = max(self.requestSize, window / block * block)
        self.useExtents = useExtents && source.capabilities.contains(.extents)
    }

    /// The next request in disk order, or nil when the plan is done.
    public func next() throws -> CopyRequest? {
        try state.withLock { state in
            while state.queuedIndex == state.queued.count {
                guard state.cursor < size else { return nil }
                let end = min(size, state.cursor + window)
                state.queued = try plan(from: state.cursor, to: end)
                state.queuedIndex = 0
                state.cursor = end
            }
            let request = state.queued[state.queuedIndex]
            state.queuedIndex += 1
            guard let scout else { return request }
            guard request.kind == .data, let zeroEnd = scout.zeroEnd(from: request.offset),
                zeroEnd >= request.offset + request.length
            else {
                scout.copied(upTo: request.offset + request.length)
                return request
            }
            // A scouted run of zeros: this request and the data requests after it that it covers.
            var end = request.offset + request.length
            while state.queuedIndex < state.queued.count {
                let following = state.queued[state.queuedIndex]
                guard following.kind == .data, following.offset == end, following.offset + following.length <= zeroEnd else {
                    break
                }
                end += following.length
                state.queuedIndex += 1
            }
            scout.copied(upTo: end, skipped: end - request.offset)
            return CopyRequest(offset: request.offset, length: end - request.offset, kind: .zero)
        }
    }

    /// Plans `[start, end)`; `start` is block-aligned and `end` is block-aligned or the disk's end.
    private func plan(from start: UInt64, to end: UInt64) throws -> [CopyRequest] {
        let block = UInt64(DiskDigest.blockSize)
        var requests: [CopyRequest] = []
        func emit(_ offset: UInt64, _ stop: UInt64, _ kind: CopyRequest.Kind) {
            guard stop > offset else { return }
            if kind == .zero {
                if let last = requests.last, last.kind == .zero, last.offset + last.length == offset {
                    requests[requests.count - 1].length += stop - offset
                } else {
                    requests.append(CopyRequest(offset: offset, length: stop - offset, kind: .zero))
                }
                return
            }
            var position = offset
            while position < stop {
                let n = min(requestSize, stop - position)
                requests.append(CopyRequest(offset: position, length: n, kind: .data))
                position += n
            }
        }
        guard useExtents else {
            emit(start, end, .data)
            return requests
        }
        let extents = try source.extents(at: start, length: end - start)
        // Classify each block: data if any extent touching it is data. Walk extents and
        // blocks together; both only move forward.
        var runStart = start
        var runKind: CopyRequest.Kind? = nil
        var position = start
        var index = 0
        while position < end {
            while index < extents.count, extents[index].end <= position { index += 1 }
            // Fast path: a long non-data extent covers whole blocks from here on.
            if index < extents.count, extents[index].kind != .data, extents[index].offset <= position {
                let coveredEnd = min(end, extents[index].end)
                let wholeBlocksEnd = coveredEnd == end ? end : coveredEnd / block * block
                if wholeBlocksEnd >= position + block || wholeBlocksEnd == end, wholeBlocksEnd > position {
                    if runKind != .zero {
                        if let runKind { emit(runStart, position, runKind) }
                        runKind = .zero
                        runStart = position
                    }
                    position = wholeBlocksEnd
                    continue
                }
            }
            let blockEnd = min(position + block, end)
            // A block is zero only when extents that read as zeros cover all of it. A
            // range the device did not describe (before the first extent, between two,
            // after the last) is data: reading it costs a little, skipping it loses data.
            var hasData = false
            var covered = position
            var probe = index
            while probe < extents.count, extents[probe].offset < blockEnd {
                if extents[probe].kind == .data || extents[probe].offset > covered { hasData = true; break }
                covered = max(covered, extents[probe].end)
                probe += 1
            }
            if covered < blockEnd { hasData = true }
            let kind: CopyRequest.Kind = hasData ? .data : .zero
            if runKind != kind {
                if let runKind { emit(runStart, position, runKind) }
                runKind = kind
                runStart = position
            }
            position = blockEnd
        }
        if let runKind { emit(runStart, end, runKind) }
        return requests
    }
}
