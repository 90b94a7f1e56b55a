#if ServiceLifecycle
// `TaskLocals.gracefulShutdownManager`, the task-local through which
// ServiceLifecycle tells a task of a graceful shutdown: the connections'
// tasks are not the service's children and would not see it otherwise.
@_spi(TestKit) import ServiceLifecycle
import Weft

/// A server on a ``Weft/LoopGroup`` as a swift-service-lifecycle `Service`:
/// it serves `address` on every loop of the group (``Weft/LoopGroup/serve(_:distribution:backlog:handler:)``)
/// until the service group shuts down gracefully; then it stops accepting,
/// lets the connections in flight finish for up to `gracePeriod`, and
/// returns. Cancelled instead, it closes the listeners and returns at once
/// (the connections' tasks end when the group shuts down).
///
/// The handler sees the service group's graceful shutdown as the service's
/// own code does: `gracefulShutdown()`, `cancelWhenGracefulShutdown`,
/// `withGracefulShutdownHandler` and `Task.isShuttingDownGracefully` work in
/// it, though its task is the loop's, not a child of the service (a handler
/// that keeps its connection open until the client leaves can close it at
/// the shutdown instead of holding the drain for the whole grace period).
///
/// <!-- snippet: serve-echo: 127.0.0.1:8080; prelude: serviceGroupParts -->
/// ```swift
/// import ServiceLifecycle
/// import WeftServiceLifecycle
///
/// let group = try LoopGroup()
/// let server = WeftServerService(group: group, address: try SocketAddress("0.0.0.0:8080")) { stream in
///     try await echo(stream)
/// }
/// let services = ServiceGroup(services: [LoopGroupService(group), server],
///                             gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await services.run()
/// ```
public struct WeftServerService: Service {
    let group: LoopGroup
    let address: SocketAddress
    let distribution: ConnectionDistribution
    let gracePeriod: Duration
    let handler: ConnectionHandler
    let onListening: @Sendable (SocketAddress) -> Void

    /// A service serving `address` on `group` with `handler`; `onListening`
    /// is told the bound address (the real port when `address` has port 0).
    public init(
        group: LoopGroup, address: SocketAddress, distribution: ConnectionDistribution = .reusePort,
        gracePeriod: Duration = .seconds(10), onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in },
        handler: @escaping ConnectionHandler
    ) {
        self.group = group
        self.address = address
        self.distribution = distribution
        self.gracePeriod = gracePeriod
        self.handler = handler
        self.onListening = onListening
    }

    public func run() async throws {
        let server = try await group.serve(address, distribution: distribution, handler: handlerSeeingShutdown())
        onListening(server.localAddress)
        // Returns on graceful shutdown, throws on cancellation.
        let graceful = (try? await gracefulShutdown()) != nil
        await server.close()
        if graceful {
            // Counted from each accept: a connection handed to a busy loop
            // and not yet started is waited for too.
            _ = try? await value(of: timeoutFuture(gracePeriod, server.waitForConnectionsFuture()))
        }
    }

    /// `handler`, run with the graceful-shutdown manager of the task that
    /// calls this (the service's, in a `ServiceGroup`) bound in its task. A
    /// `CancellationError` thrown once the graceful shutdown began is the
    /// shutdown ending the handler (`cancelWhenGracefulShutdown`), not a
    /// failure: the connection's own task was not cancelled, so it was
    /// counted in `handlerFailures` and reported as a failed handler.
    private func handlerSeeingShutdown() -> ConnectionHandler {
        guard let manager = TaskLocals.gracefulShutdownManager else { return handler }
        let handler = self.handler
        return { stream in
            try await TaskLocals.$gracefulShutdownManager.withValue(manager) {
                do {
                    try await handler(stream)
                } catch is CancellationError where Task.isShuttingDownGracefully {
                    return
                }
            }
        }
    }
}

/// A ``Weft/LoopGroup`` as a `Service`: it runs until the service group shuts
/// down (gracefully or by cancellation), then shuts the loops down. A
/// `ServiceGroup` stops its services in reverse order, so list this one
/// before the services that use the group: it stops after them.
public struct LoopGroupService: Service {
    let group: LoopGroup

    public init(_ group: LoopGroup) {
        self.group = group
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await group.shutdownGracefully()  // blocks no thread of the service group's pool
    }
}
#endif
