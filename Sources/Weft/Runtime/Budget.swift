import CWeftSupport

/// Cooperative scheduling budget (Tokio's `coop`): a task that keeps finding its
/// futures ready (draining a full channel, say) would otherwise never return
/// `.pending`, and the loop could run neither other tasks nor I/O. Each task poll
/// starts with `perPoll` units; leaf futures that can be ready without waiting
/// take one per poll, and once they are spent they wake their task and return
/// `.pending`, so it yields and continues at its next turn.
public enum Budget {
    /// Units per task poll.
    public static let perPoll = 128

    /// Starts a task poll's budget.
    @usableFromInline
    static func startPoll() { weft_budget_set(perPoll) }

    /// Ends a task poll: outside tasks the budget is unlimited.
    @usableFromInline
    static func endPoll() { weft_budget_set(-1) }

    /// Takes one unit; `false` when the task must yield now. Leaf futures call it
    /// before handing out a ready result, and on `false` wake `context.waker` and
    /// return `.pending` (losing nothing). Always `true` outside a task poll.
    public static func consume() -> Bool {
        weft_budget_consume()
    }
}
