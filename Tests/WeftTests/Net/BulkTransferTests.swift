import Testing
import Weft

extension TimingSensitive {
    @Suite("TCP bulk transfer")
    struct BulkTransferTests {
        /// 64 MiB, written in 1 MiB chunks.
        static let chunkSize = 1 << 20
        static let chunkCount = 64
        /// Deterministic pseudo-random bytes; its length is not a divisor of the
        /// chunk size (and larger than a chunk), so every chunk is a different slice.
        static let patternLength = 1_050_011
        static let doubledPattern: [UInt8] = {
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            var pattern = [UInt8](repeating: 0, count: patternLength)
            for index in pattern.indices {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                pattern[index] = UInt8(truncatingIfNeeded: state >> 24)
            }
            return pattern + pattern
        }()

        /// Bytes `[index * chunkSize, (index + 1) * chunkSize)` of the endless pattern.
        static func chunk(_ index: Int) -> [UInt8] {
            let start = (index * chunkSize) % patternLength
            return Array(doubledPattern[start..<start + chunkSize])
        }

        @Test("64 MiB each way arrive intact: FNV-1a of the bytes sent, echoed by the server and received back agree")
        func sixtyFourMebibytesEachWay() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            let total = Self.chunkSize * Self.chunkCount

            // Server: echo, hashing every byte it writes back.
            let serverHash = NetTest.Cell(NetTest.FNV1a())
            let serverCount = NetTest.Cell(0)
            let server = listener.acceptFuture().onSuccess { stream in
                copy(from: stream, to: NetTest.HashingWriter(base: stream, hash: serverHash, count: serverCount))
                    .onSuccess { _ in stream.shutdownFuture() }
            }

            // Client: a writer and a reader joined, so both directions flow at once.
            let sentHash = NetTest.Cell(NetTest.FNV1a())
            let receivedHash = NetTest.Cell(NetTest.FNV1a())
            let client = TCPStream.connectFuture(to: address).onSuccess { stream in
                let writer = NetTest.steps(Self.chunkCount) { index in
                    let bytes = Self.chunk(index)
                    sentHash.value.add(bytes)
                    return stream.writeAll(bytes)
                }.onSuccess { stream.shutdownFuture() }
                let reader = NetTest.Drain(reader: stream) { receivedHash.value.add($0) }
                return join(writer, reader).map { written, read in written.flatMap { read } }
            }

            // About 1.2 s in a debug build on the 2-core box.
            let (serverResult, clientResult) = try runtime.block(on: timeoutFuture(.seconds(40), join(server, client))).get()
            try serverResult.get()
            let received = try clientResult.get()
            #expect(serverCount.value == total)
            #expect(received == total)
            #expect(serverHash.value == sentHash.value)
            #expect(receivedHash.value == sentHash.value)

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
