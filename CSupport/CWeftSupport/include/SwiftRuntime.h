#ifndef WEFT_SWIFT_RUNTIME_H
#define WEFT_SWIFT_RUNTIME_H

// Every call Weft makes into Swift's runtime that is not public API, in one
// place (SwiftRuntime.c; the Swift side is Sources/Weft/Support/SwiftRuntime.swift,
// which says what each saves and how it is tested). If a toolchain changes one
// of these entry points, Tests/WeftTests/Support/SwiftRuntimeHooksTests.swift
// fails naming it.

#include <stddef.h>

/// The Swift runtime's uniqueness test, the one `isKnownUniquelyReferenced`
/// calls. That function takes the variable holding the reference `inout`, a
/// modifying access ThreadSanitizer reports as a race when two threads ask at
/// once; this one only reads the object's reference count.
/// Inline: it sits on the oneshot's hot path.
_Bool swift_isUniquelyReferenced_nonNull_native(const void *object);

static inline _Bool weft_is_uniquely_referenced(const void *object) {
    return swift_isUniquelyReferenced_nonNull_native(object);
}

/// The strong retain count of a Swift object (`swift_retainCount`).
size_t weft_strong_retain_count(const void *object);

/// Adds a cancellation record to the current Swift task through the runtime
/// entry point `withTaskCancellationHandler` itself uses, without that
/// function's executor checks: when the task is cancelled (at once, if it
/// already is), `weft_task_cancelled(context)` (Swift) runs on the cancelling
/// thread. Call from the task; remove the record, in the same task, before
/// anything the task allocated after adding it is freed.
void *weft_add_cancellation_handler(void *context);
void weft_remove_cancellation_handler(void *record);

/// The current Swift task (the runtime's `swift_task_getCurrent`), or NULL:
/// compared, never dereferenced.
void *weft_current_task(void);

/// The runtime entry points behind `TaskLocal.withValue`: push binds `key` (a
/// `TaskLocal` object, or any other address: the runtime only compares keys,
/// never reads or retains them) in the current task to the value at `value`,
/// of type `value_type`, which it moves out of `value`; pop undoes the latest
/// push. Pushes and pops pair up in reverse order with the task's other stack
/// allocations.
void weft_task_local_value_push(const void *key, void *value, const void *value_type);
void weft_task_local_value_pop(void);

/// The entry point behind `TaskLocal`'s getter: where the current task (or
/// the task it inherited from) keeps the value bound to `key`, or NULL.
const void *weft_task_local_value_get(const void *key);

/// The key `TaskResumer` binds its value to: a constant address, where a
/// `TaskLocal` kept in a `static` is a lazily initialized global that costs a
/// `swift_once` check on every read.
extern const char weft_task_resumer_key_storage;

static inline const void *weft_task_resumer_key(void) {
    return &weft_task_resumer_key_storage;
}

#endif
